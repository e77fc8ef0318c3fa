"""The 3-prompt generator end to end: the real CLI against the template teacher and against an
OpenAI-compatible loopback server (fault injection, SIGKILL and resume, Ctrl-C), and its parts:
the judge's quality filters and the resumable, de-duplicating store."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, run_tool
from Evaluator.protocol_doubles import OpenAIDouble, client_answer, free_port
from SelfPlay.config import load_config
from SelfPlay.generator import SelfPlayGenerator
from SelfPlay.labels import judge, quality_findings
from SelfPlay.store import ExampleStore, content_hash
from SelfPlay.teacher import TemplateClient
from Tools.cli_common import UsageError
from Evaluator.prompt_sets import PromptCase

META_KEYS = {"session_id", "workspace_id", "environment_variation", "type", "agent", "tools", "behavior", "provenance"}


def lines(path):
    return [json.loads(l) for l in path.read_text().splitlines()] if path.exists() else []


def generate(*args, cwd=ROOT):
    return run_tool("SelfPlay/run_generation.py", "--no-progress", *args, cwd=cwd)


def hashes(*paths):
    records = [r for p in paths for r in lines(p)]
    return [content_hash(r) for r in records]


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("offline") / "sp.jsonl"
    result = generate("--num-examples", "80", "--output", out, "--kto", "--seed", "4")
    assert result.returncode == 0, result.stderr
    return out, result


def test_offline_run_writes_labelled_files(offline_run, registry):
    out, result = offline_run
    valid, invalid = lines(out), lines(out.with_name("sp_invalid.jsonl"))
    summary = json.loads(out.with_name("sp_summary.json").read_text())
    assert len(valid) + len(invalid) + summary["duplicates"]["exact"] + summary["duplicates"]["near"] == 80
    assert valid and invalid and all(r["label"] for r in valid) and not any(r["label"] for r in invalid)
    config = load_config(registry=registry)
    for record in valid + invalid:
        meta = record["metadata"]
        assert set(meta) == META_KEYS | ({"codes"} if not record["label"] else set())
        system = record["conversations"][0]["content"]
        assert f'sessionId: "{meta["session_id"]}"' in system and f'(id: "{meta["workspace_id"]}")' in system
        provenance = meta["provenance"]
        assert provenance["model"] == "teacher" and provenance["schema_hash"] == registry.schema_hash
        user = config.user(meta["type"])
        assert provenance["temperatures"] == {
            "environment": config.environment.prompt.temperature,
            "user": user.prompt.temperature,
            "assistant": user.answer.temperature,
        }
        # tool examples get the session's ids written into their calls by code; behavioural ones copy them
        calls = record["conversations"][-1].get("tool_calls")
        assert provenance["ids_injected"] == (
            meta["type"] == "tool" and bool(calls) and "E_MALFORMED_ARGUMENTS" not in meta.get("codes", [])
        )
    assert all(r["metadata"]["codes"] for r in invalid)
    assert {"tool", "behavioral"} == {r["metadata"]["type"] for r in valid}
    assert run_tool("Tools/validate_syngen.py", out, out.with_name("sp_invalid.jsonl")).returncode == 0
    assert run_tool("Tools/interleave_dataset.py", "--check", out.with_name("sp_kto.jsonl")).returncode == 0
    assert summary["valid"] == len(valid) and summary["codes"] and summary["examples_per_s"] > 0
    assert sum(v["valid"] + v["invalid"] for v in summary["tools"].values()) >= len(valid) + len(invalid)
    assert (
        "valid rate" in result.stdout
        and "failure code" in result.stdout
        and "tools with a valid example" in result.stdout
    )


def test_same_seed_same_files_whatever_the_concurrency(tmp_path, offline_run):
    out, _ = offline_run
    again = tmp_path / "sp.jsonl"
    assert generate("--num-examples", "80", "--output", again, "--seed", "4", "--concurrency", "4").returncode == 0
    assert again.read_bytes() == out.read_bytes()
    assert again.with_name("sp_invalid.jsonl").read_bytes() == out.with_name("sp_invalid.jsonl").read_bytes()
    other = tmp_path / "other.jsonl"
    assert generate("--num-examples", "20", "--output", other, "--seed", "5").returncode == 0
    assert not set(hashes(other)) & set(hashes(out))


@pytest.fixture
def teacher_server():
    """An OpenAI-compatible loopback server whose model is the template teacher: deterministic
    answers over real HTTP, slow enough to be interrupted."""
    with OpenAIDouble(client_answer(TemplateClient(seed=0)), delay=0.01) as double:
        yield double


def test_kill_and_resume_loses_and_repeats_nothing(tmp_path, teacher_server):
    server = ["--backend", "openai", "--base-url", teacher_server.url, "--model", "double-model", "--seed", "9"]
    reference = tmp_path / "ref.jsonl"
    assert generate("--num-examples", "60", "--output", reference, *server).returncode == 0
    out = tmp_path / "run.jsonl"
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "SelfPlay" / "run_generation.py"),
            "--no-progress",
            "--num-examples",
            "60",
            "--output",
            str(out),
            *server,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline and len(out.read_text().splitlines() if out.exists() else []) < 12:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    written = len(lines(out)) + len(lines(tmp_path / "run_invalid.jsonl"))
    assert 12 <= written < 55, "the kill must land mid-run"
    again = generate("--num-examples", "60", "--output", out, *server)
    assert again.returncode == 2 and "pass --resume" in again.stderr  # never a silent overwrite
    resumed = generate("--num-examples", "60", "--output", out, "--resume", *server)
    assert resumed.returncode == 0, resumed.stderr
    assert "already written before --resume" in resumed.stdout
    got = hashes(out, tmp_path / "run_invalid.jsonl")
    want = hashes(reference, tmp_path / "ref_invalid.jsonl")
    assert len(got) == len(set(got)) and sorted(got) == sorted(want)


def test_resume_cuts_a_half_written_last_line(tmp_path):
    out = tmp_path / "sp.jsonl"
    assert generate("--num-examples", "10", "--output", out).returncode == 0
    complete = out.read_text().splitlines()
    out.write_text("\n".join(complete[:-1]) + "\n" + complete[-1][:40])  # a kill in the middle of a write
    result = generate("--num-examples", "10", "--output", out, "--resume")
    assert result.returncode == 0 and out.read_text().splitlines() == complete
    assert "removed a half-written last line" in result.stdout
    out.write_text("{broken\n" + "\n".join(complete) + "\n")
    broken = generate("--num-examples", "10", "--output", out, "--resume")
    assert broken.returncode == 2 and "line 1 is not a record" in broken.stderr and "Traceback" not in broken.stderr


def test_server_faults_are_retried_counted_and_never_fatal(tmp_path, teacher_server):
    server = ["--backend", "vllm", "--base-url", teacher_server.url, "--model", "double-model"]
    teacher_server.fail_next("500", "500")
    result = generate("--num-examples", "4", "--output", tmp_path / "a.jsonl", *server)
    assert result.returncode == 0 and len(teacher_server.requests) >= 12 + 2  # 4 examples x 3 prompts + 2 retries
    teacher_server.fail_next(*["malformed"] * 1 + ["500"] * 4)  # one unusable body; then one request fails 4 times
    result = generate("--num-examples", "6", "--output", tmp_path / "b.jsonl", "--retries", "3", *server)
    summary = json.loads((tmp_path / "b_summary.json").read_text())
    assert result.returncode == 0 and summary["failed"] == 2 and summary["failures"] == {"backend error": 2}
    assert (
        summary["completed"] == 6
        and summary["written"] + summary["duplicates"]["near"] + summary["duplicates"]["exact"] == 4
    )
    assert "example" in result.stderr and "failed: backend error" in result.stderr and "Traceback" not in result.stderr


def test_ctrl_c_keeps_valid_files_and_resume_finishes(tmp_path):
    with OpenAIDouble(client_answer(TemplateClient(seed=0)), delay=0.05) as double:
        server = ["--backend", "openai", "--base-url", double.url, "--model", "double-model"]
        out = tmp_path / "sp.jsonl"
        process = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "SelfPlay" / "run_generation.py"),
                "--no-progress",
                "--num-examples",
                "40",
                "--output",
                str(out),
                *server,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.time() + 60
        while time.time() < deadline and len(out.read_text().splitlines() if out.exists() else []) < 3:
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 130 and "continue with --resume" in stdout and "Traceback" not in stderr
        first = lines(out) + lines(tmp_path / "sp_invalid.jsonl")  # every line parses
        assert 3 <= len(first) < 40
        assert generate("--num-examples", "40", "--output", out, "--resume", *server).returncode == 0
    assert len(lines(out) + lines(tmp_path / "sp_invalid.jsonl")) > len(first)


def test_a_second_generator_on_the_same_output_is_refused(tmp_path):
    """Two real processes, both with --resume on one output: the second would read the same 'done'
    set and write the same examples again; the output's OS lock turns it away with one error line."""
    with OpenAIDouble(client_answer(TemplateClient(seed=0)), delay=0.05) as double:
        server = ["--backend", "openai", "--base-url", double.url, "--model", "double-model"]
        out = tmp_path / "sp.jsonl"
        first = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "SelfPlay" / "run_generation.py"),
                "--no-progress",
                "--num-examples",
                "30",
                "--output",
                str(out),
                "--resume",
                *server,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.time() + 60
        while time.time() < deadline and len(out.read_text().splitlines() if out.exists() else []) < 2:
            time.sleep(0.02)
        second = generate("--num-examples", "30", "--output", out, "--resume", *server)
        stdout, stderr = first.communicate(timeout=120)
        third = generate("--num-examples", "30", "--output", out, "--resume", *server)  # the lock went with the first
    assert (
        second.returncode == 2 and second.stderr.startswith("error: ") and len(second.stderr.strip().splitlines()) == 1
    )
    assert "another running generator" in second.stderr
    assert first.returncode == 0, stderr
    written = hashes(out, tmp_path / "sp_invalid.jsonl")
    assert written and len(written) == len(set(written))
    assert third.returncode == 0 and "30 already written before --resume" in third.stdout, third.stderr
    assert not list(tmp_path.glob(".*.lock"))  # released at the end


