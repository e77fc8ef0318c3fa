#!/usr/bin/env bash
# KTO training: finds the project's Python and passes every flag on (see docs/train-nvidia.md).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-}"
if [ -z "$python" ]; then
  if [ -x "$here/../../.venv/bin/python" ]; then python="$here/../../.venv/bin/python"; else python="python3"; fi
fi
# the folder's config first: a --config given by the user comes later and wins
exec "$python" "$here/train_kto.py" --config "$here/configs/config.yaml" "$@"
