"""The 3-prompt self-play generator.

1. Prompt 1 asks the model for a realistic workspace (one of the configured environment
   variations: simple / complex / project_focused / knowledge_base).
2. Code generates the session and workspace ids and writes them, with the workspace, into the
   <session_context> / <current_workspace> system prompt.
3. Prompt 2 asks the model, playing the user, for a vague, realistic request that needs a chosen
   tool (tool examples) or tests a chosen behaviour (behavioural examples).
4. Prompt 3 sends the request to the model: alone for tool examples (a fine-tuned model knows the
   contract; code then writes the session's ids into its calls), with the session context as
   system prompt for behavioural examples.
5. The answer is judged (SelfPlay/labels.py: validator, expected tools, behaviour rubric, and with
   --execute-mcp execution in a vault sandbox) and labelled.

Every choice is drawn from SelfPlay/configs/*.yaml with a generator seeded by (seed, example index),
so a run is reproducible with a deterministic backend, whatever the concurrency.
"""

from __future__ import annotations

import json
import random
import threading
from dataclasses import dataclass, field
from pathlib import Path

from Evaluator.clients import ChatClient
from Evaluator.runner import request_with_retries
from Tools.schema.toolcalls import parse_message, render_message

from .config import SelfPlayConfig, Task, draw_task, load_config, render_parameters, render_session_context
from .engine import GenerationError, Outcome, RunSummary, run_into_store
from .id_utils import SessionIds, inject_ids, seeded_ids
from .labels import SandboxExecutor, check_writable, expectation, judge
from .store import read_labelled


@dataclass
class Example:
    """One generated example before and after judging."""

    index: int
    task: Task
    ids: SessionIds
    workspace: dict  # name, description, rootFolder, folders
    request: str
    answer: dict  # the assistant message
    record: dict
    finish_reason: str | None = None
    prompts: list[str] = field(default_factory=list)  # the texts an answer must not echo
    report: dict | None = None


class Report(dict):
    """The judge's report (a dict: valid, codes, failed_stage, format, calls, findings), also read
    the earlier project's way: ``report.issues``, each with ``.level`` and ``.message``."""

    @property
    def issues(self) -> list:
        from types import SimpleNamespace

        return [SimpleNamespace(level=f["severity"], code=f["code"], message=f["message"]) for f in self["findings"]]


@dataclass
class BatchSummary(RunSummary):
    """A run's summary; ``summary["valid"]`` / ``summary["invalid"]`` are the records in the output
    files, as the earlier project's generate_batch returned them."""

    output: Path | None = None
    invalid_output: Path | None = None

    def __getitem__(self, key: str) -> list[dict]:
        from Tools.schema.records import read_records

        path = {"valid": self.output, "invalid": self.invalid_output}[key]
        return [record for _, record in read_records(path)] if path and Path(path).is_file() else []


def invalid_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(f"{output.stem}_invalid{output.suffix or '.jsonl'}")


def kto_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(f"{output.stem}_kto{output.suffix or '.jsonl'}")


def summary_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(f"{output.stem}_summary.json")


def parse_workspace(text: str) -> dict:
    """The workspace JSON of prompt 1's answer (code fences and surrounding prose tolerated)."""
    decoder = json.JSONDecoder()
    start = text.find("{") if isinstance(text, str) else -1
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict) and isinstance(value.get("name"), str) and value["name"].strip():
            folders = value.get("folders")
            return {
                "name": value["name"].strip()[:80],
                "description": str(value.get("description") or "")[:300],
                "rootFolder": str(value.get("rootFolder") or "/").strip() or "/",
                "folders": [f for f in folders if isinstance(f, str) and f.strip()][:20]
                if isinstance(folders, list)
                else [],
            }
        start = text.find("{", start + 1)
    raise GenerationError("environment unusable", "prompt 1's answer holds no JSON object with a name")


def clean_request(text) -> str:
    if not isinstance(text, str):
        raise GenerationError("request unusable", "prompt 2's answer has no text")
    text = text.strip()
    if len(text) > 1 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    if not text:
        raise GenerationError("request unusable", "prompt 2's answer is empty")
    return text


