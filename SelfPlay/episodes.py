"""The template teacher in multi-turn episodes (Evaluator/episodes.py).

- ``EpisodePolicy``: the teacher's answer to an episode's conversation so far: the reference turn
  after as many assistant turns as the conversation holds (calls with a full context object, the
  ids the system prompt hands out), then the reference answer. ``TemplateClient.learn_episodes``
  puts it behind ``--backend template``. ``flaw`` makes a deliberately broken teacher for tests:
  ``answer_first`` answers before calling anything, ``loop`` repeats its first call forever.
- ``episode_records``: multi-turn training records (call -> tool result -> next call or answer):
  the transcripts of teacher runs that passed, executed in a real sandbox, so every tool message
  is the vault's real result.
  ``python -m SelfPlay.episodes --output Datasets/teacher/episodes_sft.jsonl`` writes them.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from Evaluator.clients import ChatClient, Reply
from Tools.schema.context import make_context
from Tools.schema.toolcalls import ToolCall, render_message

FLAWS = ("answer_first", "loop")


class EpisodePolicy:
    def __init__(self, episodes, flaw: str | None = None):
        if flaw not in (None, *FLAWS):
            raise ValueError(f"unknown flaw {flaw!r}; expected one of {', '.join(FLAWS)}")
        self.episodes = {e.question: e for e in episodes if e.reference}
        self.flaw = flaw

    def reply(self, messages: list[dict]) -> Reply | None:
        """The next turn of a known episode's conversation, or None for any other conversation."""
        user = next((m.get("content") for m in messages if m.get("role") == "user"), None)
        episode = self.episodes.get(user) if isinstance(user, str) else None
        if episode is None:
            return None
        done = sum(m.get("role") == "assistant" for m in messages)
        steps = episode.reference
        step = (
            steps[-1]
            if self.flaw == "answer_first"
            else steps[0]
            if self.flaw == "loop"
            else steps[min(done, len(steps) - 1)]
        )
        if not step.get("calls"):
            return Reply({"role": "assistant", "content": step.get("text") or ""}, {"teacher": "episode"}, "stop")
        ids = episode.ids
        calls = []
        for k, call in enumerate(step["calls"]):
            action = f"{call['name'].split('_')[-1]} for: {episode.question}"
            context = make_context(
                ids.session_id,
                ids.workspace_id,
                sessionDescription=f"Episode {episode.id}",
                sessionMemory=f'The user asked: "{episode.question}". Step {done + 1} of the task.',
                toolContext=action,
                primaryGoal=episode.question,
                subgoal=action,
            )
            calls.append(ToolCall(call["name"], {"context": context, **call["arguments"]}, f"e{done:03d}{k:05d}"))
        return Reply(render_message(calls, "openai", step.get("text") or ""), {"teacher": "episode"}, "tool_calls")


class EpisodeTeacher(ChatClient):
    """The policy alone as a client (the broken variants in tests; no template teacher needed)."""

    backend = "template"
    embedded = True

    def __init__(self, episodes, flaw: str | None = None):
        super().__init__(f"episode-teacher{'-' + flaw if flaw else ''}")
        self.policy = EpisodePolicy(episodes, flaw)

    def chat(self, messages, tools=None, temperature=0.0, max_tokens=512) -> Reply:
        return self.policy.reply(messages) or Reply(
            {"role": "assistant", "content": "Which note do you mean?"}, {}, "stop"
        )


def run_record(run: dict, episode, registry, client) -> dict:
    """A run's transcript as a dataset record: label true when the run passed its checks, else
    false with the run's codes."""
    tools = list(dict.fromkeys(c["name"] for c in run["calls"]))
    ids = episode.ids
    meta = {
        "session_id": ids.session_id,
        "workspace_id": ids.workspace_id,
        "type": "episode",
        "tools": tools,
        "agent": registry.tools[tools[0]].agent if tools and tools[0] in registry.tools else None,
        "behavior": None,
        "environment_variation": "complex",
        "provenance": {
            "generator": "episodes",
            "backend": client.backend,
            "model": client.model,
            "episode": episode.id,
            "attempt": run["attempt"],
            "turns": run["turns"],
            "schema_hash": registry.schema_hash,
        },
    }
    if not run["passed"]:
        meta["codes"] = run["codes"]
    return {"conversations": run["messages"], "label": run["passed"], "metadata": meta}


def episode_records(prompt_set=None, *, vault_path=None) -> list[dict]:
    """One SFT record per episode: the transcript of a teacher run that passed its checks (a run
    that fails is a teacher bug and raises)."""
    from Evaluator.episodes import load_episodes, run_episode
    from Tools.schema.registry import load_registry

    episodes = load_episodes(prompt_set)
    teacher = EpisodeTeacher(episodes)
    registry = load_registry()
    records = []
    for episode in episodes:
        run = run_episode(teacher, episode, vault_path=vault_path)
        if not run["passed"]:
            raise RuntimeError(
                f"teacher bug: episode {episode.id} fails its own checks: {run['codes']} {run['problems']}"
            )
        records.append(run_record(run, episode, registry, teacher))
    return records


def selfplay_episodes(client, args, output: Path) -> int:
    """``Tools/selfplay_generator.py --episodes``: every episode --num-variations times against the
    backend; each run's transcript goes to output (label true when it passed), the episode report
    (pass rate, pass^k, turns, codes) to <output>.episodes.json. Exit 1 when no run passed."""
    from Evaluator.episodes import load_episodes, report_lines, run_episodes
    from Evaluator.runner import RunSettings
    from Tools.schema.records import write_json_atomic, write_jsonl_atomic
    from Tools.schema.registry import load_registry

    episodes = load_episodes(None if args.episodes == "builtin" else args.episodes)
    settings = RunSettings(
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        retries=args.retries,
        tools_in_request=args.tools_in_request,
    )
    summary = run_episodes(client, episodes, args.num_variations, settings=settings, vault_path=args.vault_path)
    registry = load_registry()
    by_id = {e.id: e for e in episodes}
    records = [run_record(r, by_id[r["id"]], registry, client) for r in summary.pop("runs_detail")]
    write_jsonl_atomic(output, records)
    report = output.with_suffix(".episodes.json")
    write_json_atomic(report, {"backend": client.backend, "model": client.model, "summary": summary})
    print(
        "\n".join(
            report_lines(summary)
            + [
                f"records: {output} ({sum(r['label'] for r in records)} true, "
                f"{sum(not r['label'] for r in records)} false)",
                f"report: {report}",
            ]
        )
    )
    if summary["interrupted"]:
        print("interrupted: the runs that finished are written")
        return 130
    return 0 if any(r["label"] for r in records) else 1


def main(argv: list[str] | None = None) -> int:
    from Tools.cli_common import ArgumentParser, UsageError, die
    from Tools.schema.records import write_jsonl_atomic

    parser = ArgumentParser(
        prog="python -m SelfPlay.episodes",
        description="Write the teacher's multi-turn episode records (SFT, label true).",
    )
    parser.add_argument("--output", type=Path, required=True, help="the .jsonl file to write")
    parser.add_argument("--episodes", help="an episode set (default Evaluator/prompts/episodes/vault.json)")
    parser.add_argument("--vault-path", help="the vault copied into each sandbox (default Datasets/vault_template)")
    args = parser.parse_args(argv)
    try:
        count = write_jsonl_atomic(args.output, episode_records(args.episodes, vault_path=args.vault_path))
    except UsageError as exc:
        die(str(exc))
    except OSError as exc:
        die(f"cannot write {args.output}: {exc.strerror or exc}")
    print(f"wrote {count} episode records to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
