"""The closed loop, end to end: data -> validate -> interleave -> SFT -> KTO -> GGUF -> evaluation.

    python -m claudesidian closed-loop                # the demo (make demo): a model built from scratch, CPU, no download
    python -m claudesidian closed-loop --base-model unsloth/Qwen2.5-3B-Instruct --model-size 3b --sft-steps 300 ...

(``python Tools/closed_loop.py`` is the same command.)

Defaults run on a 2-core CPU with no server: the template teacher writes the training data and a
held-out evaluation set (another seed, no shared user request), a small Llama is built from scratch
(tokenizer trained on the training data) and fully fine-tuned, KTO follows from the SFT model, and
each model (before training, after SFT, after KTO) is exported to GGUF and evaluated through the
embedded llama.cpp backend; the final model also through llama.cpp's server. The report puts the
stages side by side. See docs/closed-loop.md.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from Tools.cli_common import ArgumentParser, UsageError, die

ROOT = Path(__file__).resolve().parents[1]
MARK_START, MARK_END = "<!-- closed-loop:start -->", "<!-- closed-loop:end -->"
TOKENIZER_RECORDS = 4000
METRICS = ("parse_rate", "valid_rate", "expected_tool_rate", "valid_expected_tool_rate", "argument_accuracy")


@dataclass
class LoopSettings:
    out: Path = ROOT / "outputs" / "closed_loop"
    seed: int = 7  # training data; the held-out set uses seed + 1000
    sft_size: int = 19200  # steps x batch: SFT sees every record once (the warm-up reads the first ones too)
    kto_size: int = 400
    eval_size: int = 60
    base_model: str | None = None  # None: build a small model from scratch
    model_size: str = "7b"  # the trainers' preset for a real base model (batch sizes, LoRA)
    hidden: int = 128
    layers: int = 4
    heads: int = 8  # 8 of 16 wide copy the ids far better than 4 of 32 (docs/benchmarks.md)
    vocab: int = 2000
    max_seq_length: int = 1024
    sft_steps: int = 2400
    sft_batch: int = 8
    sft_lr: float = 2e-3
    # AdamW's second-moment decay for every training of the loop; None: 0.95 for a model built from
    # scratch (it learns the arguments far sooner than with 0.999, docs/benchmarks.md), the trainers'
    # 0.999 for a base model
    adam_beta2: float | None = None
    # SFT's learning-rate schedule (Trainers/shared/config.py SCHEDULES); None: wsd for a model built
    # from scratch (the peak rate held while copying forms, docs/benchmarks.md), the trainers' own for a base model
    sft_schedule: str | None = None
    # SFT counts each answer token inside an id, and inside the context's prose, this many times
    # (the SFT trainers' id_loss_weight and prose_loss_weight). The call's name and arguments, ids
    # included, weigh three times the prose, the model's own words that no check compares: argument
    # accuracy 68% -> 78% (docs/benchmarks.md). The warm-up, whose calls hold no context, keeps 1.
    id_loss_weight: float = 1.0
    prose_loss_weight: float = 1 / 3
    # the warm-up and SFT teach one attention head where in the request a copied value is (the SFT
    # trainers' copy_attention_weight); None: 0.05 for a model built from scratch, which forms that
    # look-up only after thousands of steps (docs/benchmarks.md), 0 for a base model, which has it
    copy_attention_weight: float | None = None
    request_warmup: int = 1000  # from scratch: SFT steps on the requests and their calls alone before SFT (0: none)
    kto_steps: int = 20
    kto_batch: int = 4
    kto_lr: float = 1e-5
    max_tokens: int = 640
    quantization: str = "Q8_0"
    server: bool = True  # also evaluate the final model through llama.cpp's server
    benchmarks_md: Path | None = None  # rewrite the closed-loop section of this file

    @property
    def from_scratch(self) -> bool:
        return self.base_model is None

    @property
    def beta2(self) -> float | None:
        return self.adam_beta2 if self.adam_beta2 is not None else (0.95 if self.from_scratch else None)

    @property
    def copy_weight(self) -> float:
        if self.copy_attention_weight is not None:
            return self.copy_attention_weight
        return 0.05 if self.from_scratch else 0.0

    @property
    def schedule(self) -> str | None:
        return self.sft_schedule or ("wsd" if self.from_scratch else None)

    @property
    def warms_up(self) -> bool:
        return self.from_scratch and self.request_warmup > 0


@dataclass
class Stage:
    name: str
    seconds: float
    detail: str


@dataclass
class LoopResult:
    stages: list[Stage] = field(default_factory=list)
    models: dict = field(default_factory=dict)  # label -> metrics
    report_md: Path | None = None
    report_json: Path | None = None


class Progress:
    """One line per stage: '[n/N] name ... detail (seconds)'."""

    def __init__(self, names: list[str], result: LoopResult):
        self.names, self.result, self.started = names, result, time.time()

    def run(self, name: str, fn, *args, **kwargs):
        index = self.names.index(name) + 1
        print(f"[{index}/{len(self.names)}] {name} ...", flush=True)
        began = time.time()
        value, detail = fn(*args, **kwargs)
        seconds = time.time() - began
        self.result.stages.append(Stage(name, round(seconds, 1), detail))
        print(f"[{index}/{len(self.names)}] {name}: {detail} ({seconds:.0f} s)", flush=True)
        return value


# -- stages ------------------------------------------------------------------------------------
def make_data(s: LoopSettings):
    from SelfPlay.teacher import shared_user_requests, write_datasets, write_heldout_prompt_set

    data = s.out / "data"
    write_datasets(data, seed=s.seed, sft_size=s.sft_size, kto_size=s.kto_size, dpo_size=0)
    sft, kto, heldout = data / "teacher_sft.jsonl", data / "teacher_kto.jsonl", data / "heldout.json"
    summary = write_heldout_prompt_set(heldout, seed=s.seed + 1000, size=s.eval_size, exclude=[sft, kto])
    shared = shared_user_requests(sft, heldout) | shared_user_requests(kto, heldout)
    if shared:  # the held-out set must be unseen, or the report would measure memory
        raise UsageError(f"the held-out set shares {len(shared)} user request(s) with the training data")
    detail = (
        f"{s.sft_size} SFT + {s.kto_size} KTO records (seed {s.seed}); held-out set of {summary['cases']} cases "
        f"(seed {s.seed + 1000}, {len(summary['tools'])} tools, 0 requests shared with training)"
    )
    return (sft, kto, heldout), detail


def validate(sft: Path, kto: Path):
    from Tools.schema.registry import load_registry
    from Tools.schema.report import validate_file

    registry = load_registry()
    reports = [validate_file(p, registry) for p in (sft, kto)]
    failing = {r.path: r.failed for r in reports if r.failed}
    if failing:
        raise UsageError(f"validation failed: {failing}; run python Tools/validate_syngen.py on them")
    r_sft, r_kto = reports
    return None, (
        f"{r_sft.passed}/{r_sft.judged} SFT positives clean; KTO: {r_kto.labels['true']} true, "
        f"{r_kto.labels['false']} false, every negative failing for its stated reason"
    )


def interleave_kto(kto: Path):
    from Tools.schema.interleave import check_kto_ready, interleave, write_interleaved
    from Tools.schema.records import iter_jsonl, label_of

    check = check_kto_ready(kto)
    if check.ready:
        return kto, f"{check.records} records already strictly alternating (first label {check.first_label})"
    records = [line.record for line in iter_jsonl(kto) if line.error is None]
    result = interleave([r for r in records if label_of(r)], [r for r in records if label_of(r) is False])
    fixed = kto.with_name("kto_interleaved.jsonl")
    write_interleaved(result, fixed)
    return fixed, f"re-interleaved {len(result.records)} records into {fixed.name}"


def tokenizer_corpus(sft: Path) -> list[str]:
    """The text the demo's tokenizer learns from: the first TOKENIZER_RECORDS training records (plenty
    for its vocabulary, and quick), so tool names and JSON keys become few tokens; but with every
    session and workspace id left out. Learnt on the ids, the vocabulary gives their random letters
    hundreds of rare two- and three-letter pieces, which a small model copies badly (whole ids right
    in 40-60% of answers); without them an id is spelt nearly letter by letter, as its digits are,
    and copied right in 84-88% (docs/benchmarks.md)."""
    from Tools.schema.context import SESSION_ID_RE, WORKSPACE_ID_RE
    from Tools.schema.records import iter_jsonl
    from Trainers.shared.data import chat_messages

    corpus = []
    for line in iter_jsonl(sft):
        if line.number > TOKENIZER_RECORDS:
            break
        if line.error is None:
            text = json.dumps(chat_messages(line.record), ensure_ascii=False)
            corpus.append(WORKSPACE_ID_RE.sub("ws_", SESSION_ID_RE.sub("session_", text)))
    return corpus


def build_base(s: LoopSettings, sft: Path):
    if not s.from_scratch:
        return s.base_model, f"base model {s.base_model}"
    from Trainers.shared.tiny_model import build_tiny_model

    out = build_tiny_model(
        s.out / "base_model",
        corpus=tokenizer_corpus(sft),
        vocab_size=s.vocab,
        hidden_size=s.hidden,
        num_layers=s.layers,
        num_heads=s.heads,
        seed=s.seed,
    )
    from Trainers.shared.export.merge import parameter_count
    from Trainers.shared.export.source import resolve_source

    count = parameter_count(resolve_source(out))  # read from the safetensors header, no weights loaded
    return (
        str(out),
        f"Llama {s.layers} x {s.hidden} ({s.heads} heads), vocabulary {s.vocab}, {count / 1e6:.1f} M weights, random init",
    )


def requests_alone(s: LoopSettings, sft: Path) -> tuple[Path, str]:
    """The first request_warmup x sft_batch SFT records (all, repeated, if there are fewer) cut down to
    the request and the calls it asks for: no system turn, and each call without its context object.
    A model built from scratch learns to pick the tool from a request far sooner when the request is
    nearly all of the context than when it sits behind the ~200-token system prompt, and the calls'
    arguments sooner when they follow the request directly instead of ~150 tokens of context; the
    warmed-up model then finds both in the full records (docs/benchmarks.md). Steps on these
    ~70-token rows cost about a fifth of full ones. The calls are not schema-valid without their
    context, so the warm-up trains on them unvalidated; SFT on the full, validated records follows
    and teaches the context and its ids."""
    from Tools.schema.records import iter_jsonl, write_jsonl_atomic

    count = s.request_warmup * s.sft_batch
    records = []
    for line in iter_jsonl(sft):
        if line.error is None:
            turns = [_without_context(m) for m in line.record["conversations"] if m.get("role") != "system"]
            records.append({**line.record, "conversations": turns})
        if len(records) == count:
            break
    out = sft.with_name("requests_alone.jsonl")
    write_jsonl_atomic(out, records)
    return out, f"{len(records)} SFT records without their system turn or the calls' context"


def _without_context(message: dict) -> dict:
    """An assistant turn's tool calls with the context object left out of their arguments."""
    from Tools.schema.toolcalls import ToolCall, parse_message, render_message

    parsed = parse_message(message, 0) if message.get("role") == "assistant" else None
    if not parsed or not parsed.calls:
        return message
    calls = [
        ToolCall(c.name, {k: v for k, v in (c.arguments or {}).items() if k != "context"}, c.id) for c in parsed.calls
    ]
    return render_message(calls, "openai", message.get("content"))


