# Sourced by the shell entry points: sets $python to $PYTHON, else the project's .venv, else python3,
# and defines need_modules, which stops with what to install when that Python lacks a package.
trainers_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-}"
if [ -z "$python" ]; then
  if [ -x "$trainers_dir/../.venv/bin/python" ]; then python="$trainers_dir/../.venv/bin/python"; else python="python3"; fi
fi

# need_modules EXTRA MODULE...: find_spec only (nothing is imported), so the check costs ~50 ms
need_modules() {
  local extra="$1"; shift
  local missing
  missing="$("$python" -c 'import importlib.util, sys; print(" ".join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))' "$@" 2>/dev/null)" \
    || { echo "error: cannot run $python; install Python 3.10+ and run: bash Trainers/rtx3090_sft/setup.sh" >&2; exit 2; }
  if [ -n "$missing" ]; then
    local root; root="$(cd "$trainers_dir/.." && pwd)"
    echo "error: $python lacks $missing; set up the project's environment: bash $root/Trainers/rtx3090_sft/setup.sh" \
         "(or: $python -m pip install -e '$root${extra:+[$extra]}')" >&2
    exit 2
  fi
}
