# Two commands for a fresh clone: `make demo` (the main job on built-in defaults) and `make test`.
# Each creates or reuses .venv by itself. Override PYTHON or TORCH_SPEC if needed, e.g.
#   make test TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu124"
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check

.PHONY: demo test lint format setup setup-dev clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# core: the data tools only (no torch)
$(VENV)/.core: pyproject.toml | $(PY)
	$(PIP) install -q -e .
	touch $@

# the closed loop (make demo): training, GGUF export and llama.cpp; torch first so a CPU build is not
# replaced by a CUDA one
$(VENV)/.loop: pyproject.toml $(VENV)/.core
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q -e ".[train,mcp,gguf]"
	@# llama.cpp's HF->GGUF converter ships in llama-cpp-python's source distribution (Trainers/shared/gguf.py)
	$(PIP) download -q --no-deps --no-binary :all: -d .cache \
		"llama-cpp-python==$$($(PY) -c 'import llama_cpp; print(llama_cpp.__version__)')"
	touch $@

# everything the test suite exercises
$(VENV)/.dev: pyproject.toml $(VENV)/.loop
	$(PIP) install -q -e ".[dev,train,mcp,gguf,wandb,bfcl,report]"
	@# the MLX trainer is tested for real: Metal build on macOS, CPU build (mlx[cpu]) elsewhere
	$(PIP) install -q -e ".[$$(if [ "$$(uname -s)" = Darwin ]; then echo mac; else echo mlx-cpu; fi)]"
	$(PIP) install -q --no-deps "bfcl-eval==2026.3.23"  # BFCL's data and checker; its deps: the bfcl extra (pyproject.toml)
	touch $@

setup: $(VENV)/.core
setup-dev: $(VENV)/.dev

# the closed loop on built-in defaults: teacher data -> validate -> interleave -> SFT (a model built
# from scratch) -> KTO -> GGUF -> evaluation (embedded llama.cpp and its server) -> report, all in
# demo_output/ (ignored by git). To also rewrite the closed-loop section of docs/benchmarks.md:
#   make demo DEMO_FLAGS="--benchmarks-md docs/benchmarks.md"      Flags: python Tools/closed_loop.py --help
demo: $(VENV)/.loop
	$(PY) Tools/closed_loop.py --out demo_output $(DEMO_FLAGS)

test: $(VENV)/.dev
	$(PY) -m pytest tests

# ruff (pinned in the dev extra; settings in pyproject.toml): CI and the pre-commit hooks run `make lint`
lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
