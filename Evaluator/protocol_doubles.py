"""Protocol doubles: loopback HTTP servers that speak Ollama's documented ``/api/chat`` and
``/api/tags`` and the OpenAI ``/v1/chat/completions`` and ``/v1/models`` endpoints.

They stand in where no real peer can run (no Ollama here) and for the speed benchmarks. Each
answers through ``answer(request_body) -> assistant message`` (``client_answer(client)`` serves
any in-process ChatClient that way), after ``delay`` seconds, and can
be told to fail the next requests in a given way: ``"500"``, ``"slow"`` (sleeps past any client
timeout), ``"malformed"`` (a body that is not JSON), ``"truncated"`` (a stream cut before its
final chunk). A refused connection needs no double: a closed port gives one.
"""
from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def text_answer(body: dict) -> dict:
    return {"role": "assistant", "content": "Which note do you mean?"}


def client_answer(client):
    """An answer function that asks an in-process ChatClient (e.g. the template teacher), so a
    double serves a deterministic model over real HTTP: for self-play tests and benchmarks."""
    def answer(body: dict) -> dict:
        return client.chat(body.get("messages") or [], body.get("tools"), body.get("temperature") or 0.0,
                           body.get("max_tokens") or body.get("options", {}).get("num_predict") or 512).message
    return answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


class LoopbackDouble:
    """Base: a threaded loopback server; subclasses route paths."""

    def __init__(self, answer=text_answer, delay: float = 0.0, models=("double-model",), slow_s: float = 5.0):
        self.answer, self.delay, self.models, self.slow_s = answer, delay, list(models), slow_s
        self.faults: deque[str] = deque()
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stall

            def log_message(self, *args):  # quiet: tests read self.requests instead
                pass

            def do_GET(self):
                double._route(self, "GET", None)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    return double._send(self, 400, {"error": "request body is not JSON"})
                double._route(self, "POST", body)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, *faults: str) -> None:
        self.faults.extend(faults)

    def _next_fault(self) -> str | None:
        with self._lock:
            return self.faults.popleft() if self.faults else None

    def _send(self, handler, status: int, payload, content_type: str = "application/json") -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _common_fault(self, handler, fault: str | None) -> bool:
        """Apply a fault every endpoint shares; True when the request is answered."""
        if fault == "500":
            self._send(handler, 500, {"error": "injected server error"})
        elif fault == "slow":
            time.sleep(self.slow_s)
            self._send(handler, 200, {"error": "too late"})
        elif fault == "malformed":
            self._send(handler, 200, b"{not json", "application/json")
        else:
            return False
        return True

    def _route(self, handler, method: str, body) -> None:
        raise NotImplementedError

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()


class OllamaDouble(LoopbackDouble):
    """Ollama's native API: /api/tags, and /api/chat streamed as NDJSON or as one object."""

    def _route(self, handler, method, body):
        if method == "GET" and handler.path == "/api/tags":
            return self._send(handler, 200, {"models": [
                {"name": m, "model": m, "modified_at": "2025-01-01T00:00:00Z", "size": 1, "digest": "0" * 64,
                 "details": {"format": "gguf", "family": "llama"}} for m in self.models]})
        if not (method == "POST" and handler.path == "/api/chat"):
            return self._send(handler, 404, {"error": "not found"})
        with self._lock:
            self.requests.append(body)
        if body.get("model") not in self.models:
            return self._send(handler, 404, {"error": f"model '{body.get('model')}' not found"})
        fault = self._next_fault()
        if self._common_fault(handler, fault):
            return
        time.sleep(self.delay)
        message = self.answer(body)
        final = {"model": body["model"], "created_at": "2025-01-01T00:00:00Z", "done": True, "done_reason": "stop",
                 "total_duration": int(self.delay * 1e9), "eval_count": 1}
        if not body.get("stream", True):
            return self._send(handler, 200, {**final, "message": message})
        # Streamed: text piece by piece, tool calls in one chunk, then the final chunk.
        chunks = [{"role": "assistant", "content": word} for word in _pieces(message.get("content") or "")]
        if message.get("tool_calls"):
            chunks.append({"role": "assistant", "content": "", "tool_calls": message["tool_calls"]})
        lines = [json.dumps({"model": body["model"], "created_at": "2025-01-01T00:00:00Z", "message": m, "done": False})
                 for m in chunks]
        if fault != "truncated":
            lines.append(json.dumps({**final, "message": {"role": "assistant", "content": ""}}))
        data = ("\n".join(lines) + "\n").encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/x-ndjson")
        handler.send_header("Content-Length", str(len(data) + (64 if fault == "truncated" else 0)))
        handler.end_headers()
        handler.wfile.write(data)
        if fault == "truncated":  # promise more than is sent, then hang up
            handler.close_connection = True


class OpenAIDouble(LoopbackDouble):
    """The OpenAI chat completions API as LM Studio, vLLM and llama.cpp's server serve it."""

    def _route(self, handler, method, body):
        if method == "GET" and handler.path == "/v1/models":
            return self._send(handler, 200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 0, "owned_by": "double"} for m in self.models]})
        if not (method == "POST" and handler.path == "/v1/chat/completions"):
            return self._send(handler, 404, {"error": {"message": "not found"}})
        with self._lock:
            self.requests.append(body)
        if self._common_fault(handler, self._next_fault()):
            return
        time.sleep(self.delay)
        message = json.loads(json.dumps(self.answer(body)))
        for call in message.get("tool_calls") or []:  # OpenAI sends arguments as a JSON string
            if not isinstance(call["function"]["arguments"], str):
                call["function"]["arguments"] = json.dumps(call["function"]["arguments"])
        self._send(handler, 200, {
            "id": "chatcmpl-double", "object": "chat.completion", "created": 0, "model": body.get("model"),
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)] if text else []
