"""The CPU token budget: the default is within 10% of the fastest of the budgets tried.

On a model with pythia-160m's exact config (random weights), float32 on CPU, the 40 shipped
prompts (1,559 tokens with the random model's tokenizer, 21 to 59 per prompt), every budget
measured in turns, round by round, in one run. The figures that chose
:data:`gainscale.meter.CPU_TOKEN_BUDGET` come from this comparison. On a crowded machine add
``--benchmark-timer time.process_time``: with one thread, CPU time leaves the neighbours out.
"""

from __future__ import annotations

import statistics

from gainscale.meter import CPU_TOKEN_BUDGET, GainMeter
from gainscale.prompts import load_prompts

from .pairing import time_many_in_turns

#: padded tokens per forward pass tried, from a few prompts per batch to all 40 in one
BUDGETS = (128, 256, 512, 1024, 2048, 4096)
TARGET = 1.10
ROUNDS = 5


def test_default_cpu_budget_is_within_ten_percent_of_the_fastest(benchmark, pythia_160m, torch_threads):
    """Median time at the default budget <= 1.10 x the fastest budget's median, all from one run."""
    prompts = load_prompts()
    meters = {budget: GainMeter(progress=False, token_budget=budget, threads=torch_threads) for budget in BUDGETS}
    others = {str(b): (lambda m=meters[b]: m.measure(pythia_160m, prompts, "benchmark")) for b in BUDGETS if b != CPU_TOKEN_BUDGET}
    ours, theirs = time_many_in_turns(
        benchmark, lambda: meters[CPU_TOKEN_BUDGET].measure(pythia_160m, prompts, "benchmark"), others, rounds=ROUNDS
    )
    medians = {CPU_TOKEN_BUDGET: statistics.median(ours), **{int(k): statistics.median(v) for k, v in theirs.items()}}
    fastest = min(medians.values())
    relative = {budget: round(medians[budget] / fastest, 3) for budget in sorted(medians)}
    benchmark.extra_info.update({"medians_s": {str(k): round(v, 4) for k, v in sorted(medians.items())},
                                 "relative_to_fastest": {str(k): v for k, v in relative.items()},
                                 "torch_threads": torch_threads, "target": f"<= {TARGET}"})
    table = ", ".join(f"{budget}: {ratio:.2f}" for budget, ratio in relative.items())
    summary = (f"time relative to the fastest budget ({fastest:.3f} s): {table}; default {CPU_TOKEN_BUDGET} "
               f"at {relative[CPU_TOKEN_BUDGET]:.3f}; target {TARGET}")
    print(f"\n[token budget, pythia-160m config, 40 prompts, CPU float32, {torch_threads} torch thread(s)] {summary}")
    assert relative[CPU_TOKEN_BUDGET] <= TARGET, summary