def warm_up(s: LoopSettings, base: str, sft: Path):
    data, detail = requests_alone(s, sft)
    model, trained = train(s, "sft", base, data, steps=s.request_warmup, runs="warmup_runs", validate=False)
    return str(model), f"{detail}; {trained}"


def train(
    s: LoopSettings,
    method: str,
    model: str,
    data: Path,
    steps: int | None = None,
    batch: int | None = None,
    runs: str | None = None,
    weigh_classes: bool = False,
    validate: bool = True,
):
    from Trainers.shared.config import load_config
    from Trainers.shared.train import run_training

    sft = method == "sft"
    flags = {
        "model_name": model,
        "local_file": str(data),
        "output_dir": str(s.out / (runs or f"{method}_runs")),
        "max_steps": steps or (s.sft_steps if sft else s.kto_steps),
        "batch_size": batch or (s.sft_batch if sft else s.kto_batch),
        "gradient_accumulation": 1,
        "learning_rate": s.sft_lr if sft else s.kto_lr,
        "save_steps": 10_000,
        "max_seq_length": s.max_seq_length,
        "seed": s.seed,
        "full_finetune": s.from_scratch or None,
        "model_size": s.model_size,
        "id_loss_weight": s.id_loss_weight if weigh_classes else None,
        "prose_loss_weight": s.prose_loss_weight if weigh_classes else None,
        "copy_attention_weight": s.copy_weight if sft else None,
        "adam_beta2": s.beta2,
    }
    config = load_config(method, None, flags)
    config.data.validate = validate
    if s.from_scratch:
        config.training.warmup_ratio = 0.05
    if sft and s.schedule:
        config.training.lr_scheduler = s.schedule
    result = run_training(config)
    metrics = result.metrics
    detail = f"{result.global_step} steps, train loss {metrics.get('train_loss', float('nan')):.3f}, {result.final_dir}"
    return result.final_dir, detail


