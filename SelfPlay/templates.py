"""The template teacher's material: request phrasings and argument builders for every tool and
behavioural scenario, drawing paths and text from a vault (Datasets/vault_template by default).

A builder gets a Draw (the example's random source, vault and workspace) and returns a Plan: user
request phrasings with {slots}, the slot values, the call arguments (context excluded: the teacher
adds it) and the words for the context fields. Phrasings and slot pools are large enough that two
seeds give mostly different requests, while the request -> call mapping stays regular.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# -- the vault the teacher writes about -----------------------------------------------------------
NOTE_HINTS = {
    "Welcome.md": ["the welcome note", "my start page", "the intro note at the top of the vault"],
    "Inbox/Quick capture.md": [
        "my quick capture note",
        "the inbox note with the plumber reminder",
        "the capture list in my inbox",
    ],
    "Inbox/Ideas.md": ["my ideas note", "the note with the garden planner idea", "the ideas list in the inbox"],
    "Projects/Index.md": ["the projects index", "the projects overview page", "the MOC for my projects"],
    "Projects/Website Redesign/Overview.md": [
        "the website redesign overview",
        "the overview for the site rebuild",
        "the note with the website tasks",
    ],
    "Projects/Website Redesign/Meeting 2026-01-12.md": [
        "the kickoff meeting notes",
        "the website meeting from january 12",
        "the meeting where we picked Hugo",
    ],
    "Projects/Website Redesign/Style guide.md": [
        "the style guide",
        "the note with the site colours and fonts",
        "the website style guide",
    ],
    "Projects/Home Lab/Overview.md": [
        "the home lab overview",
        "the homelab project note",
        "the note about the server rack",
    ],
    "Projects/Home Lab/Hardware.md": [
        "the hardware list",
        "the home lab hardware table",
        "the note with the NAS and the switch",
    ],
    "Research/Retrieval.md": ["my RAG note", "the retrieval augmented generation note", "the note on retrieval"],
    "Research/Fine-tuning.md": [
        "the fine-tuning note",
        "my note on LoRA and KTO",
        "the note about training small models",
    ],
    "Research/Papers/Attention.md": [
        "the attention paper note",
        "my notes on attention is all you need",
        "the transformer paper summary",
    ],
    "Daily/2026-01-10.md": [
        "the daily note from jan 10",
        "the journal entry about the backups",
        "saturday's daily note",
    ],
    "Daily/2026-01-11.md": [
        "the daily note from jan 11",
        "the journal entry where I read about retrieval",
        "sunday's daily note",
    ],
    "Daily/2026-01-12.md": ["the daily note from jan 12", "the journal entry about the kickoff", "monday's daily note"],
    "Areas/Health.md": ["my health note", "the note about running and sleep", "the health area note"],
    "Areas/Finance.md": ["my finance note", "the budget review note", "the money note"],
    "Recipes/Sourdough.md": ["the sourdough recipe", "my bread recipe", "the note about feeding the starter"],
    "Recipes/Pancakes.md": ["the pancake recipe", "my pancakes note", "the batter recipe"],
    "Templates/Meeting.md": ["the meeting template", "the template for meetings"],
    "Archive/Old plan.md": ["the old plan", "the archived plan note", "the plan that got replaced"],
}
STOP = {
    "the",
    "and",
    "for",
    "with",
    "this",
    "that",
    "from",
    "into",
    "over",
    "then",
    "your",
    "what",
    "have",
    "each",
    "when",
    "were",
    "will",
    "was",
    "are",
    "has",
    "not",
    "now",
    "all",
    "but",
    "can",
    "its",
    "our",
}


@dataclass(frozen=True)
class Note:
    path: str
    lines: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def title(self) -> str:
        return self.name.rsplit(".", 1)[0]

    @property
    def folder(self) -> str:
        return self.path.rsplit("/", 1)[0] if "/" in self.path else ""

    def hints(self) -> list[str]:
        return NOTE_HINTS.get(self.path) or [f"the {self.title} note", f"my note called {self.title}"]

    def body(self) -> list[str]:
        """Lines worth quoting: text, not frontmatter, headings or blanks."""
        inside, result = False, []
        for i, line in enumerate(self.lines):
            if line.strip() == "---" and (i == 0 or inside):
                inside = not inside
                continue
            if not inside and line.strip() and not line.startswith("#") and not line.startswith("|"):
                result.append(line.strip())
        return result

    def words(self) -> list[str]:
        seen = dict.fromkeys(
            w for line in self.body() for w in re.findall(r"[A-Za-z][A-Za-z\-]{3,}", line) if w.lower() not in STOP
        )
        return list(seen)


@dataclass(frozen=True)
class VaultModel:
    """What the teacher knows of a vault: notes (with their lines), folders, workspaces, sessions,
    states and custom agents, read once from the folder."""

    root: str
    notes: tuple[Note, ...]
    folders: tuple[str, ...]
    workspaces: tuple[tuple[str, str, str], ...]  # (id, name, root folder)
    sessions: tuple[tuple[str, str, str], ...]  # (id, name, workspace id)
    states: tuple[tuple[str, str, str, str], ...]  # (id, name, session id, workspace id)
    agents: tuple[tuple[str, str, bool], ...]  # (id, name, enabled)

    @classmethod
    def load(cls, root: str | Path) -> "VaultModel":
        import json

        root = Path(root)
        notes, folders = [], []
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root).as_posix()
            if any(part.startswith(".") for part in Path(rel).parts):
                continue
            if path.is_dir():
                folders.append(rel)
            elif path.suffix == ".md":
                notes.append(Note(rel, tuple(path.read_text(encoding="utf-8").splitlines())))
        workspaces, sessions, states = [], [], []
        for path in sorted((root / ".workspaces").glob("ws_*.json")):
            data = json.loads(path.read_text(encoding="utf-8"))
            workspaces.append((data["id"], data["name"], data["rootFolder"]))
            for sid, session in data.get("sessions", {}).items():
                sessions.append((sid, session.get("name", sid), data["id"]))
                states += [
                    (st, entry.get("name", st), sid, data["id"]) for st, entry in session.get("states", {}).items()
                ]
        agents = []
        settings = root / ".obsidian" / "plugins" / "claudesidian-mcp" / "data.json"
        if settings.is_file():
            prompts = json.loads(settings.read_text(encoding="utf-8")).get("customPrompts", {}).get("prompts", [])
            agents = [(p["id"], p["name"], bool(p.get("isEnabled", True))) for p in prompts]
        if not notes or not folders:
            raise ValueError(f"{root}: the teacher needs a vault with folders and markdown notes")
        return cls(
            str(root), tuple(notes), tuple(folders), tuple(workspaces), tuple(sessions), tuple(states), tuple(agents)
        )


@dataclass(frozen=True)
class Workspace:
    name: str
    description: str
    root: str  # "/" for the whole vault
    folders: tuple[str, ...]
    variation: str

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "rootFolder": self.root,
            "folders": list(self.folders),
        }


# name choices, description, root folder (its folders are the vault's folders below it)
WORKSPACES = {
    "simple": [
        (["Recipes", "Recipe box", "Kitchen notes", "Cooking"], "Recipes I cook and ones I want to try", "Recipes"),
        (["Inbox", "Quick capture", "Scratch pad"], "Loose notes to sort later", "Inbox"),
        (["Daily notes", "Journal", "Daily log"], "One note a day: what happened and what is next", "Daily"),
        (["Life admin", "Areas", "Household"], "Health, money and the rest of life admin", "Areas"),
        (["Archive", "Old stuff"], "Finished and replaced notes kept for reference", "Archive"),
    ],
    "complex": [
        (
            ["Personal vault", "Second brain", "Everything", "Main vault"],
            "Projects, research, daily notes and life admin in one place",
            "/",
        ),
        (
            ["Projects", "Side projects", "Project hub"],
            "All running projects with their meetings and tasks",
            "Projects",
        ),
        (["Work and study", "Desk"], "Projects, research and the inbox I sort every week", "/"),
    ],
    "project_focused": [
        (
            ["Website Redesign", "Site rebuild", "New website", "Website v2"],
            "Rebuilding the personal website: meetings, tasks, style guide",
            "Projects/Website Redesign",
        ),
        (
            ["Home Lab", "Homelab build", "Server rack", "Backup server"],
            "A small server rack for backups and self-hosted services",
            "Projects/Home Lab",
        ),
    ],
    "knowledge_base": [
        (
            ["Research", "LLM research", "Reading notes", "ML papers"],
            "Notes on language models: retrieval, fine-tuning and papers",
            "Research",
        ),
    ],
}

NEW_FOLDERS = [
    "Meeting notes",
    "Drafts",
    "Ideas 2026",
    "Reading list",
    "Trips",
    "Q1 planning",
    "Archive 2025",
    "Receipts",
    "Contacts",
    "Snippets",
    "Book notes",
    "Course notes",
    "Workouts",
    "Garden",
    "Travel",
    "Interviews",
    "Budget",
    "Invoices",
    "Sketches",
    "Podcasts",
    "Attachments",
    "References",
    "Someday",
    "Weekly reviews",
    "Templates old",
    "Experiments",
    "Quotes",
    "Letters",
    "Taxes 2025",
    "Recipes to try",
    "Sources",
    "Screenshots",
    "Hiring",
    "Retros",
    "Backlog",
    "Research logs",
    "Talks",
    "Vendors",
    "Renovation",
    "Birthday ideas",
]
NEW_NOTES = [
    ("Packing list", "- passport\n- charger\n- rain jacket"),
    ("Gift ideas", "- book for Ana\n- plant for Ben"),
    ("Reading list", "- Designing Data-Intensive Applications\n- The Pragmatic Programmer"),
    ("Weekly review", "## Done\n\n## Next\n"),
    ("Questions for the landlord", "- when is the boiler serviced?"),
    ("Podcast ideas", "- an episode on home servers"),
    ("Bread schedule", "Feed the starter at 8, mix at 12, bake at 18."),
    ("Backup plan", "Nightly backups to the NAS, weekly copy offsite."),
    ("Hugo setup", "Install Hugo, pick a theme, set baseURL."),
    ("Interview notes", "## Candidate\n\n## Impressions\n"),
    ("Running log", "- 5 km in 28 minutes"),
    ("Budget 2026", "Rent, food, savings: 40 / 20 / 20."),
    ("Paper queue", "- RAG survey\n- LoRA paper"),
    ("Standup notes", "- yesterday: audit pages\n- today: pick a generator"),
    ("Book notes - Deep Work", "Focus is a skill."),
    ("Conference talk", "Title: small models that call tools"),
    ("Garden plan", "Tomatoes by the fence, herbs by the door."),
    ("Car maintenance", "Oil change due in March."),
    ("Travel ideas", "- Lisbon in spring\n- hiking in the Alps"),
    ("Recipe - Focaccia", "Flour, water, salt, olive oil; rest overnight."),
    ("Meeting prep", "Agenda: scope, timeline, owners."),
    ("Retro 2026-01", "Went well: kickoff. To improve: estimates."),
    ("Learning Rust", "Ownership, borrowing, lifetimes."),
    ("Newsletter draft", "This month: the new website and the home lab."),
    ("Home network", "Router, switch, NAS, two access points."),
    ("Vendor list", "- hosting: Netlify\n- domain: Namecheap"),
    ("Tax checklist", "- receipts\n- bank statements"),
    ("Quotes", "> The best way out is always through."),
    ("Moving checklist", "- change address\n- book the van"),
    ("Project ideas", "- a recipe scaler\n- a reading tracker"),
    ("Dentist", "Appointment on the 3rd at 10:00."),
]
LINES = [
    "call the plumber",
    "buy flour and yeast",
    "renew the domain",
    "book the dentist",
    "email Ben about the style guide",
    "order a spare hard drive",
    "read the LoRA paper",
    "water the plants",
    "pay the electricity bill",
    "back up the laptop",
    "pick a static site generator",
    "write the weekly review",
    "return the library books",
    "test the restore from backup",
    "ask Ana about the meeting notes",
    "update the budget sheet",
    "clean the server fans",
    "draft the newsletter",
    "try the focaccia recipe",
    "go for a 5 km run",
    "check the NAS disk health",
    "summarise the retrieval paper",
    "plan the kickoff agenda",
    "cancel the old hosting plan",
    "sort the inbox notes",
]
TOPICS = [
    "sourdough",
    "retrieval",
    "backups",
    "kickoff",
    "budget",
    "LoRA",
    "Hugo",
    "style guide",
    "navy",
    "pancakes",
    "server rack",
    "attention",
    "fine-tuning",
    "plumber",
    "NAS",
    "static site",
    "starter",
    "sleep",
    "meeting",
    "garden planner",
    "KTO",
    "switch",
    "navigation",
    "Inter font",
    "running",
    "transformers",
    "self-hosted",
    "batter",
    "monthly review",
    "citations",
]
AGENTS = [
    ("Summarizer", "Summarises notes", "You summarise notes in three bullet points."),
    ("Editor", "Fixes grammar", "You fix grammar, nothing else."),
    ("Reading Coach", "Suggests what to read next", "You recommend the next note to read based on open questions."),
    (
        "Meeting Scribe",
        "Turns rough notes into minutes",
        "You turn rough meeting notes into clean minutes with action items.",
    ),
    (
        "Recipe Scaler",
        "Scales recipes to a number of servings",
        "You rescale recipe quantities to the servings asked for.",
    ),
    (
        "Weekly Planner",
        "Drafts the weekly plan from open tasks",
        "You draft a weekly plan from the open tasks in the notes you are given.",
    ),
    (
        "Citation Checker",
        "Checks citations in research notes",
        "You check that every claim in a research note cites a source.",
    ),
    ("Tag Gardener", "Suggests tags for untagged notes", "You suggest three to five tags for a note."),
    ("Translator", "Translates notes to Spanish", "You translate notes to Spanish and keep the markdown intact."),
    ("Devil's Advocate", "Argues against a plan", "You list the strongest objections to the plan you are given."),
    ("Flashcard Maker", "Turns notes into flashcards", "You turn a note into question and answer flashcards."),
    ("Tone Softener", "Rewrites emails politely", "You rewrite drafts so they sound friendly and clear."),
]
TASKS = [
    "summarise {note} in three bullets",
    "list the open questions in {note}",
    "turn {note} into a checklist",
    "draft a short intro paragraph based on {note}",
    "find the action items in {note}",
    "explain {note} to a beginner",
    "suggest five tags for {note}",
    "write flashcards from {note}",
    "point out anything missing in {note}",
    "rewrite {note} as a short email",
]
IMAGES = [
    "a watercolor of a sourdough loaf on a wooden board",
    "a minimal navy and sand website header",
    "a cosy home server rack with blinking lights",
    "a hand-drawn diagram of retrieval augmented generation",
    "a flat illustration of a stack of pancakes",
    "a calm desk with a notebook and a plant at sunrise",
    "an isometric drawing of a small garden plan",
    "a retro poster about backups",
]
MODELS = [
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-3-5-haiku"),
    ("google", "gemini-2.0-flash"),
    ("openrouter", "mistralai/mistral-small"),
    ("groq", "llama-3.1-8b-instant"),
]
# What users name a workspace, session or save point and search for: a subject, often with a kind
# ("Sourdough planning", "Tax return review"). Hundreds of names, most of them unseen by any one
# held-out set, so a model learns to copy the name it is given rather than recall a few it has seen.
SUBJECTS = [
    "Sourdough",
    "Retrieval",
    "Backups",
    "Kickoff",
    "Budget",
    "Hugo",
    "Garden",
    "Thesis",
    "Job search",
    "Lisbon trip",
    "Podcast",
    "House move",
    "Newsletter",
    "Tax return",
    "Piano practice",
    "Bike repair",
    "Wedding",
    "Marathon",
    "Spanish lessons",
    "Home office",
    "Car lease",
    "Photo archive",
    "Book club",
    "Kitchen remodel",
    "Camping trip",
    "Birthday party",
    "Grant proposal",
    "Conference talk",
    "Blog",
    "Side hustle",
    "Meal prep",
    "Vegetable patch",
    "Climbing",
    "Reading group",
    "Insurance",
    "Mortgage",
    "Dog training",
    "Wine list",
    "Board games",
    "Chess openings",
    "Guitar",
    "Pottery",
    "Beekeeping",
    "Solar panels",
    "Rust course",
    "Interview prep",
    "Team offsite",
    "Quarterly report",
    "Data pipeline",
    "Mobile app",
    "API redesign",
    "Security audit",
    "Onboarding",
    "Hiring plan",
    "Product launch",
    "Customer calls",
    "User research",
    "Design system",
    "Release notes",
    "Bug triage",
    "Home lab",
    "Server rack",
    "Attention",
    "Fine-tuning",
    "Static site",
    "Style guide",
    "Family tree",
    "Japan trip",
    "Running log",
    "Sleep tracking",
    "Volunteering",
    "School forms",
    "Renovation",
    "Recipe box",
]
WORKSPACE_KINDS = ["", "", "planning", "project", "research", "hub", "tracker", "notes", "2026", "prep"]
SESSION_KINDS = ["review", "cleanup", "deep dive", "planning", "setup", "catch-up", "brainstorm", "triage", "sync"]
STATE_KINDS = ["draft", "v1", "v2", "checkpoint", "half-way", "outline", "first pass", "before the reorg"]
QUERIES = list(dict.fromkeys(TOPICS + [subject.lower() for subject in SUBJECTS]))
COMMANDS = [
    ("toggle dark mode", "theme:toggle-dark-mode"),
    ("open the graph view", "graph:open"),
    ("insert today's date", "insert-current-date"),
    ("reload the app without saving", "app:reload"),
    ("toggle the left sidebar", "app:toggle-left-sidebar"),
    ("open the command palette", "command-palette:open"),
]

PREFIXES = [
    ("", 6),
    ("hey, ", 1),
    ("quick one: ", 1),
    ("hi! ", 1),
    ("ok so ", 1),
    ("um ", 0.5),
    ("pls ", 0.5),
    ("so ", 0.5),
]
SUFFIXES = [("", 6), (" thanks", 1), (" pls", 0.7), (" thx", 0.5), (", cheers", 0.4), (" :)", 0.3), ("!", 0.5)]


# -- the plan a builder returns -----------------------------------------------------------------
@dataclass
class Plan:
    requests: list[str]  # phrasings with {slot} placeholders, one is drawn
    slots: dict
    args: dict  # without context
    action: str  # context.subgoal
    why: str  # context.toolContext
    describe: str  # context.sessionDescription
    text: str | None = None  # the answer's text (behaviours), with or without calls
    calls: list[tuple[str, dict]] | None = None  # behaviours: the calls; tools: (tool, args) is implied
    key_args: tuple[str, ...] | None = None  # arguments a prompt set constrains (default: short required ones)
    workspace: tuple[str, str, str] | None = None  # run in this vault workspace (id, name, root) instead
    session_id: str | None = None  # ... and in this existing session of it


class Draw:
    """One example's random source, vault and workspace, with helpers the builders share."""

    def __init__(self, rng: random.Random, vault: VaultModel, workspace: Workspace, workspace_id: str):
        self.rng, self.vault, self.ws, self.workspace_id = rng, vault, workspace, workspace_id

    def pick(self, seq):
        return seq[self.rng.randrange(len(seq))]

    def sample(self, seq, k: int):
        return self.rng.sample(list(seq), k)

    @property
    def base(self) -> str:
        return "" if self.ws.root in ("/", "") else self.ws.root

    def join(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in parts if p and p != "/")

    def notes_here(self) -> list[Note]:
        return _notes_under(self.vault, self.base)

    def note(self, here: float = 0.8, exclude: tuple[str, ...] = ()) -> Note:
        pool = self.notes_here() if self.rng.random() < here else list(self.vault.notes)
        pool = [n for n in pool if n.path not in exclude] or [n for n in self.vault.notes if n.path not in exclude]
        return self.pick(pool)

    def note_with_body(self, minimum: int = 1) -> Note:
        pool = [n for n in self.notes_here() if len(n.body()) >= minimum] or [
            n for n in self.vault.notes if len(n.body()) >= minimum
        ]
        return self.pick(pool)

    def ref(self, note: Note) -> str:
        """How the user names a note: by what is in it (half the time), by title, or by path."""
        roll = self.rng.random()
        if roll < 0.5:
            return self.pick(note.hints())
        if roll < 0.8:
            return f"my {note.title} note" if self.rng.random() < 0.5 else f"the {note.title} note"
        return note.path

    def folder(self, exclude_root: bool = False) -> str:
        here = _folders_under(self.vault, self.base, exclude_root)
        return self.pick(here or [f for f in self.vault.folders if "/" not in f])

    def folder_ref(self, folder: str) -> str:
        name = folder.rsplit("/", 1)[-1]
        return self.pick([f"the {name} folder", f"{folder}/", f"my {name} folder", folder])

    def where(self) -> tuple[str, str]:
        """A folder to put something new in and how the user says it."""
        folder = self.base or self.pick([f for f in self.vault.folders if "/" not in f])
        return folder, self.folder_ref(folder)

    def new_name(self, pool) -> str:
        """A name from pool that no note or folder of the vault has yet."""
        taken = _taken_names(self.vault)
        return self.pick([x for x in pool if x.lower() not in taken] or list(pool))

    def agent(self) -> tuple[str, str, str]:
        return self.pick(AGENTS)

    def existing_agent(self) -> str:
        """A custom agent the vault has (by name, which every agent mode accepts)."""
        return self.pick([a[1] for a in self.vault.agents] or [a[0] for a in AGENTS[:2]])

    def new_agent(self) -> tuple[str, str, str]:
        taken = {a[1].lower() for a in self.vault.agents}
        return self.pick([a for a in AGENTS if a[0].lower() not in taken] or AGENTS)

    def vault_workspace(self, with_states: bool = False) -> tuple[str, str, str]:
        """One of the vault's own workspaces (with sessions, or with saved states)."""
        owners = {s[3] for s in self.vault.states} if with_states else {s[2] for s in self.vault.sessions}
        return self.pick([w for w in self.vault.workspaces if w[0] in owners] or list(self.vault.workspaces))

    def named(self, kinds) -> str:
        """A name a user gives: one of SUBJECTS and one of kinds ("" for the subject alone)."""
        return f"{self.pick(SUBJECTS)} {self.pick(kinds)}".strip()

    def model(self) -> tuple[str, str]:
        return self.pick(MODELS)


