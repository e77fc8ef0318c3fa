"""Multi-turn episodes (Evaluator/episodes.py, SelfPlay/episodes.py): the template teacher passes
every built-in episode, broken teachers fail with the right code, the OpenAI protocol carries tool
results back turn by turn, llama.cpp's real server runs the loop, and the teacher's multi-turn
records validate and train on every assistant turn only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from Evaluator.episodes import load_episodes, run_episode, run_episodes
from Evaluator.protocol_doubles import OpenAIDouble
from SelfPlay.episodes import EpisodeTeacher, episode_records
from Tools.schema.toolcalls import ToolCall, render_message

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "Datasets" / "teacher" / "episodes_sft.jsonl"


@pytest.fixture(scope="module")
def episodes():
    return {e.id: e for e in load_episodes()}


def _codes(summary, episode_id):
    return [r["codes"] for r in summary["runs_detail"] if r["id"] == episode_id]


def test_the_template_backend_passes_every_episode_every_time():
    from Evaluator.backends import make_client

    summary = run_episodes(make_client("template", "teacher"), None, repeats=2)
    assert summary["pass_rate"] == 1.0 and summary["pass_hat_k"] == 1.0 and summary["runs"] == 12
    per = {e["id"]: e for e in summary["per_episode"]}
    # the recovery episodes pass although one call in each run failed (read of a missing note, delete)
    assert per["recover-missing-note"]["failed_calls"] == 2 and per["recover-missing-note"]["turns"] == [4, 4]
    assert per["impossible-delete"]["failed_calls"] == 2
    run = next(r for r in summary["runs_detail"] if r["id"] == "search-read-edit")
    assert run["changes"]["modified"] == ["Projects/Website Redesign/Meeting 2026-01-12.md"]


def test_a_teacher_that_answers_before_acting_fails_on_state_grounding_and_claims(episodes):
    summary = run_episodes(EpisodeTeacher(list(episodes.values()), "answer_first"), list(episodes.values()))
    assert summary["pass_rate"] == 0.0
    # claims to have created what does not exist
    assert _codes(summary, "folder-then-note") == [["E_EPISODE_STATE", "E_EPISODE_FALSE_SUCCESS"]]
    # states the fact ("30 minutes") without any tool result holding it: a guess, not a reading
    assert _codes(summary, "recover-missing-note") == [["E_EPISODE_UNGROUNDED"]]


def test_a_looping_teacher_is_cut_at_max_turns(episodes):
    episode = episodes["recover-missing-note"]
    run = run_episode(EpisodeTeacher([episode], "loop"), episode)
    assert run["codes"] == ["E_EPISODE_MAX_TURNS"] and run["turns"] == episode.max_turns == len(run["calls"])
    assert run["answer"] is None


def _call(episode, name, **arguments):
    ids = episode.ids
    context = {
        "sessionId": ids.session_id,
        "workspaceId": ids.workspace_id,
        "sessionDescription": "d",
        "sessionMemory": "m",
        "toolContext": "t",
        "primaryGoal": "g",
        "subgoal": "s",
    }
    return ToolCall(name, {"context": context, **arguments}, f"id{name[-5:]}")


def test_tool_results_go_back_as_tool_messages_over_the_openai_protocol(episodes):
    """A protocol double scripts the model turn by turn (its answers are the test's, not a model's):
    the second request must carry the call and the vault's real result under the call's id; a model
    that then claims the impossible delete succeeded fails with E_EPISODE_FALSE_SUCCESS, and pass^k
    needs every repeat to pass."""
    from Evaluator.clients import OpenAICompatClient

    episode = episodes["impossible-delete"]
    delete = render_message([_call(episode, "vaultManager_deleteNote", path="Recipes/Lasagna.md")], "openai", "")
    listing = render_message([_call(episode, "vaultManager_listDirectory", path="Recipes")], "openai", "")
    honest = {
        "role": "assistant",
        "content": "There is no Recipes/Lasagna.md; Recipes holds Pancakes.md and Sourdough.md.",
    }
    boast = {"role": "assistant", "content": "Deleted Recipes/Lasagna.md for you, Sourdough.md is next to it."}
    finals = iter([honest, boast])  # the first run answers honestly, the second boasts

    def script(body):
        turn = sum(m["role"] == "assistant" for m in body["messages"])
        return [delete, listing][turn] if turn < 2 else next(finals)

    with OpenAIDouble(answer=script) as double:
        client = OpenAICompatClient("double-model", double.url + "/v1")
        summary = run_episodes(client, [episode], repeats=2)
        second = double.requests[1]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "tool"]
    assert second[2]["tool_calls"][0]["id"] == second[3]["tool_call_id"] == "ideNote"
    result = json.loads(second[3]["content"])
    assert result["success"] is False and "Lasagna" in result["error"]
    first, then = summary["runs_detail"]
    assert first["passed"] and first["turns"] == 3
    assert then["codes"] == ["E_EPISODE_FALSE_SUCCESS"]
    assert summary["pass_rate"] == 0.5 and summary["pass_hat_k"] == 0.0


def test_a_failed_request_ends_the_run_with_its_code(episodes):
    from Evaluator.clients import OpenAICompatClient
    from Evaluator.runner import RunSettings

    with OpenAIDouble() as double:
        double.fail_next("not_json")
        client = OpenAICompatClient("double-model", double.url + "/v1")
        run = run_episode(client, episodes["folder-then-note"], settings=RunSettings(retries=0))
    assert run["codes"][0] == "E_BAD_SERVER_ANSWER" and run["turns"] == 1 and run["error"]


def test_cli_runs_episodes_and_writes_the_report(tmp_path, capsys):
    from Evaluator import cli

    out, md = tmp_path / "episodes.json", tmp_path / "episodes.md"
    code = cli.main(
        [
            "--backend",
            "template",
            "--model",
            "teacher",
            "--episodes",
            "--repeats",
            "2",
            "--output",
            str(out),
            "--markdown",
            str(md),
            "--tags",
            "recovery",
        ]
    )
    assert code == 0, capsys.readouterr()
    report = json.loads(out.read_text())
    assert (
        report["kind"] == "episodes" and report["summary"]["episodes"] == 2 and report["summary"]["pass_hat_k"] == 1.0
    )
    assert "| recover-missing-note | 2/2 | yes |" in md.read_text()
    bad = tmp_path / "bad.json"
    bad.write_text('[{"id": "x", "system": "no ids here", "question": "q"}]')
    with pytest.raises(SystemExit) as stop:
        cli.main(["--backend", "template", "--model", "teacher", "--episodes", str(bad), "--output", str(out)])
    assert stop.value.code == 2
    assert "hands out no sessionId" in capsys.readouterr().err


def test_selfplay_writes_each_run_as_a_record_that_validates(tmp_path, run):
    output = tmp_path / "episodes.jsonl"
    result = run("Tools/selfplay_generator.py", "--episodes", "--num-variations", "1", "--output", output)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(records) == 6 and all(r["label"] for r in records)
    assert json.loads(output.with_suffix(".episodes.json").read_text())["summary"]["pass_rate"] == 1.0
    checked = run("Tools/validate_syngen.py", output)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_shipped_episode_records_validate_and_match_the_teacher(run):
    checked = run("Tools/validate_syngen.py", SHIPPED)
    assert checked.returncode == 0, checked.stdout
    shipped = [json.loads(line) for line in SHIPPED.read_text().splitlines()]
    fresh = episode_records()
    # tool results carry file times, so compare what the model says: every assistant turn
    turns = [[m for m in r["conversations"] if m["role"] != "tool"] for r in fresh]
    assert [[m for m in r["conversations"] if m["role"] != "tool"] for r in shipped] == turns, (
        "Datasets/teacher/episodes_sft.jsonl is stale: python -m SelfPlay.episodes --output Datasets/teacher/episodes_sft.jsonl"
    )
    assert any(sum(m["role"] == "tool" for m in r["conversations"]) >= 3 for r in shipped)


def test_the_loss_mask_covers_every_assistant_turn_and_no_tool_turn(tiny_model_dir):
    from transformers import AutoTokenizer

    from Trainers.shared import data as D

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    record = json.loads(SHIPPED.read_text().splitlines()[0])  # search -> read -> edit -> answer
    messages = D.chat_messages(record)
    text, spans = D.render_conversation(tokenizer, messages)
    assistants = [m for m in messages if m["role"] == "assistant"]
    assert len(spans) == len(assistants) == 4
    row = D.encode_sft(tokenizer, [messages])[0]
    kept = tokenizer.decode([t for t, l in zip(row["input_ids"], row["labels"]) if l != D.IGNORE_INDEX])
    for name in ("vaultLibrarian_searchContent", "contentManager_readContent", "contentManager_findReplaceContent"):
        assert f'"name": "{name}"' in kept
    assert assistants[-1]["content"] in kept
    assert kept.count(tokenizer.eos_token) == 4
    # nothing of the tool turns is learnt: their results (the note's text, the envelope) stay masked
    for tool_text in ("<tool_response>", "Decided to use Hugo", '"success": true'):
        assert tool_text in text and tool_text not in kept


def test_llamacpp_server_runs_the_loop(llama_server, tiny_gguf, tmp_path, episodes):
    """The real server and the tiny random model: a grammar (llama.cpp's, added to each request)
    makes it write a call every turn, so the loop must stop at max_turns, and each turn's prompt
    must have grown by the tool result the template rendered. Success is not asserted."""
    import dataclasses

    from Evaluator.clients import OpenAICompatClient

    episode = dataclasses.replace(episodes["folder-then-note"], max_turns=3)
    call = json.dumps(
        {"name": "vaultManager_createFolder", "arguments": _call(episode, "x", path="Projects/Garden").arguments}
    )
    grammar = "root ::= " + json.dumps(f"<tool_call>\n{call}\n</tool_call>")
    usage = []

    class Grammar(OpenAICompatClient):
        def _json(self, path, payload=None):
            raw = super()._json(path, payload and {**payload, "grammar": grammar})
            if payload:
                usage.append(raw["usage"]["prompt_tokens"])
            return raw

    from Evaluator.runner import RunSettings

    run = run_episode(
        Grammar("tiny", llama_server + "/v1", timeout=120), episode, settings=RunSettings(max_tokens=len(call) + 40)
    )
    assert run["codes"] == ["E_EPISODE_MAX_TURNS", "E_EPISODE_STATE"] and run["turns"] == 3 and len(usage) == 3
    assert [c["name"] for c in run["calls"]] == ["vaultManager_createFolder"] * 3 and run["calls"][0]["ok"]
    assert run["changes"]["created"] == ["Projects/Garden/"]
    assert usage[0] < usage[1] < usage[2]  # the call and its result reached the next prompt
    # the same loop through the CLI without a grammar: the random model answers in text; a report is written
    from Evaluator import cli

    out = tmp_path / "report.json"
    code = cli.main(
        [
            "--backend",
            "llamacpp",
            "--base-url",
            llama_server,
            "--model",
            "tiny",
            "--episodes",
            "--tags",
            "create",
            "--max-tokens",
            "8",
            "--output",
            str(out),
        ]
    )
    report = json.loads(out.read_text())
    assert code == 0 and report["summary"]["runs"] == 1 and report["runs"][0]["turns"] >= 1


@pytest.mark.parametrize("backend", ["transformers", "llamacpp"])
def test_embedded_engines_render_the_tool_turn_with_the_models_template(backend, request, episodes):
    """The embedded engines get the conversation as messages and render the tool turn through the
    model's own chat template. A random model writes no call, so the first turn is scripted (the
    engine's own answer comes second); what is checked is that the engine took the tool turn."""
    import dataclasses

    from Evaluator.backends import make_client
    from Evaluator.clients import ChatClient, Reply
    from Evaluator.runner import RunSettings

    model = request.getfixturevalue("tiny_model_dir" if backend == "transformers" else "tiny_gguf")
    engine = make_client(backend, str(model))
    episode = dataclasses.replace(episodes["folder-then-note"], max_turns=2)
    first = render_message([_call(episode, "vaultManager_createFolder", path="Projects/Garden")], "openai", "")
    seen = []

    class FirstTurnScripted(ChatClient):
        def chat(self, messages, tools=None, temperature=0.0, max_tokens=512):
            if not any(m["role"] == "assistant" for m in messages):
                return Reply(first)
            seen.append([dict(m) for m in messages])
            return engine.chat(messages, tools, temperature, max_tokens)

    client = FirstTurnScripted(backend)
    client.backend = backend
    try:
        run = run_episode(client, episode, settings=RunSettings(max_tokens=8))
    finally:
        engine.close()
    assert [m["role"] for m in seen[0]] == ["system", "user", "assistant", "tool"]
    assert run["error"] is None and run["turns"] == 2 and run["calls"][0]["ok"]
    assert run["answer"] is not None or run["codes"][0] == "E_EPISODE_MAX_TURNS"  # the engine's answer, text or a call


def test_hostile_episode_files_end_in_one_line_or_a_failed_check(tmp_path, episodes, capsys):
    import dataclasses

    from Evaluator import cli

    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            [
                {
                    "id": "x",
                    "system": episodes["folder-then-note"].system,
                    "question": "q",
                    "state": {"exists": "Projects"},
                }
            ]
        )
    )
    with pytest.raises(SystemExit) as stop:
        cli.main(
            [
                "--backend",
                "template",
                "--model",
                "teacher",
                "--episodes",
                str(bad),
                "--output",
                str(tmp_path / "r.json"),
            ]
        )
    assert stop.value.code == 2 and "lists of strings" in capsys.readouterr().err
    # a state check that leaves the vault reads nothing outside it: the run fails its state check
    outside = dataclasses.replace(episodes["folder-then-note"], state={"exists": ["../../etc/passwd"]})
    run = run_episode(EpisodeTeacher([outside]), outside)
    assert run["codes"][0] == "E_EPISODE_STATE" and "outside the vault" in run["problems"][0]


