"""Serve a GGUF with llama.cpp's OpenAI-compatible server (llama-cpp-python's ``llama_cpp.server``)
so that tool calls work as they do in LM Studio: the tools of a request reach the prompt through
the GGUF's own chat template, and the calls in the answer come back parsed in ``tool_calls``.

llama-cpp-python renders the GGUF's template with the request's tools, but returns every answer
as ``content`` (it parses calls only for its own prompt formats, ``functionary`` and
``chatml-function-calling``, which replace the model's template). So this module registers one
more chat format with llama-cpp-python's handler registry, ``gguf-tools``: the GGUF's template
(the same Jinja2ChatFormatter llama-cpp-python builds from it), then the toolkit's parser
(``Tools.schema.toolcalls.parse_content``) on the answer when the request carried tools; streamed
answers are passed through unparsed. The prompt starts with the BOS token where the GGUF asks for
one, as in llama.cpp's own server and Ollama (``template_handler``). Run the server with it:

    python -m Evaluator.llama_server --model model.gguf --chat_format gguf-tools [any llama_cpp.server flag]

``llama_server()`` starts that on a free loopback port for as long as a ``with`` block runs (the
export's round trip, the closed loop and the tests); the evaluator then talks to it like any other
server (``--backend llamacpp --base-url``)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import weakref
from contextlib import contextmanager
from pathlib import Path

CHAT_FORMAT = "gguf-tools"
_ROOT = Path(__file__).resolve().parents[1]
_handlers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # one template handler per loaded model


def template_handler(llama):
    """The chat handler for the GGUF's own template: llama-cpp-python's (the Jinja2ChatFormatter
    Llama builds from it), except that the prompt gets the BOS token the GGUF asks for.

    llama.cpp's own server and Ollama add a BOS to a rendered prompt when the vocabulary says so
    (``tokenizer.ggml.add_bos_token``), as transformers' tokenizer does in training;
    llama-cpp-python assumes that every template writes it, so under a template that does not
    (ChatML) a model trained with a BOS answered prompts without one, and answered worse (a model
    that copied its ids right in transformers garbled them here). A template that writes the BOS
    keeps it as it is; a vocabulary without add_bos_token (Qwen's) gets none."""
    if llama not in _handlers:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        class BosAsTheGgufSays(Jinja2ChatFormatter):
            def __call__(self, **kwargs):
                response = super().__call__(**kwargs)
                # False: the handler tokenizes with add_bos, which llama.cpp honours only where the vocab asks
                response.added_special = bool(self.bos_token) and response.prompt.startswith(self.bos_token)
                return response

        template = llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ValueError("the GGUF carries no chat template (tokenizer.chat_template)")

        def text(token_id):
            return llama._model.token_get_text(token_id) if token_id != -1 else ""

        _handlers[llama] = BosAsTheGgufSays(
            template,
            eos_token=text(llama.token_eos()),
            bos_token=text(llama.token_bos()),
            stop_token_ids=[llama.token_eos()],
        ).to_chat_handler()
    return _handlers[llama]


def gguf_tools_handler(*, llama, messages, tools=None, stream=False, **kwargs):
    """A llama-cpp-python chat completion handler: the GGUF's template with the request's tools,
    and the calls in a complete answer moved from ``content`` to ``tool_calls``."""
    from Tools.schema.toolcalls import parse_content, to_openai_tool_calls

    response = template_handler(llama)(llama=llama, messages=messages, tools=tools, stream=stream, **kwargs)
    if stream or not tools:
        return response
    choice = response["choices"][0]
    message = choice["message"]
    if message.get("tool_calls") or not message.get("content"):
        return response  # a forced tool_choice: llama-cpp-python already wrote the call
    parsed = parse_content(message["content"])
    if parsed.calls and all(c.arguments is not None for c in parsed.calls):
        message["tool_calls"] = to_openai_tool_calls(parsed.calls)
        message["content"] = parsed.text or None
        choice["finish_reason"] = "tool_calls"
    return response


def register() -> None:
    """Make ``--chat_format gguf-tools`` known to llama-cpp-python in this process."""
    from llama_cpp.llama_chat_format import LlamaChatCompletionHandlerRegistry

    LlamaChatCompletionHandlerRegistry().register_chat_completion_handler(
        CHAT_FORMAT, gguf_tools_handler, overwrite=True
    )


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
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))}
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "Evaluator.llama_server",
                "--model",
                str(model),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                str(n_ctx),
                "--n_threads",
                str(threads),
                "--model_alias",
                alias,
                "--chat_format",
                CHAT_FORMAT,
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
            env=env,
        )

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


if __name__ == "__main__":
    from Evaluator.clients import plain_cpu_buffers

    register()
    plain_cpu_buffers()
    from llama_cpp.server.__main__ import main

    main()
