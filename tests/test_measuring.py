"""The meter computes the paper's gain exactly, however the prompts are batched."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from conftest import local_spec
from reference import paper_gains

from gainscale.errors import MeasurementError, UnsupportedArchitectureError
from gainscale.loading import LoadOptions, load_model, local_fingerprint
from gainscale.meter import GainMeter
from gainscale.prompts import PromptSet, load_prompts

PROMPTS = load_prompts()
FEW = PromptSet("few", PROMPTS.prompts[:6])


def measure(directory, prompts=FEW, batch_size=8, dtype="float32", name="small", **meter):
    spec = local_spec(directory, name)
    with load_model(spec, "test", LoadOptions(device="cpu", dtype=dtype)) as loaded:
        return GainMeter(batch_size=batch_size, progress=False, **meter).measure(loaded, prompts, "test")


def assert_close(actual, expected, rel=1e-5):
    assert len(actual) == len(expected)
    for layer, (a, e) in enumerate(zip(actual, expected)):
        assert a == pytest.approx(e, rel=rel), f"layer {layer}: {a} != {e}"


def test_gains_match_one_prompt_at_a_time_reference(small_model_dir):
    """Batched, body-only, masked measuring gives the notebook's numbers to 1e-5."""
    attn, mlp = paper_gains(small_model_dir, PROMPTS.prompts)
    measurement = measure(small_model_dir, PROMPTS, batch_size=8)
    assert_close(measurement.attn_gains, attn)
    assert_close(measurement.mlp_gains, mlp)


def test_pythia_70m_config_matches_reference_and_parameter_count(pythia_70m_dir):
    """At pythia-70m's exact shape the gains match the reference and the parameter count is pythia-70m's (70,426,624)."""
    attn, mlp = paper_gains(pythia_70m_dir, FEW.prompts)
    measurement = measure(pythia_70m_dir, FEW, batch_size=4, name="pythia-70m")
    assert_close(measurement.attn_gains, attn)
    assert_close(measurement.mlp_gains, mlp)
    assert (measurement.n_params, measurement.n_layers, measurement.hidden_size) == (70_426_624, 6, 512)


@pytest.mark.parametrize("batch_size, token_budget", [(1, None), (3, None), (64, None), (None, 1), (None, 100), (None, 10_000)])
def test_batching_and_padding_change_nothing(small_model_dir, batch_size, token_budget):
    """Right padding with a mask, any batch size or token budget: the same per-prompt numbers to 1e-5."""
    one_by_one = measure(small_model_dir, PROMPTS, batch_size=1)
    batched = measure(small_model_dir, PROMPTS, batch_size=batch_size, token_budget=token_budget)
    for kind in ("attention", "mlp"):
        for side in ("inputs", "outputs", "residual_inputs", "token_ratios"):
            for layer, (a, b) in enumerate(zip(getattr(getattr(batched, kind), side), getattr(getattr(one_by_one, kind), side))):
                assert a == pytest.approx(b, rel=1e-5), f"{kind} {side} layer {layer}"


def test_per_prompt_norms_are_kept_and_give_the_gains(small_model_dir):
    """in_p and out_p are kept per layer and prompt, in prompt order, and average to the gain."""
    measurement = measure(small_model_dir, FEW, batch_size=4)
    assert measurement.n_prompts == len(FEW)
    assert len(measurement.mlp.inputs) == measurement.n_layers
    layer = measurement.n_layers - 1
    gains = [o / i for i, o in zip(measurement.mlp.inputs[layer], measurement.mlp.outputs[layer])]
    assert measurement.mlp_gains[layer] == pytest.approx(math.fsum(gains) / len(gains), rel=1e-12)
    single = measure(small_model_dir, PromptSet("third", (FEW.prompts[2],)), batch_size=1)
    assert single.mlp.inputs[layer][0] == pytest.approx(measurement.mlp.inputs[layer][2], rel=1e-5)


def test_cpu_measurements_are_bit_identical_across_runs(small_model_dir):
    """Same model, prompts, dtype and device: the very same floats."""
    first, second = measure(small_model_dir, PROMPTS), measure(small_model_dir, PROMPTS)
    assert first.attention == second.attention and first.mlp == second.mlp


