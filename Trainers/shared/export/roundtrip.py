"""Prove an exported GGUF works for tool calling: load it the ways users will, ask tool prompts,
score the answers with the evaluator.

For each backend (llama.cpp embedded through llama-cpp-python, and llama.cpp's OpenAI-compatible
server) the check is, in order:
1. plumbing: the chat template embedded in the GGUF renders a conversation with tools and a tool
   call, and renders the call in the format the model was trained on; every prompt gets an answer;
   the evaluator's scorer runs on every answer;
2. positive control: a correct call, rendered by the GGUF's own template, is scored through the same
   scorer and must parse as a call to the expected tool in the trained format (a scorer or parser
   that cannot read this model's format fails here, whatever the model says);
3. quality: how many answers held a parsed call, and how many passed. ``strict`` mode fails when no
   answer holds a parsed call; ``plumbing`` mode reports quality without failing on it (a random
   tiny test model writes no calls).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from .templates import PROBE_CALL, PROBE_TOOL, ChatFormat, render_chat

MODES = ("strict", "plumbing", "off")


@dataclass
class BackendCheck:
    backend: str
    answers: int = 0
    errors: list = field(default_factory=list)
    parsed_calls: int = 0  # answers holding at least one parsed tool call
    passed: int = 0
    formats: dict = field(default_factory=dict)
    control_parsed: bool = False
    problems: list = field(default_factory=list)
    samples: list = field(default_factory=list)  # the first answers, shortened, for the report


@dataclass
class RoundTrip:
    mode: str
    gguf: str
    template_present: bool = False
    template_renders: bool = False
    backends: list = field(default_factory=list)
    problems: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not any(b.problems for b in self.backends)

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def embedded_template(gguf: Path) -> tuple[str | None, str, str]:
    """(chat template, bos, eos) as stored in the GGUF, read without loading the weights."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    try:
        # bos / eos texts taken the way llama-cpp-python's own chat formatter takes them
        def text(token_id):
            return llm._model.token_get_text(token_id) if token_id != -1 else ""

        return llm.metadata.get("tokenizer.chat_template"), text(llm.token_bos()), text(llm.token_eos())
    finally:
        llm.close()


def _check_template(template: str, fmt: ChatFormat, bos: str, eos: str, tools: list, report: RoundTrip) -> str | None:
    """Render a tool conversation through the GGUF's template; the assistant's call text, or None."""
    from Tools.schema.toolcalls import parse_content

    messages = [{"role": "system", "content": "PROBE"}, {"role": "user", "content": "Make the folder Projects/Probe"}]
    try:
        before = render_chat(template, messages, tools, True, bos, eos)
        full = render_chat(
            template,
            messages + [{"role": "assistant", "content": "", "tool_calls": [PROBE_CALL]}],
            tools,
            False,
            bos,
            eos,
        )
    except Exception as exc:
        report.problems.append(
            f"the GGUF's chat template does not render a tool conversation: {type(exc).__name__}: {exc}"
        )
        return None
    call_text = full[len(before.rstrip()) :] if full.startswith(before.rstrip()) else full
    parsed = parse_content(call_text)
    if parsed.format != fmt.call_format or [c.name for c in parsed.calls] != [PROBE_CALL["function"]["name"]]:
        report.problems.append(
            f"the GGUF's chat template writes tool calls as {parsed.format or 'nothing parseable'}, "
            f"not {fmt.call_format} as in training"
        )
        return None
    report.template_renders = True
    return call_text


def _run_backend(client, cases, registry, settings, control_text: str, mode: str) -> BackendCheck:
    from Evaluator.runner import run_prompt_set
    from Evaluator.scoring import score_case

    check = BackendCheck(client.backend if not getattr(client, "base_url", None) else "llama.cpp server")
    try:
        outcome = run_prompt_set(client, cases, registry, settings, progress=False)
    finally:
        client.close()
    for result in outcome.results:
        if result["error"]:
            check.errors.append(f"{result['id']}: {result['error']}")
            continue
        check.answers += 1
        if result["calls"]:
            check.parsed_calls += 1
            check.formats[result["format"]] = check.formats.get(result["format"], 0) + 1
        check.passed += result["passed"]
        if len(check.samples) < 3:
            check.samples.append(
                {
                    "id": result["id"],
                    "text": (result["response"].get("content") or "")[:160],
                    "format": result["format"],
                    "failed_stage": result["failed_stage"],
                }
            )
        if result["stages"].get("response") is None:
            check.problems.append(f"{result['id']}: the scorer did not run on the answer")
    if check.errors:
        check.problems.append(
            f"{len(check.errors)} of {len(outcome.results)} prompt(s) got no answer: {check.errors[0]}"
        )
    control_case = next(c for c in cases if c.expected_tools)
    control = score_case(_control_case(control_case), {"role": "assistant", "content": control_text}, registry)
    check.control_parsed = control.stages.get("call") is True and [c.name for c in control.calls] == [
        PROBE_CALL["function"]["name"]
    ]
    if not check.control_parsed:
        check.problems.append("positive control: a correct call in the trained format did not parse through the scorer")
    if mode == "strict" and check.answers and not check.parsed_calls:
        check.problems.append(
            f"no tool call parsed in {check.answers} answers to tool prompts (calls leak into text, "
            "or the model was not trained for this format)"
        )
    return check


def _control_case(case):
    from dataclasses import replace

    return replace(case, expected_tools=[PROBE_CALL["function"]["name"]], expected_arguments={}, allowed_tools=[])


def verify(
    gguf: Path,
    fmt: ChatFormat,
    mode: str = "strict",
    limit: int = 3,
    max_tokens: int = 64,
    server: bool = True,
    timeout: float = 120.0,
) -> RoundTrip:
    """Run the round trip on gguf; never raises for what it finds (see RoundTrip.problems)."""
    from Evaluator.clients import LlamaCppClient, OpenAICompatClient
    from Evaluator.llama_server import ServerError, llama_server
    from Evaluator.prompt_sets import load_prompt_set
    from Evaluator.runner import RunSettings
    from Tools.schema.registry import load_registry

    report = RoundTrip(mode, str(gguf))
    template, bos, eos = embedded_template(gguf)
    report.template_present = bool(template)
    if not template:
        report.problems.append(
            "the GGUF carries no chat template (tokenizer.chat_template); LM Studio and Ollama "
            "would fall back to a generic one"
        )
        return report
    registry = load_registry()
    tools = [PROBE_TOOL] + registry.openai_tools()[:2]
    control_text = _check_template(template, fmt, bos, eos, tools, report)
    if control_text is None:
        return report
    cases = [c for c in load_prompt_set("tool_prompts").cases if c.expected_tools][:limit]
    # embedded: the prompt exactly as in training; server: tools in the request, as LM Studio clients send them
    settings = RunSettings(max_tokens=max_tokens, timeout=timeout, retries=0)
    report.backends.append(
        _run_backend(LlamaCppClient(str(gguf), timeout), cases, registry, settings, control_text, mode)
    )
    settings = RunSettings(max_tokens=max_tokens, timeout=timeout, retries=0, tools_in_request=True)
    if server:
        try:
            with llama_server(gguf, alias="export") as url:
                client = OpenAICompatClient("export", url + "/v1", timeout=timeout, backend="llamacpp")
                report.backends.append(_run_backend(client, cases, registry, settings, control_text, mode))
        except ServerError as exc:
            report.problems.append(f"llama.cpp's server could not serve the GGUF: {exc}")
    return report