class SelfPlayGenerator:
    """SelfPlayGenerator(model_client=...): one client plays the environment, the user and the
    assistant. With no client, the template teacher (offline) does."""

    def __init__(
        self,
        model_client: ChatClient | None = None,
        *,
        config: SelfPlayConfig | None = None,
        registry=None,
        seed: int = 0,
        retries: int = 2,
        backoff: float = 0.5,
        execute_mcp: bool = False,
        vault_path: str | None = None,
        validate: bool = True,
        generation_type: str | None = None,
        executor=None,
    ):
        from Tools.schema.registry import load_registry

        self.registry = registry or load_registry()
        self.config = config or load_config(registry=self.registry)
        if model_client is None:
            from .teacher import TemplateClient

            model_client = TemplateClient(seed=seed)
        self.client = model_client
        self.seed, self.retries, self.backoff, self.validate = seed, retries, backoff, validate
        self.generation_type = generation_type  # None: the configured type mix
        # executor: an MCP server's (SelfPlay/cli.open_executor); else --execute-mcp's sandbox
        self.executor = executor or (SandboxExecutor(vault_path) if execute_mcp else None)
        self.stop = threading.Event()

    # -- one example -------------------------------------------------------------------------
    def plan(self, index: int, generation_type: str | None = None) -> Task:
        return draw_task(self.config, random.Random(f"selfplay:{self.seed}:{index}"), generation_type)

    def _ask(self, what: str, messages: list[dict], temperature: float, max_tokens: int, stop: threading.Event):
        reply, error, _ = request_with_retries(
            self.client,
            messages,
            temperature=temperature,
            max_tokens=max_tokens,
            retries=self.retries,
            backoff=self.backoff,
            stop=stop,
        )
        if reply is None:
            raise GenerationError("backend error", f"{what}: {error}")
        return reply

    def generate_single_example(
        self, generation_type: str | None = None, index: int = 0, stop: threading.Event | None = None
    ) -> Example:
        """Run the three prompts for example `index`; `generation_type` ("tool" or "behavioral")
        overrides the configured type mix. Raises GenerationError when no example can be made."""
        if generation_type not in (None, "tool", "behavioral"):
            raise ValueError(f"generation_type must be 'tool' or 'behavioral', not {generation_type!r}")
        stop = stop or self.stop
        config, task = self.config, self.plan(index, generation_type)
        env = config.environment
        variation = env.variations[task.variation]
        ids = seeded_ids(self.seed, index)
        # 1. the workspace
        environment_prompt = env.prompt.user.substitute(
            instructions=variation.instructions,
            parameters=render_parameters({"task": "environment", "variation": task.variation, "example": index}),
        )
        reply = self._ask(
            "environment",
            [{"role": "system", "content": env.prompt.system}, {"role": "user", "content": environment_prompt}],
            env.prompt.temperature,
            env.prompt.max_tokens,
            stop,
        )
        workspace = parse_workspace(reply.message.get("content") or "")
        # 2. ids by code, into the system prompt; the user's request
        system = render_session_context(config, ids.session_id, ids.workspace_id, workspace)
        user = config.user(task.kind)
        parameters = {
            "task": "user_request",
            "type": task.kind,
            "variation": task.variation,
            "workspace": workspace,
            "session_id": ids.session_id,
            "workspace_id": ids.workspace_id,
            "example": index,
        }
        if task.kind == "tool":
            choice = config.tool(task.tool)
            parameters["tool"] = task.tool
            prompt = user.prompt.user.substitute(
                workspace=json.dumps(workspace, ensure_ascii=False),
                tool=task.tool,
                description=choice.description,
                parameters=render_parameters(parameters),
            )
        else:
            behavior = config.behaviors[task.behavior]
            parameters.update(behavior=task.behavior, scenario=task.scenario)
            prompt = user.prompt.user.substitute(
                workspace=json.dumps(workspace, ensure_ascii=False),
                behavior=task.behavior,
                behavior_description=behavior.description,
                situation=behavior.scenarios[task.scenario].situation,
                parameters=render_parameters(parameters),
            )
        reply = self._ask(
            "request",
            [{"role": "system", "content": user.prompt.system}, {"role": "user", "content": prompt}],
            user.prompt.temperature,
            user.prompt.max_tokens,
            stop,
        )
        request = clean_request(reply.message.get("content"))
        # 3. the answer
        answer_messages = ([{"role": "system", "content": system}] if user.answer.system_prompt else []) + [
            {"role": "user", "content": request}
        ]
        reply = self._ask("answer", answer_messages, user.answer.temperature, user.answer.max_tokens, stop)
        answer = reply.message
        injected = False
        if user.answer.inject_ids:
            answer, injected = _inject(answer, ids)
        tools = (
            [task.tool] if task.kind == "tool" else list(config.scenario(task.behavior, task.scenario).expected_tools)
        )
        record = {
            "conversations": [{"role": "system", "content": system}, {"role": "user", "content": request}, answer],
            "metadata": {
                "session_id": ids.session_id,
                "workspace_id": ids.workspace_id,
                "environment_variation": task.variation,
                "type": task.kind,
                "agent": self.registry.tools[tools[0]].agent if tools else None,
                "tools": tools,
                "behavior": task.behavior,
                "provenance": {
                    "generator": "selfplay",
                    "backend": self.client.backend,
                    "model": self.client.model,
                    "seed": self.seed,
                    "index": index,
                    "schema_hash": self.registry.schema_hash,
                    "temperatures": {
                        "environment": env.prompt.temperature,
                        "user": user.prompt.temperature,
                        "assistant": user.answer.temperature,
                    },
                    "ids_injected": injected,
                    "finish_reason": reply.finish_reason,
                    **({"scenario": task.scenario} if task.scenario else {}),
                },
            },
        }
        return Example(
            index,
            task,
            ids,
            workspace,
            request,
            answer,
            record,
            reply.finish_reason,
            prompts=[request, prompt, environment_prompt],
        )

    def validate_example(self, example: Example) -> tuple[bool, dict]:
        """Judge the example, set its label (and, for a negative, metadata.codes); (is_valid, report)."""
        task = example.task
        case = expectation(
            self.config,
            self.registry,
            kind=task.kind,
            question=example.request,
            system=example.record["conversations"][0]["content"],
            tools=[task.tool] if task.tool else (),
            behavior=task.behavior,
            scenario=task.scenario,
            workspace_id=example.ids.workspace_id,
        )
        execute = (
            self.executor.for_session(example.ids.session_id, {"id": example.ids.workspace_id, **example.workspace})
            if self.executor
            else None
        )
        verdict = judge(
            case,
            example.answer,
            self.registry,
            finish_reason=example.finish_reason,
            execute=execute,
            echo_of=example.prompts,
        )
        record = example.record
        example.record = {
            "conversations": record["conversations"],
            "label": verdict.passed,
            "metadata": record["metadata"],
        }
        if not verdict.passed:
            example.record["metadata"]["codes"] = verdict.codes
        example.report = Report(verdict.report())
        return verdict.passed, example.report

    # -- many examples -----------------------------------------------------------------------
    def _produce(self, index: int, stop: threading.Event) -> Outcome:
        example = self.generate_single_example(self.generation_type, index=index, stop=stop)
        try:
            check_writable(example.record, self.registry)
        except ValueError as exc:
            raise GenerationError("answer unusable", f"structurally broken ({exc})") from None
        if self.validate:
            self.validate_example(example)
        else:
            example.record["metadata"]["provenance"]["validated"] = False
        return Outcome(index, [example.record])

    def generate_batch(
        self,
        num_examples: int,
        output_file: str | Path,
        validate: bool = True,
        save_invalid: bool = True,
        *,
        concurrency: int = 1,
        resume: bool = False,
        kto_file: str | Path | None = None,
        progress: bool = False,
    ) -> BatchSummary:
        """Examples 0..num_examples-1 (those not already written when resuming): valid ones to
        output_file, invalid ones to <output>_invalid.jsonl (or nowhere when save_invalid is
        false), and with kto_file both interleaved into a KTO-ready file."""
        self.validate = validate
        invalid = invalid_path(output_file) if (save_invalid and validate) else None
        summary = run_into_store(
            output_file,
            invalid,
            num_examples,
            self._produce,
            self.client,
            self.executor,
            resume=resume,
            concurrency=concurrency,
            progress=progress,
        )
        summary.kto = write_kto(output_file, invalid, kto_file) if kto_file else None
        return BatchSummary(**vars(summary), output=Path(output_file), invalid_output=invalid)


def _inject(answer: dict, ids: SessionIds) -> tuple[dict, bool]:
    """The answer with the session's ids in each call's context, in the answer's own format."""
    parsed = parse_message(answer)
    if not parsed.calls or parsed.findings and any(c.arguments is None for c in parsed.calls):
        return answer, False
    calls = inject_ids(parsed.calls, ids)
    fmt = parsed.format or "openai"
    message = render_message(calls, fmt, parsed.text or (None if fmt == "openai" else ""))
    return message, True


def write_kto(output: str | Path, invalid: str | Path | None, kto_file: str | Path) -> dict:
    """Valid and invalid examples strictly interleaved True/False with the shared interleaver;
    the surplus of the larger class goes to <kto>.leftover.jsonl."""
    from Tools.schema.interleave import interleave, write_interleaved

    positives, negatives = read_labelled(output, *([invalid] if invalid else []))
    if not positives or not negatives:
        return {
            "records": 0,
            "error": f"KTO needs both labels: {len(positives)} valid and {len(negatives)} invalid examples",
        }
    return write_interleaved(interleave(positives, negatives, balance="none"), Path(kto_file))
