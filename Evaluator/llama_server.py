"""Serve a GGUF with llama.cpp's OpenAI-compatible server (``python -m llama_cpp.server``) on a
free loopback port, for as long as a ``with`` block runs. Used by the export's round trip and the
tests; the evaluator then talks to it like any other server (``--backend llamacpp --base-url``)."""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path


class ServerError(RuntimeError):
    pass


@contextmanager
def llama_server(model: str | Path, alias: str = "model", n_ctx: int = 2048, threads: int = 1, timeout: float = 90.0):
    """Yield the server's base URL (``http://127.0.0.1:PORT``); ServerError with its last log lines
    when it exits or does not answer within timeout seconds."""
    import requests

    from .protocol_doubles import free_port

    port = free_port()
    with tempfile.TemporaryFile(mode="w+") as log:  # a file, not a pipe: a full pipe would stall the server
        process = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
                                    "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
                                    "--model_alias", alias], stdout=subprocess.DEVNULL, stderr=log, text=True)

        def tail() -> str:
            log.seek(0)
            return "\n".join(log.read().strip().splitlines()[-8:])

        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + timeout
        try:
            while True:
                if process.poll() is not None:
                    raise ServerError(f"llama_cpp.server exited ({process.returncode}):\n{tail()}")
                try:
                    if requests.get(url + "/v1/models", timeout=1).ok:
                        break
                except requests.ConnectionError:
                    pass
                if time.time() > deadline:
                    raise ServerError(f"llama_cpp.server did not answer within {timeout:g} s:\n{tail()}")
                time.sleep(0.3)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
