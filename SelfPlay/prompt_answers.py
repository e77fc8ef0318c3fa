"""Self-play over a prompt set (Tools/selfplay_generator.py): each prompt is answered
--num-variations times at temperatures around --temperature, each answer is judged against the
prompt's expectations (the evaluator's scoring: validator, expected tools and arguments,
behaviour rubric, and execution with --execute-mcp), both labels are kept, and the result is
balanced and strictly interleaved True/False for KTO with the shared interleaver.

It shares everything with the 3-prompt generator: the client (Evaluator backends, the template
teacher included), request retries, the judge (labels.py), the writer (store.py) and the runner
(engine.py); only where the requests come from differs.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path

from Evaluator.clients import ChatClient
from Evaluator.prompt_sets import PromptCase
from Evaluator.runner import request_with_retries
from Tools.schema.context import PromptIds

from .config import SelfPlayConfig
from .engine import GenerationError, Outcome, RunSummary, run_into_store
from .generator import write_kto
from .labels import SandboxExecutor, check_writable, judge

TEACHER_SET = "teacher"  # --prompt-set teacher: prompts written by the template teacher with --seed


def stream_paths(output: str | Path) -> tuple[Path, Path]:
    """Where answers are appended while the run goes (and read back by --resume)."""
    output = Path(output)
    return output.with_name(f"{output.stem}_valid.jsonl"), output.with_name(f"{output.stem}_invalid.jsonl")


def temperatures(center: float, variations: int, spread: float) -> list[float]:
    """`variations` temperatures evenly spread over center +- spread (clamped to 0..2)."""
    if variations == 1:
        return [round(center, 4)]
    return [
        round(min(2.0, max(0.0, center - spread + 2 * spread * i / (variations - 1))), 4) for i in range(variations)
    ]


def load_cases(spec: str, client: ChatClient, *, seed: int, size: int) -> tuple[str, list[PromptCase]]:
    """(name, cases) for --prompt-set: a file, a built-in set's name, or 'teacher' (size cases
    written by the template teacher; the template backend answers them from its own scenes)."""
    from Evaluator.prompt_sets import load_prompt_set, parse_cases

    if spec != TEACHER_SET:
        prompt_set = load_prompt_set(spec)
        return prompt_set.name, prompt_set.cases
    from .teacher import TemplateClient

    teacher_client = client if isinstance(client, TemplateClient) else TemplateClient(seed=seed)
    return f"{TEACHER_SET}-{seed}", parse_cases(teacher_client.prompt_cases(size), TEACHER_SET)


@dataclass
class PromptSetGenerator:
    client: ChatClient
    cases: list[PromptCase]
    registry: object
    config: SelfPlayConfig
    prompt_set: str = TEACHER_SET
    seed: int = 0
    temperature: float = 0.7
    num_variations: int = 3
    spread: float = 0.2
    max_tokens: int = 700
    retries: int = 3
    backoff: float = 0.5
    tools_in_request: bool = False
    reference_positives: bool = False
    executor: SandboxExecutor | None = None  # or an MCP server's (Evaluator.execution.McpExecutor)

    def job(self, index: int) -> tuple[PromptCase, int, float]:
        """Job `index`: prompt index // variations (cycling through the set), variation index % variations."""
        variation = index % self.num_variations
        case = self.cases[(index // self.num_variations) % len(self.cases)]
        return case, variation, temperatures(self.temperature, self.num_variations, self.spread)[variation]

    def metadata(self, case: PromptCase, index: int, variation: int, temperature: float, source: str, reply) -> dict:
        ids = PromptIds(case.system) if case.system else None
        behavior = next((t for t in case.tags if t in self.config.behaviors), None)
        tools = list(case.expected_tools)
        return {
            "session_id": ids.session_id if ids else None,
            "workspace_id": ids.workspace_id if ids else None,
            "environment_variation": case.metadata.get("environment_variation"),
            "type": "behavioral" if behavior else "tool",
            "agent": self.registry.tools[tools[0]].agent if tools and tools[0] in self.registry else None,
            "tools": tools,
            "behavior": behavior,
            "provenance": {
                "generator": "selfplay_generator",
                "source": source,
                "backend": self.client.backend,
                "model": self.client.model,
                "seed": self.seed,
                "index": index,
                "prompt_set": self.prompt_set,
                "prompt_id": case.id,
                "variation": variation,
                "temperatures": {"assistant": temperature},
                "schema_hash": self.registry.schema_hash,
                "finish_reason": reply.finish_reason if reply else None,
            },
        }

    def _record(self, case: PromptCase, message: dict, meta: dict, finish_reason, execute) -> dict:
        record = {"conversations": case.messages() + [message], "metadata": meta}
        try:
            check_writable(record, self.registry)
        except ValueError as exc:
            raise GenerationError("answer unusable", f"structurally broken ({exc})") from None
        verdict = judge(
            case, message, self.registry, finish_reason=finish_reason, execute=execute, echo_of=[case.question]
        )
        if not verdict.passed:
            meta["codes"] = verdict.codes
        return {"conversations": record["conversations"], "label": verdict.passed, "metadata": meta}

    def produce(self, index: int, stop: threading.Event) -> Outcome:
        case, variation, temperature = self.job(index)
        tools = self.registry.openai_tools() if self.tools_in_request else None
        reply, error, _ = request_with_retries(
            self.client,
            case.messages(),
            tools,
            temperature=temperature,
            max_tokens=self.max_tokens,
            retries=self.retries,
            backoff=self.backoff,
            stop=stop,
        )
        if reply is None:
            raise GenerationError("backend error", error or "no answer")
        execute = None
        if self.executor:
            ids = PromptIds(case.system) if case.system else None
            execute = self.executor.for_session(
                ids.session_id if ids else None, {"id": ids.workspace_id} if ids and ids.workspace_id else None
            )
        record = self._record(
            case,
            reply.message,
            self.metadata(case, index, variation, temperature, "model", reply),
            reply.finish_reason,
            execute,
        )
        records = [record]
        reference = case.metadata.get("reference")
        if self.reference_positives and record["label"] is False and isinstance(reference, dict):
            positive = self._record(
                case, reference, self.metadata(case, index, variation, temperature, "reference", None), None, execute
            )
            if positive["label"]:
                records.append(positive)
        return Outcome(index, records)

    def run(
        self,
        num_examples: int,
        output: str | Path,
        *,
        concurrency: int = 1,
        resume: bool = False,
        progress: bool = False,
    ) -> RunSummary:
        """Answer jobs 0..num_examples-1, then write output: strictly alternating True/False."""
        valid, invalid = stream_paths(output)
        summary = run_into_store(
            valid,
            invalid,
            num_examples,
            self.produce,
            self.client,
            self.executor,
            resume=resume,
            concurrency=concurrency,
            progress=progress,
        )
        summary.kto = write_kto(valid, invalid, output)
        return summary


def prompts_needed(num_examples: int, num_variations: int) -> int:
    return max(1, math.ceil(num_examples / num_variations))
