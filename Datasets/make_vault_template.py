"""Write Datasets/vault_template/: the small vault that tests, self-play and evaluation start from.

Notes are written here by hand; the memory store (.workspaces/) and the custom agents are made by
running real calls through the vault executor, so their JSON layout is exactly what it writes.
A fixed clock and seed make the output identical on every run:

    python Datasets/make_vault_template.py [--out Datasets/vault_template]
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from Tools.cli_common import ArgumentParser  # noqa: E402
from Tools.vault.executor import VaultExecutor  # noqa: E402

NOTES = {
    "Welcome.md": "# Welcome\n\nThis vault holds notes on projects, research and daily life.\nStart at [[Projects/Index]].\n",
    "Inbox/Quick capture.md": "- call the plumber\n- read the paper on retrieval augmented generation\n",
    "Inbox/Ideas.md": "# Ideas\n\n- A garden planner that reads the weather\n- Learn to bake sourdough\n",
    "Projects/Index.md": "---\ntags: [moc]\n---\n# Projects\n\n- [[Website Redesign/Overview]]\n- [[Home Lab/Overview]]\n",
    "Projects/Website Redesign/Overview.md": "---\nstatus: active\ntags: [project, web]\ndue: 2026-03-01\n---\n# Website Redesign\n\nGoal: a faster site with a clean navigation.\n\n## Tasks\n- [ ] audit the current pages\n- [ ] pick a static site generator\n",
    "Projects/Website Redesign/Meeting 2026-01-12.md": "---\ntype: meeting\nattendees: [Ana, Ben]\n---\n# Kickoff meeting\n\nThe quick brown fox jumps over the lazy dog.\nDecided to use Hugo. Ben owns the style guide.\n",
    "Projects/Website Redesign/Style guide.md": "# Style guide\n\nColours: navy, sand, white.\nFont: Inter for text, JetBrains Mono for code.\n",
    "Projects/Home Lab/Overview.md": "---\nstatus: paused\ntags: [project, hardware]\n---\n# Home Lab\n\nA small server rack for backups and self-hosted services.\n",
    "Projects/Home Lab/Hardware.md": "# Hardware\n\n| part | model |\n|---|---|\n| NAS | 4-bay |\n| switch | 8-port managed |\n",
    "Research/Retrieval.md": "---\ntags: [research, llm]\nsource: https://arxiv.org\n---\n# Retrieval augmented generation\n\nRetrieval adds documents to the prompt so a model can cite sources.\n#reading\n",
    "Research/Fine-tuning.md": "---\ntags: [research, llm]\n---\n# Fine-tuning small models\n\nLoRA trains a few adapter weights; KTO learns from good and bad examples.\n",
    "Research/Papers/Attention.md": "# Attention is all you need\n\nTransformers replace recurrence with self-attention.\n",
    "Daily/2026-01-10.md": "# 2026-01-10\n\nWorked on the home lab. Backups now run nightly.\n",
    "Daily/2026-01-11.md": "# 2026-01-11\n\nRead about retrieval. Planned the website kickoff.\n",
    "Daily/2026-01-12.md": "# 2026-01-12\n\nKickoff meeting for the website. #meeting\n",
    "Areas/Health.md": "---\ntags: [area]\n---\n# Health\n\nRun three times a week. Sleep before midnight.\n",
    "Areas/Finance.md": "---\ntags: [area]\n---\n# Finance\n\nBudget review on the first Sunday of each month.\n",
    "Recipes/Sourdough.md": "---\ntags: [recipe]\nserves: 8\n---\n# Sourdough\n\n1. Feed the starter\n2. Mix flour, water and salt\n3. Bake at 250 C\n",
    "Recipes/Pancakes.md": "# Pancakes\n\nFlour, milk, eggs. Rest the batter for 30 minutes.\n",
    "Templates/Meeting.md": "---\ntype: meeting\n---\n# {{title}}\n\n## Attendees\n\n## Notes\n",
    "Archive/Old plan.md": "# Old plan\n\nThis plan was replaced by the website redesign.\n",
}
START_MS = 1767225600000  # 2026-01-01T00:00:00Z


def build(out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    for rel, text in NOTES.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
    ticks = iter(range(10**6))
    ex = VaultExecutor(out, seed=7, clock=lambda: START_MS / 1000 + next(ticks))

    def call(tool: str, session: str, workspace: str = "default", **args) -> dict:
        context = {
            "sessionId": session,
            "workspaceId": workspace,
            "sessionDescription": "Setting up the sample vault",
            "sessionMemory": "Building the template vault.",
            "toolContext": "template",
            "primaryGoal": "a sample vault",
            "subgoal": tool,
        }
        result = ex.execute({"name": tool, "arguments": {"context": context, **args}})
        if not result["success"]:
            raise SystemExit(f"error: {tool} failed while building the template: {result['error']}")
        return result["data"]

    boot = "session_1767225600000_template0"
    web = call(
        "memoryManager_createWorkspace",
        boot,
        name="Website Redesign",
        rootFolder="Projects/Website Redesign",
        purpose="Rebuild the personal website",
        currentGoal="Pick a static site generator",
        workflows=[
            {"name": "Weekly review", "when": "Every Friday", "steps": "Read the meeting notes\nUpdate Overview tasks"}
        ],
        keyFiles=["Projects/Website Redesign/Overview.md"],
        preferences="Short bullet points",
    )["workspaceId"]
    research = call(
        "memoryManager_createWorkspace",
        boot,
        name="Research",
        rootFolder="Research",
        purpose="Notes on language models",
        currentGoal="Summarise retrieval and fine-tuning",
        workflows=[{"name": "Paper intake", "when": "A new paper arrives", "steps": "Create a note\nAdd tags"}],
    )["workspaceId"]
    for ws, name, goal, state in [
        (web, "Kickoff planning", "Plan the redesign kickoff", "Generator decision"),
        (research, "Reading retrieval papers", "Summarise the RAG papers", "RAG summary draft"),
    ]:
        session = call("memoryManager_createSession", boot, ws, name=name, description=goal, sessionGoal=goal)[
            "sessionId"
        ]
        call(
            "memoryManager_createState",
            session,
            ws,
            name=state,
            conversationContext=f"Working on: {goal}",
            activeTask=goal,
            activeFiles=[],
            nextSteps=["Review the notes", "Write a summary"],
            reasoning="Save progress before switching tasks",
            tags=["template"],
        )
    call(
        "agentManager_createAgent",
        boot,
        name="Summarizer",
        description="Summarises notes",
        prompt="You summarise notes in three bullet points.",
    )
    call(
        "agentManager_createAgent",
        boot,
        name="Editor",
        description="Fixes grammar",
        prompt="You fix grammar, nothing else.",
        isEnabled=False,
    )


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "vault_template"))
    args = parser.parse_args(argv)
    build(Path(args.out))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