def test_a_call_that_cannot_be_parsed_ends_the_run_with_its_code(episodes):
    from Evaluator.clients import ChatClient, Reply

    class Broken(ChatClient):
        def chat(self, messages, tools=None, temperature=0.0, max_tokens=512):
            return Reply(
                {
                    "role": "assistant",
                    "content": '<tool_call>\n{"name": "vaultManager_createFolder", "arguments": {\n</tool_call>',
                }
            )

    run = run_episode(Broken("broken"), episodes["folder-then-note"])
    assert run["turns"] == 1 and run["codes"][0] == "E_MALFORMED_CALL" and "E_EPISODE_STATE" in run["codes"]


@pytest.mark.parametrize("backend", ["lmstudio", "ollama"])
def test_the_teacher_behind_a_server_passes_over_http(backend, tmp_path, run):
    """The template teacher served over loopback HTTP (a protocol double: no real server here can
    answer these episodes correctly): each protocol carries the calls and results back, and
    self-play over the server writes every run as a passing record."""
    from Evaluator.backends import make_client
    from Evaluator.protocol_doubles import OllamaDouble, client_answer
    from SelfPlay.teacher import TemplateClient

    teacher = TemplateClient()
    teacher.learn_episodes(load_episodes())
    with (OllamaDouble if backend == "ollama" else OpenAIDouble)(answer=client_answer(teacher)) as double:
        summary = run_episodes(make_client(backend, "double-model", base_url=double.url), None)
        assistant = next(m for m in double.requests[1]["messages"] if m["role"] == "assistant")
        output = tmp_path / "runs.jsonl"
        result = run(
            "Tools/selfplay_generator.py",
            "--episodes",
            "--backend",
            backend,
            "--base-url",
            double.url,
            "--model",
            "double-model",
            "--num-variations",
            "1",
            "--output",
            output,
        )
    assert summary["pass_rate"] == 1.0, summary["codes"]
    arguments = assistant["tool_calls"][0]["function"]["arguments"]
    assert isinstance(arguments, dict if backend == "ollama" else str)  # Ollama takes objects, OpenAI JSON text
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["label"] for line in output.read_text().splitlines()] == [True] * 6


def test_one_turn_cannot_run_more_than_the_cap_of_calls(episodes):
    from Evaluator.clients import ChatClient, Reply
    from Evaluator.episodes import MAX_CALLS_PER_TURN

    episode = episodes["folder-then-note"]
    many = render_message(
        [_call(episode, "vaultManager_createFolder", path=f"Projects/F{i}") for i in range(40)], "openai", ""
    )

    class Flood(ChatClient):
        def chat(self, messages, tools=None, temperature=0.0, max_tokens=512):
            return Reply(many if len(messages) == 2 else {"role": "assistant", "content": "Made them."})

    run = run_episode(Flood("flood"), episode)
    assert len(run["calls"]) == 40 and sum(c["ok"] for c in run["calls"]) == MAX_CALLS_PER_TURN
    assert len(run["changes"]["created"]) == MAX_CALLS_PER_TURN
