"""Timing gainscale's way and another way of doing the same work in turns.

On a shared, noisy machine two benchmarks run one after the other see different neighbours;
run in turns, round by round, both see the same. pytest-benchmark times gainscale's side (in
pedantic mode, fixed rounds and warm-up); the other side runs in the pedantic ``setup`` just
before each round, timed by hand with the same timer (``--benchmark-timer``, default
:func:`time.perf_counter`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class PairedTimes:
    """Seconds per round of both sides, warm-up rounds left out."""

    #: gainscale's side, as pytest-benchmark timed it
    ours: tuple[float, ...]
    #: the side it is compared with, each round timed just before the matching one of ``ours``
    theirs: tuple[float, ...]

    def ratio(self) -> float:
        """Median over median: the figure a target bounds."""
        return statistics.median(self.ours) / statistics.median(self.theirs)

    def min_ratio(self) -> float:
        """Minimum over minimum: the same comparison at each side's least-disturbed round."""
        return min(self.ours) / min(self.theirs)

    def record(self, benchmark, ours: str, theirs: str, target: str) -> str:
        """Put the figures into ``benchmark.extra_info``; return a one-line summary."""
        benchmark.extra_info.update(
            {
                f"{ours}_median_s": round(statistics.median(self.ours), 4),
                f"{theirs}_median_s": round(statistics.median(self.theirs), 4),
                f"{theirs}_rounds_s": [round(t, 4) for t in self.theirs],
                "ratio_of_medians": round(self.ratio(), 4),
                "ratio_of_minimums": round(self.min_ratio(), 4),
                "target": target,
            }
        )
        return (
            f"{ours} / {theirs} = {self.ratio():.3f} (medians {statistics.median(self.ours):.3f} s / "
            f"{statistics.median(self.theirs):.3f} s; minimums give {self.min_ratio():.3f}; "
            f"{len(self.ours)} rounds); target {target}"
        )


def time_in_turns(benchmark, ours: Callable[[], object], theirs: Callable[[], object], rounds: int, warmup_rounds: int = 1) -> PairedTimes:
    """Benchmark ``ours`` for ``rounds`` rounds, running and timing ``theirs`` before each one."""
    our_times, their_times = time_many_in_turns(benchmark, ours, {"theirs": theirs}, rounds, warmup_rounds)
    return PairedTimes(ours=our_times, theirs=their_times["theirs"])


def time_many_in_turns(
    benchmark, ours: Callable[[], object], others: dict[str, Callable[[], object]], rounds: int, warmup_rounds: int = 1
) -> tuple[tuple[float, ...], dict[str, tuple[float, ...]]]:
    """Benchmark ``ours`` for ``rounds`` rounds, running and timing each of ``others`` before each one.

    Returns ``(our seconds per round, {name: its seconds per round})``, warm-up rounds left out.
    """
    if benchmark.disabled:  # --benchmark-enable under xdist: pytest-benchmark times nothing
        pytest.skip("pytest-benchmark is disabled in this run (xdist?): run with -p no:xdist")
    times: dict[str, list[float]] = {name: [] for name in others}
    # the timer pytest-benchmark times ours with (--benchmark-timer), so that both sides agree;
    # time.process_time suits a crowded machine, where wall time counts the neighbours' work
    timer = getattr(benchmark, "_timer", time.perf_counter)

    def run_others() -> None:
        for name, function in others.items():
            started = timer()
            function()
            times[name].append(timer() - started)

    benchmark.pedantic(ours, setup=run_others, rounds=rounds, warmup_rounds=warmup_rounds)
    # pedantic calls setup before the warm-up rounds too: drop those
    return tuple(benchmark.stats.stats.data), {name: tuple(t[warmup_rounds:]) for name, t in times.items()}