@lru_cache(maxsize=64)
def _notes_under(vault: VaultModel, base: str) -> list:
    return [n for n in vault.notes if not base or n.path.startswith(base + "/")] or list(vault.notes)


@lru_cache(maxsize=128)
def _folders_under(vault: VaultModel, base: str, exclude_root: bool) -> list:
    return [
        f
        for f in vault.folders
        if (not base or f == base or f.startswith(base + "/")) and not (exclude_root and f == base)
    ]


@lru_cache(maxsize=8)
def _taken_names(vault: VaultModel) -> frozenset:
    return frozenset(n.title.lower() for n in vault.notes) | frozenset(
        f.rsplit("/", 1)[-1].lower() for f in vault.folders
    )


def _short(value) -> bool:
    return isinstance(value, (int, float, bool)) or isinstance(value, str) and len(value) <= 80 and "\n" not in value


# -- tool builders --------------------------------------------------------------------------------
TOOL_BUILDERS: dict = {}


def tool(name: str):
    def register(func):
        TOOL_BUILDERS[name] = func
        return func

    return register


@tool("vaultManager_createFolder")
def _(d: Draw) -> Plan:
    folder, where = d.where()
    name = d.new_name(NEW_FOLDERS)
    return Plan(
        [
            "make a folder called {name} in {where}",
            "can you set up a {name} folder under {where}",
            "i need a new folder for {lname} inside {where}",
            "create a {name} folder in {where}",
            "add a folder named {name} to {where}",
            "new folder pls: {name}, in {where}",
        ],
        {"name": name, "lname": name.lower(), "where": where},
        {"path": d.join(folder, name)},
        f"Create the {name} folder",
        "Creating the folder the user asked for",
        f"Organising {d.ws.name}",
    )


