import copy
import json
import random

from factories import call, context, record, system_prompt

from Tools.schema.toolcalls import FORMATS, ToolCall
from Tools.schema.validate import record_passes, validate_record


def codes(findings):
    return sorted(f.code for f in findings)


def test_a_correct_record_passes_in_every_format(registry):
    for fmt in FORMATS:
        findings = validate_record(record(call(), fmt=fmt), registry)
        assert [f.code for f in findings if f.severity == "error"] == [], fmt


def test_hermes_tool_call_tags_are_judged_not_passed_as_text(registry):
    # the earlier validator passed any <tool_call> message as plain text, invented tools included
    findings = validate_record(
        record(ToolCall("vaultManager_teleportNote", {"context": context()}), fmt="hermes"), registry
    )
    assert codes(findings) == ["E_UNKNOWN_TOOL"]


def test_crash_inputs_of_the_earlier_validator_become_findings(registry):
    empty_name = {
        "conversations": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": 'tool_call: \narguments: {"context": {}}'},
        ]
    }
    assert codes(validate_record(empty_name, registry)) == ["E_EMPTY_TOOL_NAME"]
    null_name = record(call())
    null_name["conversations"][-1]["tool_calls"][0]["function"]["name"] = None
    assert codes(validate_record(null_name, registry)) == ["E_EMPTY_TOOL_NAME"]
    non_string_id = record(call("memoryManager_loadWorkspace", id=123))
    assert codes(validate_record(non_string_id, registry)) == ["E_ARG_TYPE"]
    backslash = record(call("contentManager_readContent", filePath="C:\\"), fmt="text")
    assert validate_record(backslash, registry) == []
    prose = record(content="I used to write tool_call: lines by hand.")
    assert validate_record(prose, registry) == []


def test_structural_rules(registry):
    assert codes(validate_record([], registry)) == ["E_NOT_OBJECT"]
    assert codes(validate_record({}, registry)) == ["E_NO_CONVERSATIONS"]
    assert codes(validate_record({"conversations": []}, registry)) == ["E_CONVERSATIONS_TYPE"]
    user_only = {"conversations": [{"role": "user", "content": "hi"}], "label": True}
    assert codes(validate_record(user_only, registry)) == ["E_NO_ASSISTANT"]
    bad_label = {**record(call()), "label": "yes"}
    assert codes(validate_record(bad_label, registry)) == ["E_LABEL_TYPE"]
    bad_role = record(call())
    bad_role["conversations"][1]["role"] = "human"
    assert codes(validate_record(bad_role, registry)) == ["E_NO_USER", "E_ROLE"]
    empty = record(content=" ")
    assert codes(validate_record(empty, registry)) == ["E_EMPTY_ASSISTANT"]


def test_tool_messages_must_answer_a_call(registry):
    answered = record(call())
    answered["conversations"].append({"role": "tool", "tool_call_id": "abc123def", "content": '{"success": true}'})
    answered["conversations"].append({"role": "assistant", "content": "Done: the folder exists."})
    assert validate_record(answered, registry) == []
    orphan = record(content="Sure.")
    orphan["conversations"].append({"role": "tool", "tool_call_id": "zzz", "content": "{}"})
    assert codes(validate_record(orphan, registry)) == ["E_ORPHAN_TOOL_RESULT"]


def test_arguments_context_and_ids_are_errors_not_warnings(registry):
    assert codes(validate_record(record(call(colour="red", path="x")), registry)) == ["E_UNEXPECTED_ARG"]
    assert codes(validate_record(record(call("vaultManager_createFolder", path=None)), registry)) == ["E_ARG_TYPE"]
    empty_memory = ToolCall("vaultManager_createFolder", {"context": context(sessionMemory=""), "path": "x"})
    assert codes(validate_record(record(empty_memory), registry)) == ["E_CONTEXT_FIELD_EMPTY"]
    xml = record(call(), system=system_prompt(session="session_1732147550000_zzzzzzzzz", xml=True))
    assert codes(validate_record(xml, registry)) == ["E_SESSION_ID_MISMATCH"]
    hidden = ToolCall("commandManager_executeCommand", {"context": context(), "commandId": "app:reload"})
    assert codes(validate_record(record(hidden), registry)) == ["E_HIDDEN_TOOL"]


def test_negatives_fail_only_when_structurally_broken(registry):
    wrong = validate_record(record(ToolCall("made_up", {"context": context()}), label=False), registry)
    assert codes(wrong) == ["E_UNKNOWN_TOOL"] and record_passes(wrong, False) and not record_passes(wrong, True)
    broken = validate_record({"conversations": [{"role": "user", "content": "x"}], "label": False}, registry)
    assert not record_passes(broken, False)
    warning_only = validate_record(
        record(ToolCall("vaultManager_createFolder", {"context": context(subgoal=""), "path": "x"})), registry
    )
    assert record_passes(warning_only, True) and not record_passes(warning_only, True, strict=True)


def _mutate(value, rng):
    """One random structural mutation somewhere inside a JSON value."""
    if isinstance(value, dict) and value and rng.random() < 0.7:
        key = rng.choice(list(value))
        choice = rng.random()
        if choice < 0.2:
            del value[key]
        elif choice < 0.4:
            value[key] = rng.choice([None, 0, -1, "", "x" * 5, [], {}, True, 1.5, "tool_call:", "<tool_call>"])
        else:
            value[key] = _mutate(value[key], rng)
        return value
    if isinstance(value, list) and value and rng.random() < 0.7:
        i = rng.randrange(len(value))
        if rng.random() < 0.2:
            value.pop(i)
        else:
            value[i] = _mutate(value[i], rng)
        return value
    if isinstance(value, str) and value and rng.random() < 0.5:
        cut = rng.randrange(len(value))
        return (
            value[:cut]
            + rng.choice(['"', "\\", "{", "}", "]", "\n", "tool_call: ", "[TOOL_CALLS]", ""])
            + value[cut + 1 :]
        )
    return rng.choice([None, 0, "", [], {}, "text", {"role": "tool"}, [{"function": None}]])


def test_fuzz_thousands_of_mutated_records_never_raise(registry):
    rng = random.Random(2024)
    seeds = [record(call(), fmt=fmt) for fmt in FORMATS] + [
        record(call("contentManager_createContent", filePath="a.md", content="b"))
    ]
    for _ in range(3000):
        mutated = copy.deepcopy(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            mutated = _mutate(mutated, rng)
        findings = validate_record(mutated, registry)
        json.dumps([f.to_dict() for f in findings])  # every finding is reportable


def test_arguments_nested_hundreds_deep_are_a_finding_in_every_format(registry):
    deep = json.loads("[" * 500 + "]" * 500)  # within the reader's limit, past the schema engine's
    for fmt in FORMATS:
        findings = validate_record(record(call("contentManager_batchContent", operations=deep), fmt=fmt), registry)
        assert "E_ARG_VALUE" in codes(findings), fmt
