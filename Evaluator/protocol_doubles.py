"""Protocol doubles: loopback HTTP servers that speak Ollama's documented ``/api/chat`` and
``/api/tags``, the OpenAI ``/v1/chat/completions`` and ``/v1/models`` endpoints, and the Hugging
Face Hub's upload endpoints (HubDouble).

They stand in where no real peer can run (no Ollama, no Hub here) and for the speed benchmarks. Each
answers through ``answer(request_body) -> assistant message`` (``client_answer(client)`` serves
any in-process ChatClient that way), after ``delay`` seconds, and can
be told to fail the next requests in a given way: ``"500"``, ``"slow"`` (sleeps past any client
timeout), ``"malformed"`` (a body that is not JSON), ``"truncated"`` (a stream cut before its
final chunk), or any fault in HTTP_FAULTS (every double) and OPENAI_FAULTS (OpenAIDouble). A
request whose last user message is ``fault:NAME`` gets that fault, whatever the order requests
arrive in (a whole run of faulty cases at any concurrency). A refused connection needs no double:
a closed port gives one.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _raw(
    status: int, body: bytes, content_type: str = "application/json", headers: str = "", length: int | None = None
) -> bytes:
    """A whole HTTP/1.1 response as bytes, headers as written (so they can be wrong on purpose)."""
    reason = {200: "OK", 429: "Too Many Requests", 502: "Bad Gateway", 503: "Service Unavailable"}.get(status, "Status")
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\nConnection: close\r\n{headers}\r\n"
    )
    return head.encode() + body


_DEEP = 100_000
# Faults of the transport and the body, the same for every server API: raw bytes the double writes,
# then it hangs up. None of them can be made to come out of a real engine.
HTTP_FAULTS: dict[str, bytes] = {
    "not_json": _raw(200, b"{not json"),
    "empty_body": _raw(200, b""),
    "html_page": _raw(200, b"<html><body><h1>It works!</h1></body></html>", "text/html"),
    "html_502": _raw(502, b"<html><body>502 Bad Gateway</body></html>", "text/html"),
    "wrong_content_type": _raw(200, b'{"ok": true}', "text/plain"),
    "truncated_body": _raw(200, b'{"choices": [{"mess', length=4000),
    "not_http": b"hello, this is not HTTP\r\n\r\n",
    "hang_up": b"",
    "too_many_headers": _raw(200, b"{}", headers="".join(f"X-H{i}: {i}\r\n" for i in range(150))),
    "bad_chunked": (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
    ),
    "deep_json": _raw(200, b"[" * _DEEP + b"]" * _DEEP),
    "lone_surrogate": _raw(
        200,
        b'{"choices": [{"message": {"role": "assistant", "content": "\\ud800"}}], '
        b'"message": {"role": "assistant", "content": "\\ud800"}, "done": true}',
    ),
    "invalid_utf8": _raw(200, b'{"choices": [{"message": {"role": "assistant", "content": "\xff\xfe"}}]}'),
    "nan": _raw(
        200,
        b'{"choices": [{"message": {"role": "assistant", "content": "hi"}}], "usage": {"t": NaN}, '
        b'"message": {"role": "assistant", "content": "hi"}, "done": true, "x": NaN}',
    ),
    "huge_number": _raw(200, b'{"n": ' + b"9" * 5000 + b"}"),
    "null_body": _raw(200, b"null"),
    "array_body": _raw(200, b"[]"),
    "status_429": _raw(429, b'{"error": "slow down"}', headers="Retry-After: 1\r\n"),
    "status_503_date": _raw(503, b'{"error": "busy"}', headers="Retry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n"),
}
_HTTP_SLOW = {"trickle", "huge_answer"}  # written over time, see _write_fault


def _choices(*choices) -> bytes:
    return _raw(200, json.dumps({"id": "x", "object": "chat.completion", "choices": list(choices)}).encode())


# Well-formed JSON in the wrong shape for /v1/chat/completions: no chat answer at all, or (content_*,
# tool_calls_*) a message whose fields a model got wrong, for the scorer to judge.
OPENAI_FAULTS: dict[str, bytes] = {
    "choices_null": _choices(None),
    "choices_string": _raw(200, b'{"choices": "abc"}'),
    "choices_empty": _choices(),
    "no_choices": _raw(200, b'{"id": "x", "object": "chat.completion"}'),
    "error_object_200": _raw(200, b'{"error": {"message": "model crashed"}}'),
    "message_string": _choices({"message": "hello"}),
    "message_list": _choices({"message": []}),
    "content_number": _choices({"message": {"role": "assistant", "content": 42}}),
    "content_object": _choices({"message": {"role": "assistant", "content": {"text": "hi"}}}),
    "tool_calls_string": _choices({"message": {"role": "assistant", "content": None, "tool_calls": "call it"}}),
    "tool_calls_of_strings": _choices({"message": {"role": "assistant", "content": None, "tool_calls": ["x"]}}),
    "deep_extra_field": _raw(
        200,
        json.dumps(
            {
                "choices": [{"message": {"role": "assistant", "content": "hi"}}],
                "extra": json.loads("[" * 500 + "]" * 500),
            }
        ).encode(),
    ),
}


def prompt_fault(body) -> str | None:
    """NAME when the request's last user message is ``fault:NAME``."""
    users = [m for m in (body or {}).get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"]
    content = users[-1].get("content") if users else None
    return content[6:] if isinstance(content, str) and content.startswith("fault:") else None


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
        return client.chat(
            body.get("messages") or [],
            body.get("tools"),
            body.get("temperature") or 0.0,
            body.get("max_tokens") or body.get("options", {}).get("num_predict") or 512,
        ).message

    return answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


class LoopbackDouble:
    """Base: a threaded loopback server; subclasses route paths."""

    raw_bodies = False  # True: request bodies reach _route as bytes (NDJSON, file uploads), not parsed JSON

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
                if double.raw_bodies:
                    return double._route(self, "POST", raw)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    return double._send(self, 400, {"error": "request body is not JSON"})
                double._route(self, "POST", body)

            def do_PUT(self):
                length = int(self.headers.get("Content-Length") or 0)
                double._route(self, "PUT", self.rfile.read(length))

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
        try:
            handler.wfile.write(data)
        except OSError:  # the client stopped waiting (its timeout): nothing to answer
            handler.close_connection = True

    def _write_fault(self, handler, fault: str, table: dict[str, bytes]) -> None:
        handler.close_connection = True
        try:
            if fault == "trickle":  # a valid answer, one byte at a time: only a whole-request deadline ends it
                for byte in _raw(
                    200, b'{"choices": [{"message": {"role": "assistant", "content": "' + b"a" * 400 + b'"}}]}'
                ):
                    handler.wfile.write(bytes([byte]))
                    handler.wfile.flush()
                    time.sleep(0.05)
            elif fault == "huge_answer":  # 20 MB of one JSON string, sent as fast as the client reads
                size = 20 * 1024 * 1024
                handler.wfile.write(_raw(200, b"", length=size + 2))
                handler.wfile.write(b'"')
                for _ in range(size // 65536):
                    handler.wfile.write(b"a" * 65536)
                handler.wfile.write(b'"')
            else:
                handler.wfile.write(table[fault])
            handler.wfile.flush()
        except OSError:  # the client gave up (deadline, size cap): what it must do
            pass

    def _common_fault(self, handler, fault: str | None, table: dict[str, bytes] = HTTP_FAULTS) -> bool:
        """Apply a fault every endpoint shares; True when the request is answered."""
        if fault in table or fault in _HTTP_SLOW:
            self._write_fault(handler, fault, table)
        elif fault == "500":
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
            return self._send(
                handler,
                200,
                {
                    "models": [
                        {
                            "name": m,
                            "model": m,
                            "modified_at": "2025-01-01T00:00:00Z",
                            "size": 1,
                            "digest": "0" * 64,
                            "details": {"format": "gguf", "family": "llama"},
                        }
                        for m in self.models
                    ]
                },
            )
        if not (method == "POST" and handler.path == "/api/chat"):
            return self._send(handler, 404, {"error": "not found"})
        with self._lock:
            self.requests.append(body)
        if body.get("model") not in self.models:
            return self._send(handler, 404, {"error": f"model '{body.get('model')}' not found"})
        fault = self._next_fault() or prompt_fault(body)
        if self._common_fault(handler, fault):
            return
        time.sleep(self.delay)
        message = self.answer(body)
        final = {
            "model": body["model"],
            "created_at": "2025-01-01T00:00:00Z",
            "done": True,
            "done_reason": "stop",
            "total_duration": int(self.delay * 1e9),
            "eval_count": 1,
        }
        if not body.get("stream", True):
            return self._send(handler, 200, {**final, "message": message})
        # Streamed: text piece by piece, tool calls in one chunk, then the final chunk.
        chunks = [{"role": "assistant", "content": word} for word in _pieces(message.get("content") or "")]
        if message.get("tool_calls"):
            chunks.append({"role": "assistant", "content": "", "tool_calls": message["tool_calls"]})
        lines = [
            json.dumps({"model": body["model"], "created_at": "2025-01-01T00:00:00Z", "message": m, "done": False})
            for m in chunks
        ]
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
            return self._send(
                handler,
                200,
                {
                    "object": "list",
                    "data": [{"id": m, "object": "model", "created": 0, "owned_by": "double"} for m in self.models],
                },
            )
        if not (method == "POST" and handler.path == "/v1/chat/completions"):
            return self._send(handler, 404, {"error": {"message": "not found"}})
        with self._lock:
            self.requests.append(body)
        if self._common_fault(handler, self._next_fault() or prompt_fault(body), HTTP_FAULTS | OPENAI_FAULTS):
            return
        time.sleep(self.delay)
        message = json.loads(json.dumps(self.answer(body)))
        for call in message.get("tool_calls") or []:  # OpenAI sends arguments as a JSON string
            if not isinstance(call["function"]["arguments"], str):
                call["function"]["arguments"] = json.dumps(call["function"]["arguments"])
        self._send(
            handler,
            200,
            {
                "id": "chatcmpl-double",
                "object": "chat.completion",
                "created": 0,
                "model": body.get("model"),
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            },
        )


class HubDouble(LoopbackDouble):
    """The Hugging Face Hub endpoints ``HfApi.create_repo`` and ``upload_folder`` use when files go
    through Git LFS (``HF_HUB_DISABLE_XET=1``; the Xet storage protocol has no double): create repo,
    preupload (which files are LFS), the LFS batch API, the LFS PUT itself, and the NDJSON commit.
    ``files`` holds what a commit stored (path -> bytes); ``tokens`` every bearer token received;
    ``fail_next("401")`` refuses the next request as a bad token would be."""

    raw_bodies = True
    LFS_SUFFIXES = (".gguf", ".safetensors", ".bin")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.repos: dict[str, dict] = {}
        self.files: dict[str, dict[str, bytes]] = {}
        self.tokens: set[str] = set()
        self._lfs: dict[str, bytes] = {}

    def _route(self, handler, method, raw):
        import base64
        import hashlib
        import re

        auth = handler.headers.get("Authorization") or ""
        with self._lock:
            self.requests.append({"method": method, "path": handler.path, "bytes": len(raw or b"")})
            if auth.startswith("Bearer "):
                self.tokens.add(auth[7:])
        path = handler.path.split("?")[0]
        if path == "/api/agent-harnesses":  # huggingface_hub's optional registry lookup; not part of an upload
            return self._send(handler, 404, {"error": "not served by the double"})
        fault = self._next_fault()
        if fault == "401":
            return self._send(handler, 401, {"error": "Invalid credentials in Authorization header"})
        if self._common_fault(handler, fault):
            return
        if method == "POST" and path == "/api/repos/create":
            body = json.loads(raw)
            repo_id = f"{body['organization']}/{body['name']}" if body.get("organization") else body["name"]
            self.repos[repo_id] = {"private": body.get("visibility") == "private" or bool(body.get("private"))}
            return self._send(handler, 200, {"url": f"{self.url}/{repo_id}", "name": repo_id})
        if method == "POST" and path == "/api/validate-yaml":  # the model card's front matter
            import yaml

            content = json.loads(raw)["content"]
            front = content.split("---")[1] if content.startswith("---") else ""
            try:
                yaml.safe_load(front)
            except yaml.YAMLError as exc:
                return self._send(handler, 400, {"errors": [{"message": f"invalid YAML: {exc}"}], "warnings": []})
            return self._send(handler, 200, {"errors": [], "warnings": []})
        if method == "POST" and (m := re.fullmatch(r"/api/models/(.+)/preupload/([^/]+)", path)):
            files = json.loads(raw)["files"]
            return self._send(
                handler,
                200,
                {
                    "files": [
                        {
                            "path": f["path"],
                            "uploadMode": "lfs" if f["path"].endswith(self.LFS_SUFFIXES) else "regular",
                            "shouldIgnore": False,
                            "oid": None,
                        }
                        for f in files
                    ]
                },
            )
        if method == "POST" and (m := re.fullmatch(r"/(.+)\.git/info/lfs/objects/batch", path)):
            objects = json.loads(raw)["objects"]
            return self._send(
                handler,
                200,
                {
                    "transfer": "basic",
                    "objects": [
                        {
                            "oid": o["oid"],
                            "size": o["size"],
                            "authenticated": True,
                            "actions": {"upload": {"href": f"{self.url}/lfs-upload/{o['oid']}", "header": {}}},
                        }
                        for o in objects
                    ],
                },
                "application/vnd.git-lfs+json",
            )
        if method == "PUT" and (m := re.fullmatch(r"/lfs-upload/([0-9a-f]{64})", path)):
            if hashlib.sha256(raw).hexdigest() != m.group(1):
                return self._send(handler, 400, {"error": "sha256 of the body does not match the oid"})
            self._lfs[m.group(1)] = raw
            return self._send(handler, 200, {})
        if method == "POST" and (m := re.fullmatch(r"/api/models/(.+)/commit/([^/]+)", path)):
            repo_id = m.group(1)
            if repo_id not in self.repos:
                return self._send(handler, 404, {"error": f"Repository {repo_id} not found"})
            stored = self.files.setdefault(repo_id, {})
            for line in raw.decode().splitlines():
                item = json.loads(line)
                value = item["value"]
                if item["key"] == "file":
                    stored[value["path"]] = base64.b64decode(value["content"])
                elif item["key"] == "lfsFile":
                    if value["oid"] not in self._lfs:
                        return self._send(handler, 422, {"error": f"LFS object {value['oid']} was never uploaded"})
                    stored[value["path"]] = self._lfs[value["oid"]]
            oid = hashlib.sha1(raw).hexdigest()
            return self._send(
                handler,
                200,
                {"commitUrl": f"{self.url}/{repo_id}/commit/{oid}", "commitOid": oid, "pullRequestUrl": None},
            )
        return self._send(handler, 404, {"error": f"no route for {method} {path}"})


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)] if text else []