@tool("vaultManager_deleteFolder")
def _(d: Draw) -> Plan:
    folder = d.folder(exclude_root=True) if any(f != d.base for f in d.vault.folders) else d.folder()
    # the vault's folders hold notes, and the plugin refuses to delete a full folder without recursive
    return Plan(
        [
            "delete the folder {folder} and everything in it, I already backed it up",
            "yes, remove {folder} with all its notes - I'm sure",
            "go ahead and delete {folder} and its contents",
            "I confirm: delete {folder}, notes included",
        ],
        {"folder": folder},
        {"path": folder, "recursive": True},
        f"Delete {folder}",
        "The user confirmed the folder can go",
        "Cleaning up folders",
    )


@tool("vaultManager_deleteNote")
def _(d: Draw) -> Plan:
    note = d.note()
    return Plan(
        [
            "delete {path}, I copied it somewhere else",
            "yes, remove the note {path} - I'm sure",
            "please delete {path}, it's a duplicate",
            "I confirm: delete {path}",
        ],
        {"path": note.path},
        {"path": note.path},
        f"Delete {note.path}",
        "The user confirmed the note can go",
        "Cleaning up notes",
    )


@tool("vaultManager_duplicateNote")
def _(d: Draw) -> Plan:
    note = d.note()
    copy = d.pick(["copy", "v2", "draft", "backup", "old", "template"])
    target = d.join(note.folder, f"{note.title} {copy}.md")
    return Plan(
        [
            "make a copy of {note} called {target}",
            "duplicate {note} as {target}",
            "can you copy {note} to {target}",
            "i want a duplicate of {note} named {target}",
        ],
        {"note": d.ref(note), "target": target},
        {"sourcePath": note.path, "targetPath": target},
        f"Duplicate {note.path}",
        "Copying the note before the user changes it",
        "Working on a copy",
    )


