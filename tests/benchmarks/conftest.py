"""Benchmarks of gainscale's targets; they run only when asked for.

``pytest tests/benchmarks --benchmark-only -p no:xdist`` runs them; in any other run (``pytest
tests``, ``make test``) they are collected and skipped, since each takes tens of seconds and
its figures mean nothing beside other work on the machine.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gainscale.loading import LoadOptions, load_model
from gainscale.prompts import PromptSet, load_prompts
from gainscale.randommodels import build_random_model
from gainscale.suites import ModelSpec, pythia_config

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the benchmarks (only those under this directory) unless pytest-benchmark is asked to run."""
    if config.getoption("benchmark_only", False) or config.getoption("benchmark_enable", False):
        return
    skip = pytest.mark.skip(reason="a benchmark: run pytest tests/benchmarks --benchmark-only -p no:xdist")
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def pythia_160m_dir(tmp_path_factory) -> Path:
    """A checkpoint with pythia-160m's exact config and random weights (safetensors and a tokenizer)."""
    return build_random_model(tmp_path_factory.mktemp("models") / "pythia-160m-random", pythia_config("pythia-160m"), seed=160)


@pytest.fixture(scope="session")
def pythia_160m(pythia_160m_dir):
    """That model loaded on CPU in float32."""
    spec = ModelSpec(name="pythia-160m-random", source=str(pythia_160m_dir), local=True)
    with load_model(spec, "benchmark", LoadOptions(device="cpu", dtype="float32", progress=False)) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def prompts_32() -> PromptSet:
    """The first 32 prompts of the shipped set."""
    return PromptSet("default[:32]", load_prompts().prompts[:32])


@pytest.fixture
def torch_threads():
    """Run torch with ``$GAINSCALE_BENCHMARK_THREADS`` intra-op threads (default 1), restored after.

    Both sides of a timing comparison run under the same setting. One thread is the default
    because this project's benchmark machine is a shared two-core box: with two OpenMP threads,
    any neighbour on a core stalls every parallel kernel in barrier waits (rounds of 1.3 s
    became 13 s), while one thread is merely time-sliced (2.2 s became at most 2.6 s).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("GAINSCALE_BENCHMARK_THREADS", "1")))
    yield torch.get_num_threads()
    torch.set_num_threads(before)
