"""LMStudioSettings: the earlier project's settings object for LM Studio, kept so its code runs:

    from Evaluator.config import LMStudioSettings
    from Evaluator.lmstudio_client import LMStudioClient
    client = LMStudioClient(settings=LMStudioSettings(model="local-model"))

The server is found as every other command finds it (Evaluator/backends.py: LMSTUDIO_HOST,
LMSTUDIO_PORT, WSL's Windows host, else 127.0.0.1:1234) unless host / port / base_url say otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LMStudioSettings:
    model: str = "local-model"
    host: str | None = None
    port: int | None = None
    base_url: str | None = None  # the whole URL, instead of host and port
    api_key: str | None = None
    timeout: float = 60.0

    def url(self) -> str:
        from .backends import resolve_base_url

        if self.base_url:
            return resolve_base_url("lmstudio", self.base_url)
        if self.host or self.port:
            return resolve_base_url("lmstudio", f"{self.host or '127.0.0.1'}:{self.port or 1234}")
        return resolve_base_url("lmstudio")
