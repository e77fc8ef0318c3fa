"""Convert a Hugging Face model directory to GGUF with llama.cpp's own converter.

The converter (``convert_hf_to_gguf.py`` with its ``conversion/`` package and ``gguf-py/``) ships
in llama-cpp-python's source distribution, so no llama.cpp checkout or build is needed. It is
found, in order, in:
1. ``$LLAMA_CPP_DIR``: a llama.cpp checkout, or an unpacked sdist's ``vendor/llama.cpp``;
2. ``.cache/`` at the repository root: an unpacked ``llama_cpp_python-*/vendor/llama.cpp``, or the
   sdist archive itself (``llama_cpp_python-*.tar.gz``), whose converter files are unpacked
   beside it on first use. Fetch it once with
   ``pip download --no-deps --no-binary :all: llama-cpp-python==<installed version> -d .cache``.
Nothing is downloaded here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

CACHE_DIR = Path(__file__).resolve().parents[2] / ".cache"
_NEEDED = ("convert_hf_to_gguf.py", "gguf-py/", "conversion/")
SETUP_HINT = (
    "pip download --no-deps --no-binary :all: llama-cpp-python==<installed version> -d .cache "
    "(or set LLAMA_CPP_DIR to a llama.cpp checkout)"
)


class ConverterNotFound(RuntimeError):
    pass


def _is_llama_cpp(path: Path) -> bool:
    return (path / "convert_hf_to_gguf.py").is_file() and (path / "gguf-py" / "gguf").is_dir()


def _unpack(archive: Path) -> Path | None:
    """Unpack only the converter's files of an sdist archive; the llama.cpp folder, or None."""
    target = archive.parent / archive.name.removesuffix(".tar.gz")
    root = target / "vendor" / "llama.cpp"
    if _is_llama_cpp(root):
        return root
    with tarfile.open(archive) as tar:
        prefix = f"{tar.getmembers()[0].name.split('/')[0]}/vendor/llama.cpp/"
        members = [
            m
            for m in tar.getmembers()
            if m.name.startswith(prefix) and any(m.name[len(prefix) :].startswith(n) for n in _NEEDED)
        ]
        tar.extractall(archive.parent, members=members, filter="data")
        extracted = archive.parent / prefix.rstrip("/")
    return extracted if _is_llama_cpp(extracted) else None


def find_llama_cpp(cache_dir: Path = CACHE_DIR, explicit: str | Path | None = None) -> Path:
    """The llama.cpp folder holding the converter (explicit, e.g. --llama-cpp-dir, wins), or
    ConverterNotFound saying how to get it."""
    if explicit:
        if _is_llama_cpp(Path(explicit)):
            return Path(explicit)
        raise ConverterNotFound(f"{explicit} holds no convert_hf_to_gguf.py and gguf-py/ (not a llama.cpp checkout)")
    env = os.environ.get("LLAMA_CPP_DIR")
    if env:
        if _is_llama_cpp(Path(env)):
            return Path(env)
        raise ConverterNotFound(f"LLAMA_CPP_DIR={env} holds no convert_hf_to_gguf.py and gguf-py/")
    for candidate in sorted(cache_dir.glob("llama_cpp_python-*/vendor/llama.cpp"), reverse=True):
        if _is_llama_cpp(candidate):
            return candidate
    for archive in sorted(cache_dir.glob("llama_cpp_python-*.tar.gz"), reverse=True):
        found = _unpack(archive)
        if found:
            return found
    raise ConverterNotFound(f"llama.cpp's converter is not available: {SETUP_HINT}")


def convert_to_gguf(
    model_dir: str | Path, out_file: str | Path, outtype: str = "f16", llama_cpp_dir: str | Path | None = None
) -> Path:
    """Write model_dir (a Hugging Face model) as one GGUF file; raises RuntimeError with the
    converter's last lines when it fails."""
    root = find_llama_cpp(explicit=llama_cpp_dir)
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # The vendored gguf-py must win over an installed gguf of another version.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root / "gguf-py"), env.get("PYTHONPATH")]))
    command = [
        sys.executable,
        str(root / "convert_hf_to_gguf.py"),
        str(model_dir),
        "--outfile",
        str(out),
        "--outtype",
        outtype,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0 or not out.is_file():
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise RuntimeError(f"convert_hf_to_gguf.py failed ({done.returncode}):\n{tail}")
    return out