@tool("vaultManager_editFolder")
def _(d: Draw) -> Plan:
    folder = d.folder(exclude_root=True)
    parent, _, name = folder.rpartition("/")
    new = d.pick([f"{name} 2026", f"{name} (old)", f"_{name}", f"{name} archive", f"My {name}"])
    return Plan(
        [
            "rename the folder {folder} to {new}",
            "can you call {folder} '{new}' instead",
            "change the name of {folder} to {new}",
            "{folder} should be named {new} now",
        ],
        {"folder": folder, "new": new},
        {"path": folder, "newPath": d.join(parent, new)},
        f"Rename {folder}",
        "Renaming the folder as asked",
        "Tidying folder names",
    )


@tool("vaultManager_listDirectory")
def _(d: Draw) -> Plan:
    folder = d.folder()
    deep = d.rng.random() < 0.3
    args = {"path": folder, **({"depth": 1} if deep else {})}
    tail = " including subfolders" if deep else ""
    return Plan(
        [
            f"whats in {{where}}{tail}?",
            f"show me what's inside {{where}}{tail}",
            f"list {{where}}{tail}",
            f"what notes do I have in {{where}}{tail}",
            f"can you list the contents of {{where}}{tail}",
        ],
        {"where": d.folder_ref(folder)},
        args,
        f"List {folder}",
        "Browsing the folder the user asked about",
        f"Browsing {d.ws.name}",
        key_args=("path",),
    )


@tool("vaultManager_moveFolder")
def _(d: Draw) -> Plan:
    folder = d.folder(exclude_root=True)
    name = folder.rsplit("/", 1)[-1]
    target_parent = d.pick(
        [f for f in ("Archive", "Projects", "Areas", "Inbox") if f != folder and not folder.startswith(f + "/")]
        or ["Archive"]
    )
    return Plan(
        [
            "move the folder {folder} into {target}",
            "put {folder} under {target}",
            "can you move {folder} to {target}/",
            "{folder} belongs in {target}, move it there",
        ],
        {"folder": folder, "target": target_parent},
        {"path": folder, "newPath": d.join(target_parent, name)},
        f"Move {folder} into {target_parent}",
        "Moving the folder as asked",
        "Reorganising folders",
    )


@tool("vaultManager_moveNote")
def _(d: Draw) -> Plan:
    note = d.note()
    target = d.pick(
        [f for f in ("Archive", "Inbox", "Areas", "Projects", "Research") if f != note.folder] or ["Archive"]
    )
    return Plan(
        [
            "move {note} to {target}",
            "put {note} in the {target} folder",
            "can you move {note} into {target}/",
            "{note} should live in {target}",
            "file {note} under {target} please",
        ],
        {"note": d.ref(note), "target": target},
        {"path": note.path, "newPath": d.join(target, note.name)},
        f"Move {note.path} to {target}",
        "Moving the note as asked",
        "Filing notes",
    )


@tool("vaultManager_openNote")
def _(d: Draw) -> Plan:
    note = d.note()
    mode = d.pick([None, None, "tab", "split", "window"])
    tail = {None: "", "tab": " in a new tab", "split": " in a split", "window": " in a new window"}[mode]
    return Plan(
        [
            f"open {{note}}{tail}",
            f"pull up {{note}}{tail}",
            f"can you open {{note}} for me{tail}",
            f"show {{note}}{tail}",
        ],
        {"note": d.ref(note)},
        {"path": note.path, **({"mode": mode} if mode else {})},
        f"Open {note.path}",
        "Opening the note the user wants to look at",
        "Reading notes",
        key_args=("path",) + (("mode",) if mode else ()),
    )


@tool("contentManager_appendContent")
def _(d: Draw) -> Plan:
    note = d.note()
    line = d.pick(LINES)
    return Plan(
        [
            "add '{line}' to {note}",
            "append '{line}' at the end of {note}",
            "put '{line}' at the bottom of {note}",
            "can you add a line to {note}: {line}",
            "jot down '{line}' in {note}",
        ],
        {"line": line, "note": d.ref(note)},
        {"filePath": note.path, "content": f"\n- {line}"},
        f"Append to {note.path}",
        "Adding the line at the end of the note",
        "Updating notes",
        key_args=("filePath",),
    )


@tool("contentManager_batchContent")
def _(d: Draw) -> Plan:
    first, second = d.sample(d.notes_here() if len(d.notes_here()) > 1 else d.vault.notes, 2)
    slots = {"a": d.ref(first), "b": d.ref(second), "line": d.pick(LINES)}
    if d.rng.random() < 0.5:
        ops = [
            {"type": "read", "params": {"filePath": first.path}},
            {"type": "read", "params": {"filePath": second.path}},
        ]
        return Plan(
            [
                "read {a} and {b} for me",
                "open up both {a} and {b} and tell me what they say",
                "I need the contents of {a} and {b}",
            ],
            slots,
            {"operations": ops},
            "Read two notes in one go",
            "Several content operations at once",
            "Batch editing",
            key_args=("operations",),
        )
    ops = [
        {"type": "append", "params": {"filePath": n.path, "content": f"\n- {slots['line']}"}} for n in (first, second)
    ]
    return Plan(
        [
            "add '{line}' to both {a} and {b}",
            "append '{line}' to {a} and to {b}",
            "put '{line}' at the end of {a} and {b}",
        ],
        slots,
        {"operations": ops},
        "Append to two notes in one go",
        "Several content operations at once",
        "Batch editing",
        key_args=("operations",),
    )


@tool("contentManager_createContent")
def _(d: Draw) -> Plan:
    folder, where = d.where()
    title, body = d.pick(NEW_NOTES)
    return Plan(
        [
            "make a note called {title} in {where}",
            "create a new note '{title}' in {where} with: {body1}",
            "start a note named {title} under {where}",
            "can you write a {ltitle} note in {where}",
        ],
        {"title": title, "ltitle": title.lower(), "where": where, "body1": body.splitlines()[0]},
        {"filePath": d.join(folder, f"{title}.md"), "content": f"# {title}\n\n{body}\n"},
        f"Create {title}",
        "Creating the note the user asked for",
        f"Writing in {d.ws.name}",
        key_args=("filePath",),
    )


@tool("contentManager_deleteContent")
def _(d: Draw) -> Plan:
    note = d.note_with_body()
    line = d.pick(note.body())
    return Plan(
        [
            "remove the line '{line}' from {note}",
            "delete '{line}' in {note}",
            "take '{line}' out of {note}",
            "{note} shouldn't say '{line}' anymore, delete that line",
        ],
        {"line": line, "note": d.ref(note)},
        {"filePath": note.path, "content": line},
        f"Remove a line from {note.path}",
        "Deleting the exact text the user quoted",
        "Editing notes",
    )


@tool("contentManager_findReplaceContent")
def _(d: Draw) -> Plan:
    note = d.note_with_body()
    word = d.pick(note.words() or ["the"])
    new = d.pick(["TODO", word.upper(), f"{word} (updated)", "tbd", word.capitalize() + "s"])
    every = d.rng.random() < 0.5
    tail = " everywhere" if every else ""
    return Plan(
        [
            f"replace '{{old}}' with '{{new}}' in {{note}}{tail}",
            f"in {{note}} change {{old}} to {{new}}{tail}",
            f"swap '{{old}}' for '{{new}}' in {{note}}{tail}",
        ],
        {"old": word, "new": new, "note": d.ref(note)},
        {"filePath": note.path, "findText": word, "replaceText": new, **({"replaceAll": True} if every else {})},
        f"Replace {word} in {note.path}",
        "Replacing the text the user named",
        "Editing notes",
    )


