"""The backend table: one row per backend (its --backend label, display name, where its server
usually listens, the environment variables that move it, the client factory). Evaluator registers
its own rows below; other packages register theirs (SelfPlay's template teacher:
``SelfPlay.backend.register()``, which the entry points call). Where a server is: flags first, then
the environment (and ``.env``), then the row's defaults. Adding a backend is a client class and a row."""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .clients import MAX_ANSWER_BYTES, BackendError, ChatClient


@dataclass(frozen=True)
class ClientOptions:
    """What make_client was asked for; each factory reads what its backend needs."""

    model: str
    base_url: str | None = None
    api_key: str | None = None
    timeout: float = 60.0
    adapter: str | None = None
    seed: int = 0
    max_answer_bytes: int = MAX_ANSWER_BYTES


@dataclass(frozen=True)
class Backend:
    label: str  # as typed after --backend
    name: str  # in messages: "LM Studio is not answering"
    factory: Callable[[Backend, ClientOptions], ChatClient]
    server: bool  # reached over HTTP (else it runs in this process)
    port: int | None = None  # its server's usual port (llamacpp: llama.cpp's server)
    host_env: str | None = None  # host, host:port or URL
    port_env: str | None = None
    key_env: str | None = None  # API key when --api-key is not given
    default_host: str = "127.0.0.1"
    v1: bool = True  # OpenAI-style: the API lives under /v1
    wsl_host: bool = False  # inside WSL 2 the server usually runs on Windows
    # request fields that switch the server's own sampling defaults off, so an answer depends on
    # temperature and max tokens alone, as in the embedded backends: llama.cpp's server, LM Studio and
    # Ollama apply a 1.1 repeat penalty by default, which breaks JSON and copied ids
    neutral_sampling: tuple[tuple[str, float], ...] = ()


_TABLE: dict[str, Backend] = {}


def register_backend(row: Backend) -> Backend:
    """Add a row; registering the same row again is a no-op, another row under a taken label an error."""
    if _TABLE.setdefault(row.label, row) != row:
        raise ValueError(f"backend {row.label!r} is already registered")
    return row


def backend_labels(server: bool | None = None) -> list[str]:
    """The registered labels in registration order; server=True/False: only server / embedded ones."""
    return [label for label, row in _TABLE.items() if server is None or row.server == server]


def get_backend(label: str) -> Backend:
    try:
        return _TABLE[label]
    except KeyError:
        raise BackendError(f"unknown backend {label!r}; expected one of {', '.join(_TABLE)}") from None


def load_dotenv_once(path: str | Path = ".env") -> None:
    """Variables from .env in the working directory, then from the repository root's .env (the
    seed runs uploads from Trainers/rtx3090_kto); the real environment wins, then the nearer file."""
    from dotenv import load_dotenv

    for candidate in dict.fromkeys((Path(path), Path(__file__).resolve().parents[1] / ".env")):
        if candidate.is_file():
            load_dotenv(candidate, override=False)


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


def _split(host: str) -> urllib.parse.SplitResult:
    host = host.strip().rstrip("/")
    parts = urllib.parse.urlsplit(host if "://" in host else "http://" + host)
    try:
        _ = parts.port  # urllib checks the port only when it is read
    except ValueError:
        raise BackendError(f"{host!r} is not a host, host:port or URL") from None
    return parts


def _with_scheme(host: str, default_port: int) -> str:
    """host, host:port or a URL -> a URL: http:// and default_port where missing (https keeps its 443)."""
    parts = _split(host)
    if parts.port is None and parts.scheme == "http":
        parts = parts._replace(netloc=f"{parts.netloc}:{default_port}")
    return urllib.parse.urlunsplit(parts)


def _v1(url: str) -> str:
    return url if url.rstrip("/").endswith("/v1") else url.rstrip("/") + "/v1"


def host_url(backend: str, host: str, port: int | None = None) -> str:
    """--host/--port: scheme://host:port, port from --port, else the host's own, else the backend's usual one."""
    parts = _split(host)
    name = parts.netloc.rpartition(":")[0] if parts.port else parts.netloc
    return f"{parts.scheme}://{name}:{port or parts.port or get_backend(backend).port or 80}"


def resolve_base_url(backend: str, base_url: str | None = None) -> str:
    """The URL a server backend is reached at: base_url, else the row's environment variables, else its defaults."""
    row = get_backend(backend)
    if base_url:
        url = _with_scheme(base_url, 80)
    elif row.server:
        env = os.environ
        host = (row.host_env and env.get(row.host_env)) or (row.wsl_host and wsl_windows_host()) or row.default_host
        url = _with_scheme(host, int((row.port_env and env.get(row.port_env)) or row.port or 80))
    else:
        raise ValueError(f"{backend} is not a server backend")
    return _v1(url) if row.v1 else url


def guess_backend(model: str) -> str | None:
    """With no --backend: a .gguf file runs in llama.cpp, a model directory in transformers."""
    path = Path(model)
    if path.suffix == ".gguf" and path.is_file():
        return "llamacpp"
    if path.is_dir() and (path / "config.json").is_file():
        return "transformers"
    return None


