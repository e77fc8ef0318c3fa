"""BFCL's single-turn categories through the toolkit's backends:
``python -m Evaluator.cli --prompt-set bfcl:simple_python,multiple,parallel,irrelevance ...``.

The ``bfcl-eval`` package supplies the data, the conversion of its function docs to OpenAI tools
and the AST checker; this module sends each case through a ChatClient (the evaluator's runner:
concurrency, retries, Ctrl-C), parses the answer with ``Tools.schema.toolcalls`` (any format a local
model writes) and hands the calls to BFCL's checker in the shape BFCL's own OpenAI function-calling
handler does, ``[{name: {argument: value}}]``. The report gives BFCL's accuracy per category.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
import types
from dataclasses import dataclass, field
from functools import lru_cache

from Tools.errors import EXIT_FINDINGS, EXIT_OK, UsageError

from .prompt_sets import BFCL_PREFIX

BFCL_VERSION = "2026.3.23"  # the bfcl-eval release this module was written against (Makefile, docs)
INSTALL = f'pip install -e ".[bfcl]" && pip install --no-deps bfcl-eval=={BFCL_VERSION}'
# BFCL's checker asks its model table one question: were the tool names sent with "." replaced by
# "_" (OpenAI's names allow no dot)? They were (BFCL's OpenAI conversion does it); this is the key.
MODEL_KEY = "claudesidian-toolkit"


@lru_cache(maxsize=1)
def bfcl():
    """bfcl-eval's loader, conversion and checker, imported once; a UsageError saying how to install it."""
    # bfcl-eval creates result/, score/ and lock folders beside itself at import unless told where
    os.environ.setdefault("BFCL_PROJECT_ROOT", os.path.join(tempfile.gettempdir(), "bfcl-eval"))
    if "bfcl_eval.constants.model_config" not in sys.modules:
        # the real table imports every vendor's SDK (anthropic, cohere, google-genai, boto3, ...) for
        # that one flag; the checker reads nothing else from it
        table = types.ModuleType("bfcl_eval.constants.model_config")
        table.MODEL_CONFIG_MAPPING = {MODEL_KEY: types.SimpleNamespace(underscore_to_dot=True)}
        sys.modules[table.__name__] = table
    try:
        from importlib.metadata import version

        from bfcl_eval.constants import category_mapping
        from bfcl_eval.constants.enums import Language, ModelStyle
        from bfcl_eval.constants.type_mappings import GORILLA_TO_OPENAPI
        from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
        from bfcl_eval.model_handler.utils import convert_to_tool
        from bfcl_eval import utils
    except ImportError as exc:
        raise UsageError(f"the bfcl: prompt sets need bfcl-eval ({exc}); install it: {INSTALL}") from None
    return types.SimpleNamespace(
        version=version("bfcl-eval"),
        categories=category_mapping.SINGLE_TURN_CATEGORY,
        collections=category_mapping.TEST_COLLECTION_MAPPING,
        Language=Language,
        ast_checker=ast_checker,
        tools=lambda functions: convert_to_tool(functions, GORILLA_TO_OPENAPI, ModelStyle.OPENAI_COMPLETIONS),
        utils=utils,
    )


@dataclass
class BfclCase:
    id: str
    category: str
    messages: list[dict]
    functions: list[dict]  # BFCL's function docs, what its checker reads
    tools: list[dict]  # the same as OpenAI tools, what the model is sent
    ground_truth: list | None = None  # None for (ir)relevance: only whether a call was made counts
    tags: list[str] = field(default_factory=list)


@dataclass
class BfclSet:
    name: str
    categories: list[str]
    sha256: str
    cases: list[BfclCase]


