"""One client interface for every backend.

``chat(messages, tools, temperature, max_tokens) -> Reply`` returns the assistant message as a
dict in OpenAI shape (``content`` and, when the server produced them, native ``tool_calls``) and
raises BackendError, whose ``retryable`` says whether the runner should try again (refused
connection, 429, 5xx, timeout, truncated body) and whose ``code`` is the case's finding code.

- OpenAICompatClient: ``/v1/chat/completions`` and ``/v1/models`` of LM Studio, vLLM, llama.cpp's
  server, OpenAI or any ``--base-url``.
- OllamaClient: Ollama's native ``/api/chat`` (streamed NDJSON, object-valued tool-call
  arguments) and ``/api/tags``.
- LlamaCppClient / TransformersClient: embedded, no server; one generation at a time.

Both server clients go through ``fetch``: one deadline for the whole request (connect, headers,
body), a cap on the bytes kept, and every malformed answer (not JSON, wrong shape or content type,
nested too deep, invalid Unicode, too large) as a BackendError with code E_BAD_SERVER_ANSWER.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

MAX_ANSWER_BYTES = 4 * 1024 * 1024  # the default cap on one answer's body (--max-answer-bytes)
MAX_RETRY_AFTER_S = 60.0  # a server's Retry-After is honoured up to this
MAX_DEPTH = 100  # deeper JSON is no chat answer (and would not survive the report writer's recursion)
BAD_ANSWER = "E_BAD_SERVER_ANSWER"


class BackendError(Exception):
    def __init__(
        self, message: str, retryable: bool = False, code: str = "E_NO_RESPONSE", retry_after: float | None = None
    ):
        super().__init__(message)
        self.retryable = retryable
        self.code = code
        self.retry_after = retry_after  # seconds the server asked us to wait (Retry-After), capped


@dataclass
class Reply:
    message: dict  # {"role": "assistant", "content": str|None, "tool_calls"?: [...]}
    raw: dict = field(default_factory=dict)  # what the backend returned, for the report
    finish_reason: str | None = None


class ChatClient:
    backend = "base"
    embedded = False

    def __init__(self, model: str, timeout: float = 60.0):
        self.model = model
        self.timeout = timeout

    @property
    def endpoint(self) -> str:
        return self.model

    def chat(
        self, messages: list[dict], tools: list[dict] | None = None, temperature: float = 0.0, max_tokens: int = 512
    ) -> Reply:
        raise NotImplementedError

    def list_models(self) -> list[str]:
        return [self.model]

    def close(self) -> None:
        """Release what the client holds (embedded models keep their weights until then)."""


def _assistant(message: dict) -> dict:
    """The parts of an assistant message the scorer reads, nothing the server added besides."""
    result = {"role": "assistant", "content": message.get("content")}
    if message.get("tool_calls"):
        result["tool_calls"] = message["tool_calls"]
    return result


# -- HTTP with a deadline and a size cap -------------------------------------------------------
def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds (``120``) or an HTTP date, capped at MAX_RETRY_AFTER_S; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value) if value.isdigit() else parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _shut(sock: socket.socket | None) -> None:
    """Shut a socket so that a read (or a connect handshake) blocked on it returns at once."""
    try:
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _connection(parts: urllib.parse.SplitResult, timeout: float):
    """(connection, request target): straight to the server, or through the proxy the environment
    names (HTTP_PROXY, HTTPS_PROXY, NO_PROXY): plain HTTP in absolute form, HTTPS through a CONNECT tunnel."""
    import urllib.request

    path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    proxy = None if urllib.request.proxy_bypass(parts.hostname or "") else urllib.request.getproxies().get(parts.scheme)
    via = urllib.parse.urlsplit(proxy if "://" in proxy else "http://" + proxy) if proxy else None
    if parts.scheme == "https":
        if via is None:
            return http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout), path
        connection = http.client.HTTPSConnection(via.hostname, via.port or 80, timeout=timeout)
        connection.set_tunnel(parts.hostname, parts.port or 443)
        return connection, path
    if via is None:
        return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout), path
    return http.client.HTTPConnection(via.hostname, via.port or 80, timeout=timeout), urllib.parse.urlunsplit(parts)


def fetch(
    url: str,
    *,
    method: str = "GET",
    payload=None,
    headers: dict | None = None,
    timeout: float = 60.0,
    max_bytes: int = MAX_ANSWER_BYTES,
    in_flight: set | None = None,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """(status, headers, body) of one request that ends within ``timeout`` seconds, all included
    (a server trickling bytes cannot hold it longer), keeping at most ``max_bytes`` of body.
    The socket sits in ``in_flight`` while the request runs (ServerClient.close cuts it). Raises BackendError."""
    parts = urllib.parse.urlsplit(url)
    where = f"{parts.scheme}://{parts.netloc}"
    deadline = time.monotonic() + timeout
    late = BackendError(f"no complete answer within {timeout:g} s", retryable=True)
    connection, target = _connection(parts, timeout)
    held: list = []  # the socket, ours to the end: http.client drops it once a response says Connection: close
    watchdog = threading.Timer(timeout, lambda: _shut(held[0] if held else connection.sock))
    watchdog.daemon = True
    watchdog.start()
    try:
        connection.connect()  # a proxy's CONNECT and the TLS handshake included
        sock = connection.sock
        held.append(sock)
        if in_flight is not None:
            in_flight.add(sock)
        body = None if payload is None else json.dumps(payload).encode()
        connection.request(method, target, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        chunks, size = [], 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise late
            sock.settimeout(remaining)
            chunk = response.read1(65536)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise BackendError(
                    f"the answer from {where} is larger than {max_bytes} bytes (--max-answer-bytes)", code=BAD_ANSWER
                )
            chunks.append(chunk)
        if time.monotonic() >= deadline:  # the watchdog cut the body short
            raise late
        if response.length:  # Content-Length promised more than came
            raise BackendError(f"the answer from {where} broke off after {size} bytes", retryable=True)
    except BackendError:
        raise
    except (http.client.RemoteDisconnected, http.client.IncompleteRead) as exc:
        raise (
            late
            if time.monotonic() >= deadline
            else BackendError(f"the answer from {where} broke off: {exc.__class__.__name__}", retryable=True)
        ) from None
    except (http.client.HTTPException, ValueError) as exc:  # a status line, headers or chunks that are not HTTP
        raise BackendError(
            f"{where} answered something that is not HTTP: {exc.__class__.__name__}", code=BAD_ANSWER
        ) from None
    except OSError as exc:  # refused, reset, timed out, or cut by the watchdog
        if isinstance(exc, TimeoutError) or time.monotonic() >= deadline:
            raise late from None
        raise BackendError(f"cannot reach {url}: {exc.strerror or exc.__class__.__name__}", retryable=True) from None
    finally:
        watchdog.cancel()
        if in_flight is not None and held:
            in_flight.discard(held[0])
        connection.close()
    if response.status >= 400:
        detail = _error_detail(b"".join(chunks))
        raise BackendError(
            f"HTTP {response.status} from {url}: {detail}",
            retryable=response.status >= 500 or response.status == 429,
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        )
    return response.status, response.headers, b"".join(chunks)


def _error_detail(body: bytes) -> str:
    """What an error body says: OpenAI's error.message, Ollama's error, else the start of the text."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError, RecursionError):
        error = None
    if isinstance(error, dict):
        error = error.get("message")
    return str(error)[:300] if error else body[:300].decode("utf-8", "replace")


