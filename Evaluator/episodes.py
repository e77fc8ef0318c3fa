"""Agentic episodes: the model calls a tool, reads the result, calls again, then answers.

Each episode runs in a fresh VaultSandbox: every call the model makes is executed and its result
goes back as a ``tool`` message (OpenAI shape, ``tool_call_id`` of the call; the server or the
embedded engine renders it through the model's own chat template), until the model answers in
text or ``max_turns`` model turns are used. The episode is judged by what it left behind:

- the final vault state (``state``: paths that must exist or be absent, text a note must or must
  not hold, or no change at all), E_EPISODE_STATE;
- the final answer: every fact in ``answer.mentions`` must be in it *and* in a tool result of the
  same run (a fact the model could only have read, not guessed), E_EPISODE_UNGROUNDED; and it must
  not claim success where the state check failed or the task cannot succeed
  (``answer.expect_failure``), E_EPISODE_FALSE_SUCCESS;
- no text answer within max_turns: E_EPISODE_MAX_TURNS; a request that failed, or a call that
  could not be parsed (which ends the run as its answer): its own code.

Over k repeats an episode passes^k only when all k runs pass (tau-bench's pass^k).
``run_episodes(client, prompt_set, repeats)`` is the library entry; the evaluator's
``--episodes`` flag and self-play's ``--episodes`` flag call it.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from Tools.errors import UsageError
from Tools.schema.context import PromptIds
from Tools.schema.toolcalls import parse_message, render_message

DEFAULT_MAX_TURNS = 8
MAX_RESULT_CHARS = 4000  # a tool result longer than this is cut (a listing of a large vault must not flood the prompt)
MAX_CALLS_PER_TURN = (
    16  # calls past this in one answer are answered "not run", so one turn cannot grow the prompt without end
)
EPISODES_DIR = (
    Path(__file__).resolve().parent / "prompts" / "episodes"
)  # apart from the prompt sets: not single-turn cases
BUILTIN = EPISODES_DIR / "vault.json"

# A success claim: a completion verb with no word of failure anywhere in the answer.
_DONE = re.compile(
    r"\b(done|deleted|removed|created|moved|updated|added|appended|replaced|changed|saved|"
    r"completed|finished|success(?:fully)?)\b",
    re.I,
)
_FAILED = re.compile(
    r"\b(not|no|nothing|couldn'?t|cannot|can'?t|unable|failed|fail|error|doesn'?t|isn'?t|wasn'?t|"
    r"missing)\b",
    re.I,
)


def claims_success(text: str) -> bool:
    return bool(_DONE.search(text)) and not _FAILED.search(text)


@dataclass
class Episode:
    id: str
    system: str
    question: str
    workspace: dict  # {"name", "rootFolder", "folders"?}: registered under the system prompt's ids
    state: dict
    answer: dict
    max_turns: int = DEFAULT_MAX_TURNS
    tags: list = field(default_factory=list)
    reference: list = field(default_factory=list)  # the teacher's turns: {"calls": [...], "text": ...}

    @property
    def ids(self) -> PromptIds:
        return PromptIds(self.system)

    def messages(self) -> list[dict]:
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.question}]


_STATE_KEYS = {"exists", "absent", "contains", "lacks", "unchanged"}
_ANSWER_KEYS = {"mentions", "expect_failure"}


def _strings(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def load_episodes(source: str | Path | None = None) -> list[Episode]:
    """Episodes from a JSON list (default: the built-in set); UsageError names the first problem."""
    path = Path(source or BUILTIN)
    if not path.exists() and (EPISODES_DIR / f"{path.name}.json").is_file():  # a built-in set by name
        path = EPISODES_DIR / f"{path.name}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"--episodes {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"--episodes {path}: not JSON ({exc})") from None
    if not isinstance(data, list) or not data:
        raise UsageError(f"--episodes {path}: expected a non-empty JSON list of episodes")
    episodes, seen = [], set()
    for n, item in enumerate(data, 1):
        where = f"--episodes {path}: episode {n}"
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) and item[k] for k in ("id", "system", "question")
        ):
            raise UsageError(f"{where}: needs string id, system and question")
        if item["id"] in seen:
            raise UsageError(f"{where}: duplicate id {item['id']!r}")
        seen.add(item["id"])
        state, answer = item.get("state") or {}, item.get("answer") or {}
        if (
            not isinstance(state, dict)
            or set(state) - _STATE_KEYS
            or not isinstance(answer, dict)
            or set(answer) - _ANSWER_KEYS
        ):
            raise UsageError(f"{where}: state keys are {sorted(_STATE_KEYS)}, answer keys {sorted(_ANSWER_KEYS)}")
        texts = {k: v for k, v in state.items() if k in ("contains", "lacks")}
        if not (
            all(_strings(state.get(k, [])) for k in ("exists", "absent"))
            and _strings(answer.get("mentions", []))
            and all(isinstance(v, dict) and all(_strings(t) for t in v.values()) for v in texts.values())
        ):
            raise UsageError(
                f"{where}: exists, absent and mentions are lists of strings; contains and lacks map a path "
                "to a list of strings"
            )
        ids = PromptIds(item["system"])
        if not (ids.session_id and ids.workspace_id):
            raise UsageError(f"{where}: the system prompt hands out no sessionId / workspaceId")
        turns = item.get("max_turns", DEFAULT_MAX_TURNS)
        if not isinstance(turns, int) or isinstance(turns, bool) or turns < 1:
            raise UsageError(f"{where}: max_turns must be a positive integer")
        episodes.append(
            Episode(
                item["id"],
                item["system"],
                item["question"],
                item.get("workspace") or {},
                state,
                answer,
                turns,
                list(item.get("tags") or []),
                list(item.get("reference") or []),
            )
        )
    return episodes


# -- one run -------------------------------------------------------------------------------------
def _sandbox(episode: Episode, vault_path):
    from Tools.vault.sandbox import VaultSandbox

    box = VaultSandbox(vault_path)
    ids, ws = episode.ids, episode.workspace
    box.add_workspace(
        ids.workspace_id,
        ws.get("name") or "Workspace",
        ws.get("rootFolder") or "/",
        ws.get("description") or "",
        tuple(ws.get("folders") or ()),
        ids.session_id,
    )
    return box


def _vault_changes(box) -> dict:
    """What the run changed in the notes (the plugin's own data folders, which registering the
    session touches, are left out)."""
    changes = box.changes().to_dict()
    return {kind: [p for p in paths if not p.startswith(".")] for kind, paths in changes.items()}


def check_state(box, state: dict, changes: dict) -> list[str]:
    """What the final vault breaks of the episode's state checks, one line each (a path that
    leaves the vault is a problem of its own)."""
    from Tools.vault.paths import VaultPathError

    try:
        return _check_state(box, state, changes)
    except VaultPathError as exc:
        return [f"a state check names a path outside the vault: {exc}"]


def _check_state(box, state: dict, changes: dict) -> list[str]:
    problems = []
    for path in state.get("exists", []):
        if not box.exists(path):
            problems.append(f"{path} does not exist")
    for path in state.get("absent", []):
        if box.exists(path):
            problems.append(f"{path} still exists")
    for key, want in (("contains", True), ("lacks", False)):
        for path, texts in (state.get(key) or {}).items():
            file = box.path(path)
            body = file.read_text(encoding="utf-8", errors="replace") if file.is_file() else None
            if body is None:
                problems.append(f"{path} is not a note")
                continue
            problems += [f"{path} {'lacks' if want else 'holds'} {t!r}" for t in texts if (t in body) != want]
    if state.get("unchanged") and any(changes.values()):
        problems.append(f"the vault changed: {changes}")
    return problems


def run_episode(client, episode: Episode, attempt: int = 0, *, settings=None, vault_path=None, tools=None) -> dict:
    """One run of an episode: the conversation, the calls and their outcomes, the verdict."""
    from .runner import RunSettings, request_with_retries
    from Tools.vault.executor import Outcome, envelope_json

    settings = settings or RunSettings()
    messages = episode.messages()
    calls_made, results, codes, answer, error = [], [], [], None, None
    fmt = "ollama" if client.backend == "ollama" else "openai"
    started = time.perf_counter()
    box = _sandbox(episode, vault_path)
    try:
        turns = 0
        while turns < episode.max_turns:
            turns += 1
            reply, failure, _ = request_with_retries(
                client,
                messages,
                tools,
                temperature=settings.temperature,
                max_tokens=settings.max_tokens,
                retries=settings.retries,
                backoff=settings.backoff,
            )
            if failure is not None:
                error = str(failure)
                codes.append(failure.code)
                break
            parsed = parse_message(reply.message)
            if not parsed.calls:  # the final answer; a call that could not be parsed ends the run too
                codes += list(dict.fromkeys(f.code for f in parsed.findings if f.severity == "error"))
                answer = parsed.text
                messages.append({"role": "assistant", "content": answer or ""})
                break
            for k, call in enumerate(parsed.calls):  # ids the next prompt's tool messages point at
                call.id = call.id or f"call{turns:02d}{k:03d}"
            messages.append(render_message(parsed.calls, fmt, parsed.text or ""))
            for n, call in enumerate(parsed.calls):
                outcome = (
                    box.execute_detailed(call)
                    if n < MAX_CALLS_PER_TURN
                    else Outcome(
                        {"success": False, "error": f"not run: more than {MAX_CALLS_PER_TURN} calls in one turn"},
                        "E_EXEC_FAILED",
                    )
                )
                text = envelope_json(outcome.envelope)
                text = text if len(text) <= MAX_RESULT_CHARS else text[:MAX_RESULT_CHARS] + " ...(cut)"
                results.append(text)
                calls_made.append({"turn": turns, "name": call.name, "ok": outcome.ok, "code": outcome.code})
                messages.append({"role": "tool", "tool_call_id": call.id, "content": text})
        if answer is None and error is None:
            codes.append("E_EPISODE_MAX_TURNS")
        changes = _vault_changes(box)
        problems = check_state(box, episode.state, changes)
    finally:
        box.close()
    if problems:
        codes.append("E_EPISODE_STATE")
    if answer is not None:
        seen = "\n".join(results).lower()
        missing = [
            f for f in episode.answer.get("mentions", []) if f.lower() not in answer.lower() or f.lower() not in seen
        ]
        if missing:
            codes.append("E_EPISODE_UNGROUNDED")
            problems.append(f"the answer does not report {missing} from the tool results")
        if (problems or episode.answer.get("expect_failure")) and claims_success(answer):
            codes.append("E_EPISODE_FALSE_SUCCESS")
    return {
        "id": episode.id,
        "attempt": attempt,
        "passed": not codes,
        "codes": codes,
        "turns": turns,
        "calls": calls_made,
        "failed_calls": sum(not c["ok"] for c in calls_made),
        "answer": answer,
        "problems": problems,
        "changes": changes,
        "error": error,
        "latency_s": round(time.perf_counter() - started, 3),
        "messages": messages,
    }


# -- a set of runs -------------------------------------------------------------------------------
def summarize(runs: list[dict], episodes: list[Episode], repeats: int) -> dict:
    per = []
    for episode in episodes:
        mine = [r for r in runs if r["id"] == episode.id]
        passed = sum(r["passed"] for r in mine)
        per.append(
            {
                "id": episode.id,
                "tags": episode.tags,
                "runs": len(mine),
                "passed": passed,
                "pass_rate": round(passed / len(mine), 4) if mine else 0.0,
                "pass_hat_k": bool(mine) and passed == len(mine) == repeats,
                "turns": [r["turns"] for r in mine],
                "failed_calls": sum(r["failed_calls"] for r in mine),
                "codes": dict(Counter(c for r in mine for c in r["codes"])),
            }
        )
    total = len(runs)
    return {
        "episodes": len(episodes),
        "repeats": repeats,
        "runs": total,
        "pass_rate": round(sum(r["passed"] for r in runs) / total, 4) if total else 0.0,
        "pass_hat_k": round(sum(e["pass_hat_k"] for e in per) / len(per), 4) if per else 0.0,
        "mean_turns": round(sum(r["turns"] for r in runs) / total, 2) if total else 0.0,
        "codes": dict(Counter(c for r in runs for c in r["codes"]).most_common()),
        "per_episode": per,
    }


def run_episodes(client, prompt_set=None, repeats: int = 1, *, settings=None, vault_path=None) -> dict:
    """Every episode of prompt_set (a path, or already loaded episodes) ``repeats`` times against a
    ChatClient; returns the summary dict (pass_rate, pass_hat_k, mean_turns, codes, per_episode)
    with the runs under ``runs_detail``. A client that can learn episodes (the template teacher) is
    taught them first."""
    from .runner import RunSettings

    episodes = prompt_set if isinstance(prompt_set, list) else load_episodes(prompt_set)
    settings = settings or RunSettings()
    if hasattr(client, "learn_episodes"):
        client.learn_episodes(episodes)
    tools = None
    if settings.tools_in_request:
        from Tools.schema.registry import load_registry

        tools = load_registry().openai_tools()
    runs, interrupted = [], False
    try:
        for attempt in range(repeats):
            runs += [
                run_episode(client, e, attempt, settings=settings, vault_path=vault_path, tools=tools) for e in episodes
            ]
    except KeyboardInterrupt:  # keep the runs that finished; the caller writes a partial report
        interrupted = True
    order = [e.id for e in episodes]
    runs.sort(key=lambda r: (order.index(r["id"]), r["attempt"]))
    return {**summarize(runs, episodes, repeats), "interrupted": interrupted, "runs_detail": runs}


def report_lines(summary: dict) -> list[str]:
    k = summary["repeats"]
    lines = [
        f"episodes: {summary['episodes']} x {k} runs: pass rate {summary['pass_rate']:.1%}, "
        f"pass^{k} {summary['pass_hat_k']:.1%}, mean turns {summary['mean_turns']}"
    ]
    for e in summary["per_episode"]:
        codes = ", ".join(f"{c} x{n}" for c, n in e["codes"].items()) or "-"
        lines.append(
            f"  {e['id']:<28} {e['passed']}/{e['runs']}  pass^{k} {'yes' if e['pass_hat_k'] else 'no ':<3}  "
            f"turns {e['turns']}  {codes}"
        )
    return lines


def markdown(report: dict) -> str:
    s = report["summary"]
    k = s["repeats"]
    rows = [
        f"# Episodes: {report['backend']}:{report['model']}",
        "",
        f"{s['episodes']} episodes x {k} runs; pass rate **{s['pass_rate']:.1%}**, pass^{k} **{s['pass_hat_k']:.1%}**, "
        f"mean turns {s['mean_turns']}",
        "",
        f"| episode | passed | pass^{k} | turns | failed calls | codes |",
        "|---|---|---|---|---|---|",
    ]
    for e in s["per_episode"]:
        codes = ", ".join(f"{c} x{n}" for c, n in e["codes"].items()) or "-"
        rows.append(
            f"| {e['id']} | {e['passed']}/{e['runs']} | {'yes' if e['pass_hat_k'] else 'no'} | "
            f"{', '.join(map(str, e['turns']))} | {e['failed_calls']} | {codes} |"
        )
    return "\n".join(rows) + "\n"


def evaluate_episodes(
    client,
    prompt_set,
    repeats: int,
    output: Path,
    *,
    settings=None,
    vault_path=None,
    markdown_path: Path | None = None,
    source: str | None = None,
) -> dict:
    """Run, then write the JSON report (and Markdown) atomically; returns the report."""
    from Tools.schema.registry import load_registry

    from .reporting import write_reports

    summary = run_episodes(client, prompt_set, repeats, settings=settings, vault_path=vault_path)
    runs = summary.pop("runs_detail")
    report = {
        "kind": "episodes",
        "backend": client.backend,
        "model": client.model,
        "endpoint": client.endpoint,
        "prompt_set": source or str(prompt_set or BUILTIN),
        "schema_hash": load_registry().schema_hash,
        "settings": settings.to_dict() if settings else None,
        "summary": summary,
        "runs": runs,
    }
    write_reports(report, output, markdown_path, markdown)
    return report


def evaluate_request(request, episodes_path, dry_run: bool = False):
    """``python -m Evaluator.cli --episodes``: the evaluator's request (backend, settings, output)
    over an episode set; an EvalResult like ``evaluate``'s (``dry_run``: load and check, send nothing)."""
    from Tools.cli_common import EXIT_FINDINGS, EXIT_OK

    from .evaluation import EXIT_INTERRUPTED, EvalResult, open_client

    episodes = load_episodes(None if episodes_path == "builtin" else episodes_path)
    if request.tags:
        episodes = [e for e in episodes if set(e.tags) & set(request.tags)]
    episodes = episodes[: request.limit] if request.limit else episodes
    if not episodes:
        raise UsageError(f"--episodes {episodes_path}: no episode carries any of the tags {', '.join(request.tags)}")
    if dry_run:
        return EvalResult(
            None,
            EXIT_OK,
            [
                f"episodes: {len(episodes)} x {request.settings.repeats} repeats, "
                f"backend {request.backend}, model {request.model}",
                "dry run: nothing sent",
            ],
        )
    client = open_client(request)
    try:
        report = evaluate_episodes(
            client,
            episodes,
            request.settings.repeats,
            request.output,
            settings=request.settings,
            vault_path=request.settings.vault_path,
            markdown_path=request.markdown,
            source=str(BUILTIN if episodes_path == "builtin" else episodes_path),
        )
    finally:
        client.close()
    s = report["summary"]
    lines = report_lines(s) + [f"report: {request.output}" + (f" and {request.markdown}" if request.markdown else "")]
    if s["interrupted"]:
        return EvalResult(report, EXIT_INTERRUPTED, ["interrupted: partial report written"] + lines)
    if request.fail_under is not None and s["pass_rate"] < request.fail_under:
        return EvalResult(report, EXIT_FINDINGS, lines + [f"pass rate is below --fail-under {request.fail_under}"])
    return EvalResult(report, EXIT_OK, lines)
