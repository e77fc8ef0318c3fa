#!/usr/bin/env bash
# SFT then KTO from the SFT adapter (logic in claudesidian/pipeline.py; see docs/train-nvidia.md).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/python_env.sh"
need_modules "train" yaml torch transformers trl peft datasets
export PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" -m claudesidian pipeline "$@"