@tool("contentManager_prependContent")
def _(d: Draw) -> Plan:
    note = d.note()
    line = d.pick(["status: in progress", "#review", "TODO: check this note", "Updated 2026-01-15", "> pinned"])
    return Plan(
        [
            "add '{line}' at the top of {note}",
            "put '{line}' at the start of {note}",
            "prepend '{line}' to {note}",
            "{note} should begin with '{line}'",
        ],
        {"line": line, "note": d.ref(note)},
        {"filePath": note.path, "content": f"{line}\n"},
        f"Prepend to {note.path}",
        "Adding the line at the top",
        "Updating notes",
        key_args=("filePath",),
    )


@tool("contentManager_readContent")
def _(d: Draw) -> Plan:
    note = d.note()
    return Plan(
        [
            "what does {note} say?",
            "read {note} to me",
            "can you pull up what I wrote in {note}",
            "show me the contents of {note}",
            "what's in {note}",
            "remind me what I put in {note}",
        ],
        {"note": d.ref(note)},
        {"filePath": note.path},
        f"Read {note.path}",
        "Reading the note the user asked about",
        "Reviewing notes",
    )


@tool("contentManager_replaceByLine")
def _(d: Draw) -> Plan:
    note = d.note_with_body()
    count = len(note.lines)
    start = d.rng.randrange(1, count + 1)
    end = min(count, start + d.rng.randrange(0, 2))
    text = d.pick(LINES)
    span = f"line {start}" if start == end else f"lines {start} to {end}"
    return Plan(
        [
            "replace {span} of {note} with '{text}'",
            "in {note}, swap {span} for '{text}'",
            "{span} in {note} should read '{text}'",
        ],
        {"span": span, "note": d.ref(note), "text": text},
        {"filePath": note.path, "startLine": start, "endLine": end, "newContent": text},
        f"Rewrite {span} of {note.path}",
        "Replacing the lines the user numbered",
        "Editing notes",
    )


@tool("contentManager_replaceContent")
def _(d: Draw) -> Plan:
    note = d.note_with_body()
    old = d.pick(note.body())
    new = d.pick(LINES).capitalize() + "."
    return Plan(
        [
            "in {note}, replace '{old}' with '{new}'",
            "change the line '{old}' in {note} to '{new}'",
            "{note}: swap '{old}' for '{new}'",
        ],
        {"note": d.ref(note), "old": old, "new": new},
        {"filePath": note.path, "oldContent": old, "newContent": new},
        f"Rewrite a line of {note.path}",
        "Replacing the exact text the user quoted",
        "Editing notes",
    )


@tool("vaultLibrarian_batch")
def _(d: Draw) -> Plan:
    a, b = d.sample(QUERIES, 2)
    return Plan(
        [
            "search for {a} and also {b}",
            "look up both '{a}' and '{b}' across my notes",
            "find notes on {a}, and separately on {b}",
            "can you search {a} and {b} at the same time",
        ],
        {"a": a, "b": b},
        {"searches": [{"query": a}, {"query": b}]},
        "Run two searches at once",
        "Two independent searches in one batch",
        "Searching the vault",
        key_args=("searches",),
    )


@tool("vaultLibrarian_searchContent")
def _(d: Draw) -> Plan:
    topic = d.pick(QUERIES)
    if d.rng.random() < 0.3:
        n = d.pick([3, 5])
        return Plan(
            ["give me the top {n} notes about {topic}", "search {topic}, just {n} results"],
            {"topic": topic, "n": n},
            {"query": topic, "limit": n},
            f"Search for {topic}",
            "Searching note contents",
            "Searching the vault",
            key_args=("query", "limit"),
        )
    return Plan(
        [
            "find anything I wrote about {topic}",
            "search my notes for {topic}",
            "where did I write about {topic}",
            "look for {topic} in my vault",
        ],
        {"topic": topic},
        {"query": topic, "limit": 10},
        f"Search for {topic}",
        "Searching note contents",
        "Searching the vault",
        key_args=("query",),
    )


@tool("vaultLibrarian_searchDirectory")
def _(d: Draw) -> Plan:
    note = d.note(here=0.5)
    part = note.title.split()[0] if d.rng.random() < 0.7 else note.title
    if d.base and d.rng.random() < 0.5:
        return Plan(
            ["find the file called something like {part} in {where}", "search {where} for a file named {part}"],
            {"part": part, "where": d.base},
            {"query": part, "paths": [d.base]},
            f"Find files named like {part}",
            "Searching file and folder names",
            "Finding a note",
            key_args=("query", "paths"),
        )
    return Plan(
        [
            "where's the note with '{part}' in its name?",
            "find the file called something like {part}",
            "i can't find my {part} note, where is it",
            "search file names for {part}",
        ],
        {"part": part},
        {"query": part, "paths": ["/"]},
        f"Find files named like {part}",
        "Searching file and folder names",
        "Finding a note",
        key_args=("query",),
    )


@tool("vaultLibrarian_searchMemory")
def _(d: Draw) -> Plan:
    topic = d.pick(QUERIES) if d.rng.random() < 0.7 else d.named(SESSION_KINDS)
    return Plan(
        [
            "what did we talk about regarding {topic} last time?",
            "search our past sessions for {topic}",
            "did we already work on {topic}? check the history",
            "look through the memory for {topic}",
        ],
        {"topic": topic},
        {"query": topic, "workspaceId": d.workspace_id},
        f"Search memory for {topic}",
        "Looking through earlier sessions",
        "Recalling earlier work",
        key_args=("query", "workspaceId"),
    )


@tool("memoryManager_createSession")
def _(d: Draw) -> Plan:
    name = d.named(SESSION_KINDS)
    goal = d.pick(
        [
            "sort the inbox",
            "finish the style guide",
            "plan the week",
            "summarise two papers",
            "set up nightly backups",
            "clean up the recipes",
        ]
    )
    return Plan(
        [
            "start a new session called {name}, the goal is to {goal}",
            "let's open a fresh session '{name}' to {goal}",
            "new session please: {name} ({goal})",
        ],
        {"name": name, "goal": goal},
        {"name": name, "description": f"Session to {goal}", "sessionGoal": goal.capitalize()},
        f"Start the {name} session",
        "Opening a session for the new task",
        "Starting a session",
        key_args=("name",),
    )


@tool("memoryManager_createState")
def _(d: Draw) -> Plan:
    name = d.named(STATE_KINDS)
    files = [n.path for n in d.sample(d.notes_here() if len(d.notes_here()) > 1 else d.vault.notes, 2)]
    task = d.pick(
        ["restructuring the overview", "summarising the papers", "planning the backups", "cleaning the inbox"]
    )
    return Plan(
        [
            "save a checkpoint called {name}, we're in the middle of {task}",
            "remember where we are: '{name}'",
            "let's save our progress as {name} before I go",
            "create a save point named {name}",
        ],
        {"name": name, "task": task},
        {
            "name": name,
            "conversationContext": f"We were {task} and had gone through {files[0]}.",
            "activeTask": task.capitalize(),
            "activeFiles": files,
            "nextSteps": ["Review the open points", f"Finish {task}"],
            "reasoning": "The user wants to pause here",
        },
        f"Save the state {name}",
        "Saving progress before a break",
        "Saving progress",
        key_args=("name",),
    )


@tool("memoryManager_createWorkspace")
def _(d: Draw) -> Plan:
    folder = d.folder()
    name = d.named(WORKSPACE_KINDS)
    goal = d.pick(
        ["get the first draft done", "collect sources", "make a plan for the month", "sort the existing notes"]
    )
    return Plan(
        [
            "set up a workspace called {name} on {folder}, the goal is to {goal}",
            "create a {name} workspace rooted at {folder}",
            "new workspace: {name}, folder {folder}, first I want to {goal}",
        ],
        {"name": name, "folder": folder, "goal": goal},
        {
            "name": name,
            "rootFolder": folder,
            "purpose": f"Everything about {name.lower()}",
            "currentGoal": goal.capitalize(),
            "workflows": [
                {"name": "Weekly review", "when": "Every Friday", "steps": "Read the new notes\nUpdate the goal"}
            ],
        },
        f"Create the {name} workspace",
        "Setting up a workspace as asked",
        "Setting up a workspace",
        key_args=("name", "rootFolder"),
    )