def test_prompts_carry_the_configured_values(registry):
    config = load_config(registry=registry)
    with OpenAIDouble(client_answer(TemplateClient(seed=0))) as double:
        from Evaluator.backends import make_client

        generator = SelfPlayGenerator(make_client("openai", "double-model", base_url=double.url), config=config, seed=2)
        tool = generator.generate_single_example("tool", index=1)
        behavioral = generator.generate_single_example("behavioral", index=2)
    env, request, answer = double.requests[:3]
    assert (env["temperature"], env["max_tokens"]) == (
        config.environment.prompt.temperature,
        config.environment.prompt.max_tokens,
    )
    assert config.environment.variations[tool.task.variation].instructions in env["messages"][1]["content"]
    assert config.tool(tool.task.tool).description in request["messages"][1]["content"]
    assert (answer["temperature"], answer["max_tokens"]) == (
        config.user_tool.answer.temperature,
        config.user_tool.answer.max_tokens,
    )
    assert [m["role"] for m in answer["messages"]] == ["user"]  # tool examples: the request alone
    scenario = config.scenario(behavioral.task.behavior, behavioral.task.scenario)
    assert scenario.situation in double.requests[4]["messages"][1]["content"]
    assert [m["role"] for m in double.requests[5]["messages"]] == ["system", "user"]
    assert "<session_context>" in double.requests[5]["messages"][0]["content"]
    valid, report = generator.validate_example(tool)
    assert valid == tool.record["label"] and report["valid"] == valid and "codes" in report
    with pytest.raises(ValueError):
        generator.generate_single_example("nonsense")


