#!/usr/bin/env bash
# Self-play generation presets (see docs/generate.md): finds the project's Python, passes the rest on.
#   SelfPlay/run.sh --quick | --standard | --large | --num N   [--output F] [run_generation.py flags...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../Trainers/python_env.sh"
num=100
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) num=10 ;;
    --standard) num=100 ;;
    --large) num=1000 ;;
    --num) [ $# -ge 2 ] || { echo "error: --num needs a number" >&2; exit 2; }; num="$2"; shift ;;
    --output) [ $# -ge 2 ] || { echo "error: --output needs a file" >&2; exit 2; }; args+=(--output "$2"); shift ;;
    *) args+=("$1") ;;
  esac
  shift
done
exec "$python" "$here/run_generation.py" --num-examples "$num" ${args[@]+"${args[@]}"}
