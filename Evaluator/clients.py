"""One client interface for every backend.

``chat(messages, tools, temperature, max_tokens) -> Reply`` returns the assistant message as a
dict in OpenAI shape (``content`` and, when the server produced them, native ``tool_calls``) and
raises BackendError, whose ``retryable`` says whether the runner should try again (refused
connection, 5xx, timeout, truncated stream) or record the failure at once (4xx, bad body).

- OpenAICompatClient: the ``openai`` SDK against LM Studio, vLLM, llama.cpp's server, OpenAI or
  any ``--base-url``.
- OllamaClient: Ollama's native ``/api/chat`` (streamed NDJSON, object-valued tool-call
  arguments) and ``/api/tags``.
- LlamaCppClient / TransformersClient: embedded, no server; one generation at a time.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field


class BackendError(Exception):
    def __init__(self, message: str, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


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

    def chat(self, messages: list[dict], tools: list[dict] | None = None, temperature: float = 0.0,
             max_tokens: int = 512) -> Reply:
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


# -- OpenAI-compatible servers -----------------------------------------------------------------
class OpenAICompatClient(ChatClient):
    def __init__(self, model: str, base_url: str, api_key: str | None = None, timeout: float = 60.0,
                 backend: str = "openai"):
        super().__init__(model, timeout)
        from openai import OpenAI  # lazy: the SDK costs ~0.3 s to import

        self.backend = backend
        self.base_url = base_url
        # Retries are the runner's (with jitter, counted in the report), not the SDK's.
        self._client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout, max_retries=0)

    @property
    def endpoint(self) -> str:
        return self.base_url

    def _call(self, fn):
        import openai

        try:
            return fn()
        except openai.APITimeoutError:
            raise BackendError(f"no answer within {self.timeout:g} s", retryable=True) from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            raise BackendError(f"cannot reach {self.base_url}: {cause}", retryable=True) from None
        except openai.APIStatusError as exc:
            retryable = exc.status_code >= 500 or exc.status_code == 429
            raise BackendError(f"HTTP {exc.status_code} from {self.base_url}: {exc.message}", retryable) from None
        except (ValueError, json.JSONDecodeError) as exc:
            raise BackendError(f"malformed response from {self.base_url}: {exc}") from None

    def chat(self, messages, tools=None, temperature=0.0, max_tokens=512) -> Reply:
        extra = {"tools": tools} if tools else {}
        response = self._call(lambda: self._client.chat.completions.create(
            model=self.model, messages=messages, temperature=temperature, max_tokens=max_tokens, **extra))
        choices = getattr(response, "choices", None)
        if not choices:
            raise BackendError(f"malformed response from {self.base_url}: no choices ({str(response)[:200]})")
        raw = response.model_dump(exclude_none=True, warnings=False)  # odd servers: keep what came, quietly
        return Reply(_assistant(raw["choices"][0].get("message") or {}), raw, choices[0].finish_reason)

    def list_models(self) -> list[str]:
        return sorted(m.id for m in self._call(lambda: self._client.models.list()).data)


# -- Ollama's native API -----------------------------------------------------------------------
class OllamaClient(ChatClient):
    backend = "ollama"

    def __init__(self, model: str, host: str, timeout: float = 60.0):
        super().__init__(model, timeout)
        import requests

        self.host = host.rstrip("/")
        self._session = requests.Session()

    @property
    def endpoint(self) -> str:
        return self.host

    def _request(self, method: str, path: str, **kwargs):
        import requests

        try:
            response = self._session.request(method, self.host + path, timeout=self.timeout, **kwargs)
        except requests.Timeout:
            raise BackendError(f"no answer within {self.timeout:g} s", retryable=True) from None
        except requests.ConnectionError as exc:
            raise BackendError(f"cannot reach Ollama at {self.host}: {exc.__class__.__name__}", retryable=True) from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("error", response.text)
            except ValueError:
                detail = response.text
            raise BackendError(f"HTTP {response.status_code} from {self.host}{path}: {str(detail)[:200]}",
                               retryable=response.status_code >= 500 or response.status_code == 429)
        return response

    def chat(self, messages, tools=None, temperature=0.0, max_tokens=512) -> Reply:
        import requests

        body = {"model": self.model, "messages": messages, "stream": True,
                "options": {"temperature": temperature, "num_predict": max_tokens}}
        if tools:
            body["tools"] = tools
        deadline = time.monotonic() + self.timeout
        response = self._request("POST", "/api/chat", json=body, stream=True)
        content, tool_calls, last = [], [], None
        try:
            for line in response.iter_lines():
                if time.monotonic() > deadline:
                    raise BackendError(f"no complete answer within {self.timeout:g} s", retryable=True)
                if not line.strip():
                    continue
                try:
                    chunk = json.loads(line)
                except ValueError:
                    raise BackendError(f"malformed JSON in Ollama's stream: {line[:120]!r}") from None
                if not isinstance(chunk, dict):
                    raise BackendError(f"malformed chunk in Ollama's stream: {line[:120]!r}")
                if "error" in chunk:
                    raise BackendError(f"Ollama: {chunk['error']}")
                message = chunk.get("message") or {}
                content.append(message.get("content") or "")
                tool_calls += message.get("tool_calls") or []
                last = chunk
                if chunk.get("done"):
                    break
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise BackendError(f"Ollama's stream broke off: {exc.__class__.__name__}", retryable=True) from None
        except requests.Timeout:
            raise BackendError(f"no answer within {self.timeout:g} s", retryable=True) from None
        finally:
            response.close()
        if not last or not last.get("done"):
            raise BackendError("Ollama's stream ended before its final chunk (done: true)", retryable=True)
        message = {"role": "assistant", "content": "".join(content)}
        if tool_calls:
            message["tool_calls"] = tool_calls
        raw = {k: v for k, v in last.items() if k != "message"} | {"message": message}
        return Reply(message, raw, last.get("done_reason"))

    def list_models(self) -> list[str]:
        try:
            return sorted(m["name"] for m in self._request("GET", "/api/tags").json().get("models", []))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise BackendError(f"malformed answer from {self.host}/api/tags") from None


# -- embedded backends -------------------------------------------------------------------------
class LlamaCppClient(ChatClient):
    """A GGUF file through llama-cpp-python, chat template from the GGUF's metadata."""

    backend = "llamacpp"
    embedded = True

    def __init__(self, model: str, timeout: float = 60.0, n_ctx: int = 4096):
        super().__init__(model, timeout)
        try:
            from llama_cpp import Llama
        except ImportError:
            raise BackendError("the llamacpp backend needs llama-cpp-python: pip install 'llama-cpp-python[server]'") from None
        self._lock = threading.Lock()  # a Llama context serves one generation at a time
        self._llm = Llama(model_path=model, n_ctx=n_ctx, verbose=False)

    def chat(self, messages, tools=None, temperature=0.0, max_tokens=512) -> Reply:
        extra = {"tools": tools} if tools else {}
        with self._lock:
            try:
                raw = self._llm.create_chat_completion(messages=messages, temperature=temperature,
                                                       max_tokens=max_tokens, **extra)
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
            raise BackendError("the transformers backend needs torch and transformers: pip install -e '.[train]'") from None
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
        ids = tokenizer.apply_chat_template(messages, tools=tools, add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        with self._lock, self._torch.no_grad():
            output = self._model.generate(**ids, max_new_tokens=max_tokens, pad_token_id=tokenizer.pad_token_id,
                                          **sampling)
        new = output[0][ids["input_ids"].shape[1]:]
        # Special tokens stay: <tool_call> markers are special in many tokenizers; only EOS/pad go.
        text = tokenizer.decode(new, skip_special_tokens=False)
        for token in {tokenizer.eos_token, tokenizer.pad_token} - {None}:
            text = text.replace(token, "")
        finish = "length" if len(new) >= max_tokens else "stop"
        return Reply({"role": "assistant", "content": text.strip()}, {"text": text, "tokens": len(new)}, finish)