def _check_tree(value, where: str) -> None:
    """Raise E_BAD_SERVER_ANSWER for JSON nested deeper than MAX_DEPTH or holding a lone surrogate
    (valid JSON escapes, but no Unicode text: the report could not be written as UTF-8)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BackendError(f"malformed answer from {where}: JSON nested deeper than {MAX_DEPTH}", code=BAD_ANSWER)
        if isinstance(item, dict):
            stack += [(k, depth) for k in item] + [(v, depth + 1) for v in item.values()]
        elif isinstance(item, list):
            stack += [(v, depth + 1) for v in item]
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise BackendError(
                    f"malformed answer from {where}: a lone surrogate {item[:40]!r}", code=BAD_ANSWER
                ) from None


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text[:20]} is out of range")
    return value


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def parse_json(data: bytes, where: str):
    """A JSON value from a server, or E_BAD_SERVER_ANSWER (NaN and infinities included: the report
    must stay JSON every reader accepts)."""
    try:
        value = json.loads(data, parse_float=_finite, parse_constant=_no_constant)
    except RecursionError:
        raise BackendError(f"malformed answer from {where}: JSON nested too deep", code=BAD_ANSWER) from None
    except ValueError:  # not JSON, or not UTF-8
        raise BackendError(f"malformed answer from {where}: not JSON: {data[:120]!r}", code=BAD_ANSWER) from None
    _check_tree(value, where)
    return value


def _require_json(headers, where: str, *accepted: str) -> None:
    kind = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if kind and kind not in accepted:
        raise BackendError(
            f"malformed answer from {where}: content type {kind!r}, expected {' or '.join(accepted)}", code=BAD_ANSWER
        )


def _check_message(message, where: str, pieces: bool = False) -> dict:
    """An assistant message: an object (or null). The model's own mistakes inside it, content that
    is not a string included, are the scorer's to judge (E_CONTENT_TYPE, ...), except in Ollama's
    stream (``pieces``), where content must be text and tool_calls a list of objects to be joined."""
    if message is None:
        return {}
    if not isinstance(message, dict):
        raise BackendError(
            f"malformed answer from {where}: the message is {type(message).__name__}, not an object", code=BAD_ANSWER
        )
    content, calls = message.get("content"), message.get("tool_calls")
    if pieces and content is not None and not isinstance(content, str):
        raise BackendError(f"malformed answer from {where}: content is {type(content).__name__}", code=BAD_ANSWER)
    if pieces and calls is not None and not (isinstance(calls, list) and all(isinstance(c, dict) for c in calls)):
        raise BackendError(f"malformed answer from {where}: tool_calls is not a list of objects", code=BAD_ANSWER)
    return message


class ServerClient(ChatClient):
    """A client of an HTTP server: every request through ``fetch`` with the client's limits."""

    def __init__(self, model: str, timeout: float = 60.0, max_answer_bytes: int = MAX_ANSWER_BYTES):
        super().__init__(model, timeout)
        self.max_answer_bytes = max_answer_bytes
        self._in_flight: set = set()

    def _fetch(self, url: str, payload=None, headers: dict | None = None):
        return fetch(
            url,
            method="GET" if payload is None else "POST",
            payload=payload,
            headers=headers,
            timeout=self.timeout,
            max_bytes=self.max_answer_bytes,
            in_flight=self._in_flight,
        )

    def close(self) -> None:
        """Cut the requests still running (after Ctrl-C: the process need not wait for their answers)."""
        for sock in list(self._in_flight):
            _shut(sock)


