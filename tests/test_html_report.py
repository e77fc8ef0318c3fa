"""The HTML report, rendered in headless Chromium (Debian's `chromium`; CI installs it): the page
opens from a file with no network, and every chart plotly was asked for is drawn (its SVG present).

The inputs are real: evaluator runs of the template teacher and of a model that never calls a tool
(a loopback double), a BFCL run, run logs written by the trainers' RunLog, and a closed-loop
report written by Tools/closed_loop.py's own report writer."""

import json
import re
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("plotly", reason='plotly is not installed: pip install -e ".[report]"')

from Evaluator import cli, html_report  # noqa: E402
from Evaluator.protocol_doubles import OpenAIDouble  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is missing: apt-get install chromium")


def render_dom(page) -> str:
    """The DOM after plotly ran, as headless Chromium sees it (no network: the page must be self-contained)."""
    out = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--proxy-server=127.0.0.1:9",
            "--virtual-time-budget=15000",
            f"--user-data-dir={page.parent / 'chromium-profile'}",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def drawn_charts(dom: str) -> list[str]:
    """The titles of the sections whose plotly chart was drawn (an SVG of class main-svg inside)."""
    sections = re.findall(r'<section class="chart"><h2>(.*?)</h2>(.*?)</section>', dom, re.S)
    return [title for title, body in sections if 'class="main-svg"' in body and "plot-container" in body]


def evaluator_report(tmp_path, name, prompt_set, *args):
    out = tmp_path / f"{name}.json"
    assert cli.main(["--prompt-set", str(prompt_set), "--output", str(out), "--no-progress", *args]) == 0
    return out


def runlog(path, losses):
    from Trainers.shared.runlog import RunLog

    log = RunLog(path)
    log.start(0, len(losses))
    for step, loss in enumerate(losses, 1):
        log.log(step, step / len(losses), {"loss": loss, "learning_rate": 1e-4})
    log.write({"event": "warning", "message": "a line without a loss is skipped"})
    log.end(len(losses))
    return path


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    from SelfPlay.teacher import write_heldout_prompt_set

    tmp = tmp_path_factory.mktemp("runs")
    cases = write_heldout_prompt_set(tmp / "heldout.json", seed=3, size=8)["path"]
    with OpenAIDouble() as double:  # a model that answers every request with a question and no call
        before = evaluator_report(
            tmp, "before", cases, "--backend", "openai", "--model", "double-model", "--base-url", double.url
        )
    after = evaluator_report(tmp, "after", cases, "--backend", "template", "--model", cases)  # its reference answers
    return before, after


@needs_chromium
def test_comparison_page_draws_every_chart(two_runs, tmp_path, capsys):
    before, after = two_runs
    log = runlog(tmp_path / "sft" / "logs" / "training_1.jsonl", [2.5, 1.9, 1.2, 0.8])
    page = tmp_path / "report.html"
    assert html_report.main([str(before), str(after), str(log), "-o", str(page)]) == 0
    assert "5 charts" in capsys.readouterr().out
    text = page.read_text()
    assert "<script src" not in text and "<link" not in text  # plotly.js inlined: opens offline
    dom = render_dom(page)
    assert drawn_charts(dom) == [
        "Pass rates",
        "Per-tool pass rate",
        "Per-code failures",
        "Latency percentiles",
        "Training loss",
    ]
    # the heat map's cells show both runs: the teacher passes every tool the double fails
    assert json.loads(after.read_text())["summary"]["pass_at_1"] == 1.0
    assert json.loads(before.read_text())["summary"]["pass_at_1"] == 0.0
    heat = re.search(r"<h2>Per-tool pass rate</h2>(.*?)</section>", dom, re.S).group(1)
    cells = re.findall(r">(\d+%)</text>", heat)  # the cells' labels, drawn as SVG text
    assert "100%" in cells and "0%" in cells, cells


@needs_chromium
def test_evaluator_cli_writes_the_html_report_of_a_bfcl_run(tmp_path, capsys):
    pytest.importorskip("bfcl_eval")
    page = tmp_path / "bfcl.html"
    with OpenAIDouble() as double:
        code = cli.main(
            [
                "--prompt-set",
                "bfcl:simple_python,irrelevance",
                "--limit",
                "2",
                "--backend",
                "openai",
                "--model",
                "double-model",
                "--base-url",
                double.url,
                "--output",
                str(tmp_path / "b.json"),
                "--html",
                str(page),
                "--no-progress",
            ]
        )
    assert code == 0 and f"HTML report: {page}" in capsys.readouterr().out
    assert drawn_charts(render_dom(page)) == [
        "Pass rates",
        "BFCL accuracy per category",
        "Per-code failures",
        "Latency percentiles",
    ]


@needs_chromium
def test_evaluator_cli_writes_the_html_report_of_an_episode_run(tmp_path, capsys):
    page = tmp_path / "episodes.html"
    code = cli.main(
        [
            "--episodes",
            "--backend",
            "template",
            "--model",
            "teacher",
            "--output",
            str(tmp_path / "ep.json"),
            "--html",
            str(page),
            "--no-progress",
        ]
    )
    assert code == 0 and f"HTML report: {page}" in capsys.readouterr().out
    dom = render_dom(page)
    assert drawn_charts(dom) == ["Episodes: pass rate per episode"]
    episode = re.search(r"<h2>Episodes: pass rate per episode</h2>(.*?)</section>", dom, re.S).group(1)
    assert "search-read-edit" in episode and "100%" in episode  # the teacher passes each episode


@needs_chromium
def test_closed_loop_report(two_runs, tmp_path, capsys):
    from claudesidian import closed_loop

    before, after = two_runs
    (tmp_path / "reports").mkdir()
    for path in (before, after):
        shutil.copy(path, tmp_path / "reports" / path.name)
    runlog(tmp_path / "sft_runs" / "run1" / "logs" / "training_1.jsonl", [3.0, 2.0, 1.5])
    runlog(tmp_path / "kto_runs" / "run1" / "logs" / "training_1.jsonl", [0.5, 0.45])
    result = closed_loop.LoopResult(
        models={
            "before training": closed_loop.case_metrics(json.loads(before.read_text())),
            "after SFT": closed_loop.case_metrics(json.loads(after.read_text())),
        }
    )
    closed_loop.write_report(closed_loop.LoopSettings(out=tmp_path), result, 1.0)
    page = tmp_path / "loop.html"
    assert html_report.main([str(tmp_path / "report.json"), "-o", str(page)]) == 0
    dom = render_dom(page)
    assert drawn_charts(dom)[:2] == [f"Closed loop ({tmp_path.name}): before and after training", "Pass rates"]
    assert drawn_charts(dom)[-1] == "Training loss"
    assert "sft_runs/run1 loss" in dom and "kto_runs/run1 loss" in dom  # one curve per run log, named by its run


@pytest.mark.parametrize(
    "content",
    [
        '{"hello": 1}',
        "[1, 2",
        '{"metadata": {}, "summary": {"per_tool": [1]}, "cases": []}',
        '{"metadata": {}, "summary": {"pass_at_1": "high", "latency_s": 3}, "cases": []}',
    ],
)
def test_bad_input_is_a_one_line_error(tmp_path, content):
    bad = tmp_path / "notes.json"
    bad.write_text(content)
    out = subprocess.run(
        [sys.executable, "-m", "Evaluator.html_report", str(bad), "-o", str(tmp_path / "r.html")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and out.stderr.startswith("error: ") and "Traceback" not in out.stderr, out.stderr
    assert not (tmp_path / "r.html").exists()