def categories_of(spec: str) -> list[str]:
    """``bfcl:simple_python,multiple`` -> the categories, collections (``non_live``, ``live``) expanded."""
    b = bfcl()
    names = [n.strip() for n in spec.removeprefix(BFCL_PREFIX).split(",") if n.strip()]
    found: list[str] = []
    for name in names:
        members = [name] if name in b.categories else [c for c in b.collections.get(name, []) if c in b.categories]
        if not members:
            raise UsageError(
                f"{BFCL_PREFIX}{name}: not a single-turn BFCL category; choose from "
                f"{', '.join(b.categories)} (or non_live, live)"
            )
        found += [c for c in members if c not in found]
    if not found:
        raise UsageError(f"{spec}: name BFCL categories, e.g. {BFCL_PREFIX}simple_python,multiple,parallel,irrelevance")
    return found


def load_bfcl_set(spec: str, limit: int | None = None) -> BfclSet:
    """The cases of every category named (the first ``limit`` of each), with their tools and answers."""
    b = bfcl()
    categories = categories_of(spec)
    cases, digest = [], hashlib.sha256()
    for category in categories:
        # as BFCL does: the model sees the docs with its language hints (Java and JavaScript types as
        # strings), the checker reads them without
        entries = b.utils.load_dataset_entry(category)[:limit]
        plain = {
            e["id"]: e["function"] for e in b.utils.load_dataset_entry(category, include_language_specific_hint=False)
        }
        answers = (
            {}
            if b.utils.is_relevance_or_irrelevance(category)
            else {a["id"]: a["ground_truth"] for a in b.utils.load_ground_truth_entry(category)}
        )
        for entry in entries:
            digest.update(json.dumps([entry, answers.get(entry["id"])], sort_keys=True).encode())
            cases.append(
                BfclCase(
                    entry["id"],
                    category,
                    entry["question"][0],
                    plain[entry["id"]],
                    b.tools(entry["function"]),
                    answers.get(entry["id"]),
                    [category],
                )
            )
    return BfclSet(BFCL_PREFIX + ",".join(categories), categories, digest.hexdigest(), cases)


def check_answer(case: BfclCase, message: dict) -> tuple[dict, list]:
    """BFCL's verdict on one assistant message ({valid, error, error_type}) and the parsed calls."""
    from Tools.schema.toolcalls import parse_message

    b = bfcl()
    parsed = parse_message(message)
    decoded = [{c.name: c.arguments} for c in parsed.calls]
    if b.utils.is_relevance_or_irrelevance(case.category):
        called = not b.utils.is_empty_output(decoded)
        irrelevance = "irrelevance" in case.category
        if called != irrelevance:
            return {"valid": True}, decoded
        return (
            {
                "valid": False,
                "error": ["Valid syntax. Successfully decode AST when it should not."],
                "error_type": "irrelevance_error:decoder_success",
            }
            if irrelevance
            else {
                "valid": False,
                "error": ["Invalid syntax. Failed to decode AST when it should have."],
                "error_type": "relevance_error:decoder_failed",
            }
        ), decoded
    if not parsed.calls:
        return {
            "valid": False,
            "error": ["the answer holds no tool call"],
            "error_type": "ast_decoder:decoder_failed",
        }, decoded
    if not b.utils.is_function_calling_format_output(decoded):
        return {
            "valid": False,
            "error": ["a call's arguments are not an object"],
            "error_type": "ast_decoder:decoder_wrong_output_format",
        }, decoded
    language = (
        b.Language.JAVA
        if b.utils.is_java(case.category)
        else b.Language.JAVASCRIPT
        if b.utils.is_js(case.category)
        else b.Language.PYTHON
    )
    try:
        verdict = b.ast_checker(case.functions, decoded, case.ground_truth, language, case.category, MODEL_KEY)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError) as exc:
        verdict = {
            "valid": False,
            "error": [f"BFCL's checker failed on the answer: {exc.__class__.__name__}: {exc}"],
            "error_type": "ast_checker:exception",
        }
    return verdict, decoded


