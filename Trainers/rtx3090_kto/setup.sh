#!/usr/bin/env bash
# The same environment as SFT: one setup for both trainers.
exec "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../rtx3090_sft/setup.sh" "$@"
