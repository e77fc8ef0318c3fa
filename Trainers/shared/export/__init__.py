"""Export a trained model: merge the adapter, GGUF files that call tools correctly in LM Studio,
Ollama and llama.cpp (proved by a round trip through the evaluator), a model card from the run's
lineage, and the Hugging Face upload. Commands in cli.py; see docs/export.md.

Modules: source (what is exported), merge, quantize, templates (+ ollama: the Go check in ollama_check/), roundtrip, card,
hub, build (the two jobs). Heavy dependencies are imported inside the functions that use them.
"""
