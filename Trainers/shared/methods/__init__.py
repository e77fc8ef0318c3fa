"""Training methods, one unit each: its config section and defaults, data check, row builder, TRL
trainer factory and MLX loss (base.Method lists the questions). A new method is one file here plus
a row in METHODS; config, command lines, the daemon and both trainers pick it up from this table.
"""

from __future__ import annotations

from Tools.cli_common import UsageError

from .base import Method
from .dpo import DPO
from .kto import KTO
from .sft import SFT

METHODS: dict[str, Method] = {m.name: m for m in (SFT, KTO, DPO)}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise UsageError(f"unknown method {name!r}; expected one of {', '.join(METHODS)}")
    return METHODS[name]
