"""LM Studio shortcuts: ``list-models`` and ``run``, reports under Evaluator/results/."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from Tools.cli_common import UsageError, die, file_stem

from .backends import load_dotenv_once

RESULTS_DIR = Path(__file__).resolve().parent / "results"
app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def result_paths(model: str, prompt_set: str, out_dir: Path = RESULTS_DIR) -> tuple[Path, Path]:
    """Evaluator/results/<model>_<set>_<timestamp>.json and .md, names safe on every OS."""
    stem = f"{file_stem(model)}_{file_stem(Path(prompt_set).stem, 'set')}_{time.strftime('%Y%m%d-%H%M%S')}"
    return out_dir / f"{stem}.json", out_dir / f"{stem}.md"


def _client(base_url: Optional[str]):
    from .backends import make_client

    return make_client("lmstudio", "", base_url=base_url, timeout=10)


@app.command("list-models")
def list_models(base_url: Optional[str] = typer.Option(None, help="LM Studio URL (default: LMSTUDIO_HOST/PORT)")):
    """The models LM Studio serves."""
    from .clients import BackendError

    load_dotenv_once()
    client = _client(base_url)
    try:
        models = client.list_models()
    except BackendError as exc:
        die(f"LM Studio is not answering at {client.endpoint}: {exc}")
    print("\n".join(models) if models else f"LM Studio at {client.endpoint} serves no model; load one first")


@app.command()
def run(
    model: str = typer.Option(..., help="a model name from list-models"),
    prompt_set: str = typer.Option("tool_prompts", help="a prompt-set file or built-in name"),
    base_url: Optional[str] = typer.Option(None, help="LM Studio URL (default: LMSTUDIO_HOST/PORT)"),
    concurrency: int = typer.Option(1, min=1),
    repeats: int = typer.Option(1, min=1),
    temperature: float = 0.0,
    max_tokens: int = typer.Option(512, min=1),
    timeout: float = 60.0,
    retries: int = typer.Option(2, min=0),
    limit: Optional[int] = typer.Option(None, min=1),
    tags: Optional[str] = None,
    tools_in_request: bool = typer.Option(False, "--tools-in-request/--no-tools-in-request"),
    output_dir: Path = typer.Option(RESULTS_DIR, help="where the .json and .md reports go"),
):
    """Evaluate an LM Studio model; writes <model>_<set>_<timestamp>.json and .md."""
    from .evaluation import EvalRequest, evaluate
    from .runner import RunSettings

    load_dotenv_once()
    output, markdown = result_paths(model, prompt_set, output_dir)
    request = EvalRequest(
        backend="lmstudio",
        model=model,
        prompt_set=prompt_set,
        output=output,
        markdown=markdown,
        base_url=base_url,
        tags=[t.strip() for t in (tags or "").split(",") if t.strip()],
        limit=limit,
        settings=RunSettings(
            temperature=temperature,
            max_tokens=max_tokens,
            timeout=timeout,
            retries=retries,
            concurrency=concurrency,
            repeats=repeats,
            tools_in_request=tools_in_request,
        ),
    )
    try:
        result = evaluate(request)
    except UsageError as exc:
        die(str(exc))
    print("\n".join(result.lines))
    raise typer.Exit(result.exit_code)


def main(argv: list[str] | None = None) -> int:
    return app(args=argv, prog_name="python -m Evaluator.lmstudio_cli")


if __name__ == "__main__":
    main()
