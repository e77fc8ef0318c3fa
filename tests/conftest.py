import json

import pytest


# --- trainers fixtures (Trainers/shared) -------------------------------------------------------
SESSION, WORKSPACE = "session_1732147550000_x2y3z4a5b", "ws_1732147550000_c6d7e8f9g"
SYSTEM = (f'<session_context>\nIMPORTANT: When using tools, include these values in your tool call parameters:\n\n'
          f'- sessionId: "{SESSION}"\n- workspaceId: "{WORKSPACE}"\n</session_context>')


def tool_record(folder: str, user: str, label: bool | None = None, tool: str = "vaultManager_createFolder") -> dict:
    """A record the shared validator passes: a real tool, a full context object, ids from the prompt."""
    context = {"sessionId": SESSION, "workspaceId": WORKSPACE, "sessionDescription": "Organising notes",
               "sessionMemory": "The user keeps project notes in Projects.", "toolContext": "Creating a folder",
               "primaryGoal": "Organise the vault", "subgoal": f"Create {folder}"}
    call = {"id": "abc123def", "type": "function",
            "function": {"name": tool, "arguments": json.dumps({"context": context, "path": folder})}}
    record = {"conversations": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user},
                                {"role": "assistant", "content": None, "tool_calls": [call]}]}
    if label is not None:
        record["label"] = label
    return record


def write_jsonl(path, records) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    from Trainers.shared.tiny_model import build_tiny_model

    return str(build_tiny_model(tmp_path_factory.mktemp("tiny_model")))


@pytest.fixture
def tiny_sft_file(tmp_path):
    """Four memorisable positives, repeated so a few steps see each several times."""
    records = [tool_record(f"Projects/{name}", f"Create a folder for {name}") for name in ("Alpha", "Beta", "Gamma", "Delta")]
    return write_jsonl(tmp_path / "sft.jsonl", records * 2)


@pytest.fixture
def tiny_kto_file(tmp_path):
    """Strict true/false alternation; the negatives call the tool with a wrong, unrelated folder."""
    records = []
    for name in ("Alpha", "Beta", "Gamma", "Delta"):
        records.append(tool_record(f"Projects/{name}", f"Create a folder for {name}", True))
        records.append(tool_record("Trash/tmp", f"Create a folder for {name}", False))
    return write_jsonl(tmp_path / "kto.jsonl", records)
# --- end trainers fixtures ---------------------------------------------------------------------
