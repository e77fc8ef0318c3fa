#!/usr/bin/env bash
# Self-play generation presets (see docs/generate.md): finds the project's Python, passes the rest on.
#   SelfPlay/run.sh --quick | --standard | --large | --num N   [--output F] [run_generation.py flags...]
# As the earlier project: valid examples to SelfPlay/selfplay_output.jsonl, invalid ones to
# SelfPlay/selfplay_output_invalid.jsonl (an existing file is continued only with --resume).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../Trainers/python_env.sh"
need_modules "" yaml orjson jsonschema_rs
num=100
output="$here/selfplay_output.jsonl"
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) num=10 ;;
    --standard) num=100 ;;
    --large) num=1000 ;;
    --num) [ $# -ge 2 ] || { echo "error: --num needs a number" >&2; exit 2; }; num="$2"; shift ;;
    --output) [ $# -ge 2 ] || { echo "error: --output needs a file" >&2; exit 2; }; output="$2"; shift ;;
    *) args+=("$1") ;;
  esac
  shift
done
exec "$python" "$here/run_generation.py" --num-examples "$num" --output "$output" ${args[@]+"${args[@]}"}
