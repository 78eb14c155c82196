"""The default thread count against one thread, as ratios measured in one run.

On a model with pythia-160m's exact config (random weights), float32 on CPU, 32 prompts:
``GainMeter(threads=default_threads())`` against ``GainMeter(threads=1)``, rounds in turns.
Outside xdist the default is every CPU this process may use (under ``-n N`` each worker gets
its share, one thread each on two cores with ``-n 2``).

Two figures, both printed and recorded:

- minimum over minimum, the comparison at each side's least-disturbed round: what the default
  gains when its cores are free. Target: <= 0.90, or the default's extra threads buy nothing;
- median over median, the typical round on this machine. Not held to a target: on the shared
  two-core machine this project was built on it was 1.68 and 2.88 in two runs (minimums 0.55
  and 0.58), because a parallel kernel waits for its slowest thread and a neighbour holding
  one core stalls them all. That is why the other benchmarks pin one thread and why the
  default divides the CPUs among xdist workers.
"""

from __future__ import annotations

import pytest

from gainscale.devices import default_threads
from gainscale.meter import GainMeter

from .pairing import time_in_turns

TARGET = 0.90
ROUNDS = 8


def test_default_threads_against_one_thread(benchmark, pythia_160m, prompts_32):
    """min time(default threads) / min time(one thread) <= 0.90; the median ratio is reported."""
    threads = default_threads()
    if threads == 1:
        pytest.skip("the default here is one thread: nothing to compare")
    default, single = GainMeter(progress=False, threads=threads), GainMeter(progress=False, threads=1)
    times = time_in_turns(
        benchmark,
        ours=lambda: default.measure(pythia_160m, prompts_32, "benchmark"),
        theirs=lambda: single.measure(pythia_160m, prompts_32, "benchmark"),
        rounds=ROUNDS,
    )
    benchmark.extra_info["default_threads"] = threads
    summary = times.record(benchmark, f"threads_{threads}", "threads_1", f"minimums <= {TARGET}")
    print(f"\n[threads: default ({threads}) against 1, pythia-160m config, 32 prompts, CPU float32] {summary}")
    assert times.min_ratio() <= TARGET, summary
