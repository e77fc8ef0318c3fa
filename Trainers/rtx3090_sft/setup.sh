#!/usr/bin/env bash
# Creates ../../.venv with the training extras; adds unsloth + bitsandbytes when a CUDA GPU is present.
#   bash setup.sh                    install, then check the installation (python -m Trainers.doctor)
#   bash setup.sh --quick            install only, no check
#   bash setup.sh --with-flash-attn  also build flash-attn (CUDA only; takes 5-10 minutes)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
check=1 flash=0
for arg in "$@"; do
  case "$arg" in
    --quick) check=0 ;;
    --with-flash-attn) flash=1 ;;
    -h|--help) sed -n '2,5p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown option $arg (expected --quick, --with-flash-attn)" >&2; exit 2 ;;
  esac
done
cuda=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then cuda=1; fi
if [ "$flash" = 1 ] && [ "$cuda" = 0 ]; then
  echo "error: --with-flash-attn needs a CUDA GPU (nvidia-smi finds none)" >&2; exit 2
fi
[ -x "$root/.venv/bin/python" ] || python3 -m venv "$root/.venv"
py="$root/.venv/bin/python"
"$py" -m pip install -e "$root[train,dev,wandb,hub]"
if [ "$cuda" = 1 ]; then "$py" -m pip install -e "$root[gpu]"; fi
# flash-attn compiles against the installed torch, hence no build isolation
if [ "$flash" = 1 ]; then "$py" -m pip install --no-build-isolation -e "$root[flash]"; fi
if [ "$check" = 1 ]; then "$py" -m Trainers.doctor; fi
