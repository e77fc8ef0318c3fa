#!/usr/bin/env bash
# SFT training: finds the project's Python and passes every flag on (see docs/train-nvidia.md).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-}"
if [ -z "$python" ]; then
  if [ -x "$here/../../.venv/bin/python" ]; then python="$here/../../.venv/bin/python"; else python="python3"; fi
fi
args=("$@")
if [[ " $* " != *" --config "* ]]; then args=(--config "$here/configs/config.yaml" "$@"); fi
exec "$python" "$here/train_sft.py" "${args[@]}"