def run_case(client, case: BfclCase, attempt: int, settings, stop) -> dict:
    """Ask one case once (its own tools in the request) and let BFCL's checker judge the answer."""
    from .runner import request_with_retries

    started = time.perf_counter()
    reply, error, retries = request_with_retries(
        client,
        case.messages,
        case.tools,
        temperature=settings.temperature,
        max_tokens=settings.max_tokens,
        retries=settings.retries,
        backoff=settings.backoff,
        stop=stop,
    )
    latency = time.perf_counter() - started
    if reply is None:
        verdict, decoded = {"valid": False, "error": [str(error)], "error_type": error.code}, []
    else:
        verdict, decoded = check_answer(case, reply.message)
    return {
        "id": case.id,
        "attempt": attempt,
        "category": case.category,
        "tags": case.tags,
        "passed": bool(verdict["valid"]),
        "error_type": None if verdict["valid"] else verdict.get("error_type"),
        "errors": [str(e)[:500] for e in verdict.get("error", [])],
        "calls": decoded,
        "error": error and str(error),
        "retries": retries,
        "latency_s": round(latency, 4),
        "finish_reason": reply.finish_reason if reply else None,
        "response": reply.message if reply else None,
        "raw": reply.raw if reply else None,
    }


def summarize(results: list[dict], categories: list[str], repeats: int) -> dict:
    """BFCL's accuracy per category, their unweighted mean (BFCL's way to combine categories),
    pass@1 over every attempt, pass^k, BFCL's error types, latency percentiles."""
    from .reporting import latency_summary

    per_category = {}
    for category in categories:
        rs = [r for r in results if r["category"] == category]
        passed = sum(r["passed"] for r in rs)
        per_category[category] = {
            "attempts": len(rs),
            "passed": passed,
            "rate": round(passed / len(rs), 4) if rs else None,
        }
    rates = [v["rate"] for v in per_category.values() if v["rate"] is not None]
    by_case: dict[str, list[dict]] = {}
    for r in results:
        by_case.setdefault(r["id"], []).append(r)
    complete = [rs for rs in by_case.values() if len(rs) == repeats]
    codes: dict[str, dict] = {}
    for r in results:
        if not r["passed"]:
            entry = codes.setdefault(
                r["error_type"],
                {
                    "count": 0,
                    "example": {"id": r["id"], "attempt": r["attempt"], "message": (r["errors"] or [""])[0][:300]},
                },
            )
            entry["count"] += 1
    passed = sum(r["passed"] for r in results)
    return {
        "cases": len(by_case),
        "attempts": len(results),
        "passed_attempts": passed,
        "accuracy": round(sum(rates) / len(rates), 4) if rates else None,
        "pass_at_1": round(passed / len(results), 4) if results else None,
        f"pass_hat_{repeats}": round(sum(all(r["passed"] for r in rs) for rs in complete) / len(complete), 4)
        if complete
        else None,
        "per_category": per_category,
        "requests_failed": sum(r["error"] is not None for r in results),
        "retries": sum(r["retries"] for r in results),
        "failure_codes": dict(sorted(codes.items(), key=lambda kv: -kv[1]["count"])),
        "latency_s": latency_summary([r["latency_s"] for r in results if r["error"] is None]),
    }


def build_report(*, client, bfcl_set: BfclSet, settings, outcome, started_at: float) -> dict:
    from .reporting import run_metadata

    metadata = run_metadata(client=client, settings=settings, outcome=outcome, started_at=started_at) | {
        "kind": "bfcl",
        "bfcl_eval_version": bfcl().version,
        "prompt_set": {
            "name": bfcl_set.name,
            "path": None,
            "sha256": bfcl_set.sha256,
            "cases": len(bfcl_set.cases),
            "categories": bfcl_set.categories,
        },
    }
    summary = summarize(outcome.results, bfcl_set.categories, settings.repeats) | {"not_run": len(outcome.not_run)}
    return {"metadata": metadata, "summary": summary, "cases": outcome.results, "not_run": outcome.not_run}