def export(s: LoopSettings, label: str, model_dir: Path):
    from Trainers.shared.export.build import export_gguf
    from Trainers.shared.export.source import resolve_source

    outdir = s.out / "gguf" / label
    done = export_gguf(
        resolve_source(model_dir), outdir, [s.quantization], name=label, roundtrip="off", overwrite=True, progress=False
    )
    f16 = next(f for f in done.files if f["type"].upper() == "F16")
    return outdir / f16["file"], f"{', '.join(f['file'] for f in done.files)} + Modelfile in {outdir}"


SESSION_CODES = ("E_SESSION_ID_FORMAT", "E_SESSION_ID_MISMATCH")
WORKSPACE_CODES = ("E_WORKSPACE_ID_FORMAT", "E_WORKSPACE_ID_MISMATCH")
ID_CODES = frozenset(SESSION_CODES + WORKSPACE_CODES)


def valid_except_ids(case: dict, registry) -> bool:
    """The case's calls pass the validator once the session and workspace ids are set aside: what
    the schema-valid rate would be if the model copied the ids right."""
    from Tools.schema.toolcalls import ToolCall
    from Tools.schema.validate import check_call

    if case["stages"].get("valid") is True:
        return True
    if case["stages"].get("call") is not True or not case.get("calls"):
        return False
    findings = [f for c in case["calls"] for f in check_call(ToolCall(c["name"], c["arguments"]), registry)]
    return not any(f.severity == "error" and f.code not in ID_CODES for f in findings)


