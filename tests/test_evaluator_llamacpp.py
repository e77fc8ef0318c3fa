"""End to end against real components: the tiny model converted to GGUF with llama.cpp's converter,
served by llama.cpp's OpenAI-compatible server (llama-cpp-python), and run embedded through
llama-cpp-python and transformers. Skips with the reason when llama-cpp-python or the converter
is missing (setup: see Trainers/shared/gguf.py)."""

import json

import pytest

from Evaluator import cli

ARGS = ["--prompt-set", "tool_prompts", "--limit", "3", "--max-tokens", "24", "--timeout", "60", "--no-progress"]


def evaluate(argv, tmp_path, capsys):
    out = tmp_path / "report.json"
    code = cli.main(argv + ARGS + ["--output", str(out), "--markdown", str(tmp_path / "report.md")])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    return json.loads(out.read_text())


def check_report(report, backend, model):
    meta, summary = report["metadata"], report["summary"]
    assert meta["backend"] == backend and meta["model"] == model
    assert summary["cases"] == 3 and summary["requests_failed"] == 0
    assert summary["stages"]["response"]["applicable"] == 3
    for case in report["cases"]:
        assert case["response"]["role"] == "assistant" and case["raw"]
        assert case["latency_s"] > 0 and case["error"] is None
        # random weights: whatever it says is scored, and a failure carries a shared code
        assert case["passed"] or case["findings"]


@pytest.mark.parametrize("backend", ["lmstudio", "openai", "vllm"])
def test_server_through_each_openai_compatible_client(llama_server, tmp_path, capsys, backend):
    report = evaluate(
        ["--backend", backend, "--model", "tiny", "--base-url", llama_server, "--concurrency", "2"], tmp_path, capsys
    )
    check_report(report, backend, "tiny")
    assert report["cases"][0]["raw"]["object"] == "chat.completion"


def test_server_accepts_tool_definitions(llama_server, tmp_path, capsys):
    report = evaluate(
        ["--backend", "vllm", "--model", "tiny", "--base-url", llama_server, "--tools-in-request", "--retries", "0"],
        tmp_path,
        capsys,
    )
    assert report["metadata"]["settings"]["tools_in_request"] is True
    check_report(report, "vllm", "tiny")


def test_embedded_llamacpp(tiny_gguf, tmp_path, capsys):
    report = evaluate(["--model", str(tiny_gguf)], tmp_path, capsys)  # the .gguf picks llamacpp by itself
    check_report(report, "llamacpp", str(tiny_gguf))


def test_embedded_llamacpp_runs_a_q8_0_file(tiny_gguf, tmp_path, capsys):
    """A Q8_0 file of the tiny model decodes. On a CPU with AMX, llama.cpp's AMX buffers crashed this
    process with SIGSEGV here, so the client loads plain CPU buffers there (and only there)."""
    import llama_cpp.llama_cpp as lib

    from Evaluator.clients import plain_cpu_buffers
    from Trainers.shared.export.quantize import quantize

    q8 = tmp_path / "tiny-Q8_0.gguf"
    quantize(tiny_gguf, q8, "Q8_0")
    report = evaluate(["--model", str(q8)], tmp_path, capsys)
    check_report(report, "llamacpp", str(q8))
    plain_cpu_buffers()
    amx = b"AMX_INT8 = 1" in lib.llama_print_system_info()
    assert lib.llama_model_default_params().use_extra_bufts is not amx


def test_embedded_transformers(tiny_model_dir, tmp_path, capsys):
    report = evaluate(["--backend", "transformers", "--model", str(tiny_model_dir)], tmp_path, capsys)
    check_report(report, "transformers", str(tiny_model_dir))
    assert all(c["finish_reason"] in ("stop", "length") for c in report["cases"])


def test_embedded_transformers_with_a_peft_adapter(tiny_model_dir, tmp_path, capsys):
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    model = peft.get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        peft.LoraConfig(r=2, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    )
    model.save_pretrained(tmp_path / "adapter")
    report = evaluate(["--model", str(tiny_model_dir), "--adapter", str(tmp_path / "adapter")], tmp_path, capsys)
    check_report(report, "transformers", str(tiny_model_dir))
    assert report["metadata"]["adapter"] == str(tmp_path / "adapter")


