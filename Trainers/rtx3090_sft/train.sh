#!/usr/bin/env bash
# SFT training: finds the project's Python and passes every flag on (see docs/train-nvidia.md).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../python_env.sh"
need_modules "train" yaml torch transformers trl peft datasets
# the folder's config first: a --config given by the user comes later and wins
exec "$python" "$here/train_sft.py" --config "$here/configs/config.yaml" "$@"