# -- OpenAI-compatible servers -----------------------------------------------------------------
class OpenAICompatClient(ServerClient):
    def __init__(
        self,
        model: str,
        base_url: str,
        api_key: str | None = None,
        timeout: float = 60.0,
        backend: str = "openai",
        max_answer_bytes: int = MAX_ANSWER_BYTES,
        sampling: dict | None = None,
    ):
        super().__init__(model, timeout, max_answer_bytes)
        self.backend = backend
        self.sampling = sampling or {}  # the backend row's neutral_sampling, sent with every request
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key or 'not-needed'}"}

    @property
    def endpoint(self) -> str:
        return self.base_url

    def _json(self, path: str, payload=None):
        url = self.base_url + path
        _, headers, body = self._fetch(url, payload, self._headers)
        _require_json(headers, url, "application/json")
        return parse_json(body, url)

    def chat(self, messages, tools=None, temperature=0.0, max_tokens=512) -> Reply:
        url = self.base_url + "/chat/completions"
        extra = {"tools": tools} if tools else {}
        raw = self._json(
            "/chat/completions",
            {
                "model": self.model,
                "messages": messages,
                "temperature": temperature,
                "max_tokens": max_tokens,
                **self.sampling,
                **extra,
            },
        )
        choices = raw.get("choices") if isinstance(raw, dict) else None
        if not (isinstance(choices, list) and choices and isinstance(choices[0], dict)):
            raise BackendError(f"malformed answer from {url}: no choices ({json.dumps(raw)[:200]})", code=BAD_ANSWER)
        finish = choices[0].get("finish_reason")
        message = _check_message(choices[0].get("message"), url)
        return Reply(_assistant(message), raw, finish if isinstance(finish, str) else None)

    def list_models(self) -> list[str]:
        url = self.base_url + "/models"
        data = self._json("/models")
        try:
            return sorted(str(m["id"]) for m in data["data"])
        except (TypeError, KeyError):
            raise BackendError(f"malformed answer from {url}: no model list", code=BAD_ANSWER) from None


