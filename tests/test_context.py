import random

from factories import SESSION, WORKSPACE, context, system_prompt

from Tools.schema.context import (
    check_context,
    check_prompt_ids,
    extract_prompt_ids,
    generate_session_id,
    generate_workspace_id,
    is_session_id,
    is_workspace_id,
    make_context,
)


def codes(findings):
    return sorted(f.code for f in findings)


def test_generated_ids_have_the_documented_format_and_are_seedable():
    rng = random.Random(1)
    sid, wid = generate_session_id(rng=rng), generate_workspace_id(rng=rng)
    assert is_session_id(sid) and is_workspace_id(wid) and is_workspace_id("default")
    assert generate_session_id(1732147550000, random.Random(5)) == generate_session_id(1732147550000, random.Random(5))
    assert not is_session_id("session_1732867250000_err56a") and not is_workspace_id(
        "ws_1730126000000_old_workspace_123"
    )


def test_make_context_orders_fields_and_refuses_missing_ones():
    ctx = make_context(
        SESSION, WORKSPACE, sessionDescription="d", sessionMemory="m", toolContext="t", primaryGoal="p", subgoal="s"
    )
    assert list(ctx)[:2] == ["sessionId", "workspaceId"] and len(ctx) == 7
    try:
        make_context(SESSION, WORKSPACE)
    except ValueError as exc:
        assert "sessionMemory" in str(exc)
    else:
        raise AssertionError("missing fields accepted")


def test_check_context_rules():
    assert check_context({"context": context(), "path": "x"}) == []
    assert codes(check_context({"path": "x"})) == ["E_CONTEXT_MISSING"]
    assert codes(check_context({"path": "x", "context": context()})) == ["E_CONTEXT_NOT_FIRST"]
    assert codes(check_context({"context": "text"})) == ["E_CONTEXT_TYPE"]
    assert codes(check_context({"context": context(sessionMemory="")})) == ["E_CONTEXT_FIELD_EMPTY"]
    assert codes(check_context({"context": context(subgoal=" ")})) == ["W_CONTEXT_FIELD_EMPTY"]
    assert codes(check_context({"context": context(sessionId=123)})) == ["E_CONTEXT_FIELD_TYPE"]
    assert codes(check_context({"context": context(sessionId="my session")})) == ["E_SESSION_ID_FORMAT"]
    assert codes(check_context({"context": context(workspaceId="ws_1")})) == ["E_WORKSPACE_ID_FORMAT"]
    partial = context()
    del partial["toolContext"]
    assert codes(check_context({"context": partial})) == ["E_CONTEXT_FIELD_MISSING"]


def test_prompt_ids_in_both_styles():
    for xml in (False, True):
        ids = extract_prompt_ids(system_prompt(xml=xml))
        assert (ids.session_id, ids.workspace_id) == (SESSION, WORKSPACE)
    ids = extract_prompt_ids(system_prompt())
    assert ids.workspaces == [WORKSPACE] and ids.agents == ["agent_001"]


def test_ids_are_cross_checked_against_the_prompt():
    ids = extract_prompt_ids(system_prompt(xml=True))  # the XML style the earlier validator skipped
    other = "session_1732147550000_zzzzzzzzz"
    assert codes(check_prompt_ids({"context": context(sessionId=other)}, ids)) == ["E_SESSION_ID_MISMATCH"]
    assert codes(check_prompt_ids({"context": context(workspaceId="default")}, ids)) == ["E_WORKSPACE_ID_MISMATCH"]
    ids = extract_prompt_ids(system_prompt())
    assert codes(
        check_prompt_ids({"context": context(), "id": "ws_1732147550000_unknown00"}, ids, "memoryManager_loadWorkspace")
    ) == ["W_UNKNOWN_WORKSPACE_REF"]
    assert codes(check_prompt_ids({"context": context(), "id": "agent_999"}, ids, "agentManager_deleteAgent")) == [
        "W_UNKNOWN_AGENT_REF"
    ]
    # a non-string id crashed the earlier validator
    assert check_prompt_ids({"context": context(), "id": 123}, ids, "memoryManager_loadWorkspace") == []
