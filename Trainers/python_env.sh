# Sourced by the train.sh scripts: sets $python to $PYTHON, else the project's .venv, else python3.
trainers_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-}"
if [ -z "$python" ]; then
  if [ -x "$trainers_dir/../.venv/bin/python" ]; then python="$trainers_dir/../.venv/bin/python"; else python="python3"; fi
fi