@tool("memoryManager_listSessions")
def _(d: Draw) -> Plan:
    if d.rng.random() < 0.4:
        n = d.pick([3, 5, 10])
        return Plan(
            ["show me the last {n} sessions", "list {n} recent sessions", "what were the last {n} sessions?"],
            {"n": n},
            {"limit": n},
            "List sessions",
            "Looking up earlier sessions",
            "Reviewing sessions",
        )
    return Plan(
        ["what sessions do we have here?", "list the sessions", "show me the past sessions in this workspace"],
        {},
        {},
        "List sessions",
        "Looking up earlier sessions",
        "Reviewing sessions",
    )


@tool("memoryManager_listStates")
def _(d: Draw) -> Plan:
    if d.rng.random() < 0.4:
        return Plan(
            ["list the saved states, newest first", "show me the latest checkpoints first"],
            {},
            {"order": "desc"},
            "List saved states",
            "Looking up saved checkpoints",
            "Reviewing progress",
        )
    return Plan(
        [
            "what checkpoints have we saved?",
            "list the saved states",
            "show me the save points",
            "which states did we save so far?",
        ],
        {},
        {},
        "List saved states",
        "Looking up saved checkpoints",
        "Reviewing progress",
    )


@tool("memoryManager_listWorkspaces")
def _(d: Draw) -> Plan:
    if d.rng.random() < 0.4:
        return Plan(
            ["which workspaces did I use most recently?", "list my workspaces, most recently used first"],
            {},
            {"sortBy": "lastAccessed", "order": "desc"},
            "List workspaces",
            "Looking up the workspaces",
            "Reviewing workspaces",
        )
    return Plan(
        [
            "what workspaces do I have?",
            "list all my workspaces",
            "show me the workspaces in this vault",
            "which workspaces exist?",
        ],
        {},
        {},
        "List workspaces",
        "Looking up the workspaces",
        "Reviewing workspaces",
    )


@tool("memoryManager_loadSession")
def _(d: Draw) -> Plan:
    workspace = d.vault_workspace()
    name = d.pick([s[1] for s in d.vault.sessions if s[2] == workspace[0]] or [d.named(SESSION_KINDS)])
    return Plan(
        [
            "reopen the session {name}",
            "load our {name} session",
            "let's go back to the {name} session",
            "continue the session called {name}",
        ],
        {"name": name},
        {"sessionId": name},
        f"Load the session {name}",
        "Resuming an earlier session",
        "Resuming work",
        workspace=workspace,
    )


@tool("memoryManager_loadState")
def _(d: Draw) -> Plan:
    workspace = d.vault_workspace(with_states=True)
    states = [s for s in d.vault.states if s[3] == workspace[0]]
    state = d.pick(states) if states else (None, d.named(STATE_KINDS), None, None)
    return Plan(
        [
            "restore the checkpoint {name}",
            "load the save point {name}",
            "go back to the state '{name}'",
            "pick up from the {name} checkpoint",
        ],
        {"name": state[1]},
        {"stateId": state[1]},
        f"Restore {state[1]}",
        "Restoring a saved checkpoint",
        "Resuming work",
        workspace=workspace,
        session_id=state[2],
    )


@tool("memoryManager_loadWorkspace")
def _(d: Draw) -> Plan:
    return Plan(
        [
            "load the {name} workspace",
            "open up the {name} workspace",
            "switch to the {name} workspace",
            "get me into {name}",
        ],
        {"name": d.ws.name},
        {"id": d.workspace_id},
        f"Load {d.ws.name}",
        "Loading the workspace the user named",
        f"Working in {d.ws.name}",
    )


@tool("memoryManager_updateSession")
def _(d: Draw) -> Plan:
    name = d.named(SESSION_KINDS)
    return Plan(
        [
            "rename this session to {name}",
            "call this session '{name}' from now on",
            "this session should be named {name}",
        ],
        {"name": name},
        {"name": name},
        f"Rename the session to {name}",
        "Renaming the current session",
        "Tidying sessions",
    )


@tool("memoryManager_updateState")
def _(d: Draw) -> Plan:
    workspace = d.vault_workspace(with_states=True)
    state = d.pick([s[1] for s in d.vault.states if s[3] == workspace[0]] or [d.named(STATE_KINDS)])
    tag = d.pick(["done", "important", "draft", "review"])
    return Plan(
        [
            "tag the checkpoint {state} as {tag}",
            "add the tag {tag} to the save point {state}",
            "mark the state '{state}' with {tag}",
        ],
        {"state": state, "tag": tag},
        {"stateId": state, "addTags": [tag]},
        f"Tag {state}",
        "Tagging a saved checkpoint",
        "Tidying checkpoints",
        workspace=workspace,
    )


@tool("memoryManager_updateWorkspace")
def _(d: Draw) -> Plan:
    goal = d.pick(
        [
            "Pick a static site generator",
            "Finish the literature review",
            "Order the new disks",
            "Sort the inbox by Friday",
            "Publish the first post",
        ]
    )
    return Plan(
        [
            "change the goal of this workspace to: {goal}",
            "update the workspace goal - it's '{goal}' now",
            "our current goal here is {goal}, save that",
        ],
        {"goal": goal.lower()},
        {"workspaceId": d.workspace_id, "fieldPath": "context.currentGoal", "newValue": goal},
        "Update the workspace goal",
        "Recording the new goal in the workspace",
        f"Working in {d.ws.name}",
        key_args=("workspaceId", "fieldPath"),
    )


@tool("agentManager_batchExecutePrompt")
def _(d: Draw) -> Plan:
    first, second = d.sample(d.vault.notes, 2)
    provider, model = d.model()
    tasks = [d.pick(TASKS).format(note=first.path), d.pick(TASKS).format(note=second.path)]
    return Plan(
        [
            'run these two at once: "{t1}" and "{t2}"',
            "in parallel please: {t1}; and {t2}",
            "do both at the same time and merge the answers: {t1} / {t2}",
        ],
        {"t1": tasks[0], "t2": tasks[1]},
        {
            "prompts": [{"type": "text", "prompt": t, "provider": provider, "model": model} for t in tasks],
            "mergeResponses": True,
        },
        "Run two prompts together",
        "Two independent model prompts in one batch",
        "Delegating analysis",
        key_args=("prompts",),
    )


@tool("agentManager_createAgent")
def _(d: Draw) -> Plan:
    name, description, prompt = d.new_agent()
    return Plan(
        [
            "create an agent called {name} that {ldesc}",
            "make me a {name} agent: '{prompt}'",
            "new custom agent '{name}' - {ldesc}",
            'set up an agent named {name} whose prompt is "{prompt}"',
        ],
        {"name": name, "ldesc": description[0].lower() + description[1:], "prompt": prompt},
        {"name": name, "description": description, "prompt": prompt},
        f"Create the {name} agent",
        "Creating the custom agent the user described",
        "Setting up agents",
        key_args=("name",),
    )


@tool("agentManager_deleteAgent")
def _(d: Draw) -> Plan:
    name = d.existing_agent()
    return Plan(
        [
            "delete the {name} agent, I don't use it",
            "yes, remove the agent {name}",
            "get rid of my {name} agent - I'm sure",
        ],
        {"name": name},
        {"id": name},
        f"Delete the {name} agent",
        "The user confirmed the agent can go",
        "Tidying agents",
    )


@tool("agentManager_executePrompt")
def _(d: Draw) -> Plan:
    note = d.note()
    task = d.pick(TASKS)
    agent = d.pick([None, None, d.existing_agent()])
    args = {
        "prompt": task.format(note="the attached note").capitalize(),
        "filepaths": [note.path],
        **({"agent": agent} if agent else {}),
    }
    via = f" with the {agent} agent" if agent else ""
    return Plan(
        [f"{task}{via}", f"can you ask the model to {task}{via}", f"use AI to {task}{via}"],
        {"note": d.ref(note)},
        args,
        "Run a prompt on a note",
        "Delegating the writing to a model",
        "Delegating analysis",
        key_args=("filepaths",) + (("agent",) if agent else ()),
    )


