"""Every malformed or hostile server answer is one coded case failure and the report is always
written. The servers are protocol doubles: these faults (a body cut short, JSON nested 100,000
deep, a lone surrogate, a byte a second, 20 MB of answer, a status line that is not HTTP...) are
ones a real engine cannot be made to produce on demand."""

import json
import time
import tracemalloc

import pytest

from Evaluator import cli
from Evaluator.clients import BackendError, OllamaClient, OpenAICompatClient, retry_after_seconds
from Evaluator.prompt_sets import PromptCase
from Evaluator.protocol_doubles import HTTP_FAULTS, OPENAI_FAULTS, OllamaDouble, OpenAIDouble
from Evaluator.runner import RunSettings, run_prompt_set
from Tools.schema.issues import CODES
from Tools.schema.registry import load_registry

SYSTEM = (
    '<session_context>\n- sessionId: "session_1735689600000_k3v9x2m7q"\n- workspaceId: "default"\n</session_context>'
)
CONTEXT = {
    "sessionId": "session_1735689600000_k3v9x2m7q",
    "workspaceId": "default",
    "sessionDescription": "d",
    "sessionMemory": "The user wants the folder listed.",
    "toolContext": "t",
    "primaryGoal": "g",
    "subgoal": "s",
}
# Retried, then a failure to answer (E_NO_RESPONSE); a message of the wrong shape, the scorer's to judge
# (the validator's codes); the rest are no chat answer at all (E_BAD_SERVER_ANSWER).
NO_ANSWER = {"html_502", "truncated_body", "hang_up", "bad_chunked", "status_429", "status_503_date", "trickle"}
BAD_MESSAGE = {"content_number", "content_object", "tool_calls_string", "tool_calls_of_strings"}
FAULTS = sorted(HTTP_FAULTS) + sorted(OPENAI_FAULTS) + ["trickle", "huge_answer"]


def tool_answer(body):
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"function": {"name": "vaultManager_listDirectory", "arguments": {"context": CONTEXT, "path": "Garden"}}}
        ],
    }


def good_case(i: int) -> dict:
    return {
        "id": f"good_{i}",
        "question": f"What is in Garden? ({i})",
        "system": SYSTEM,
        "expected_tools": ["vaultManager_listDirectory"],
        "expected_arguments": {"vaultManager_listDirectory": {"path": "Garden"}},
    }


def test_a_run_through_every_fault_gets_a_full_report(tmp_path, capsys):
    assert len(FAULTS) >= 30
    cases = (
        [good_case(0)]
        + [
            {
                "id": name,
                "question": f"fault:{name}",
                "system": SYSTEM,
                "expected_tools": ["vaultManager_listDirectory"],
            }
            for name in FAULTS
        ]
        + [good_case(1)]
    )
    (tmp_path / "faults.json").write_text(json.dumps(cases))
    started = time.monotonic()
    with OpenAIDouble(tool_answer) as double:
        code = cli.main(
            [
                "--backend",
                "vllm",
                "--base-url",
                double.url,
                "--model",
                "double-model",
                "--prompt-set",
                str(tmp_path / "faults.json"),
                "--output",
                str(tmp_path / "r.json"),
                "--markdown",
                str(tmp_path / "r.md"),
                "--timeout",
                "1",
                "--retries",
                "1",
                "--concurrency",
                "4",
                "--max-answer-bytes",
                str(1 << 20),
            ]
        )
    wall = time.monotonic() - started
    out, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in err, err
    report = json.loads((tmp_path / "r.json").read_text())
    by_id = {r["id"]: r for r in report["cases"]}
    assert list(by_id) == [c["id"] for c in cases] and report["not_run"] == []
    assert by_id["good_0"]["passed"] and by_id["good_1"]["passed"]
    for name in FAULTS:
        result = by_id[name]
        codes = [f["code"] for f in result["findings"]]
        assert not result["passed"] and codes and set(codes) <= set(CODES), (name, codes)
        if name in BAD_MESSAGE:
            assert "E_BAD_SERVER_ANSWER" not in codes and result["response"] is not None, (name, codes)
        else:
            assert result["failed_stage"] == "response" and codes == [
                "E_NO_RESPONSE" if name in NO_ANSWER else "E_BAD_SERVER_ANSWER"
            ], (name, codes)
    s = report["summary"]
    assert s["attempts"] == len(cases) and s["passed_attempts"] == 2
    assert s["requests_failed"] == len(FAULTS) - len(BAD_MESSAGE)
    assert s["failure_codes"]["E_BAD_SERVER_ANSWER"]["count"] == len(FAULTS) - len(NO_ANSWER) - len(BAD_MESSAGE)
    assert "E_BAD_SERVER_ANSWER" in (tmp_path / "r.md").read_text()
    assert wall < 30  # the trickle is cut at --timeout, twice; nothing waits for a slow server beyond that


@pytest.fixture(scope="module")
def ollama_double():
    with OllamaDouble(tool_answer) as double:
        yield double


@pytest.mark.parametrize("fault", sorted(set(HTTP_FAULTS) - {"status_429"}) + ["trickle", "huge_answer"])
def test_ollama_client_turns_every_transport_fault_into_a_backend_error(ollama_double, fault):
    client = OllamaClient("double-model", ollama_double.url, timeout=1.0, max_answer_bytes=1 << 20)
    started = time.monotonic()
    with pytest.raises(BackendError) as info:
        client.chat([{"role": "user", "content": f"fault:{fault}"}])
    assert time.monotonic() - started < 1.3
    assert info.value.code == ("E_NO_RESPONSE" if fault in NO_ANSWER else "E_BAD_SERVER_ANSWER"), str(info.value)


@pytest.mark.parametrize(
    "double_class,make",
    [
        (OpenAIDouble, lambda url: OpenAICompatClient("double-model", url + "/v1", timeout=1.0)),
        (OllamaDouble, lambda url: OllamaClient("double-model", url, timeout=1.0)),
    ],
)
def test_one_byte_at_a_time_cannot_hold_a_request_past_its_timeout(double_class, make):
    with double_class(tool_answer) as double:
        client = make(double.url)
        started = time.monotonic()
        with pytest.raises(BackendError, match="within 1 s"):
            client.chat([{"role": "user", "content": "fault:trickle"}])
        elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 1.3  # the double would take about 27 s for the whole body


def test_a_huge_answer_is_cut_at_the_cap_not_kept():
    with OpenAIDouble(tool_answer) as double:
        client = OpenAICompatClient("double-model", double.url + "/v1", timeout=10.0, max_answer_bytes=2 << 20)
        tracemalloc.start()
        try:
            with pytest.raises(BackendError, match="larger than 2097152 bytes") as info:
                client.chat([{"role": "user", "content": "fault:huge_answer"}])
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert info.value.code == "E_BAD_SERVER_ANSWER" and not info.value.retryable
    assert peak < 6 << 20  # the server sends 20 MB


def test_retry_after_is_honoured_and_capped():
    assert retry_after_seconds("2") == 2.0 and retry_after_seconds("100000") == 60.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: now
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 28 <= retry_after_seconds(future) <= 30
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
    case = PromptCase(id="busy", question="fault:status_429", system=SYSTEM)
    with OpenAIDouble(tool_answer) as double:
        client = OpenAICompatClient("double-model", double.url + "/v1", timeout=2.0)
        [result] = run_prompt_set(
            client, [case], load_registry(), RunSettings(retries=1, backoff=0.01, timeout=2.0), progress=False
        ).results
    assert len(double.requests) == 2 and result["retries"] == 1
    assert result["latency_s"] >= 1.0  # Retry-After: 1, not the 10 ms backoff