# -- Ollama's native API -----------------------------------------------------------------------
class OllamaClient(ServerClient):
    backend = "ollama"

    def __init__(
        self,
        model: str,
        host: str,
        timeout: float = 60.0,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
        sampling: dict | None = None,
    ):
        super().__init__(model, timeout, max_answer_bytes)
        self.host = host.rstrip("/")
        self.sampling = sampling or {}

    @property
    def endpoint(self) -> str:
        return self.host

    def chat(self, messages, tools=None, temperature=0.0, max_tokens=512) -> Reply:
        body = {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "options": {**self.sampling, "temperature": temperature, "num_predict": max_tokens},
        }
        if tools:
            body["tools"] = tools
        where = self.host + "/api/chat"
        _, headers, data = self._fetch(where, body)
        _require_json(headers, where, "application/x-ndjson", "application/json")
        content, tool_calls, last = [], [], None
        for line in data.splitlines():
            if not line.strip():
                continue
            chunk = parse_json(line, where)
            if not isinstance(chunk, dict):
                raise BackendError(f"malformed chunk in Ollama's stream: {line[:120]!r}", code=BAD_ANSWER)
            if "error" in chunk:
                raise BackendError(f"Ollama: {str(chunk['error'])[:300]}")
            message = _check_message(chunk.get("message"), where, pieces=True)
            content.append(message.get("content") or "")
            tool_calls += message.get("tool_calls") or []
            last = chunk
            if chunk.get("done"):
                break
        if not last or not last.get("done"):
            raise BackendError(
                f"malformed answer from {where}: the stream has no final chunk (done: true)", code=BAD_ANSWER
            )
        message = {"role": "assistant", "content": "".join(content)}
        if tool_calls:
            message["tool_calls"] = tool_calls
        raw = {k: v for k, v in last.items() if k != "message"} | {"message": message}
        reason = last.get("done_reason")
        return Reply(message, raw, reason if isinstance(reason, str) else None)

    def list_models(self) -> list[str]:
        where = self.host + "/api/tags"
        _, headers, data = self._fetch(where)
        try:
            return sorted(str(m["name"]) for m in parse_json(data, where).get("models", []))
        except (KeyError, TypeError, AttributeError):
            raise BackendError(f"malformed answer from {where}", code=BAD_ANSWER) from None


