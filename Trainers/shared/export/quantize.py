"""Quantize an f16 GGUF through llama-cpp-python's own ``llama_model_quantize`` binding, so no
separate llama.cpp ``quantize`` binary has to be built or found.

k-quants (Q4_K_M, Q5_K_M, Q6_K, ...) work on blocks of 256 weights; a tensor whose rows are not a
multiple of 256 (the tiny test model's 64-wide layers; some real models' odd-sized tensors) is
written by llama.cpp in a fallback type instead (Q4_0 / Q8_0 ...). The fallback count is read from
llama.cpp's log and reported, never hidden.
"""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass
from pathlib import Path

from Tools.cli_common import UsageError

DEFAULT_QUANTIZATIONS = ("Q4_K_M", "Q5_K_M", "Q8_0")
# bits per weight, for the size estimate made before any work (llama.cpp's own figures, rounded up)
_BPW = {
    "F32": 32,
    "F16": 16,
    "BF16": 16,
    "Q8_0": 8.5,
    "Q6_K": 6.6,
    "Q5_K_M": 5.7,
    "Q5_K_S": 5.5,
    "Q5_0": 5.5,
    "Q5_1": 6.0,
    "Q4_K_M": 4.9,
    "Q4_K_S": 4.6,
    "Q4_0": 4.5,
    "Q4_1": 5.0,
    "Q3_K_L": 4.3,
    "Q3_K_M": 3.9,
    "Q3_K_S": 3.5,
    "Q2_K": 3.4,
    "IQ4_NL": 4.5,
    "IQ4_XS": 4.3,
}
_FALLBACK = re.compile(r"(\d+) of (\d+) tensor\(s\) required fallback quantization")


@dataclass
class QuantResult:
    name: str
    path: Path
    fallback_tensors: int  # tensors llama.cpp wrote in another type because of their shape
    total_tensors: int


def available() -> dict[str, int]:
    """Quantization name -> llama.cpp file type, from the installed llama-cpp-python."""
    try:
        import llama_cpp
    except ImportError:
        raise UsageError("GGUF quantization needs llama-cpp-python: pip install -e '.[gguf]'") from None
    prefix = "LLAMA_FTYPE_MOSTLY_"
    return {n[len(prefix) :]: getattr(llama_cpp, n) for n in dir(llama_cpp) if n.startswith(prefix)}


def parse_quantizations(text: str | list[str] | None) -> list[str]:
    """'Q4_K_M,Q8_0' -> ['Q4_K_M', 'Q8_0'] (case-insensitive; 'none' or '' for f16 only);
    an unknown name is refused before any work."""
    if text is None:
        return list(DEFAULT_QUANTIZATIONS)
    items = text if isinstance(text, list) else [t for t in re.split(r"[,\s]+", text) if t]
    names = [t.upper() for t in items if t.lower() != "none"]
    if not names:
        return []
    known = available()
    unknown = [n for n in names if n not in known]
    if unknown:
        common = ", ".join(n for n in _BPW if n in known and n not in ("F32", "BF16"))
        raise UsageError(f"unknown quantization {', '.join(unknown)}; known: {common} (and others llama.cpp lists)")
    return list(dict.fromkeys(names))


def estimate_bytes(parameters: int, name: str) -> int:
    return int(parameters * _BPW.get(name, 8.5) / 8 * 1.02) + (1 << 20)


def quantize(source: Path, target: Path, name: str, threads: int = 0) -> QuantResult:
    """Write source (an f16 GGUF) quantized as name to target; RuntimeError with llama.cpp's last
    log lines when it fails."""
    import llama_cpp
    from llama_cpp import _logger

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = available()[name]
    params.nthread = threads
    lines: list[str] = []

    @llama_cpp.llama_log_callback
    def collect(level, text, user_data):  # llama.cpp's log goes to our list, not the terminal
        lines.append(text.decode("utf-8", "replace"))

    llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))
    try:
        status = llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params))
    finally:
        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))
    log = "".join(lines)
    if status != 0 or not target.is_file():
        tail = "\n".join(log.strip().splitlines()[-5:])
        raise RuntimeError(f"llama_model_quantize failed for {name} (status {status}):\n{tail}")
    match = _FALLBACK.search(log)
    total = len(re.findall(r"^\[\s*\d+/\s*(\d+)\]", log, re.M))
    return QuantResult(name, target, int(match.group(1)) if match else 0, int(match.group(2)) if match else total)