def make_client(
    backend: str,
    model: str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    timeout: float = 60.0,
    adapter: str | None = None,
    seed: int = 0,
    max_answer_bytes: int = MAX_ANSWER_BYTES,
) -> ChatClient:
    """A client for the registered backend; BackendError names the registered labels for an unknown one."""
    row = get_backend(backend)
    return row.factory(row, ClientOptions(model, base_url, api_key, timeout, adapter, seed, max_answer_bytes))


def connect(
    backend: str,
    model: str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    timeout: float = 60.0,
    adapter: str | None = None,
    seed: int = 0,
    max_answer_bytes: int = MAX_ANSWER_BYTES,
) -> ChatClient:
    """A client that has answered once (servers: their model list), or a UsageError saying what to fix."""
    from Tools.cli_common import UsageError

    try:
        client = make_client(
            backend,
            model,
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
            adapter=adapter,
            seed=seed,
            max_answer_bytes=max_answer_bytes,
        )
    except BackendError as exc:
        raise UsageError(str(exc)) from None
    if not client.embedded:
        try:
            models = client.list_models()
        except BackendError as exc:
            if exc.retryable or str(exc).startswith("HTTP 404"):  # a 404: something else listens there
                raise UsageError(
                    f"{get_backend(backend).name} is not answering: {exc} (start the server, or pass --base-url)"
                ) from None
            models = None  # e.g. 401: a server is there; the first request says what it wants
        if backend == "ollama" and model and models is not None and not _ollama_has(models, model):
            raise UsageError(
                f"Ollama at {client.endpoint} has no model {model!r} (it has: {', '.join(models) or 'none'}); "
                f"run: ollama pull {model}"
            )
    return client


def _ollama_has(models: list[str], model: str) -> bool:
    """Ollama lists name:tag; a name without a tag means name:latest."""
    return model in models or (":" not in model and f"{model}:latest" in models)


# -- Evaluator's own rows --------------------------------------------------------------------------
def openai_compatible(row: Backend, o: ClientOptions) -> ChatClient:
    """Any server speaking the OpenAI chat API (a new such server is one row with this factory)."""
    from .clients import OpenAICompatClient

    key = o.api_key or (row.key_env and os.environ.get(row.key_env)) or None
    return OpenAICompatClient(
        o.model,
        resolve_base_url(row.label, o.base_url),
        key,
        o.timeout,
        backend=row.label,
        max_answer_bytes=o.max_answer_bytes,
        sampling=dict(row.neutral_sampling),
    )


def _ollama(row: Backend, o: ClientOptions) -> ChatClient:
    from .clients import OllamaClient

    return OllamaClient(
        o.model,
        resolve_base_url(row.label, o.base_url),
        o.timeout,
        o.max_answer_bytes,
        sampling=dict(row.neutral_sampling),
    )


def _llamacpp(row: Backend, o: ClientOptions) -> ChatClient:
    """The llama.cpp library on a .gguf; with a base URL, llama.cpp's server (OpenAI-compatible)."""
    if o.base_url:
        return openai_compatible(row, o)
    if not Path(o.model).is_file():
        raise BackendError(f"{o.model}: no such GGUF file (the llamacpp backend takes a .gguf path as --model)")
    from .clients import LlamaCppClient

    return LlamaCppClient(o.model, o.timeout)


def _transformers(row: Backend, o: ClientOptions) -> ChatClient:
    if not Path(o.model).is_dir():
        raise BackendError(f"{o.model}: no such model directory (the transformers backend takes a local directory)")
    if o.adapter and not Path(o.adapter).is_dir():
        raise BackendError(f"{o.adapter}: no such adapter directory")
    from .clients import TransformersClient

    return TransformersClient(o.model, o.adapter, o.timeout)


NO_REPEAT_PENALTY = (("repeat_penalty", 1.0),)  # the field llama.cpp's server, LM Studio and Ollama read
for _row in (
    Backend(
        "lmstudio",
        "LM Studio",
        openai_compatible,
        server=True,
        port=1234,
        host_env="LMSTUDIO_HOST",
        port_env="LMSTUDIO_PORT",
        key_env="LMSTUDIO_API_KEY",
        wsl_host=True,
        neutral_sampling=NO_REPEAT_PENALTY,
    ),
    Backend(
        "ollama",
        "Ollama",
        _ollama,
        server=True,
        port=11434,
        host_env="OLLAMA_HOST",
        v1=False,
        neutral_sampling=NO_REPEAT_PENALTY,
    ),
    Backend(
        "vllm",
        "vLLM",
        openai_compatible,
        server=True,
        port=8000,
        host_env="VLLM_HOST",
        key_env="VLLM_API_KEY",
        neutral_sampling=(("repetition_penalty", 1.0),),
    ),
    Backend(
        "openai",
        "OpenAI-compatible server",
        openai_compatible,
        server=True,
        port=80,
        host_env="OPENAI_BASE_URL",
        key_env="OPENAI_API_KEY",
        default_host="https://api.openai.com/v1",
    ),
    Backend(
        "llamacpp",
        "llama.cpp",
        _llamacpp,
        server=False,
        port=8080,
        key_env="LLAMACPP_API_KEY",
        neutral_sampling=NO_REPEAT_PENALTY,
    ),
    Backend("transformers", "transformers", _transformers, server=False),
):
    register_backend(_row)
