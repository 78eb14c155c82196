"""Target 2: gainscale's hooks cost at most 10% over the same forward passes without them.

On a model with pythia-160m's exact config (random weights), float32 on CPU, 32 prompts:
``GainMeter().measure`` against the same batches (same grouping by length, same right
padding, same token budget) through the same body (``model.base_model``), no hooks, under
``torch.inference_mode()``. Target: time(measure) / time(bare batches) <= 1.10, medians of
rounds run in turns.

Tokenization is included on both sides alike: ``measure`` tokenizes each prompt with
``tokenizer(prompt)["input_ids"]``, and so does the bare side, before sorting and padding.
"""

from __future__ import annotations

from gainscale.meter import GainMeter, default_token_budget, pad_right, plan_batches

from .pairing import time_in_turns

TARGET = 1.10
ROUNDS = 10


def bare_batches(loaded, prompts, token_budget: int) -> None:
    """gainscale's batches (its own ordering, budget and padding) through the body, no hooks, nothing kept."""
    import torch

    token_ids = [loaded.tokenizer(prompt)["input_ids"] for prompt in prompts.prompts]
    body = loaded.model.base_model
    with torch.inference_mode():
        for batch in plan_batches(token_ids, token_budget):
            input_ids, mask = pad_right([token_ids[i] for i in batch])
            body(input_ids=input_ids, attention_mask=mask, use_cache=False)


def test_hooks_cost_at_most_ten_percent(benchmark, pythia_160m, prompts_32, torch_threads):
    """Measuring takes at most 1.10x the time of the same batches through the body without hooks."""
    meter = GainMeter(progress=False, threads=torch_threads)
    budget = default_token_budget(pythia_160m.device)
    times = time_in_turns(
        benchmark,
        ours=lambda: meter.measure(pythia_160m, prompts_32, "benchmark"),
        theirs=lambda: bare_batches(pythia_160m, prompts_32, budget),
        rounds=ROUNDS,
    )
    benchmark.extra_info["torch_threads"] = torch_threads
    summary = times.record(benchmark, "gainscale", "bare_batches", f"<= {TARGET}")
    print(f"\n[target 2: hook overhead, pythia-160m config, 32 prompts, token budget {budget}, CPU float32, {torch_threads} torch thread(s)] {summary}")
    assert times.ratio() <= TARGET, summary