def render_markdown(report: dict) -> str:
    meta, s = report["metadata"], report["summary"]
    lines = [
        f"# BFCL: {meta['model']}",
        "",
        f"Backend `{meta['backend']}` at `{meta['endpoint']}`; bfcl-eval {meta['bfcl_eval_version']}; "
        f"{s['cases']} cases, started {meta['started_at']}, {meta['wall_s']} s.",
        "",
        "| category | passed | attempts | accuracy |",
        "|---|---|---|---|",
    ]
    lines += [f"| {c} | {v['passed']} | {v['attempts']} | {_pct(v['rate'])} |" for c, v in s["per_category"].items()]
    lines += [f"| **overall** (mean of categories) | | | **{_pct(s['accuracy'])}** |", "", "## BFCL error types", ""]
    lines += [
        f"- `{code}`: {v['count']} (e.g. {v['example']['id']}: {v['example']['message'][:120]})"
        for code, v in s["failure_codes"].items()
    ] or ["None."]
    return "\n".join(lines) + "\n"


def _pct(rate) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def _check_request(request) -> None:
    if request.settings.execute_mcp:
        raise UsageError("--execute-mcp runs vault tools; BFCL's functions are not executed (AST checking only)")
    if request.tags:
        raise UsageError("--tags does not apply to bfcl: sets; name the categories instead")


def dry_run(request):
    from .evaluation import EvalResult

    _check_request(request)
    bfcl_set = load_bfcl_set(request.prompt_set, request.limit)
    return EvalResult(
        None,
        EXIT_OK,
        [
            f"{bfcl_set.name}: {len(bfcl_set.cases)} cases x {request.settings.repeats} repeats, bfcl-eval "
            f"{bfcl().version}, sha256 {bfcl_set.sha256[:12]}",
            f"backend {request.backend}, model {request.model}; each case sends its own functions as tools",
            "dry run: nothing sent",
        ],
    )


def evaluate(request):
    """Run the BFCL categories and write the JSON (and Markdown) report; EvalResult as Evaluator.evaluation's."""
    from .evaluation import EXIT_INTERRUPTED, EvalResult, open_client
    from .reporting import sigint_ignored, write_reports
    from .runner import run_prompt_set

    _check_request(request)
    bfcl_set = load_bfcl_set(request.prompt_set, request.limit)
    settings = request.settings
    client = open_client(request)
    started = time.time()
    try:
        outcome = run_prompt_set(
            client,
            bfcl_set.cases,
            None,
            settings,
            progress=request.progress,
            run=lambda case, attempt, stop: run_case(client, case, attempt, settings, stop),
        )
    finally:
        client.close()
    with sigint_ignored():  # a second Ctrl-C must not cost the report
        report = build_report(client=client, bfcl_set=bfcl_set, settings=settings, outcome=outcome, started_at=started)
        write_reports(report, request.output, request.markdown, render_markdown)
    s = report["summary"]
    lines = [f"{c}: {_pct(v['rate'])} ({v['passed']}/{v['attempts']})" for c, v in s["per_category"].items()]
    lines += [
        f"overall (mean of categories): {_pct(s['accuracy'])}; {s['requests_failed']} failed requests, "
        f"{outcome.wall_s:.1f} s",
        f"report: {request.output}" + (f" and {request.markdown}" if request.markdown else ""),
    ]
    if outcome.interrupted:
        return EvalResult(report, EXIT_INTERRUPTED, ["interrupted: partial report written"] + lines)
    if s["attempts"] and s["requests_failed"] == s["attempts"]:
        return EvalResult(report, EXIT_FINDINGS, lines + ["error: every request failed; see the report's errors"])
    if request.fail_under is not None and (s["accuracy"] or 0) < request.fail_under:
        return EvalResult(
            report, EXIT_FINDINGS, lines + [f"overall accuracy is below --fail-under {request.fail_under}"]
        )
    return EvalResult(report, EXIT_OK, lines)
