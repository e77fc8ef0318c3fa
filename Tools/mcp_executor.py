"""Execute Claudesidian / Nexus tool calls against a real folder of markdown files.

Library:  from Tools.mcp_executor import VaultExecutor, execute_call
          execute_call("path/to/vault", {"name": "vaultManager_createFolder", "arguments": {...}}) -> envelope

CLI:
  python Tools/mcp_executor.py --vault PATH --call '{"name": ..., "arguments": {...}}'
      executes one call in PATH itself and prints the plugin's result envelope (exit 1 if success:false)
  python Tools/mcp_executor.py --from DATA.jsonl [--vault TEMPLATE] [--label --out OUT.jsonl] [--report R.jsonl]
      executes every assistant tool call of every record, each record in a fresh sandbox copy of the
      vault (Datasets/vault_template by default), and reports per-record success; --label writes the
      records with `label` set from execution (true when every call succeeded).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from Tools.cli_common import EXIT_FINDINGS, EXIT_OK, ArgumentParser, die, format_table  # noqa: E402
from Tools.vault.executor import Outcome, ToolError, VaultExecutor, envelope_json, execute_call  # noqa: E402

__all__ = ["Outcome", "ToolError", "VaultExecutor", "execute_call", "execute_record", "main"]


def record_calls(record: dict) -> list:
    """Every tool call of the record's assistant messages, in conversation order."""
    from Tools.schema.records import messages
    from Tools.schema.toolcalls import parse_message

    calls = []
    for index, message in enumerate(messages(record)):
        if isinstance(message, dict) and message.get("role") == "assistant":
            calls.extend(parse_message(message, index).calls)
    return calls


def execute_record(sandbox, record: dict) -> dict:
    """Run one record's calls in a freshly reset sandbox; per-call outcomes and what changed on disk."""
    sandbox.reset()
    results = []
    for call in record_calls(record):
        outcome = sandbox.execute_detailed(call)
        results.append(
            {
                "name": call.name,
                "success": outcome.ok,
                "code": outcome.code,
                "error": outcome.envelope.get("error") if not outcome.ok else None,
            }
        )
    return {
        "calls": results,
        "success": bool(results) and all(r["success"] for r in results),
        "changes": sandbox.changes().to_dict(),
    }


def _run_one(args) -> int:
    try:
        call = json.loads(args.call)
    except ValueError as exc:
        die(f"--call is not valid JSON: {exc}")
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        die('--call must be a JSON object like {"name": "...", "arguments": {...}}')
    try:
        executor = VaultExecutor(args.vault, strict=args.strict_semantics, trace_calls=args.trace_calls)
    except FileNotFoundError as exc:
        die(str(exc))
    outcome = executor.execute_detailed(call)
    print(envelope_json(outcome.envelope, indent=2))
    return EXIT_OK if outcome.ok else EXIT_FINDINGS


def _run_dataset(args) -> int:
    from Tools.schema.records import JsonlAppender, iter_jsonl, write_jsonl_atomic
    from Tools.vault.sandbox import DEFAULT_TEMPLATE, VaultSandbox

    source = Path(args.source)
    if not source.is_file():
        die(f"{source}: no such file")
    if args.label and not args.out:
        die("--label needs --out FILE.jsonl for the labelled records")
    try:
        sandbox = VaultSandbox(
            args.vault or DEFAULT_TEMPLATE, strict=args.strict_semantics, trace_calls=args.trace_calls
        )
    except FileNotFoundError as exc:
        die(str(exc))
    labelled, totals, codes = [], {"records": 0, "with calls": 0, "ok": 0, "failed": 0, "calls": 0, "bad lines": 0}, {}
    report = JsonlAppender(args.report) if args.report else None
    try:
        for line in iter_jsonl(source):
            if line.error is not None or not isinstance(line.record, dict):
                totals["bad lines"] += 1
                print(f"line {line.number}: skipped ({line.error.message if line.error else 'not an object'})")
                continue
            totals["records"] += 1
            try:
                result = execute_record(sandbox, line.record)
            except Exception as exc:  # a record nothing can read is one failed line, never the end of the run
                totals["bad lines"] += 1
                print(f"line {line.number}: skipped (unreadable record: {type(exc).__name__})")
                continue
            record = line.record
            if result["calls"]:
                totals["with calls"] += 1
                totals["calls"] += len(result["calls"])
                totals["ok" if result["success"] else "failed"] += 1
                for call in result["calls"]:
                    if call["code"]:
                        codes[call["code"]] = codes.get(call["code"], 0) + 1
                if args.label:
                    record = {**record, "label": result["success"]}
            failed = [f"{c['name']}: {c['error']}" for c in result["calls"] if not c["success"]]
            status = (
                "no calls" if not result["calls"] else "ok" if result["success"] else "FAILED " + " | ".join(failed)
            )
            print(f"line {line.number}: {status}")
            if report:
                report.write({"line": line.number, **result})
            labelled.append(record)
    finally:
        sandbox.close()
        if report:
            report.close()
    if args.label:
        write_jsonl_atomic(args.out, labelled)
    print("\n".join(format_table([("metric", "count"), *totals.items(), *sorted(codes.items())])))
    return EXIT_FINDINGS if totals["failed"] else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="mcp_executor", description="Execute tool calls against a folder of markdown files.")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--call", help='one call as JSON: {"name": ..., "arguments": {...}}')
    what.add_argument(
        "--from", dest="source", metavar="FILE.jsonl", help="execute every assistant tool call of a dataset"
    )
    parser.add_argument(
        "--vault", help="vault folder (--call: required, changed in place; --from: template copied per record)"
    )
    parser.add_argument("--label", action="store_true", help="with --from: set each record's label from execution")
    parser.add_argument("--out", help="with --label: where to write the labelled records")
    parser.add_argument("--report", help="with --from: per-record results as JSONL")
    parser.add_argument(
        "--strict-semantics",
        action="store_true",
        help="refuse the plugin's surprising behaviours (fuzzy replace, $ patterns, glued appends)",
    )
    parser.add_argument(
        "--trace-calls",
        action="store_true",
        help="record a tool_call memory trace per call, as the plugin's server does",
    )
    args = parser.parse_args(argv)
    if args.call is not None:
        if not args.vault:
            die("--call needs --vault PATH")
        return _run_one(args)
    return _run_dataset(args)


if __name__ == "__main__":
    raise SystemExit(main())