@tool("agentManager_generateImage")
def _(d: Draw) -> Plan:
    prompt = d.pick(IMAGES)
    name = re.sub(r"[^a-z0-9]+", "-", prompt.split(" of ")[-1].lower()).strip("-")[:30]
    path = d.join(d.pick(["Attachments", "Images", d.base or "Attachments"]), f"{name}.png")
    return Plan(
        [
            "generate an image of {prompt} and save it as {path}",
            "make a picture: {prompt}. put it in {path}",
            "can you create {prompt}? save to {path}",
        ],
        {"prompt": prompt, "path": path},
        {"prompt": prompt, "provider": "google", "savePath": path},
        "Generate an image",
        "Creating the image the user described",
        "Making images",
        key_args=("savePath",),
    )


@tool("agentManager_getAgent")
def _(d: Draw) -> Plan:
    name = d.existing_agent()
    return Plan(
        ["show me the {name} agent", "what does my {name} agent do?", "pull up the agent called {name}"],
        {"name": name},
        {"name": name},
        f"Get the {name} agent",
        "Looking up the agent the user named",
        "Reviewing agents",
    )


@tool("agentManager_listAgents")
def _(d: Draw) -> Plan:
    enabled = d.rng.random() < 0.3
    return Plan(
        ["which of my agents are turned on?", "list only the enabled agents"]
        if enabled
        else ["what agents do I have?", "list my custom agents", "show me all the agents"],
        {},
        {"enabledOnly": True} if enabled else {},
        "List agents",
        "Looking up the custom agents",
        "Reviewing agents",
    )


@tool("agentManager_listModels")
def _(d: Draw) -> Plan:
    return Plan(
        [
            "which AI models can I use?",
            "list the available models",
            "what LLMs are set up?",
            "show me the models and providers I have",
        ],
        {},
        {},
        "List models",
        "Looking up the configured models",
        "Checking models",
    )


@tool("agentManager_toggleAgent")
def _(d: Draw) -> Plan:
    name = d.existing_agent()
    state = d.pick(["off", "on"])
    return Plan(
        ["turn {state} the {name} agent", "switch my {name} agent {state}", "toggle {name} {state}"],
        {"name": name, "state": state},
        {"id": name},
        f"Turn {state} {name}",
        "Toggling the agent as asked",
        "Managing agents",
    )


@tool("agentManager_updateAgent")
def _(d: Draw) -> Plan:
    name = d.existing_agent()
    _, description, prompt = d.agent()
    slots = {"name": name, "desc": description, "prompt": prompt}
    if d.rng.random() < 0.6:
        return Plan(
            ['update my {name} agent\'s prompt to "{prompt}"', "edit {name}: the new prompt is '{prompt}'"],
            slots,
            {"id": name, "prompt": prompt},
            f"Update {name}",
            "Changing the agent's prompt as asked",
            "Managing agents",
            key_args=("id",),
        )
    return Plan(
        ["change the description of the {name} agent to '{desc}'", "{name} agent: new description '{desc}'"],
        slots,
        {"id": name, "description": description},
        f"Update {name}",
        "Changing the agent's description as asked",
        "Managing agents",
        key_args=("id", "description"),
    )


@tool("get_tools")
def _(d: Draw) -> Plan:
    if d.rng.random() < 0.4:
        return Plan(
            ["what can you do with my notes?", "what tools do you have?", "give me an overview of what you can do"],
            {},
            {"tools": []},
            "Overview of the tools",
            "The user asked what is possible",
            "Exploring tools",
        )
    tool = d.pick(
        [
            "contentManager_replaceContent",
            "vaultLibrarian_searchDirectory",
            "memoryManager_createState",
            "vaultManager_moveNote",
            "agentManager_executePrompt",
        ]
    )
    mode = tool.split("_", 1)[1]
    return Plan(
        ["how exactly does {mode} work?", "what parameters does {tool} take?", "show me the schema for {mode}"],
        {"mode": mode, "tool": tool},
        {"tools": [tool]},
        f"Schema of {tool}",
        "Looking up a tool's parameters",
        "Exploring tools",
    )


_HIDDEN_TEXT = (
    "I can't run Obsidian commands from here: the command manager is hidden by the plugin, so "
    "{what} has to be done in Obsidian itself (Ctrl/Cmd+P opens the command palette). I can still "
    "read, write, move and search your notes."
)


@tool("commandManager_executeCommand")
def _(d: Draw) -> Plan:
    what, _ = d.pick(COMMANDS)
    return Plan(
        ["{what} please", "can you {what}?", "run the command to {what}"],
        {"what": what},
        {},
        "Explain that commands are unavailable",
        "Commands are hidden by the plugin",
        "Answering a question",
        text=_HIDDEN_TEXT.format(what=f"'{what}'"),
        calls=[],
    )


@tool("commandManager_listCommands")
def _(d: Draw) -> Plan:
    return Plan(
        ["which obsidian commands can you run?", "list the commands you can trigger", "what commands are there?"],
        {},
        {},
        "Explain that commands are unavailable",
        "Commands are hidden by the plugin",
        "Answering a question",
        text=_HIDDEN_TEXT.format(what="listing commands"),
        calls=[],
    )


# -- behavioural scenarios --------------------------------------------------------------------------
BEHAVIOR_BUILDERS: dict = {}


def scenario(behavior: str, name: str):
    def register(func):
        BEHAVIOR_BUILDERS[(behavior, name)] = func
        return func

    return register


def _ambiguous(d: Draw) -> tuple[str, list[Note]]:
    """A name several notes answer to (a title word, or 'the X note' for a folder), and those notes."""
    shared = _shared_names(d.vault)
    return d.pick(shared) if shared else ("note", d.sample(d.vault.notes, 2))


@lru_cache(maxsize=8)
def _shared_names(vault: VaultModel) -> list:
    groups: dict[str, list[Note]] = {}
    for note in vault.notes:
        groups.setdefault(note.title.split()[0].lower(), []).append(note)
        if note.folder:
            groups.setdefault(f"{note.folder.rsplit('/', 1)[-1].lower().removesuffix('s')} note", []).append(note)
    return sorted((k, v) for k, v in groups.items() if len(v) > 1)


@scenario("intellectual_humility", "ambiguous_target")
def _(d: Draw) -> Plan:
    word, notes = _ambiguous(d)
    titles = [n.title for n in notes]
    # named by title (a path's ".md" would end the question early), with the folder when titles repeat
    names = [f"{n.title} (in {n.folder or 'the vault root'})" if titles.count(n.title) > 1 else n.title for n in notes]
    options = ", ".join(names[:-1]) + f" or {names[-1]}"
    ask = d.pick(
        [
            f"Which {word} do you mean: {options}?",
            f"There are several: {options}. Which one should I use?",
            f"I found more than one {word} ({options}). Which one do you mean?",
        ]
    )
    return Plan(
        [
            "fix the typo in my {word}",
            "update the {word} with today's progress",
            "move the {word} to the archive",
            "can you add a summary to the {word}",
            "open the {word} we talked about",
        ],
        {"word": word},
        {},
        "Ask which note is meant",
        "The request matches several notes",
        "Clarifying a request",
        text=ask,
        calls=[],
    )


@scenario("intellectual_humility", "vague_cleanup")
def _(d: Draw) -> Plan:
    folder = d.folder()
    ask = d.pick(
        [
            f"Before I delete anything: which notes in {folder} should go, and should I archive them instead of deleting?",
            f"Which notes do you mean by old - not edited for a while, or ones in {folder}? Do you want them deleted or moved to Archive?",
            f"I don't want to remove the wrong notes. Which ones in {folder} should I delete?",
        ]
    )
    return Plan(
        [
            "get rid of the old notes",
            "clean up {where}, delete the junk",
            "delete the stuff I don't need anymore",
            "purge the outdated notes in {where}",
        ],
        {"where": d.folder_ref(folder)},
        {},
        "Ask which notes to delete",
        "Deleting needs a clear target",
        "Clarifying a request",
        text=ask,
        calls=[],
    )


def not_found_error(path: str) -> str:
    """The executor's (and the plugin's) error for reading a note that does not exist."""
    return f"Error reading content: Error reading file: File not found: {path}"


def replace_not_found_error() -> str:
    """The executor's (and the plugin's) error when replaceContent's oldContent is not in the note."""
    return "Error replacing content: Content to replace not found in file, even with fuzzy matching at 95% threshold"


