"""The default thread count against one thread, as a ratio measured in one run.

On a model with pythia-160m's exact config (random weights), float32 on CPU, 32 prompts:
``GainMeter(threads=default_threads())`` against ``GainMeter(threads=1)``, rounds in turns.
Outside xdist the default is every CPU this process may use; the other benchmarks pin one
thread (``GAINSCALE_BENCHMARK_THREADS``) because a shared two-core machine punishes parallel
kernels whenever a neighbour takes a core. Target: the default is no slower than one thread
by more than 10% (on an idle multi-core machine it is faster); a failure says the default
does not suit this machine.
"""

from __future__ import annotations

from gainscale.devices import default_threads
from gainscale.meter import GainMeter

from .pairing import time_in_turns

TARGET = 1.10
ROUNDS = 8


def test_default_threads_against_one_thread(benchmark, pythia_160m, prompts_32):
    """time(default threads) / time(one thread) <= 1.10, medians of rounds run in turns."""
    threads = default_threads()
    default, single = GainMeter(progress=False, threads=threads), GainMeter(progress=False, threads=1)
    times = time_in_turns(
        benchmark,
        ours=lambda: default.measure(pythia_160m, prompts_32, "benchmark"),
        theirs=lambda: single.measure(pythia_160m, prompts_32, "benchmark"),
        rounds=ROUNDS,
    )
    benchmark.extra_info["default_threads"] = threads
    summary = times.record(benchmark, f"threads_{threads}", "threads_1", f"<= {TARGET}")
    print(f"\n[threads: default ({threads}) against 1, pythia-160m config, 32 prompts, CPU float32] {summary}")
    assert times.ratio() <= TARGET, summary
