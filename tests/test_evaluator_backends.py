"""Clients and the runner against protocol doubles: loopback servers that speak Ollama's
documented /api/chat + /api/tags and the OpenAI chat API. Fault injection included."""

import time

import pytest

from Evaluator.backends import make_client, resolve_base_url
from Evaluator.clients import BackendError
from Evaluator.prompt_sets import PromptCase
from Evaluator.protocol_doubles import OllamaDouble, OpenAIDouble, free_port
from Evaluator.runner import RunSettings, run_prompt_set
from Tools.schema.registry import load_registry

SYSTEM = (
    '<session_context>\n- sessionId: "session_1735689600000_k3v9x2m7q"\n- workspaceId: "default"\n</session_context>'
)
CONTEXT = {
    "sessionId": "session_1735689600000_k3v9x2m7q",
    "workspaceId": "default",
    "sessionDescription": "d",
    "sessionMemory": "The user wants the folder listed.",
    "toolContext": "t",
    "primaryGoal": "g",
    "subgoal": "s",
}
CASE = PromptCase(
    id="list",
    question="What is in Garden?",
    system=SYSTEM,
    expected_tools=["vaultManager_listDirectory"],
    expected_arguments={"vaultManager_listDirectory": {"path": "Garden"}},
)


def tool_answer(body):
    """Ollama's native shape: arguments as an object."""
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"function": {"name": "vaultManager_listDirectory", "arguments": {"context": CONTEXT, "path": "Garden"}}}
        ],
    }


FAST = dict(retries=2, backoff=0.01, timeout=2.0)


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def run(client, registry, cases=(CASE,), **settings):
    return run_prompt_set(client, list(cases), registry, RunSettings(**{**FAST, **settings}), progress=False).results


def test_ollama_object_arguments_are_parsed_and_scored(registry):
    with OllamaDouble(tool_answer) as double:
        client = make_client("ollama", "double-model", base_url=double.url, timeout=2)
        assert client.list_models() == ["double-model"]
        [result] = run(client, registry)
    assert result["passed"], result["findings"]
    assert result["format"] == "ollama" and result["raw"]["done"] is True
    assert "tools" not in double.requests[0]  # none sent by default


def test_tools_are_sent_only_when_asked(registry):
    with OllamaDouble(tool_answer) as double:
        run(make_client("ollama", "double-model", base_url=double.url), registry, tools_in_request=True)
    tools = double.requests[0]["tools"]
    assert len(tools) == len(registry.visible()) and tools[0]["type"] == "function"


def test_streamed_text_is_joined(registry):
    with OllamaDouble(lambda body: {"role": "assistant", "content": "Which folder do you mean?"}) as double:
        reply = make_client("ollama", "double-model", base_url=double.url).chat([{"role": "user", "content": "hi"}])
    assert reply.message == {"role": "assistant", "content": "Which folder do you mean?"}


def test_retry_after_5xx_then_success(registry):
    with OllamaDouble(tool_answer) as double:
        double.fail_next("500", "500")
        [result] = run(make_client("ollama", "double-model", base_url=double.url), registry)
    assert result["passed"] and result["retries"] == 2 and len(double.requests) == 3


@pytest.mark.parametrize(
    "fault,message,attempts",
    [
        ("500", "HTTP 500", 3),
        ("slow", "answer within 0.5 s", 3),
        ("truncated", "broke off", 3),
        ("malformed", "malformed", 1),  # a server bug, not a hiccup: no retry
    ],
)
def test_faults_are_recorded_and_the_run_goes_on(registry, fault, message, attempts):
    second = PromptCase(id="second", question="again", system=SYSTEM, expected_tools=["vaultManager_listDirectory"])
    with OllamaDouble(tool_answer, slow_s=1.5) as double:
        double.fail_next(*[fault] * attempts)
        results = run(
            make_client("ollama", "double-model", base_url=double.url, timeout=0.5),
            registry,
            cases=(CASE, second),
            timeout=0.5,
            concurrency=1,
        )
    first, other = results
    assert not first["passed"] and first["failed_stage"] == "response"
    code = "E_BAD_SERVER_ANSWER" if fault == "malformed" else "E_NO_RESPONSE"
    assert first["findings"][0]["code"] == code and message in first["error"]
    assert first["retries"] == attempts - 1
    assert other["response"] is not None  # the run went on


