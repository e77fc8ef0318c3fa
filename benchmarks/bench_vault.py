"""Vault executor speed over a generated vault of 1,000 notes.

    python benchmarks/bench_vault.py [--notes 1000] [--calls 5000] [--queries 30]

Prints executed calls per second for a create/read/append/move/list mix (in-process, the real
executor on real files), milliseconds per searchContent query over every note, per searchDirectory
call with a user `pattern` (the bounded `regex` engine), and how soon a runaway pattern is cut off.
Goals: at least 2,000 calls/s, at most 50 ms per query, a runaway pattern answered within 2 s (its 1 s budget plus the walk);
the exit code is 1 when a goal is missed.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from Tools.cli_common import ArgumentParser, format_table  # noqa: E402
from Tools.vault.executor import VaultExecutor  # noqa: E402

WORDS = (
    "garden project meeting retrieval model budget recipe server backup style review paper summary task "
    "weather travel health finance kickoff decision draft note idea plan archive"
).split()
CONTEXT = {
    "sessionId": "session_1767225600000_benchaaaa",
    "workspaceId": "default",
    "sessionDescription": "bench",
    "sessionMemory": "benchmark",
    "toolContext": "bench",
    "primaryGoal": "speed",
    "subgoal": "one call",
}


def make_vault(root: Path, notes: int, rng: random.Random) -> None:
    for i in range(notes):
        folder = root / f"Area {i % 10}" / f"Topic {i % 50}"
        folder.mkdir(parents=True, exist_ok=True)
        body = " ".join(rng.choices(WORDS, k=rng.randint(80, 300)))
        (folder / f"Note {i}.md").write_text(
            f"---\ntags: [{rng.choice(WORDS)}]\n---\n# Note {i}\n\n{body}\n", encoding="utf-8"
        )


def mixed_calls(count: int, rng: random.Random, notes: int):
    """create / read / append / move / list in equal shares, each on real paths."""
    calls, created = [], []
    for i in range(count):
        kind = i % 5
        if kind == 0 or not created:
            path = f"Bench/{i // 200}/new {i}.md"
            created.append(path)
            calls.append(("contentManager_createContent", {"filePath": path, "content": "fresh note\n"}))
        elif kind == 1:
            j = rng.randrange(notes)
            calls.append(("contentManager_readContent", {"filePath": f"Area {j % 10}/Topic {j % 50}/Note {j}.md"}))
        elif kind == 2:
            calls.append(("contentManager_appendContent", {"filePath": rng.choice(created), "content": "\nmore"}))
        elif kind == 3:
            old = created.pop(rng.randrange(len(created)))
            new = old.replace(".md", " moved.md")
            created.append(new)
            calls.append(("vaultManager_moveNote", {"path": old, "newPath": new}))
        else:
            topic = rng.randrange(50)
            calls.append(("vaultManager_listDirectory", {"path": f"Area {topic % 10}/Topic {topic}"}))
    return calls


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="bench_vault", description="Vault executor throughput and search latency.")
    parser.add_argument("--notes", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=30)
    args = parser.parse_args(argv)
    rng = random.Random(0)
    with tempfile.TemporaryDirectory(prefix="bench-vault-") as tmp:
        root = Path(tmp)
        make_vault(root, args.notes, rng)
        notes = sum(1 for _ in root.rglob("*.md"))
        ex = VaultExecutor(root)
        calls = mixed_calls(args.calls, rng, args.notes)
        start = time.perf_counter()
        failed = sum(not ex.execute({"name": n, "arguments": {"context": CONTEXT, **a}})["success"] for n, a in calls)
        elapsed = time.perf_counter() - start
        rate = len(calls) / elapsed
        queries = [" ".join(rng.sample(WORDS, 2)) for _ in range(args.queries)]
        search = {"name": "vaultLibrarian_searchContent", "arguments": {"context": CONTEXT, "query": queries[0]}}
        cold_start = time.perf_counter()
        ex.execute(search)
        cold = (time.perf_counter() - cold_start) * 1000
        times = []
        for q in queries:
            t = time.perf_counter()
            result = ex.execute({"name": "vaultLibrarian_searchContent", "arguments": {"context": CONTEXT, "query": q}})
            times.append((time.perf_counter() - t) * 1000)
            assert result["success"] and result["results"], q
        pattern_times = []
        for word in rng.sample(WORDS, 10):
            t = time.perf_counter()
            result = ex.execute(
                {
                    "name": "vaultLibrarian_searchDirectory",
                    "arguments": {
                        "context": CONTEXT,
                        "query": "note",
                        "paths": ["/"],
                        "pattern": rf"Topic \d+/Note \d*{word[0]}?\d\.md$",
                    },
                }
            )
            pattern_times.append((time.perf_counter() - t) * 1000)
            assert result["success"], result
        (root / ("a" * 60 + ".md")).write_text("a name the runaway pattern backtracks on\n", encoding="utf-8")
        t = time.perf_counter()
        runaway = ex.execute(
            {
                "name": "vaultLibrarian_searchDirectory",
                "arguments": {"context": CONTEXT, "query": "note", "paths": ["/"], "pattern": "(a|aa)+c"},
            }
        )
        cutoff = time.perf_counter() - t
        assert not runaway["success"] and "took too long" in runaway["error"], runaway
        searched = sum(1 for _ in root.rglob("*.md"))
    median, worst = statistics.median(times), max(times)
    rows = [
        ("measure", "value"),
        ("notes generated", notes),
        ("mixed calls executed", len(calls)),
        ("calls failed", failed),
        ("calls per second", f"{rate:,.0f}"),
        ("notes searched (generated + created)", searched),
        ("searchContent first query (cold cache), ms", f"{cold:.1f}"),
        ("searchContent median, ms", f"{median:.1f}"),
        ("searchContent worst, ms", f"{worst:.1f}"),
        ("searchDirectory with a pattern, median ms", f"{statistics.median(pattern_times):.1f}"),
        ("runaway pattern (a|aa)+c answered after, s", f"{cutoff:.2f}"),
    ]
    print("\n".join(format_table(rows)))
    ok = rate >= 2000 and worst <= 50 and failed == 0 and cutoff <= 2
    print("goals (>= 2,000 calls/s, <= 50 ms per query, runaway pattern cut within 2 s):", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