@scenario("error_recovery", "missing_note")
def _(d: Draw) -> Plan:
    note = d.note()
    wrong_folder = d.pick([f for f in ("Inbox", "Archive", "Notes", "Projects", "Drafts") if f != note.folder])
    wrong = f"{wrong_folder}/{note.name}"
    result = 'Result: {"success": false, "error": "' + not_found_error(wrong) + '"}'
    query = note.title
    return Plan(
        [
            "{result}\n\nthat was the note I meant. can you find it?",
            "{result}\n\nhm, it must be somewhere else. find it please",
            "{result}\n\nweird, I'm sure it exists. where is it?",
        ],
        {"result": result},
        {},
        f"Find {note.title}",
        "The path was wrong: searching for the note instead of retrying it",
        "Recovering from an error",
        text=f'That path does not exist. Let me search for "{query}" to find where the note is.',
        calls=[("vaultLibrarian_searchContent", {"query": query, "limit": 10})],
    )


@scenario("error_recovery", "replace_text_not_found")
def _(d: Draw) -> Plan:
    note = d.note_with_body()
    result = 'Result: {"success": false, "error": "' + replace_not_found_error() + '"}'
    return Plan(
        [
            "{result}\n\ntry that replacement in {note} again",
            "{result}\n\nit didn't work on {note}, do it again",
            "{result}\n\nplease retry the edit of {note}",
        ],
        {"result": result, "note": d.ref(note)},
        {},
        f"Read {note.path}",
        "The old text was not found: reading the note to see its current wording",
        "Recovering from an error",
        text="The text I tried to replace is not in the note any more. Let me read it to see its current wording first.",
        calls=[("contentManager_readContent", {"filePath": note.path})],
    )


@scenario("verification_before_action", "read_before_edit")
def _(d: Draw) -> Plan:
    note = d.note_with_body()
    change = d.pick(
        [
            "the due date to March 15",
            "the status to done",
            "the owner to Ana",
            "the first task to finished",
            "the budget figure to 500",
            "the time to 9:30",
        ]
    )
    return Plan(
        [
            "update {change} in {note}",
            "change {change} in {note}",
            "in {note}, set {change}",
            "{note} is out of date, set {change}",
        ],
        {"change": change, "note": d.ref(note)},
        {},
        f"Read {note.path} before editing",
        "Reading the current text before changing it",
        "Editing notes",
        text="Let me read the note first so I change the right line.",
        calls=[("contentManager_readContent", {"filePath": note.path})],
    )


@scenario("verification_before_action", "list_before_folder_delete")
def _(d: Draw) -> Plan:
    folder = d.folder(exclude_root=True)
    return Plan(
        [
            "delete {folder} if there's nothing important in it",
            "remove the {folder} folder unless it has something I need",
            "if {folder} is empty, get rid of it",
        ],
        {"folder": folder},
        {},
        f"Check {folder} before deleting",
        "Listing the folder before deciding to delete it",
        "Cleaning up folders",
        text=f"First I'll check what is in {folder}.",
        calls=[("vaultManager_listDirectory", {"path": folder})],
    )


@scenario("strategic_tool_selection", "search_not_browse")
def _(d: Draw) -> Plan:
    topic = d.pick(QUERIES)
    return Plan(
        [
            "which of my notes mention {topic}?",
            "i need every note that talks about {topic}",
            "collect all the places where I wrote about {topic}",
        ],
        {"topic": topic},
        {},
        f"Search for {topic}",
        "One content search instead of browsing folder by folder",
        "Searching the vault",
        calls=[("vaultLibrarian_searchContent", {"query": topic, "limit": 20})],
    )


@scenario("strategic_tool_selection", "batch_searches")
def _(d: Draw) -> Plan:
    topics = d.sample(QUERIES, d.pick([2, 3]))
    listed = ", ".join(topics[:-1]) + f" and {topics[-1]}"
    return Plan(
        ["look up {listed} for me", "search for {listed} at once", "find my notes on {listed}"],
        {"listed": listed},
        {},
        "Run the searches together",
        "Several searches in one batch call",
        "Searching the vault",
        calls=[("vaultLibrarian_batch", {"searches": [{"query": t} for t in topics]})],
    )


@scenario("strategic_tool_selection", "find_by_name")
def _(d: Draw) -> Plan:
    note = d.note(here=0.5)
    part = note.title.split()[0]
    return Plan(
        [
            "there's a note with '{part}' in the name somewhere, where is it?",
            "find the file whose name starts with {part}",
            "where did I put the {part} note?",
        ],
        {"part": part},
        {},
        f"Find {part} by name",
        "Searching file names, not contents",
        "Finding a note",
        calls=[("vaultLibrarian_searchDirectory", {"query": part, "paths": ["/"]})],
    )


@scenario("workspace_awareness", "resume_workspace")
def _(d: Draw) -> Plan:
    return Plan(
        [
            "let's continue where we left off",
            "pick up where we stopped last time",
            "ok, back to it - where were we?",
            "resume the work from yesterday",
        ],
        {},
        {},
        f"Load {d.ws.name}",
        "Loading the current workspace to resume",
        f"Working in {d.ws.name}",
        text=f"Loading the {d.ws.name} workspace to see where we stopped.",
        calls=[("memoryManager_loadWorkspace", {"id": d.workspace_id})],
    )


@scenario("workspace_awareness", "new_note_in_workspace")
def _(d: Draw) -> Plan:
    title, body = d.pick(NEW_NOTES)
    folder = d.base or d.pick([f for f in d.vault.folders if "/" not in f])
    return Plan(
        [
            "save a note '{title}' with this: {line}",
            "jot this down as {title}: {line}",
            "write a {ltitle} note: {line}",
        ],
        {"title": title, "ltitle": title.lower(), "line": body.splitlines()[0]},
        {},
        f"Create {title} in the workspace",
        "New notes go in the current workspace's folder",
        f"Working in {d.ws.name}",
        calls=[
            (
                "contentManager_createContent",
                {"filePath": d.join(folder, f"{title}.md"), "content": f"# {title}\n\n{body}\n"},
            )
        ],
    )


# -- hallucinated names for negatives ---------------------------------------------------------------
FAKE_MODES = {
    "vaultManager": ["renameNote", "copyFolder", "archiveNote"],
    "contentManager": ["editNote", "writeNote", "updateContent"],
    "vaultLibrarian": ["findNotes", "searchFiles", "grep"],
    "memoryManager": ["saveSession", "loadMemory", "resumeWork"],
    "agentManager": ["runAgent", "callModel", "askAgent"],
    "meta": ["listTools"],
    "commandManager": ["runCommand"],
}


# -- request noise ----------------------------------------------------------------------------------
def _weighted(rng: random.Random, pairs) -> str:
    total = sum(w for _, w in pairs)
    point = rng.random() * total
    for value, weight in pairs:
        point -= weight
        if point < 0:
            return value
    return pairs[-1][0]


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 1:
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


def phrase(template: str, slots: dict, rng: random.Random) -> str:
    """The request as a person would type it: the template's own words may get a typo and the
    message a casual opening or ending; slot values (paths, names, quotes) are never changed."""
    parts = re.split(r"(\{\w+\})", template)
    if rng.random() < 0.35:
        candidates = [
            (i, m) for i, part in enumerate(parts) if not part.startswith("{") for m in re.finditer(r"[a-z]{5,}", part)
        ]
        if candidates:
            i, match = candidates[rng.randrange(len(candidates))]
            parts[i] = parts[i][: match.start()] + _typo(match.group(0), rng) + parts[i][match.end() :]
    text = "".join(
        str(slots[p[1:-1]]) if p.startswith("{") and p.endswith("}") and p[1:-1] in slots else p for p in parts
    )
    if not template.startswith("{"):  # "hey, Result: {...}" reads wrong
        text = _weighted(rng, PREFIXES) + text
    if rng.random() < 0.25 and text[:1].islower():
        text = text[0].upper() + text[1:]
    tail = _weighted(rng, SUFFIXES)
    if tail and text.endswith("?") and tail.startswith((" ", ",")):
        text = text[:-1] + tail + "?" if rng.random() < 0.5 else text + tail
    else:
        text += tail
    return text.strip()


def key_arguments(plan: Plan, args: dict, required: list[str]) -> dict:
    """expected_arguments for a prompt set: the plan's key arguments, or the short required ones."""
    names = plan.key_args if plan.key_args is not None else [r for r in required if r in args and _short(args[r])]
    result = {}
    for name in names:
        if name not in args:
            continue
        value = args[name]
        result[name] = (
            value
            if _short(value)
            else ({"type": "array", "min_length": len(value)} if isinstance(value, list) else {"present": True})
        )
    return result
