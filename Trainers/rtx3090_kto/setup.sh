#!/usr/bin/env bash
# Creates ../../.venv with the training extras; adds unsloth + bitsandbytes when a CUDA GPU is present.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
[ -x "$root/.venv/bin/python" ] || python3 -m venv "$root/.venv"
"$root/.venv/bin/python" -m pip install -e "$root[train,dev]"
if command -v nvidia-smi >/dev/null 2>&1; then "$root/.venv/bin/python" -m pip install -e "$root[gpu]"; fi
"$root/.venv/bin/python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