def id_copied(case: dict, key: str, codes: tuple[str, ...]) -> bool:
    """A call's context holds the id under key and no finding faults it: the model copied the id the
    system prompt handed out (or, for the workspace, wrote 'default' where the prompt has none)."""
    arguments = [c.get("arguments") for c in case.get("calls") or []]  # whatever the model wrote
    written = any(isinstance(a, dict) and isinstance(a.get("context"), dict) and key in a["context"] for a in arguments)
    return written and not any(f.get("code") in codes for f in case.get("findings", []))


def arguments_right(case: dict) -> bool:
    """The expected tools were called and their arguments hold. The evaluator's arguments stage
    judges only calls to the expected tools and passes when there is none (the wrong tool is the
    tools stage's finding), so on its own it would count an answer calling the wrong tool as right."""
    called = {c.get("name") for c in case.get("calls") or []}
    return (
        case["stages"].get("call") is True
        and case["stages"]["arguments"] is True
        and set(case["expected_tools"]) <= called
    )


def spelt_in_request(question: str, expected_arguments: dict) -> bool:
    """Every expected argument is a plain value written out in the request (case aside), so the
    model only has to copy it: 'New workspace: Garden planning' -> name 'Garden planning'. Otherwise
    a value must be inferred: a note's path from its name or description in the vault the model was
    trained on, an id, or a list or text the model writes itself."""
    text = question.casefold()
    values = [v for constraints in expected_arguments.values() for v in constraints.values()]
    return bool(values) and all(
        isinstance(v, (str, int, float)) and not isinstance(v, bool) and str(v).casefold() in text for v in values
    )