# -- embedded backends -------------------------------------------------------------------------
def plain_cpu_buffers() -> None:
    """On a CPU with AMX, llama.cpp (llama-cpp-python 0.3.x) moves Q8_0 weights into its AMX buffers,
    and decoding then crashes with SIGSEGV on small models (a 64- or 128-wide Llama; seen on a Xeon
    with AMX_INT8, where the f16 file of the same model runs). There, every model loads into plain CPU
    buffers instead (llama.cpp's use_extra_bufts off), at some speed on AMX machines and nowhere else."""
    import llama_cpp.llama_cpp as lib

    if b"AMX_INT8 = 1" not in lib.llama_print_system_info() or getattr(lib, "_plain_cpu_buffers", False):
        return
    default_params = lib.llama_model_default_params

    def params():
        value = default_params()
        value.use_extra_bufts = False
        return value

    lib.llama_model_default_params = params  # what llama_cpp.Llama reads its model parameters from
    lib._plain_cpu_buffers = True


class LlamaCppClient(ChatClient):
    """A GGUF file through llama-cpp-python, chat template from the GGUF's metadata."""

    backend = "llamacpp"
    embedded = True

    def __init__(self, model: str, timeout: float = 60.0, n_ctx: int = 4096):
        super().__init__(model, timeout)
        try:
            from llama_cpp import Llama
        except ImportError:
            raise BackendError(
                "the llamacpp backend needs llama-cpp-python: pip install 'llama-cpp-python[server]'"
            ) from None
        plain_cpu_buffers()
        self._lock = threading.Lock()  # a Llama context serves one generation at a time
        self._llm = Llama(model_path=model, n_ctx=n_ctx, verbose=False)
        if self._llm.metadata.get("tokenizer.chat_template"):  # the GGUF's template, with its BOS as served
            from .llama_server import template_handler

            self._llm.chat_handler = template_handler(self._llm)

    def chat(self, messages, tools=None, temperature=0.0, max_tokens=512) -> Reply:
        extra = {"tools": tools} if tools else {}
        with self._lock:
            try:
                raw = self._llm.create_chat_completion(
                    messages=messages, temperature=temperature, max_tokens=max_tokens, **extra
                )
            except ValueError as exc:  # e.g. the prompt does not fit the context window
                raise BackendError(f"llama.cpp: {exc}") from None
        choice = raw["choices"][0]
        return Reply(_assistant(choice.get("message") or {}), raw, choice.get("finish_reason"))

    def close(self) -> None:
        self._llm.close()


class TransformersClient(ChatClient):
    """A local Hugging Face model directory, plus a PEFT adapter directory when given."""

    backend = "transformers"
    embedded = True

    def __init__(self, model: str, adapter: str | None = None, timeout: float = 60.0):
        super().__init__(model, timeout)
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise BackendError(
                "the transformers backend needs torch and transformers: pip install -e '.[train]'"
            ) from None
        self._torch = torch
        self._lock = threading.Lock()
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self._model = AutoModelForCausalLM.from_pretrained(model)
        if adapter:
            from peft import PeftModel

            self._model = PeftModel.from_pretrained(self._model, adapter)
        self._model.eval()
        self.adapter = adapter

    def chat(self, messages, tools=None, temperature=0.0, max_tokens=512) -> Reply:
        tokenizer = self.tokenizer
        ids = tokenizer.apply_chat_template(
            messages, tools=tools, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        with self._lock, self._torch.no_grad():
            output = self._model.generate(
                **ids, max_new_tokens=max_tokens, pad_token_id=tokenizer.pad_token_id, **sampling
            )
        new = output[0][ids["input_ids"].shape[1] :]
        # Special tokens stay: <tool_call> markers are special in many tokenizers; only EOS/pad go.
        text = tokenizer.decode(new, skip_special_tokens=False)
        for token in {tokenizer.eos_token, tokenizer.pad_token} - {None}:
            text = text.replace(token, "")
        finish = "length" if len(new) >= max_tokens else "stop"
        return Reply({"role": "assistant", "content": text.strip()}, {"text": text, "tokens": len(new)}, finish)