def test_execution_labels_name_the_executors_codes(tmp_path):
    out = tmp_path / "sp.jsonl"
    result = generate("--num-examples", "60", "--type", "tool", "--execute-mcp", "--output", out, "--seed", "1")
    assert result.returncode == 0, result.stderr
    invalid = lines(tmp_path / "sp_invalid.jsonl")
    provider = [r for r in invalid if "E_PROVIDER_REQUIRED" in r["metadata"]["codes"]]
    assert provider and all(r["metadata"]["tools"][0].startswith("agentManager_") for r in provider)
    assert not [
        r for r in lines(out) if r["metadata"]["tools"][0] in ("agentManager_executePrompt", "agentManager_listModels")
    ]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--num-examples", "0"], "--num-examples must be at least 1"),
        (["--concurrency", "0"], "--concurrency must be at least 1"),
        (["--vault-path", "Datasets/vault_template"], "--vault-path is used only with --execute-mcp"),
        (["--execute-mcp", "--vault-path", "no/such/vault"], "no such folder"),
        (
            ["--host", "localhost", "--port", "9"],
            "LM Studio is not answering",
        ),  # --host alone asks the server its model
        (["--backend", "template", "--port", "1234"], "the template teacher runs in process"),
        (["--backend", "llamacpp", "--model", "missing.gguf"], "missing.gguf: no such GGUF file"),
        (["--no-validate", "--kto"], "--kto needs labels"),
        (["--type", "both"], "invalid choice"),
        (["--output", "."], "is a directory"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    argv = args if "--output" in args else [*args, "--output", str(tmp_path / "o.jsonl")]
    result = generate(*argv)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1


def test_a_server_that_is_down_is_one_line(tmp_path):
    result = generate(
        "--backend", "lmstudio", "--model", "m", "--port", str(free_port()), "--output", tmp_path / "o.jsonl"
    )
    assert result.returncode == 2 and "LM Studio is not answering" in result.stderr and "Traceback" not in result.stderr


def test_quality_filters(registry):
    case = PromptCase(id="c", question="q", expected_tools=[], response_type="text_only")
    request = "please find every note that mentions the garden planner idea"
    echo = {"role": "assistant", "content": "Please find every note that mentions the garden planner idea."}
    assert [f.code for f in quality_findings(echo, "stop", [request])] == ["E_ECHO"]
    assert judge(case, echo, registry, echo_of=[request]).codes == ["E_ECHO"]
    fine = {"role": "assistant", "content": "Which garden note do you mean?"}
    assert judge(case, fine, registry, echo_of=[request]).passed
    cut = judge(case, {"role": "assistant", "content": "Which garden"}, registry, finish_reason="length")
    assert cut.codes == ["E_TRUNCATED"] and cut.failed_stage == "quality"
    assert judge(case, {"role": "assistant", "content": ""}, registry).codes == ["E_EMPTY_ASSISTANT"]


def test_store_drops_exact_and_near_duplicates(tmp_path):
    def record(request, memory="m", session="session_1767225600000_aaaaaaaaa"):
        call = {
            "id": "abc",
            "type": "function",
            "function": {
                "name": "contentManager_readContent",
                "arguments": json.dumps(
                    {"context": {"sessionId": session, "sessionMemory": memory}, "filePath": "Welcome.md"}
                ),
            },
        }
        return {
            "conversations": [
                {"role": "user", "content": request},
                {"role": "assistant", "content": None, "tool_calls": [call]},
            ],
            "label": True,
            "metadata": {"provenance": {"index": 0}},
        }

    with ExampleStore(tmp_path / "v.jsonl", tmp_path / "i.jsonl") as store:
        assert store.add(record("read the welcome note")) == "valid"
        assert (
            store.add(record("read the welcome note", session="session_1767225600999_bbbbbbbbb")) == "duplicate_exact"
        )
        assert store.add(record("Read the welcome note!!", memory="other words")) == "duplicate_near"
        assert store.add(record("read the ideas note")) == "valid"
        assert store.add({**record("x y z"), "label": False}) == "invalid"
    assert len(lines(tmp_path / "v.jsonl")) == 2 and len(lines(tmp_path / "i.jsonl")) == 1
    with pytest.raises(UsageError, match="already exists"):
        ExampleStore(tmp_path / "v.jsonl", tmp_path / "i.jsonl")
    with ExampleStore(tmp_path / "v.jsonl", tmp_path / "i.jsonl", resume=True) as store:
        assert store.done == {0} and store.existing == {"valid": 2, "invalid": 1}
        assert store.add(record("READ the welcome note")) == "duplicate_near"


def test_run_sh_presets(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", str(ROOT / "SelfPlay" / "run.sh"), "--quick", "--output", str(tmp_path / "q.jsonl"), "--no-progress"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "q_summary.json").read_text())["requested"] == 10
    result = subprocess.run(
        ["bash", str(ROOT / "SelfPlay" / "run.sh"), "--num"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 2 and result.stderr.startswith("error: --num needs a number")


def test_concurrency_overlaps_requests():
    """The benchmark's measurement, small: against a server that answers after 50 ms, four
    examples in flight finish well ahead of one at a time."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_selfplay import concurrency_runs

    runs = concurrency_runs(8, 0.05, (1, 4))
    assert runs[1]["failed"] == runs[4]["failed"] == 0 and runs[1]["written"] == runs[4]["written"] == 8
    assert runs[4]["examples_per_s"] > 2 * runs[1]["examples_per_s"]