def case_metrics(report: dict, prompts=None) -> dict:
    """Rates over the held-out cases that expect a tool call: a parseable call, schema-valid calls
    (the shared validator: known tool, arguments, context, ids from the prompt), the same with the
    ids set aside, each id copied right, the expected tools, both at once, and argument accuracy where the case
    constrains arguments, also split (given the prompt set's cases) into values spelt in the request
    and values to infer; then the per-tool results and the error codes of the failing cases."""
    from Tools.schema.registry import load_registry

    registry = load_registry()
    cases = [c for c in report["cases"] if c.get("expected_tools")]
    n = len(cases) or 1

    def share(test) -> float:  # of the tool cases, those that pass test(case)
        return round(sum(1 for c in cases if test(c)) / n, 4)

    def rate(test) -> float:  # the same, judged on the evaluator's stages
        return share(lambda c: test(c["stages"]))

    # the cases with expected arguments: from the prompt set where given, since a case whose answer
    # holds no call never reaches the evaluator's arguments stage (and then counts as wrong)
    expects_arguments = {p.id for p in prompts or [] if p.expected_arguments}
    with_args = [c for c in cases if c["stages"].get("arguments") is not None or c.get("id") in expects_arguments]
    spelt = {p.id for p in prompts or [] if spelt_in_request(p.question, p.expected_arguments)}

    def accuracy(group: list) -> float | None:
        return round(sum(arguments_right(c) for c in group) / len(group), 4) if group else None

    per_tool: dict[str, list[int]] = {}
    codes: dict[str, int] = {}
    for c in cases:
        tool = ", ".join(c["expected_tools"])
        row = per_tool.setdefault(tool, [0, 0, 0])  # cases, expected tool called, schema-valid call to it
        row[0] += 1
        row[1] += c["stages"].get("tools") is True
        row[2] += c["stages"].get("valid") is True and c["stages"].get("tools") is True
        for code in {f["code"] for f in c.get("findings", []) if f.get("severity") == "error"}:
            codes[code] = codes.get(code, 0) + 1
    return {
        "cases": len(cases),
        "parse_rate": rate(lambda st: st.get("call") is True),
        "valid_rate": rate(lambda st: st.get("call") is True and st.get("valid") is True),
        "valid_except_ids_rate": share(lambda c: valid_except_ids(c, registry)),
        "session_id_rate": share(lambda c: id_copied(c, "sessionId", SESSION_CODES)),
        "workspace_id_rate": share(lambda c: id_copied(c, "workspaceId", WORKSPACE_CODES)),
        "expected_tool_rate": rate(lambda st: st.get("tools") is True),
        "valid_expected_tool_rate": rate(lambda st: st.get("valid") is True and st.get("tools") is True),
        "argument_accuracy": accuracy(with_args),
        "argument_accuracy_spelt": accuracy([c for c in with_args if c.get("id") in spelt]) if prompts else None,
        "argument_accuracy_inferred": accuracy([c for c in with_args if c.get("id") not in spelt]) if prompts else None,
        "argument_cases": {"spelt": sum(c.get("id") in spelt for c in with_args), "all": len(with_args)},
        "pass_rate": report["summary"]["pass_at_1"],
        "per_tool": dict(sorted(per_tool.items())),
        "error_codes": dict(sorted(codes.items(), key=lambda kv: (-kv[1], kv[0]))),
    }


def evaluate(s: LoopSettings, label: str, gguf: Path, heldout: Path, base_url: str | None = None):
    from Evaluator.evaluation import EvalRequest, evaluate as run_eval
    from Evaluator.runner import RunSettings

    name = f"{label}-server" if base_url else label
    request = EvalRequest(
        backend="llamacpp",
        model=str(gguf) if not base_url else label,
        prompt_set=str(heldout),
        output=s.out / "reports" / f"{name}.json",
        markdown=s.out / "reports" / f"{name}.md",
        # through the server, tools go in the request and calls come back in tool_calls, as in LM Studio
        base_url=base_url,
        settings=RunSettings(max_tokens=s.max_tokens, timeout=300, retries=1, tools_in_request=bool(base_url)),
        progress=False,
    )
    from Evaluator.prompt_sets import load_prompt_set

    result = run_eval(request)
    metrics = case_metrics(result.report, load_prompt_set(heldout).cases)
    metrics["episode_rate"] = episode_rate(request)
    detail = (
        f"parse {metrics['parse_rate']:.0%}, schema-valid {metrics['valid_rate']:.0%} "
        f"({metrics['valid_except_ids_rate']:.0%} with ids set aside), expected tool "
        f"{metrics['expected_tool_rate']:.0%}, valid + expected {metrics['valid_expected_tool_rate']:.0%} "
        f"on {metrics['cases']} tool cases; episodes passed {metrics['episode_rate']:.0%}"
    )
    return metrics, detail


def episode_rate(request) -> float:
    """The share of the built-in multi-turn episodes (Evaluator/prompts/episodes) the model passes, once each."""
    from Evaluator.backends import make_client
    from Evaluator.episodes import run_episodes

    client = make_client(request.backend, request.model, base_url=request.base_url, timeout=300)
    try:
        return run_episodes(client, None, 1, settings=request.settings)["pass_rate"]
    finally:
        client.close()