def test_refused_connection(registry):
    client = make_client("ollama", "m", base_url=f"http://127.0.0.1:{free_port()}", timeout=1)
    [result] = run(client, registry)
    assert "cannot reach" in result["error"] and result["retries"] == 2
    with pytest.raises(BackendError) as info:
        client.list_models()
    assert info.value.retryable


def test_unknown_model_is_not_retried(registry):
    with OllamaDouble(tool_answer) as double:
        [result] = run(make_client("ollama", "missing", base_url=double.url), registry)
    assert "HTTP 404" in result["error"] and "not found" in result["error"] and result["retries"] == 0


def test_openai_compatible_client_native_tool_calls(registry):
    with OpenAIDouble(tool_answer) as double:
        client = make_client("vllm", "double-model", base_url=double.url)
        assert client.list_models() == ["double-model"]
        [result] = run(client, registry)
        double.fail_next("500", "malformed")
        [broken] = run(client, registry, retries=1)
    assert result["passed"] and result["format"] == "openai"
    assert broken["error"] and not broken["passed"]


def test_host_resolution(monkeypatch):
    for var in ("LMSTUDIO_HOST", "LMSTUDIO_PORT", "OLLAMA_HOST", "VLLM_HOST", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr("Evaluator.backends.wsl_windows_host", lambda: None)
    assert resolve_base_url("lmstudio") == "http://127.0.0.1:1234/v1"
    monkeypatch.setattr("Evaluator.backends.wsl_windows_host", lambda: "172.20.0.1")
    assert resolve_base_url("lmstudio") == "http://172.20.0.1:1234/v1"
    monkeypatch.setenv("LMSTUDIO_HOST", "10.0.0.5")
    monkeypatch.setenv("LMSTUDIO_PORT", "4321")
    assert resolve_base_url("lmstudio") == "http://10.0.0.5:4321/v1"
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:11500")
    assert resolve_base_url("ollama") == "http://0.0.0.0:11500"
    monkeypatch.setenv("VLLM_HOST", "http://gpu-box:8001")
    assert resolve_base_url("vllm") == "http://gpu-box:8001/v1"
    assert resolve_base_url("openai") == "https://api.openai.com/v1"
    assert resolve_base_url("openai", "http://localhost:9000") == "http://localhost:9000/v1"


def test_benchmark_runs_and_concurrency_helps():
    from Evaluator.benchmark import measure

    result = measure(cases=16, concurrencies=(1, 4), delay=0.05)
    assert all(run["failed"] == 0 for run in result["runs"].values())
    assert result["speedup"] > 1.5 and result["runs"][4]["own_ms_per_case"] < 50


# -- HTTPS and proxies: a TLS double and a forward proxy, both on loopback --------------------
class ForwardProxy:
    """An HTTP proxy: absolute-form requests forwarded, CONNECT tunnels relayed; ``seen`` lists
    each request line it served."""

    def __init__(self):
        import http.client
        import socket
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        proxy = self
        self.seen = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_CONNECT(self):
                proxy.seen.append(f"CONNECT {self.path}")
                host, port = self.path.rsplit(":", 1)
                upstream = socket.create_connection((host, int(port)))
                self.send_response(200, "Connection established")
                self.end_headers()

                def pipe(src, dst):
                    try:
                        while data := src.recv(65536):
                            dst.sendall(data)
                    except OSError:
                        pass
                    for s in (src, dst):
                        try:
                            s.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass

                threading.Thread(target=pipe, args=(upstream, self.connection), daemon=True).start()
                pipe(self.connection, upstream)
                self.close_connection = True

            def forward(self):
                from urllib.parse import urlsplit

                proxy.seen.append(f"{self.command} {self.path}")
                target = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=5)
                upstream.request(
                    self.command,
                    target.path,
                    body=body or None,
                    headers={"Content-Type": self.headers.get("Content-Type", "application/json")},
                )
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.getheader("Content-Type"))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        import threading

        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def no_proxy_env(monkeypatch):
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


@pytest.fixture
def tls_double(tmp_path, no_proxy_env):
    """An OpenAIDouble behind TLS with a self-signed certificate the client is told to trust."""
    import shutil
    import ssl
    import subprocess

    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command for a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    no_proxy_env.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    double = OpenAIDouble(tool_answer)
    double._server.socket = context.wrap_socket(double._server.socket, server_side=True)
    with double:
        yield double


