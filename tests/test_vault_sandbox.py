"""VaultSandbox: template copies, change reports, reset, and two sandboxes in two threads."""

from __future__ import annotations

import threading

import pytest

from Tools.vault.sandbox import DEFAULT_TEMPLATE, VaultSandbox

from vault_helpers import call


def test_changes_report_created_modified_deleted():
    with VaultSandbox() as box:
        assert not box.changes()
        box.execute(call("vaultManager_createFolder", path="Archive/2026"))
        box.execute(call("contentManager_appendContent", filePath="Welcome.md", content="\nmore"))
        box.execute(call("vaultManager_deleteNote", path="Inbox/Ideas.md"))
        changes = box.changes()
        assert changes.created == ["Archive/2026/"]
        assert changes.modified == ["Welcome.md"]
        assert changes.deleted == ["Inbox/Ideas.md"]
        assert box.read("Welcome.md").endswith("\nmore")
        assert (DEFAULT_TEMPLATE / "Inbox" / "Ideas.md").is_file()  # the template itself is untouched


def test_reset_restores_the_template_and_forgets_bindings():
    with VaultSandbox() as box:
        ws = box.execute(call("memoryManager_loadWorkspace", id="Research"))["workspaceId"]
        assert box.execute(call("memoryManager_listSessions", ctx={"workspaceId": ""}))["workspaceId"] == ws
        box.execute(call("vaultManager_deleteFolder", path="Projects", recursive=True))
        box.reset()
        assert not box.changes() and box.exists("Projects/Index.md")
        assert box.execute(call("memoryManager_listSessions", ctx={"workspaceId": ""}))["workspaceId"] == "default"
    assert not box.root.exists()  # close removes the copy


def test_missing_template_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="template vault not found"):
        VaultSandbox(tmp_path / "nope")


def test_two_sandboxes_in_two_threads_do_not_interfere():
    errors: list[str] = []

    def episode(tag: str) -> None:
        try:
            with VaultSandbox() as box:
                for i in range(40):
                    name = f"{tag}/note{i}.md"
                    assert box.execute(call("contentManager_createContent", filePath=name, content=tag))["success"]
                    assert box.execute(call("contentManager_appendContent", filePath="Welcome.md", content=tag))[
                        "success"
                    ]
                    assert box.execute(call("memoryManager_createSession", name=f"{tag}{i}"))["success"]
                changes = box.changes()
                assert {p for p in changes.created if p.endswith(".md")} == {f"{tag}/note{i}.md" for i in range(40)}
                assert box.read("Welcome.md").endswith(tag * 40)
                sessions = box.execute(call("memoryManager_listSessions"))["data"]["sessions"]
                assert {s["name"][:1] for s in sessions} == {tag}
        except AssertionError as exc:
            errors.append(f"{tag}: {exc}")

    threads = [threading.Thread(target=episode, args=(tag,)) for tag in ("A", "B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_copies_of_a_process_killed_by_sigkill_are_removed_by_the_next_one(tmp_path):
    """A real subprocess makes sandboxes and is SIGKILLed: its copies stay, and the next process
    that makes a sandbox there removes them, while a live process's copies are left alone."""
    import signal
    import subprocess
    import sys

    pytest.importorskip("fcntl", reason="sweeping needs flock (POSIX)")
    script = (
        "import sys, time; from Tools.vault.sandbox import VaultSandbox; "
        "boxes = [VaultSandbox(base_dir=sys.argv[1]) for _ in range(2)]; print('ready', flush=True); time.sleep(120)"
    )

    def start():
        process = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        assert process.stdout.readline().strip() == "ready"
        return process

    killed, alive = start(), start()
    try:
        runs = sorted(tmp_path.glob("vault-run-*"))
        assert len(runs) == 2 and all(len(list(run.glob("sandbox-*/vault/Welcome.md"))) == 2 for run in runs)
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
        assert len(list(tmp_path.glob("vault-run-*"))) == 2  # a SIGKILL runs no cleanup

        with VaultSandbox(base_dir=tmp_path) as box:  # the next start sweeps
            left = set(tmp_path.glob("vault-run-*"))
            assert box.root.parents[1] in left and len(left) == 2
            survivors = [run for run in runs if run in left]
            assert len(survivors) == 1 and len(list(survivors[0].glob("sandbox-*/vault"))) == 2  # the live one's
    finally:
        for process in (killed, alive):
            process.kill()
            process.wait(timeout=10)


def test_a_template_with_traps_copies_and_reports_without_hanging(tmp_path):
    """FIFOs are not copied (a copy would block), links are copied as links and reported by target,
    never followed (a link to /dev/zero would never end a digest)."""
    import os

    template = tmp_path / "template"
    (template / "Notes").mkdir(parents=True)
    (template / "Notes" / "a.md").write_text("a")
    os.mkfifo(template / "pipe.md")
    os.symlink("/dev/zero", template / "zero.md")
    os.symlink(tmp_path, template / "out")
    with VaultSandbox(template, base_dir=tmp_path) as box:
        assert not (box.root / "pipe.md").exists() and (box.root / "zero.md").is_symlink()
        os.remove(box.root / "zero.md")
        os.symlink("Notes/a.md", box.root / "zero.md")
        assert box.changes().modified == ["zero.md"] and not box.changes().created
        assert box.execute(call("vaultLibrarian_searchContent", query="zero"))["success"]


def test_a_sweep_removes_an_old_staging_folder_without_a_lock_and_leaves_other_folders(tmp_path):
    """A process killed between making its staging folder and locking it leaves a folder with no
    lock file: swept once it is a minute old. A vault-run-* folder without a lock file is not a run
    folder and stays, as does a young staging folder (its owner may be about to lock it)."""
    import os
    import time

    from Tools.vault.sandbox import sweep_stale_runs

    old, young, stranger = (tmp_path / n for n in (".vault-staging-old", ".vault-staging-young", "vault-run-mine"))
    for folder in (old, young, stranger):
        folder.mkdir()
    os.utime(old, (time.time() - 120, time.time() - 120))
    assert sweep_stale_runs(tmp_path) == [old]
    assert not old.exists() and young.is_dir() and stranger.is_dir()