# -- the loop ----------------------------------------------------------------------------------
def run_loop(s: LoopSettings) -> LoopResult:
    result = LoopResult()
    names = (
        [
            "teacher data",
            "validate",
            "interleave",
            "base model",
            "evaluate before training",
        ]
        + (["SFT warm-up on the requests alone"] if s.warms_up else [])
        + [
            "SFT",
            "evaluate after SFT",
            "KTO",
            "export GGUF",
            "evaluate after KTO",
        ]
        + (["evaluate through llama.cpp's server"] if s.server else [])
        + ["report"]
    )
    p = Progress(names, result)
    started = time.time()
    sft, kto, heldout = p.run("teacher data", make_data, s)
    p.run("validate", validate, sft, kto)
    kto = p.run("interleave", interleave_kto, kto)
    base = p.run("base model", build_base, s, sft)
    evaluated = {}
    if s.from_scratch:  # a hub base would need converting twice; its "before" is the evaluator's own job
        evaluated["before training"] = p.run(
            "evaluate before training", _export_and_evaluate, s, "base", Path(base), heldout
        )
    else:
        p.run("evaluate before training", lambda: (None, "skipped for a base model given by --base-model"))
    if s.warms_up:
        base = p.run("SFT warm-up on the requests alone", warm_up, s, base, sft)
    sft_model = p.run("SFT", train, s, "sft", base, sft, weigh_classes=True)
    evaluated["after SFT"] = p.run("evaluate after SFT", _export_and_evaluate, s, "sft", sft_model, heldout)
    kto_model = p.run("KTO", train, s, "kto", str(sft_model), kto)
    gguf = p.run("export GGUF", export, s, "kto", kto_model)
    evaluated["after KTO"] = p.run("evaluate after KTO", evaluate, s, "kto", gguf, heldout)
    if s.server:
        evaluated["after KTO, llama.cpp server"] = p.run(
            "evaluate through llama.cpp's server", _serve_and_evaluate, s, gguf, heldout
        )
    result.models = evaluated
    p.run("report", write_report, s, result, time.time() - started)
    return result


def _export_and_evaluate(s: LoopSettings, label: str, model_dir: Path, heldout: Path):
    gguf, _ = export(s, label, model_dir)
    return evaluate(s, label, gguf, heldout)


def _serve_and_evaluate(s: LoopSettings, gguf: Path, heldout: Path):
    from Evaluator.llama_server import llama_server

    with llama_server(gguf, alias="kto", n_ctx=s.max_seq_length + s.max_tokens, threads=2) as url:
        return evaluate(s, "kto", gguf, heldout, base_url=url)


def markdown(s: LoopSettings, result: LoopResult, wall: float) -> str:
    labels = list(result.models)
    split = (result.models[labels[-1]].get("argument_cases") if labels else None) or {"spelt": 0, "all": 0}
    rows = [
        ("parseable tool call", "parse_rate"),
        ("schema-valid call", "valid_rate"),
        ("schema-valid call, ids set aside", "valid_except_ids_rate"),
        ("session id copied", "session_id_rate"),
        ("workspace id copied", "workspace_id_rate"),
        ("expected tool called", "expected_tool_rate"),
        ("schema-valid call to the expected tool", "valid_expected_tool_rate"),
        ("argument accuracy", "argument_accuracy"),
        (f"- values spelt in the request ({split['spelt']} cases)", "argument_accuracy_spelt"),
        (f"- values to infer ({split['all'] - split['spelt']} cases)", "argument_accuracy_inferred"),
        ("evaluator pass@1 (all stages)", "pass_rate"),
        ("multi-turn episodes passed (built-in set)", "episode_rate"),
    ]

    def pct(value) -> str:
        return "-" if value is None else f"{value * 100:.1f}%"

    cases = next(iter(result.models.values()))["cases"] if result.models else 0
    lines = [
        f"Held-out set: {s.eval_size} teacher cases (seed {s.seed + 1000}), none sharing a user request with the "
        f"training data; rates over the {cases} cases that expect a tool call.",
        "",
        "| metric | " + " | ".join(labels) + " |",
        "|---" * (len(labels) + 1) + "|",
    ]
    lines += [
        f"| {title} | " + " | ".join(pct(result.models[label].get(key)) for label in labels) + " |"
        for title, key in rows
    ]
    model = (
        f"a {s.layers}-layer, {s.hidden}-wide Llama with {s.heads} attention heads built from scratch (vocabulary {s.vocab}), "
        "fully fine-tuned"
        if s.from_scratch
        else f"{s.base_model} with LoRA"
    )
    lines += [
        "",
        f"Model: {model}; SFT {s.sft_steps} steps x batch {s.sft_batch} at lr {s.sft_lr:g} on {s.sft_size} "
        f"records, context prose weighted x{s.prose_loss_weight:.3g}"
        + (f", id tokens x{s.id_loss_weight:g}" if s.id_loss_weight != 1 else "")
        + (f", copy-attention loss x{s.copy_weight:g} (warm-up too)" if s.copy_weight else "")
        + (f", {s.schedule} learning-rate schedule" if s.schedule else "")
        + (f", AdamW beta2 {s.beta2:g}" if s.beta2 is not None else "")
        + f"; KTO {s.kto_steps} steps x batch {s.kto_batch} at lr {s.kto_lr:g} on {s.kto_size} records; "
        f"greedy decoding, at most {s.max_tokens} tokens.",
        "",
        "| stage | seconds | result |",
        "|---|---|---|",
    ]
    lines += [f"| {st.name} | {st.seconds:.0f} | {_portable(st.detail, s)} |" for st in result.stages]
    lines += ["", f"Total wall time: {wall / 60:.1f} min."]
    if labels:  # where the final model fails, so the next bottleneck is visible
        final = result.models[labels[-1]]
        lines += [
            "",
            f"Per expected tool ({labels[-1]}): cases, expected tool called, schema-valid call to it.",
            "",
            "| tool | cases | expected tool | valid + expected |",
            "|---|---|---|---|",
        ]
        lines += [f"| {tool} | {n} | {called} | {valid} |" for tool, (n, called, valid) in final["per_tool"].items()]
        lines += [
            "",
            f"Error codes over the {final['cases']} tool cases ({labels[-1]}; a case counts each code once): "
            + (", ".join(f"`{code}` {count}" for code, count in final["error_codes"].items()) or "none")
            + ".",
        ]
    return "\n".join(lines) + "\n"


