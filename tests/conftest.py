"""Shared test fixtures."""
import importlib.util

import pytest


# ---- Evaluator fixtures (branch evaluator) -----------------------------------------------------
@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """The tiny random-weight Llama of Trainers/shared/tiny_model.py, built once per session."""
    pytest.importorskip("torch")
    pytest.importorskip("sentencepiece")
    from Trainers.shared.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def tiny_gguf(tiny_model_dir, tmp_path_factory):
    """The tiny model as an f16 GGUF, converted with llama.cpp's own converter (from the
    llama-cpp-python sdist; see Trainers/shared/gguf.py for the setup command)."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed: pip install 'llama-cpp-python[server]'")
    from Trainers.shared.gguf import ConverterNotFound, convert_to_gguf, find_llama_cpp

    try:
        find_llama_cpp()
    except ConverterNotFound as exc:
        pytest.skip(str(exc))
    return convert_to_gguf(tiny_model_dir, tmp_path_factory.mktemp("gguf") / "tiny-f16.gguf")
# ---- end of Evaluator fixtures -----------------------------------------------------------------