def test_http_through_the_environments_proxy(registry, no_proxy_env):
    with OpenAIDouble(tool_answer) as double, ForwardProxy() as proxy:
        no_proxy_env.setenv("HTTP_PROXY", proxy.url)
        client = make_client("vllm", "double-model", base_url=double.url)
        [result] = run(client, registry)
        assert result["passed"] and proxy.seen == [f"POST {double.url}/v1/chat/completions"]
        no_proxy_env.setenv("NO_PROXY", "127.0.0.1")
        [result] = run(client, registry)
        assert result["passed"] and len(proxy.seen) == 1 and len(double.requests) == 2


def test_https_direct_and_through_a_connect_tunnel(registry, tls_double, no_proxy_env):
    url = tls_double.url.replace("http://", "https://")
    client = make_client("vllm", "double-model", base_url=url, timeout=1.0)
    [result] = run(client, registry)
    assert result["passed"]
    started = time.monotonic()
    with pytest.raises(BackendError, match="within 1 s"):  # the deadline holds over TLS too
        client.chat([{"role": "user", "content": "fault:trickle"}])
    assert time.monotonic() - started < 1.3
    with ForwardProxy() as proxy:
        no_proxy_env.setenv("HTTPS_PROXY", proxy.url)
        [result] = run(client, registry)
    assert result["passed"] and proxy.seen == [f"CONNECT {url.split('://')[1]}"]


def test_a_new_backend_is_one_row(tmp_path, monkeypatch, capsys):
    """A server that speaks the OpenAI API joins with one row; --backend, the environment variable it names
    and the normal evaluate path all work through the table, and an unknown label lists the registered ones."""
    import json

    from Evaluator import backends, cli
    from factories import hermes_answer

    monkeypatch.setattr(backends, "_TABLE", dict(backends._TABLE))  # the row leaves with the test
    backends.register_backend(
        backends.Backend(
            "loopback",
            "the loopback double",
            backends.openai_compatible,
            server=True,
            port=free_port(),
            host_env="LOOPBACK_HOST",
        )
    )
    assert "loopback" in backends.backend_labels(server=True)
    with OpenAIDouble(hermes_answer) as double:
        monkeypatch.setenv("LOOPBACK_HOST", double.url)
        code = cli.main(
            [
                "--backend",
                "loopback",
                "--model",
                "double-model",
                "--prompt-set",
                "tool_prompts",
                "--tags",
                "vaultManager",
                "--output",
                str(tmp_path / "r.json"),
                "--no-progress",
            ]
        )
    report = json.loads((tmp_path / "r.json").read_text())
    assert code == 0 and report["metadata"]["backend"] == "loopback" and report["summary"]["cases"] == 9
    assert len(double.requests) == 9 and report["summary"]["per_tool"]["vaultManager_listDirectory"]["rate"] == 1.0
    with pytest.raises(ValueError, match="already registered"):
        backends.register_backend(backends.Backend("loopback", "another", backends.openai_compatible, server=True))
    with pytest.raises(BackendError, match="unknown backend 'nope'; expected one of lmstudio, .*loopback"):
        make_client("nope", "m")


def test_the_evaluator_alone_knows_only_its_rows_and_its_entry_points_know_all():
    """Evaluator (layer 1) never imports SelfPlay; python -m Evaluator.cli registers the template teacher."""
    import subprocess
    import sys

    probe = (
        "import sys, Evaluator.backends as b, Evaluator.cli; "
        "print(b.backend_labels(), any(m.startswith('SelfPlay') for m in sys.modules))"
    )
    alone = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert alone.stdout.split("]")[1].strip() == "False" and "template" not in alone.stdout, alone.stderr
    for entry in (["-m", "Evaluator.cli"], ["-m", "Evaluator"]):
        run = subprocess.run(
            [
                sys.executable,
                *entry,
                "--backend",
                "template",
                "--model",
                "teacher",
                "--prompt-set",
                "tool_prompts",
                "--dry-run",
                "--output",
                "unused.json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0 and "backend template, model teacher" in run.stdout, run.stderr
        bad = subprocess.run(
            [sys.executable, *entry, "--backend", "nope", "--model", "m", "--prompt-set", "tool_prompts"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (
            bad.returncode == 2
            and len(bad.stderr.strip().splitlines()) == 1
            and "'transformers', 'template'" in bad.stderr
        )