def _portable(text: str, s: LoopSettings) -> str:
    """Stage details name files under --out; the report (and docs/benchmarks.md, which is committed)
    names them relative to it, never by this machine's absolute paths."""
    for path, name in ((s.out.resolve(), "<out>"), (s.out, "<out>"), (ROOT, ".")):
        text = text.replace(str(path), name)
    return text


def write_report(s: LoopSettings, result: LoopResult, wall: float):
    from Tools.schema.records import write_json_atomic, write_text_atomic

    text = markdown(s, result, wall)
    result.report_md, result.report_json = s.out / "report.md", s.out / "report.json"
    write_text_atomic(result.report_md, "# Closed loop\n\n" + text)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(s).items()}
    write_json_atomic(
        result.report_json,
        {
            "settings": settings,
            "models": result.models,
            "stages": [asdict(st) for st in result.stages],
            "wall_s": round(wall, 1),
        },
    )
    if s.benchmarks_md:
        update_benchmarks(s.benchmarks_md, text)
    return None, f"{result.report_md} and {result.report_json}" + (
        f"; {s.benchmarks_md} updated" if s.benchmarks_md else ""
    )


def update_benchmarks(path: Path, text: str) -> None:
    """Replace what lies between the closed-loop markers (appended with a heading when absent)."""
    from Tools.schema.records import write_text_atomic

    current = path.read_text(encoding="utf-8") if path.is_file() else ""
    block = f"{MARK_START}\n{text}{MARK_END}"
    if MARK_START in current and MARK_END in current:
        before, rest = current.split(MARK_START, 1)
        updated = before + block + rest.split(MARK_END, 1)[1]
    else:
        updated = current.rstrip("\n") + "\n\n## Closed loop (`make demo`)\n\n" + block + "\n"
    write_text_atomic(path, updated)


