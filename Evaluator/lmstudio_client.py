"""LMStudioClient(settings=LMStudioSettings(...)): the earlier project's LM Studio client, a thin
name for the OpenAI-compatible client every command uses (Evaluator/clients.py)."""

from __future__ import annotations

from .clients import OpenAICompatClient
from .config import LMStudioSettings


class LMStudioClient(OpenAICompatClient):
    def __init__(self, settings: LMStudioSettings | None = None):
        self.settings = settings or LMStudioSettings()
        super().__init__(
            self.settings.model, self.settings.url(), self.settings.api_key, self.settings.timeout, backend="lmstudio"
        )
