"""Pick a backend and where it lives: flags first, then the environment (and ``.env``), then the
servers' usual defaults. Returns a ready ChatClient."""
from __future__ import annotations

import os
from pathlib import Path

from .clients import MAX_ANSWER_BYTES, BackendError, ChatClient

SERVER_BACKENDS = ("lmstudio", "ollama", "vllm", "openai")
EMBEDDED_BACKENDS = ("llamacpp", "transformers", "template")
BACKENDS = SERVER_BACKENDS + EMBEDDED_BACKENDS
LABELS = {"lmstudio": "LM Studio", "ollama": "Ollama", "vllm": "vLLM", "openai": "OpenAI-compatible server",
          "llamacpp": "llama.cpp", "transformers": "transformers", "template": "template teacher"}


def load_dotenv_once(path: str | Path = ".env") -> None:
    """Variables from .env in the working directory; the real environment wins."""
    if Path(path).is_file():
        from dotenv import load_dotenv

        load_dotenv(path, override=False)


def wsl_windows_host() -> str | None:
    """Inside WSL 2, LM Studio usually runs on Windows: its host is WSL's nameserver."""
    try:
        if "microsoft" not in Path("/proc/version").read_text().lower():
            return None
        for line in Path("/etc/resolv.conf").read_text().splitlines():
            if line.startswith("nameserver"):
                return line.split()[1]
    except (OSError, IndexError):
        return None
    return None


def _with_scheme(host: str, default_port: int) -> str:
    host = host.strip().rstrip("/")
    if "://" not in host:
        host = "http://" + host
    if host.count(":") == 1:  # scheme only, no port
        host += f":{default_port}"
    return host


def _v1(url: str) -> str:
    return url if url.rstrip("/").endswith("/v1") else url.rstrip("/") + "/v1"


def resolve_base_url(backend: str, base_url: str | None = None) -> str:
    """The URL a server backend is reached at."""
    if base_url:
        return base_url.rstrip("/") if backend == "ollama" else _v1(_with_scheme(base_url, 80))
    env = os.environ
    if backend == "lmstudio":
        host = env.get("LMSTUDIO_HOST") or wsl_windows_host() or "127.0.0.1"
        return _v1(_with_scheme(host, int(env.get("LMSTUDIO_PORT") or 1234)))
    if backend == "ollama":
        return _with_scheme(env.get("OLLAMA_HOST") or "127.0.0.1:11434", 11434)
    if backend == "vllm":
        return _v1(_with_scheme(env.get("VLLM_HOST") or "127.0.0.1:8000", 8000))
    if backend == "openai":
        return env.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
    raise ValueError(f"{backend} is not a server backend")


def guess_backend(model: str) -> str | None:
    """With no --backend: a .gguf file runs in llama.cpp, a model directory in transformers."""
    path = Path(model)
    if path.suffix == ".gguf" and path.is_file():
        return "llamacpp"
    if path.is_dir() and (path / "config.json").is_file():
        return "transformers"
    return None


def make_client(backend: str, model: str, *, base_url: str | None = None, api_key: str | None = None,
                timeout: float = 60.0, adapter: str | None = None, seed: int = 0,
                max_answer_bytes: int = MAX_ANSWER_BYTES) -> ChatClient:
    """A client for backend; llamacpp with a base URL means llama.cpp's server, not the library.
    ``template`` is SelfPlay's offline teacher (no model; seed fixes its choices)."""
    from .clients import LlamaCppClient, OllamaClient, OpenAICompatClient, TransformersClient

    if backend == "template":
        from SelfPlay.teacher import TemplateClient

        return TemplateClient(model or "teacher", seed=seed)

    if backend == "ollama":
        return OllamaClient(model, resolve_base_url("ollama", base_url), timeout, max_answer_bytes)
    if backend in ("lmstudio", "vllm", "openai") or (backend == "llamacpp" and base_url):
        key = api_key or os.environ.get("OPENAI_API_KEY" if backend == "openai" else f"{backend.upper()}_API_KEY")
        return OpenAICompatClient(model, resolve_base_url("openai" if backend == "llamacpp" else backend, base_url),
                                  key, timeout, backend=backend, max_answer_bytes=max_answer_bytes)
    if backend == "llamacpp":
        if not Path(model).is_file():
            raise BackendError(f"{model}: no such GGUF file (the llamacpp backend takes a .gguf path as --model)")
        return LlamaCppClient(model, timeout)
    if backend == "transformers":
        if not Path(model).is_dir():
            raise BackendError(f"{model}: no such model directory (the transformers backend takes a local directory)")
        if adapter and not Path(adapter).is_dir():
            raise BackendError(f"{adapter}: no such adapter directory")
        return TransformersClient(model, adapter, timeout)
    raise BackendError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")


def connect(backend: str, model: str, *, base_url: str | None = None, api_key: str | None = None, timeout: float = 60.0,
            adapter: str | None = None, seed: int = 0, max_answer_bytes: int = MAX_ANSWER_BYTES) -> ChatClient:
    """A client that has answered once (servers: their model list), or a UsageError saying what to fix."""
    from Tools.cli_common import UsageError

    try:
        client = make_client(backend, model, base_url=base_url, api_key=api_key, timeout=timeout, adapter=adapter, seed=seed,
                             max_answer_bytes=max_answer_bytes)
    except BackendError as exc:
        raise UsageError(str(exc)) from None
    if not client.embedded:
        try:
            client.list_models()
        except BackendError as exc:
            if exc.retryable:
                raise UsageError(f"{LABELS[backend]} is not answering: {exc} (start the server, or pass --base-url)") from None
    return client