# -- command line ------------------------------------------------------------------------------
def build_parser() -> ArgumentParser:
    from Trainers.shared.config import SCHEDULES, WSD_DECAY

    d = LoopSettings()
    parser = ArgumentParser(prog="closed_loop.py", description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--out", type=Path, default=d.out, help=f"work folder (default {d.out.relative_to(ROOT)})")
    add("--seed", type=int, default=d.seed, help="training-data seed; the held-out set uses seed + 1000")
    add("--sft-size", type=int, default=d.sft_size)
    add("--kto-size", type=int, default=d.kto_size)
    add("--eval-size", type=int, default=d.eval_size, help="held-out cases")
    add("--base-model", help="Hugging Face id or local model to fine-tune with LoRA (default: build one from scratch)")
    add("--model-size", default=d.model_size, help="the trainers' size preset used with --base-model (3b|7b|13b|20b)")
    add("--hidden", type=int, default=d.hidden, help="from scratch: width")
    add("--layers", type=int, default=d.layers, help="from scratch: transformer blocks")
    add("--heads", type=int, default=d.heads, help="from scratch: attention heads (a divisor of --hidden)")
    add("--vocab", type=int, default=d.vocab, help="from scratch: tokenizer vocabulary")
    add("--max-seq-length", type=int, default=d.max_seq_length)
    add("--sft-steps", type=int, default=d.sft_steps)
    add("--sft-batch", type=int, default=d.sft_batch)
    add("--sft-lr", type=float, default=d.sft_lr)
    add(
        "--adam-beta2",
        type=float,
        help="AdamW's second-moment decay in every training of the loop (default 0.95 from scratch, 0.999 with --base-model)",
    )
    add(
        "--sft-schedule",
        choices=SCHEDULES,
        help="SFT's learning-rate schedule after its warm-up: wsd holds the peak rate, then decays over the last "
        f"{WSD_DECAY * 100:.0f}%% of the steps (default wsd from scratch, the trainers' cosine with --base-model)",
    )
    add(
        "--id-loss-weight",
        type=float,
        default=d.id_loss_weight,
        help=f"SFT: each answer token inside a session or workspace id counts this many times in the loss "
        f"(default {d.id_loss_weight:g}; 1: plain SFT)",
    )
    add(
        "--prose-loss-weight",
        type=float,
        default=d.prose_loss_weight,
        help="SFT: each answer token inside the context's prose (sessionDescription, sessionMemory, toolContext, "
        f"primaryGoal, subgoal) counts this many times in the loss (default {d.prose_loss_weight:.3g}; 1: plain SFT)",
    )
    add(
        "--copy-attention-weight",
        type=float,
        help="warm-up and SFT: weight of a second loss that teaches the last layer's first attention head to "
        "look at the request's token that each copied answer token copies (default 0.05 from scratch, "
        "0 with --base-model; 0: off)",
    )
    add(
        "--request-warmup",
        type=int,
        default=d.request_warmup,
        help="from scratch: SFT steps on the requests and their calls alone (no system turn, no context "
        "object in the calls) before SFT; 0 skips "
        f"(default {d.request_warmup})",
    )
    add("--kto-steps", type=int, default=d.kto_steps)
    add("--kto-batch", type=int, default=d.kto_batch)
    add("--kto-lr", type=float, default=d.kto_lr)
    add("--max-tokens", type=int, default=d.max_tokens, help="tokens generated per evaluated answer at most")
    add("--quantization", default=d.quantization, help="GGUF quantization written beside f16 (default Q8_0)")
    add("--no-server", dest="server", action="store_false", help="skip the evaluation through llama.cpp's server")
    add(
        "--benchmarks-md",
        type=Path,
        help="rewrite the closed-loop section of this Markdown file (make demo: docs/benchmarks.md)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    settings = LoopSettings(**args)
    for name in (
        "sft_size",
        "kto_size",
        "eval_size",
        "sft_steps",
        "kto_steps",
        "sft_batch",
        "layers",
        "hidden",
        "heads",
    ):
        if getattr(settings, name) < 1:
            die(f"--{name.replace('_', '-')} must be at least 1")
    if settings.request_warmup < 0:
        die("--request-warmup must be 0 or more")
    if settings.hidden % max(settings.heads, 1):
        die(f"--heads ({settings.heads}) must divide --hidden ({settings.hidden})")
    for name in ("id_loss_weight", "prose_loss_weight"):
        if not 0 < getattr(settings, name) < float("inf"):
            die(f"--{name.replace('_', '-')} must be a positive number")
    if settings.copy_attention_weight is not None and not 0 <= settings.copy_attention_weight < float("inf"):
        die("--copy-attention-weight must be 0 or more")
    if settings.adam_beta2 is not None and not 0 < settings.adam_beta2 < 1:
        die("--adam-beta2 must be between 0 and 1 (exclusive)")
    if settings.kto_batch < 2 or settings.kto_size < 2:
        die("KTO needs --kto-batch and --kto-size of at least 2")
    try:
        result = run_loop(settings)
    except UsageError as exc:
        die(str(exc))
    except KeyboardInterrupt:
        die("interrupted; finished stages are kept under " + str(settings.out), 130)
    print("\n" + markdown(settings, result, sum(st.seconds for st in result.stages)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
