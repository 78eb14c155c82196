"""The meter computes the paper's gain exactly, however the prompts are batched."""

from __future__ import annotations

import math

import pytest
from conftest import local_spec
from reference import paper_gains

from gainscale.errors import MeasurementError, UnsupportedArchitectureError
from gainscale.loading import LoadOptions, load_model, local_fingerprint
from gainscale.meter import GainMeter
from gainscale.prompts import PromptSet, load_prompts

PROMPTS = load_prompts()
FEW = PromptSet("few", PROMPTS.prompts[:6])


def measure(directory, prompts=FEW, batch_size=8, dtype="float32", name="small"):
    spec = local_spec(directory, name)
    with load_model(spec, "test", LoadOptions(device="cpu", dtype=dtype)) as loaded:
        return GainMeter(batch_size=batch_size, progress=False).measure(loaded, prompts, "test")


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
    """At pythia-70m's exact shape the gains match the reference and the count is REFERENCE.md's."""
    attn, mlp = paper_gains(pythia_70m_dir, FEW.prompts)
    measurement = measure(pythia_70m_dir, FEW, batch_size=4, name="pythia-70m")
    assert_close(measurement.attn_gains, attn)
    assert_close(measurement.mlp_gains, mlp)
    assert (measurement.n_params, measurement.n_layers, measurement.hidden_size) == (70_426_624, 6, 512)


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_batching_and_padding_change_nothing(small_model_dir, batch_size):
    """Right padding with a mask, any batch size: the same per-prompt norms to 1e-5."""
    one_by_one = measure(small_model_dir, PROMPTS, batch_size=1)
    batched = measure(small_model_dir, PROMPTS, batch_size=batch_size)
    for kind in ("attention", "mlp"):
        for side in ("inputs", "outputs"):
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


def test_cuda_out_of_memory_halves_the_batch_and_goes_on(small_model_dir, monkeypatch):
    """An out-of-memory batch is retried at half the size, with a warning; the numbers are the same."""
    import torch

    from gainscale.meter import MeasurementWarning

    expected = measure(small_model_dir, PROMPTS, batch_size=8)
    original = GainMeter._forward
    sizes = []

    def forward_with_little_memory(body, recorder, batch, device):
        sizes.append(len(batch))
        if len(batch) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return original(body, recorder, batch, device)

    monkeypatch.setattr(GainMeter, "_forward", staticmethod(forward_with_little_memory))
    with pytest.warns(MeasurementWarning, match=r"small: CUDA out of memory; batch size halved to [42]") as warned:
        halved = measure(small_model_dir, PROMPTS, batch_size=8)
    assert [str(w.message).rsplit(" ", 1)[1] for w in warned] == ["4", "2"]
    assert sizes[:3] == [8, 4, 2] and set(sizes[3:]) == {2}
    assert_close(halved.attn_gains, expected.attn_gains)
    assert_close(halved.mlp_gains, expected.mlp_gains)
