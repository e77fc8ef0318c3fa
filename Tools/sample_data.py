"""The small sample dataset shipped in Datasets/sample/, written by code so it can be regenerated.

    python Tools/sample_data.py [--out Datasets/sample] [--seed 7]

Positives are correct calls (context first, ids from the system prompt, arguments that pass the
schema); each negative is a positive with one controlled corruption, tied to the validator code it
must raise. The template teacher of the self-play stage builds the larger seed sets.
"""
from __future__ import annotations

import random
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from Tools.cli_common import ArgumentParser
from Tools.schema.context import generate_session_id, generate_workspace_id, make_context
from Tools.schema.records import write_jsonl_atomic
from Tools.schema.toolcalls import ToolCall, new_call_id, render_message

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "Datasets" / "sample"

# (user request, tool, arguments without context, session description, tool context)
_TASKS = [
    ("make a folder for the garden project notes", "vaultManager_createFolder", {"path": "Projects/Garden"},
     "Setting up the garden project", "Create the project folder"),
    ("can you start a note called reading list in my inbox", "contentManager_createContent",
     {"filePath": "Inbox/Reading List.md", "content": "# Reading List\n\n- "}, "Starting a reading list", "Create the note"),
    ("what did I write in the meeting notes from monday", "contentManager_readContent",
     {"filePath": "Meetings/2025-11-24 Monday.md"}, "Reviewing meeting notes", "Read the note"),
    ("add 'call the plumber' to my todo note", "contentManager_appendContent",
     {"filePath": "Tasks/Todo.md", "content": "\n- [ ] Call the plumber"}, "Updating the todo list", "Append the task"),
    ("find anything I wrote about sourdough", "vaultLibrarian_searchContent",
     {"query": "sourdough", "limit": 10}, "Looking for baking notes", "Search note contents"),
    ("whats in the projects folder", "vaultManager_listDirectory", {"path": "Projects"},
     "Browsing projects", "List the folder"),
    ("move the draft essay into archive please", "vaultManager_moveNote",
     {"path": "Drafts/Essay.md", "newPath": "Archive/Essay.md"}, "Tidying drafts", "Move the note"),
    ("replace 'Q3' with 'Q4' in the roadmap note", "contentManager_findReplaceContent",
     {"filePath": "Projects/Roadmap.md", "findText": "Q3", "replaceText": "Q4", "replaceAll": True},
     "Updating the roadmap", "Rename the quarter"),
]

# corruption name -> (validator code it must raise, function(call) -> call)
def _drop_memory(call: ToolCall) -> ToolCall:
    context = {k: v for k, v in call.arguments["context"].items() if k != "sessionMemory"}
    return ToolCall(call.name, {**call.arguments, "context": context}, call.id)


def _hallucinate(call: ToolCall) -> ToolCall:
    agent = call.name.split("_")[0]
    return ToolCall(f"{agent}_quickEdit", call.arguments, call.id)


def _wrong_session(call: ToolCall) -> ToolCall:
    context = {**call.arguments["context"], "sessionId": "session_1700000000000_wrongid00"}
    return ToolCall(call.name, {**call.arguments, "context": context}, call.id)


def _invent_param(call: ToolCall) -> ToolCall:
    return ToolCall(call.name, {**call.arguments, "overwriteEverything": True}, call.id)


CORRUPTIONS = {
    "missing_session_memory": ("E_CONTEXT_FIELD_MISSING", _drop_memory),
    "hallucinated_tool": ("E_UNKNOWN_TOOL", _hallucinate),
    "wrong_session_id": ("E_SESSION_ID_MISMATCH", _wrong_session),
    "unexpected_parameter": ("E_UNEXPECTED_ARG", _invent_param),
}


def system_prompt(session_id: str, workspace_id: str, workspace_name: str) -> str:
    return (
        "<session_context>\nIMPORTANT: When using tools, include these values in your tool call parameters:\n\n"
        f'- sessionId: "{session_id}"\n- workspaceId: "{workspace_id}" (current workspace)\n\n'
        'Include these in the "context" parameter of your tool calls.\n</session_context>\n'
        f'<available_workspaces>\n- {workspace_name} (id: "{workspace_id}")\n  Root folder: Projects/\n</available_workspaces>'
    )


def build_sample(seed: int = 7) -> tuple[list[dict], list[dict]]:
    """(SFT positives, KTO records strictly alternating true/false)."""
    rng = random.Random(seed)
    base_ms = 1732147550000
    sft, kto = [], []
    corruption_names = list(CORRUPTIONS)
    for i, (request, tool, arguments, description, tool_context) in enumerate(_TASKS):
        session_id = generate_session_id(base_ms + i * 1000, rng)
        workspace_id = generate_workspace_id(base_ms + i * 1000, rng)
        context = make_context(session_id, workspace_id, sessionDescription=description,
                               sessionMemory=f"The user asked: {request}.", toolContext=tool_context,
                               primaryGoal=description, subgoal=tool_context)
        call = ToolCall(tool, {"context": context, **arguments}, new_call_id(rng))
        conversation = [{"role": "system", "content": system_prompt(session_id, workspace_id, "Personal Vault")},
                        {"role": "user", "content": request}]
        positive = {"conversations": conversation + [render_message([call], "openai")], "label": True,
                    "metadata": {"source": "sample", "tool": tool}}
        name = corruption_names[i % len(corruption_names)]
        code, corrupt = CORRUPTIONS[name]
        negative = {"conversations": conversation + [render_message([corrupt(call)], "openai")], "label": False,
                    "metadata": {"source": "sample", "tool": tool, "corruption": name, "expected_code": code}}
        sft.append(positive)
        kto.extend((positive, negative))
    return sft, kto


def write_sample(out_dir: Path, seed: int = 7) -> dict[str, int]:
    sft, kto = build_sample(seed)
    return {
        str(out_dir / "sample_sft.jsonl"): write_jsonl_atomic(out_dir / "sample_sft.jsonl", sft),
        str(out_dir / "sample_kto.jsonl"): write_jsonl_atomic(out_dir / "sample_kto.jsonl", kto),
    }


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="sample_data.py", description="Write the sample SFT and KTO datasets.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default Datasets/sample)")
    parser.add_argument("--seed", type=int, default=7, help="random seed for ids")
    args = parser.parse_args(argv)
    for path, count in write_sample(args.out, args.seed).items():
        print(f"wrote {count} records to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
