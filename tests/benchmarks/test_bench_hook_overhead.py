"""Target 2: gainscale's hooks cost at most 10% over the same forward passes without them.

On a model with pythia-160m's exact config (random weights), float32 on CPU, 32 prompts:
``GainMeter().measure`` against the same batches (same grouping by length, same right
padding, same batch size) through the same body (``model.base_model``), no hooks, under
``torch.inference_mode()``. Target: time(measure) / time(bare batches) <= 1.10, medians of
rounds run in turns.

Tokenization is included on both sides alike: ``measure`` tokenizes each prompt with
``tokenizer(prompt)["input_ids"]``, and so does the bare side, before sorting and padding.
"""

from __future__ import annotations

from gainscale.meter import GainMeter, default_batch_size, length_order, pad_right

from .pairing import time_in_turns

TARGET = 1.10
ROUNDS = 10


def bare_batches(loaded, prompts, batch_size: int) -> None:
    """gainscale's batches (its own ordering and padding) through the body, no hooks, nothing kept."""
    import torch

    token_ids = [loaded.tokenizer(prompt)["input_ids"] for prompt in prompts.prompts]
    order = length_order(token_ids)
    body = loaded.model.base_model
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            input_ids, mask = pad_right([token_ids[i] for i in order[start : start + batch_size]])
            body(input_ids=input_ids, attention_mask=mask, use_cache=False)


def test_hooks_cost_at_most_ten_percent(benchmark, pythia_160m, prompts_32, torch_threads):
    """Measuring takes at most 1.10x the time of the same batches through the body without hooks."""
    meter = GainMeter(batch_size=None, progress=False)
    batch_size = default_batch_size(pythia_160m.device)
    times = time_in_turns(
        benchmark,
        ours=lambda: meter.measure(pythia_160m, prompts_32, "benchmark"),
        theirs=lambda: bare_batches(pythia_160m, prompts_32, batch_size),
        rounds=ROUNDS,
    )
    benchmark.extra_info["torch_threads"] = torch_threads
    summary = times.record(benchmark, "gainscale", "bare_batches", f"<= {TARGET}")
    print(f"\n[target 2: hook overhead, pythia-160m config, 32 prompts, batch {batch_size}, CPU float32, {torch_threads} torch thread(s)] {summary}")
    assert times.ratio() <= TARGET, summary