def test_llama_input_passed_as_keyword_is_found(tmp_path):
    """Llama passes hidden_states= by keyword; the hooks still find it (with_kwargs=True)."""
    from gainscale.randommodels import build_random_model

    config = {"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512, "max_position_embeddings": 128}
    directory = build_random_model(tmp_path / "llama", config, seed=3)
    measurement = measure(directory, FEW)
    assert measurement.n_layers == 2
    assert all(math.isfinite(g) and g > 0 for g in measurement.attn_gains + measurement.mlp_gains)


def test_unsupported_architecture_names_it_and_the_supported_ones(tmp_path):
    from gainscale.randommodels import build_random_model

    config = {"model_type": "gpt_neo", "hidden_size": 32, "num_layers": 2, "num_heads": 4, "vocab_size": 512,
              "attention_types": [[["global"], 2]], "max_position_embeddings": 64}
    directory = build_random_model(tmp_path / "neo", config, seed=1)
    with pytest.raises(UnsupportedArchitectureError, match=r"'gpt_neo' is not supported.*gpt2, gpt_neox, llama, mistral"):
        measure(directory, FEW)


def test_float16_overflow_is_named_and_refused(model_copy):
    """Planted weights overflow float16 in layer 1's MLP: the error names layer and module."""
    import torch
    from safetensors.torch import load_file, save_file

    weights_file = model_copy / "model.safetensors"
    weights = load_file(weights_file)
    weights["gpt_neox.layers.1.mlp.dense_4h_to_h.weight"].fill_(30000.0)
    save_file(weights, weights_file, metadata={"format": "pt"})
    with pytest.raises(MeasurementError, match=r"small: layer 1 mlp: output norm is (inf|nan) .*float16.*bfloat16 or float32"):
        measure(model_copy, FEW, dtype="float16")
    assert all(map(math.isfinite, measure(model_copy, FEW, dtype="float32").mlp_gains))
    del torch


def test_zero_input_norm_is_refused(model_copy):
    """A LayerNorm with zero weight and bias feeds the MLP zeros: gain undefined, refused."""
    from safetensors.torch import load_file, save_file

    weights_file = model_copy / "model.safetensors"
    weights = load_file(weights_file)
    weights["gpt_neox.layers.0.post_attention_layernorm.weight"].zero_()
    weights["gpt_neox.layers.0.post_attention_layernorm.bias"].zero_()
    save_file(weights, weights_file, metadata={"format": "pt"})
    with pytest.raises(MeasurementError, match=r"layer 0 mlp: input norm is 0.0 for prompt 1"):
        measure(model_copy, FEW)


def test_local_fingerprint_follows_content(model_copy, small_model_dir):
    """A rebuilt copy keeps its identity; changed weights get a new one."""
    assert local_fingerprint(model_copy) == local_fingerprint(small_model_dir)
    (model_copy / "model.safetensors").write_bytes((model_copy / "model.safetensors").read_bytes()[:-1] + b"\0")
    assert local_fingerprint(model_copy) != local_fingerprint(small_model_dir)


def test_cuda_out_of_memory_halves_the_token_budget_and_goes_on(small_model_dir, monkeypatch):
    """An out-of-memory batch is retried under half its padded tokens, with a warning; the numbers are the same."""
    import torch

    from gainscale.meter import MeasurementWarning

    expected = measure(small_model_dir, PROMPTS, batch_size=None)
    original = GainMeter._forward
    padded, rows = [], []

    def forward_with_little_memory(body, recorder, batch, device):
        padded.append(len(batch) * max(map(len, batch)))
        rows.append(len(batch))
        if padded[-1] > 100:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return original(body, recorder, batch, device)

    monkeypatch.setattr(GainMeter, "_forward", staticmethod(forward_with_little_memory))
    with pytest.warns(MeasurementWarning, match=r"small: CUDA out of memory on \d+ prompts x \d+ tokens; token budget halved to") as warned:
        halved = measure(small_model_dir, PROMPTS, batch_size=None, token_budget=400)
    budgets = [int(str(w.message).rsplit(" ", 1)[1].replace(",", "")) for w in warned]
    assert budgets == sorted(budgets, reverse=True) and budgets[-1] <= 100
    in_force, lowered = 400, iter(budgets)
    for size, count in zip(padded, rows):  # every batch within the budget in force (or one prompt alone)
        assert size <= in_force or count == 1, (padded, budgets)
        if size > 100:
            in_force = next(lowered)  # a failure lowers it to at most half the failed batch
            assert in_force <= size // 2, (padded, budgets)
    assert next(lowered, None) is None
    assert halved.provenance.token_budget == 400 and halved.provenance.budget_halvings == len(budgets)
    assert_close(halved.attn_gains, expected.attn_gains)
    assert_close(halved.mlp_gains, expected.mlp_gains)


def test_cuda_out_of_memory_on_one_prompt_names_it(small_model_dir, monkeypatch):
    import torch

    def no_memory(body, recorder, batch, device):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(GainMeter, "_forward", staticmethod(no_memory))
    with pytest.warns(Warning), pytest.raises(MeasurementError, match=r"small: CUDA out of memory on prompt \d+ alone \(\d+ tokens\) in float32"):
        measure(small_model_dir, FEW, batch_size=None)


def padded(batches, lengths) -> int:
    return sum(len(b) * max(lengths[i] for i in b) for b in batches)


def greedy_batches(lengths, budget, cap):
    """Fill each batch while the next (longer) prompt fits: a feasible split, written independently."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches = [[order[0]]]
    for index in order[1:]:
        current = batches[-1]
        if (cap is None or len(current) < cap) and (len(current) + 1) * lengths[index] <= budget:
            current.append(index)
        else:
            batches.append([index])
    return batches


def test_plan_batches_keeps_each_batch_within_the_budget_and_pads_little():
    """Sorted by length; padded tokens (prompts x longest) within budget and cap; a long prompt alone."""
    from gainscale.meter import plan_batches

    lengths = [5, 40, 3, 3, 12, 7, 7, 90, 1]
    token_ids = [[0] * n for n in lengths]
    batches = plan_batches(token_ids, token_budget=24)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(flat)
    # 3 x 3 = 9, then 5 with 7 and 7 (21), 12 alone; 40 and 90 exceed the budget and go alone
    assert batches == [[8, 2, 3], [0, 5, 6], [4], [1], [7]]
    assert all(len(b) <= 2 for b in plan_batches(token_ids, token_budget=1000, max_prompts=2))
    # the greedy fill pads 256 prompts of 25..65 tokens to 65 in one batch of 252; the plan splits
    lengths = [25 + (i * 41) // 256 for i in range(256)]
    planned = plan_batches([[0] * n for n in lengths], 16384)
    assert padded(planned, lengths) < 0.9 * padded(greedy_batches(lengths, 16384, None), lengths)


def _cost(batches, lengths, budget):
    return padded(batches, lengths) + len(batches) * budget / 8


@given(st.lists(st.integers(1, 300), min_size=1, max_size=60), st.integers(1, 2000), st.none() | st.integers(1, 9))
@settings(max_examples=200, deadline=None)
def test_plan_batches_property(lengths, budget, cap):
    """Every prompt once, sorted, within budget and cap, never costlier than the greedy fill."""
    from gainscale.meter import plan_batches

    batches = plan_batches([[0] * n for n in lengths], budget, cap)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert [lengths[i] for b in batches for i in b] == sorted(lengths)
    for batch in batches:
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= budget
        assert cap is None or len(batch) <= cap
    assert _cost(batches, lengths, budget) <= _cost(greedy_batches(lengths, budget, cap), lengths, budget) + 1e-9


@given(st.lists(st.integers(1, 40), min_size=1, max_size=9), st.integers(1, 200))
@settings(max_examples=150, deadline=None)
def test_plan_batches_is_the_cheapest_split(lengths, budget):
    """Against every split of the sorted prompts into consecutive batches (brute force)."""
    from itertools import product

    from gainscale.meter import plan_batches

    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    cheapest = float("inf")
    for cuts in product((False, True), repeat=len(order) - 1):
        batches, current = [], [order[0]]
        for cut, index in zip(cuts, order[1:]):
            if cut:
                batches.append(current)
                current = []
            current.append(index)
        batches.append(current)
        if all(len(b) == 1 or len(b) * max(lengths[i] for i in b) <= budget for b in batches):
            cheapest = min(cheapest, _cost(batches, lengths, budget))
    planned = plan_batches([[0] * n for n in lengths], budget)
    assert _cost(planned, lengths, budget) == pytest.approx(cheapest)


def test_provenance_records_budget_threads_kernel_and_largest_batch(small_model_dir):
    import torch

    before = torch.get_num_threads()
    from gainscale.meter import plan_batches

    measurement = measure(small_model_dir, PROMPTS, batch_size=None, token_budget=200, threads=1)
    provenance = measurement.provenance
    assert (provenance.token_budget, provenance.threads, provenance.budget_halvings) == (200, 1, 0)
    assert provenance.attn_implementation == "sdpa"  # the fastest transformers offers on CPU
    with load_model(local_spec(small_model_dir), "test", LoadOptions(device="cpu", dtype="float32", progress=False)) as loaded:
        token_ids = [loaded.tokenizer(p)["input_ids"] for p in PROMPTS.prompts]
    assert provenance.batch_size == max(map(len, plan_batches(token_ids, 200))) > 1
    assert torch.get_num_threads() == before


def test_threads_apply_while_measuring_and_are_restored(small_model_dir, monkeypatch):
    """The meter runs the forward passes under its thread count; torch's own comes back after."""
    import torch

    seen = []
    original = GainMeter._forward

    def forward(body, recorder, batch, device):
        seen.append(torch.get_num_threads())
        return original(body, recorder, batch, device)

    monkeypatch.setattr(GainMeter, "_forward", staticmethod(forward))
    monkeypatch.setattr("gainscale.meter.default_threads", lambda: 1)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        explicit = measure(small_model_dir, FEW, threads=2)
        default = measure(small_model_dir, FEW)
    finally:
        torch.set_num_threads(before)
    assert set(seen[: len(seen) // 2]) == {2} and set(seen[len(seen) // 2 :]) == {1}
    assert (explicit.provenance.threads, default.provenance.threads) == (2, 1)


def test_eager_attention_gives_the_same_gains_and_the_kernel_is_restored(small_model_dir):
    """Asking for eager measures with eager; the model's own kernel is back afterwards."""
    spec = local_spec(small_model_dir)
    with load_model(spec, "test", LoadOptions(device="cpu", dtype="float32", progress=False)) as loaded:
        before = loaded.model.config._attn_implementation
        eager = GainMeter(progress=False, attn_implementation="eager").measure(loaded, FEW, "test")
        assert loaded.model.config._attn_implementation == before
        fastest = GainMeter(progress=False).measure(loaded, FEW, "test")
    assert (eager.provenance.attn_implementation, fastest.provenance.attn_implementation) == ("eager", "sdpa")
    assert_close(eager.mlp_gains, fastest.mlp_gains)
    assert_close(eager.gains("residual").attention, fastest.gains("residual").attention)


@pytest.mark.parametrize("option", ["batch_size", "token_budget", "threads"])
def test_meter_options_below_one_are_refused(option):
    from gainscale.errors import OptionError

    with pytest.raises(OptionError, match=f"{option.replace('_', ' ')} must be at least 1, not 0"):
        GainMeter(**{option: 0})


@pytest.mark.parametrize("field", ["IN", "OUT", "RATIO", "IN_AFTER_FIRST", "OUT_AFTER_FIRST", "RESIDUAL"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, 0.0])
def test_every_bad_number_is_refused_and_one_token_prompts_are_spared(field, bad):
    """The whole-tensor check lets nothing through that the per-field checks would name."""
    import torch

    from gainscale import meter
    from gainscale.architectures import Sublayer

    sublayers = [Sublayer(layer=i // 2, kind=("attention", "mlp")[i % 2], module=None, norm=None) for i in range(4)]
    lengths = [5, 1, 7]  # prompt 2 has no token after the first
    norms = torch.rand(len(sublayers), meter.N_FIELDS, len(lengths), dtype=torch.float64) + 0.5
    loaded = type("Loaded", (), {"spec": type("Spec", (), {"name": "m"})(), "dtype": "float32"})()
    index = getattr(meter, field)
    zero_is_fine = bad == 0.0 and field in ("OUT", "RATIO", "OUT_AFTER_FIRST")  # nothing divides by these

    norms[3, index, 1] = bad  # the one-token prompt
    if field.endswith("AFTER_FIRST") or zero_is_fine:
        meter.GainMeter._refuse_bad_norms(loaded, sublayers, norms, lengths)
    else:
        with pytest.raises(MeasurementError, match="layer 1 mlp.*prompt 2"):
            meter.GainMeter._refuse_bad_norms(loaded, sublayers, norms, lengths)

    norms[3, index, 1] = 1.0
    norms[2, index, 2] = bad
    if zero_is_fine:
        meter.GainMeter._refuse_bad_norms(loaded, sublayers, norms, lengths)
    else:
        with pytest.raises(MeasurementError, match="layer 1 attention.*prompt 3"):
            meter.GainMeter._refuse_bad_norms(loaded, sublayers, norms, lengths)
