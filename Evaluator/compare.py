"""python -m Evaluator.compare A.json B.json: what changed between two runs (before and after
KTO, Q4 against Q8, base against fine-tuned on BFCL, ...): overall rates, per BFCL category, per
tool, per failure code, and the cases that flipped."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from Tools.cli_common import ArgumentParser, UsageError, die, format_table


def load_report(path: str | Path) -> dict:
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UsageError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(report, dict) or not {"metadata", "summary", "cases"} <= report.keys():
        raise UsageError(f"{path}: not an evaluator report (expected metadata, summary and cases)")
    return report


def _case_passed(report: dict) -> dict[str, bool]:
    """Case id -> passed in every attempt."""
    result: dict[str, bool] = {}
    for case in report["cases"]:
        result[case["id"]] = result.get(case["id"], True) and case["passed"]
    return result


def compare(a: dict, b: dict) -> dict:
    sa, sb = a["summary"], b["summary"]
    tools = sorted(set(sa.get("per_tool", {})) | set(sb.get("per_tool", {})))
    categories = list(dict.fromkeys([*sa.get("per_category", {}), *sb.get("per_category", {})]))  # BFCL reports
    codes = sorted(set(sa["failure_codes"]) | set(sb["failure_codes"]))
    pa, pb = _case_passed(a), _case_passed(b)
    common = sorted(set(pa) & set(pb))
    warnings = []
    if a["metadata"]["prompt_set"]["sha256"] != b["metadata"]["prompt_set"]["sha256"]:
        warnings.append("the runs used different prompt sets: only cases present in both are compared")
    if a["metadata"].get("schema_hash") != b["metadata"].get("schema_hash"):
        warnings.append("the runs used different tool schemas")
    return {
        "a": {k: a["metadata"][k] for k in ("model", "backend")},
        "b": {k: b["metadata"][k] for k in ("model", "backend")},
        "warnings": warnings,
        "pass_at_1": {"a": sa["pass_at_1"], "b": sb["pass_at_1"]},
        "accuracy": {"a": sa.get("accuracy"), "b": sb.get("accuracy")},  # BFCL: the mean of its categories
        "per_category": {
            c: {
                "a": sa.get("per_category", {}).get(c, {}).get("rate"),
                "b": sb.get("per_category", {}).get(c, {}).get("rate"),
            }
            for c in categories
        },
        "per_tool": {
            t: {"a": sa.get("per_tool", {}).get(t, {}).get("rate"), "b": sb.get("per_tool", {}).get(t, {}).get("rate")}
            for t in tools
        },
        "failure_codes": {
            c: {
                "a": sa["failure_codes"].get(c, {}).get("count", 0),
                "b": sb["failure_codes"].get(c, {}).get("count", 0),
            }
            for c in codes
        },
        "fixed": [c for c in common if not pa[c] and pb[c]],
        "regressed": [c for c in common if pa[c] and not pb[c]],
    }


def _pct(rate) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def _delta(a, b) -> str:
    if a is None or b is None:
        return ""
    return f"{(b - a) * 100:+.1f}" if isinstance(a, float) or isinstance(b, float) else f"{b - a:+d}"


def render(diff: dict) -> list[str]:
    lines = [f"A: {diff['a']['model']} ({diff['a']['backend']})   B: {diff['b']['model']} ({diff['b']['backend']})"]
    lines += [f"warning: {w}" for w in diff["warnings"]]
    lines += ["", f"pass@1: {_pct(diff['pass_at_1']['a'])} -> {_pct(diff['pass_at_1']['b'])}", ""]
    if diff["per_category"]:
        acc = diff["accuracy"]
        lines += [f"BFCL overall (mean of categories): {_pct(acc['a'])} -> {_pct(acc['b'])}", ""]
        lines += format_table(
            [("category", "A", "B", "change (pts)")]
            + [(c, _pct(v["a"]), _pct(v["b"]), _delta(v["a"], v["b"])) for c, v in diff["per_category"].items()]
        ) + [""]
    changed = [
        (t, _pct(v["a"]), _pct(v["b"]), _delta(v["a"], v["b"])) for t, v in diff["per_tool"].items() if v["a"] != v["b"]
    ]
    if diff["per_tool"]:
        lines += format_table([("tool", "A", "B", "change (pts)")] + changed) if changed else ["per tool: no change"]
        lines.append("")
    codes = [(c, v["a"], v["b"], _delta(v["a"], v["b"])) for c, v in diff["failure_codes"].items() if v["a"] != v["b"]]
    lines += format_table([("failure code", "A", "B", "change")] + codes) if codes else ["failure codes: no change"]
    lines += [
        "",
        f"fixed ({len(diff['fixed'])}): {', '.join(diff['fixed']) or '-'}",
        f"regressed ({len(diff['regressed'])}): {', '.join(diff['regressed']) or '-'}",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m Evaluator.compare", description=__doc__.splitlines()[0])
    parser.add_argument("a", help="the earlier report (JSON)")
    parser.add_argument("b", help="the later report (JSON)")
    parser.add_argument("--json", type=Path, help="also write the comparison as JSON here")
    args = parser.parse_args(argv)
    try:
        diff = compare(load_report(args.a), load_report(args.b))
    except UsageError as exc:
        die(str(exc))
    if args.json:
        from Tools.schema.records import write_json_atomic

        write_json_atomic(args.json, diff)
    print("\n".join(render(diff)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