# -- tool calls through llama.cpp's server (Evaluator/llama_server.py, chat format gguf-tools) ----
CALL = '<tool_call>\n{"name": "vaultManager_createFolder", "arguments": {"path": "Projects/Alpha"}}\n</tool_call>'


@pytest.fixture(scope="module")
def qwen_style_server(tiny_model_dir, tmp_path_factory):
    """The tiny model exported with a chat template that lists the request's tools in the system
    turn (Qwen 2.5's layout), served by llama.cpp's server as the evaluator serves exports."""
    import shutil

    from Evaluator.llama_server import llama_server
    from Trainers.shared.gguf import convert_to_gguf

    model = tmp_path_factory.mktemp("qwen_style") / "model"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "tokenizer_config.json").read_text())
    config["chat_template"] = (
        "{%- if tools %}{{- '<|im_start|>system\\n# Tools\\n<tools>' }}{%- for tool in tools %}{{- '\\n' + (tool | tojson) }}"
        "{%- endfor %}{{- '\\n</tools><|im_end|>\\n' }}{%- endif %}" + config["chat_template"]
    )
    (model / "tokenizer_config.json").write_text(json.dumps(config))
    with llama_server(convert_to_gguf(model, model.parent / "qwen-style.gguf"), alias="tiny") as url:
        yield url


def _chat(url, tools=None, **extra):
    import requests

    body = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "Create a folder for Alpha"}],
        "max_tokens": 160,
        "temperature": 0,
        **extra,
    }
    if tools:
        body["tools"] = tools
    reply = requests.post(url + "/v1/chat/completions", json=body, timeout=60)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_tools_reach_the_prompt_and_calls_come_back_in_tool_calls(qwen_style_server):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "vaultManager_createFolder",
                "description": "Create a folder",
                "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
            },
        }
    ]
    plain, with_tools = _chat(qwen_style_server), _chat(qwen_style_server, tools)
    # the GGUF's template listed the tools: the prompt grew by their definitions
    assert with_tools["usage"]["prompt_tokens"] > plain["usage"]["prompt_tokens"] + 20
    # a random model writes no call by itself: a grammar (llama.cpp's, in the request) makes it
    # write one in the trained format, and the server hands it back parsed, as LM Studio does
    grammar = "root ::= " + json.dumps(CALL)
    answer = _chat(qwen_style_server, tools, grammar=grammar)["choices"][0]
    assert answer["finish_reason"] == "tool_calls" and not answer["message"]["content"], answer
    [call] = answer["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"]
    assert call["function"]["name"] == "vaultManager_createFolder"
    assert json.loads(call["function"]["arguments"]) == {"path": "Projects/Alpha"}
    # without tools in the request, the answer stays text (OpenAI semantics)
    assert _chat(qwen_style_server, grammar=grammar)["choices"][0]["message"]["content"] == CALL


def test_greedy_answers_match_between_the_server_and_the_library(llama_server, tiny_gguf):
    """The server applies a 1.1 repeat penalty unless told otherwise, the library does not: the rows of
    LM Studio and llama.cpp's server send repeat_penalty 1.0, so the same GGUF answers the same greedy
    text embedded and served. The row without it (the plain OpenAI one) shows the default differs."""
    from Evaluator.backends import make_client

    messages = [{"role": "user", "content": "Create a folder for my project notes"}]

    def answer(backend, model, base_url=None):
        client = make_client(backend, model, base_url=base_url, timeout=60)
        try:
            return client.chat(messages, max_tokens=48).message["content"]
        finally:
            client.close()

    embedded = answer("llamacpp", str(tiny_gguf))
    assert answer("llamacpp", "tiny", llama_server) == embedded
    assert answer("lmstudio", "tiny", llama_server) == embedded
    assert answer("openai", "tiny", llama_server) != embedded  # the server's own 1.1 penalty (random weights repeat)
