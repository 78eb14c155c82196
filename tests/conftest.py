"""Fixtures for gainscale's own tests: random-weight checkpoints saved like real ones."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import _pytest.pytester
import pytest
from hypothesis import settings

from gainscale.randommodels import build_random_model
from gainscale.measurer import Measurer
from gainscale.settings import Settings
from gainscale.suites import ModelSpec, pythia_config, tiny_config

# hypothesis's plugin by its module: pytest.ini blocks its entry point (hypothesispytest) so that
# claims runs do without it, and only these tests use @given
pytest_plugins = ["pytester", "_hypothesis_pytestplugin"]

# CI draws the same examples every run (HYPOTHESIS_PROFILE=ci, set by .ci/run): a red CI then
# means the change, not the draw; a developer's runs keep exploring new examples
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# pytester's in-process runs drop every module they imported when they end; torch, numpy and
# friends register native state on import and break when imported a second time. Keep them.
_NATIVE = ("torch", "transformers", "accelerate", "safetensors", "tokenizers", "numpy", "scipy", "matplotlib", "PIL", "kiwisolver")


class _KeepNativeModules(_pytest.pytester.SysModulesSnapshot):
    def __init__(self, preserve=None):
        super().__init__(preserve=lambda name: name.split(".")[0] in _NATIVE or (preserve is not None and preserve(name)))


_pytest.pytester.SysModulesSnapshot = _KeepNativeModules

#: a small GPT-NeoX with Pythia's architecture (parallel residual, partial rotary)
SMALL_NEOX = {**tiny_config("tiny-s"), "initializer_range": 0.1}


@pytest.fixture(scope="session")
def small_model_dir(tmp_path_factory) -> Path:
    """A small random GPT-NeoX checkpoint (safetensors + tokenizer), read-only by convention."""
    return build_random_model(tmp_path_factory.mktemp("models") / "small-neox", SMALL_NEOX, seed=7)


@pytest.fixture(scope="session")
def pythia_70m_dir(tmp_path_factory) -> Path:
    """A checkpoint with pythia-70m's exact config and random weights."""
    return build_random_model(tmp_path_factory.mktemp("models") / "pythia-70m-random", pythia_config("pythia-70m"), seed=70)


@pytest.fixture
def model_copy(small_model_dir, tmp_path) -> Path:
    """A private copy of the small checkpoint that a test may change."""
    return Path(shutil.copytree(small_model_dir, tmp_path / "model"))


def local_spec(directory: Path, name: str = "small") -> ModelSpec:
    return ModelSpec(name=name, source=str(directory), local=True)


@pytest.fixture
def cpu_measurer(tmp_path):
    """A measurer on CPU/float32 with a fresh cache and no progress bar."""

    def make(**settings) -> Measurer:
        defaults = dict(cache=tmp_path / "cache", device="cpu", progress=False)
        return Measurer(None, Settings(**{**defaults, **settings}))

    return make


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory) -> Path:
    """A cache dir with the tiny suite's models built (not measured), shared by a session's tests."""
    from gainscale.suites import load_suite

    cache = tmp_path_factory.mktemp("tiny-cache")
    suite = load_suite("tiny", cache)
    measurer = Measurer(suite, Settings(cache=cache, progress=False))
    for spec in suite.models:
        measurer.request(spec)  # builds the model
    return cache
