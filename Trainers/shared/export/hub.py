"""Upload a prepared folder to the Hugging Face Hub with huggingface_hub's HfApi.

The token comes from ``HF_TOKEN`` or ``HF_API_KEY`` (environment first, then ``.env`` in the
working directory). It is handed to HfApi and nowhere else: errors are re-raised with the token
masked, and nothing the toolkit prints, logs or writes contains it. ``HF_ENDPOINT`` (read by
huggingface_hub itself) or ``endpoint=`` points the upload at another Hub, e.g. the loopback
protocol double the tests use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from Tools.cli_common import UsageError

TOKEN_VARIABLES = ("HF_TOKEN", "HF_API_KEY")


@dataclass
class UploadResult:
    repo_url: str
    commit_url: str | None
    files: int


def resolve_token() -> str | None:
    from Evaluator.backends import load_dotenv_once

    load_dotenv_once()
    return next((os.environ[v] for v in TOKEN_VARIABLES if os.environ.get(v)), None)


def redact(text: str, token: str | None) -> str:
    return text.replace(token, "hf_***") if token else text


def upload_folder(
    folder: Path,
    repo_id: str,
    token: str,
    private: bool = False,
    endpoint: str | None = None,
    message: str = "Upload model exported by the Claudesidian toolkit",
) -> UploadResult:
    """Create the repository (if needed) and commit every file of folder; UsageError on failure,
    with the Hub's message and never the token."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    from ..backend import hub_unreachable

    if not endpoint and (why := hub_unreachable()):  # huggingface_hub's own connection errors are not OSErrors
        raise UsageError(f"cannot upload to {repo_id}: the Hub is {why}; the folder is kept at {folder}")
    api = HfApi(endpoint=endpoint, token=token)
    try:
        repo = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model", commit_message=message)
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        hint = (
            " (check that the token has write access: huggingface.co/settings/tokens)" if status in (401, 403) else ""
        )
        raise UsageError(
            redact(f"the Hub refused the upload to {repo_id}: HTTP {status} {str(exc).splitlines()[0]}{hint}", token)
        ) from None
    except OSError as exc:  # connection refused, DNS, timeouts
        raise UsageError(redact(f"cannot reach the Hub: {exc}", token)) from None
    except ValueError as exc:  # e.g. the Hub rejected the card's metadata
        raise UsageError(
            redact(f"the Hub refused the upload to {repo_id}: {' '.join(str(exc).split())}", token)
        ) from None
    files = sum(1 for p in folder.rglob("*") if p.is_file())
    return UploadResult(str(repo), getattr(commit, "commit_url", None) or str(commit), files)
