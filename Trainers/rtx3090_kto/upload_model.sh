#!/usr/bin/env bash
# Upload the newest KTO run: ./upload_model.sh username/model-name [yes] [flags]  (yes = also GGUF).
# Finds the project's Python and passes every argument on (see docs/export.md).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../python_env.sh"
need_modules "train,hub" yaml huggingface_hub
exec "$python" "$here/src/upload_to_hf.py" latest "$@"
