"""SelfPlay's rows in the evaluator's backend table: the offline template teacher (``--backend template``).
Evaluator (layer 1) cannot import SelfPlay, so every entry point that reads --backend calls register()."""

from __future__ import annotations

from Evaluator.backends import Backend, ClientOptions, register_backend


def _template(row: Backend, options: ClientOptions):
    from SelfPlay.teacher import TemplateClient  # the teacher loads its templates only when asked for

    return TemplateClient(options.model or "teacher", seed=options.seed)


TEMPLATE = Backend("template", "template teacher", _template, server=False)


def register() -> None:
    """Add the rows that live above the evaluator (idempotent): the one place entry points call."""
    register_backend(TEMPLATE)
