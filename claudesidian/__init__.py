"""The app layer: orchestration over the library layers (closed loop, self-improvement, the SFT ->
KTO pipeline) and the front door, ``python -m claudesidian <command>``. See docs/architecture.md."""
