#!/usr/bin/env bash
# SFT then KTO from the SFT adapter (logic in Trainers/shared/pipeline.py; see docs/train-nvidia.md).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-}"
if [ -z "$python" ]; then
  if [ -x "$here/../.venv/bin/python" ]; then python="$here/../.venv/bin/python"; else python="python3"; fi
fi
export PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" -m Trainers.shared.pipeline "$@"
