"""Every gain definition, measured in one batched pass, matches an independent one-prompt reference."""

from __future__ import annotations

import json

import pytest
from conftest import SMALL_NEOX, local_spec
from reference import reference_gains

from gainscale.architectures import LAYOUTS, find_sublayers
from gainscale.errors import UnknownNameError
from gainscale.loading import LoadOptions, load_model
from gainscale.measurement import GAIN_DEFINITIONS, GainDefinitionUnavailable, Measurement
from gainscale.meter import GainMeter, plan_batches
from gainscale.prompts import PromptSet, load_prompts
from gainscale.randommodels import build_random_model

PROMPTS = load_prompts()
#: prompts of unequal lengths, so that batches are padded
SOME = PromptSet("some", PROMPTS.prompts[:8])
#: padded tokens per forward: small enough for several batches of several prompts each
BUDGET = 96

SMALL_LLAMA = {
    "model_type": "llama", "hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 3,
    "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512, "max_position_embeddings": 256,
    "initializer_range": 0.1,
}
SMALL_GPT2 = {"model_type": "gpt2", "n_embd": 48, "n_layer": 2, "n_head": 4, "vocab_size": 512, "n_positions": 256,
              "initializer_range": 0.1}
SMALL_MISTRAL = {**SMALL_LLAMA, "model_type": "mistral", "num_hidden_layers": 2}
#: GPT-NeoX with the sequential residual: its MLP reads the layer input plus the attention's output
SEQUENTIAL_NEOX = {**SMALL_NEOX, "use_parallel_residual": False}


def with_random_norms(directory, seed):
    """Give every LayerNorm/RMSNorm random weights (and biases) in a saved checkpoint.

    Freshly initialised norms have unit weights, so every token's normed input has the same
    norm (sqrt of the width) and ``token_mean`` equals ``paper`` exactly; trained norms do not.
    """
    import torch
    from safetensors.torch import load_file, save_file

    weights_file = directory / "model.safetensors"
    weights = load_file(weights_file)
    generator = torch.Generator().manual_seed(seed)
    for name, tensor in weights.items():
        if "norm" in name or ".ln_" in name:
            noise = torch.rand(tensor.shape, generator=generator)
            tensor.copy_(0.5 + noise if name.endswith("weight") else 0.2 * (noise - 0.5))
    save_file(weights, weights_file, metadata={"format": "pt"})
    return directory


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    return with_random_norms(build_random_model(tmp_path_factory.mktemp("models") / "llama", SMALL_LLAMA, seed=11), 1)


@pytest.fixture(scope="module")
def sequential_neox_dir(tmp_path_factory):
    directory = build_random_model(tmp_path_factory.mktemp("models") / "neox-sequential", SEQUENTIAL_NEOX, seed=12)
    return with_random_norms(directory, 2)


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    return with_random_norms(build_random_model(tmp_path_factory.mktemp("models") / "gpt2", SMALL_GPT2, seed=13), 3)


def measure(directory, prompts=SOME, name="small", **meter):
    options = dict(progress=False, token_budget=BUDGET, threads=1, **meter)
    with load_model(local_spec(directory, name), "test", LoadOptions(device="cpu", dtype="float32", progress=False)) as loaded:
        batches = plan_batches([loaded.tokenizer(p)["input_ids"] for p in prompts.prompts], options["token_budget"], options.get("batch_size"))
        return GainMeter(**options).measure(loaded, prompts, "test"), batches


def assert_close(actual, expected, what, rel=1e-5):
    assert len(actual) == len(expected), what
    for layer, (a, e) in enumerate(zip(actual, expected)):
        assert a == pytest.approx(e, rel=rel), f"{what} layer {layer}: {a} != {e}"


def assert_matches_reference(directory, name, prompts=SOME):
    expected = reference_gains(directory, prompts.prompts)
    measurement, batches = measure(directory, prompts, name)
    assert len(batches) > 1 and any(len(b) > 1 for b in batches), f"batching not in play: {batches}"
    assert set(expected) == set(GAIN_DEFINITIONS)
    for definition, (attn, mlp) in expected.items():
        gains = measurement.gains(definition)
        assert_close(gains.attention, attn, f"{name} {definition} attention")
        assert_close(gains.mlp, mlp, f"{name} {definition} MLP")
    return measurement


def test_pythia_70m_config_every_definition_matches_reference(pythia_70m_dir):
    """GPT-NeoX at pythia-70m's exact shape (parallel residual): every definition to 1e-5."""
    measurement = assert_matches_reference(pythia_70m_dir, "pythia-70m")
    assert measurement.provenance.token_budget == BUDGET


def test_llama_every_definition_matches_reference(llama_dir):
    """Llama (RMSNorm, sequential residual, hidden_states= by keyword): every definition to 1e-5."""
    assert_matches_reference(llama_dir, "llama")


def test_sequential_gpt_neox_and_gpt2_match_reference(sequential_neox_dir, gpt2_dir):
    """The MLP's residual is the layer input plus the attention output where the residual is sequential."""
    assert_matches_reference(sequential_neox_dir, "neox-sequential")
    assert_matches_reference(gpt2_dir, "gpt2")


def test_definitions_differ_from_one_another(llama_dir):
    """The definitions measure different things (a test that all returned the paper's would fail)."""
    measurement, _ = measure(llama_dir)
    finals = {d: measurement.gains(d).mlp[-1] for d in GAIN_DEFINITIONS}
    assert len({round(v, 6) for v in finals.values()}) == len(finals), finals


def test_per_prompt_numbers_of_every_definition_are_kept(small_model_dir):
    """Each definition's layer gain is the mean of its kept per-prompt gains, prompts in order."""
    measurement, _ = measure(small_model_dir)
    for definition in GAIN_DEFINITIONS:
        for kind in ("attention", "mlp"):
            norms = getattr(measurement, kind)
            per_prompt = norms.prompt_gains(measurement.n_layers - 1, definition)
            assert len(per_prompt) == len(SOME)
            assert getattr(measurement.gains(definition), kind)[-1] == pytest.approx(sum(per_prompt) / len(per_prompt), rel=1e-12)


def test_summary_follows_the_definition_and_defaults_to_the_paper(llama_dir):
    measurement, _ = measure(llama_dir)
    assert measurement.summary() == measurement.summary(definition="paper")
    assert measurement.summary().mlp_gains == measurement.mlp_gains
    residual = measurement.summary(definition="residual")
    assert residual.mlp_gains == pytest.approx(measurement.gains("residual").mlp, rel=1e-12) and residual.gain_definition == "residual"
    assert residual.final_mlp_gain == measurement.gains("residual").mlp[-1] != measurement.summary().final_mlp_gain


def test_unknown_definition_lists_the_known_ones(small_model_dir):
    measurement, _ = measure(small_model_dir, PromptSet("two", PROMPTS.prompts[:2]))
    with pytest.raises(UnknownNameError, match=r"unknown gain definition 'risidual'; did you mean 'residual'\?.*paper, residual, skip_first, token_mean"):
        measurement.gains("risidual")
    with pytest.raises(UnknownNameError, match="unknown gain definition 'first'"):
        measurement.summary(definition="first")


def test_a_one_token_prompt_refuses_skip_first_and_only_that(small_model_dir):
    """skip_first has no token left in a one-token prompt: that definition is refused, naming it."""
    with_single = PromptSet("with-single", (PROMPTS.prompts[0], "a", PROMPTS.prompts[1]))
    measurement, _ = measure(small_model_dir, with_single)
    assert measurement.mlp.inputs_after_first[0][1] is None and measurement.mlp.inputs_after_first[0][0] > 0
    with pytest.raises(GainDefinitionUnavailable, match=r"small: no 'skip_first' gains: prompt\(s\) 2 have a single token"):
        measurement.gains("skip_first")
    assert measurement.available_definitions() == ("paper", "residual", "token_mean")
    restored = Measurement.from_json(json.loads(json.dumps(measurement.to_json(), allow_nan=False)))
    assert restored == measurement and set(measurement.to_json()["gains"]) == {"paper", "residual", "token_mean"}


def test_json_round_trip_keeps_every_definition(small_model_dir):
    measurement, _ = measure(small_model_dir)
    data = json.loads(json.dumps(measurement.to_json(), allow_nan=False))
    restored = Measurement.from_json(data)
    assert restored == measurement
    assert data["gains"]["residual"]["mlp"] == list(measurement.gains("residual").mlp)


def test_a_method_1_entry_still_reads_and_says_what_it_lacks(small_model_dir):
    """An entry written before the other definitions existed gives the paper's gains and names what is missing."""
    measurement, _ = measure(small_model_dir)
    data = measurement.to_json()
    for kind in ("attention", "mlp"):
        data[kind] = {"in": data[kind]["in"], "out": data[kind]["out"]}
    for key in ("token_budget", "budget_halvings", "threads"):
        del data["provenance"][key]
    old = Measurement.from_json({**data, "method_version": 1})
    assert old.gains("paper") == measurement.gains("paper") and old.available_definitions() == ("paper",)
    with pytest.raises(GainDefinitionUnavailable, match=r"small: no 'token_mean' gains: .*not measured.*measure it again"):
        old.gains("token_mean")


@pytest.mark.parametrize("model_type", sorted(LAYOUTS))
def test_each_layout_norm_feeds_its_module(tmp_path, model_type):
    """For every row of the layout table, the named norm's output is the very tensor its module reads."""
    import torch

    config = {"llama": SMALL_LLAMA, "mistral": SMALL_MISTRAL, "gpt2": SMALL_GPT2, "gpt_neox": SMALL_NEOX}[model_type]
    directory = build_random_model(tmp_path / model_type, config, seed=5)
    with load_model(local_spec(directory), "test", LoadOptions(device="cpu", dtype="float32", progress=False)) as loaded:
        sublayers = find_sublayers(loaded.model)
        outputs, inputs, handles = {}, {}, []
        for slot, sublayer in enumerate(sublayers):
            handles.append(sublayer.norm.register_forward_hook(lambda m, a, o, slot=slot: outputs.__setitem__(slot, o)))
            handles.append(sublayer.module.register_forward_pre_hook(
                lambda m, a, k, slot=slot: inputs.__setitem__(slot, a[0] if a else k["hidden_states"]), with_kwargs=True))
        with torch.no_grad():
            loaded.model(**loaded.tokenizer("a few words", return_tensors="pt"))
        for handle in handles:
            handle.remove()
    assert len(sublayers) == 2 * loaded_layers(config)
    assert all(inputs[slot] is outputs[slot] for slot in range(len(sublayers))), model_type


def loaded_layers(config) -> int:
    return config.get("num_hidden_layers", config.get("n_layer"))


def test_refuses_a_zero_residual_norm_naming_it(model_copy):
    """Zero embeddings make layer 0's residual stream zero; a LayerNorm bias keeps its output (the
    attention's input) non-zero, so only the residual definition's divisor is zero."""
    from safetensors.torch import load_file, save_file

    from gainscale.errors import MeasurementError

    weights_file = model_copy / "model.safetensors"
    weights = load_file(weights_file)
    weights["gpt_neox.embed_in.weight"].zero_()
    weights["gpt_neox.layers.0.input_layernorm.bias"].fill_(1.0)
    save_file(weights, weights_file, metadata={"format": "pt"})
    with pytest.raises(MeasurementError, match=r"small: layer 0 attention: residual-stream norm \(the input of the norm before it\) is 0.0 for prompt 1"):
        measure(model_copy, PromptSet("two", PROMPTS.prompts[:2]))


def test_every_definition_has_a_description():
    assert set(GAIN_DEFINITIONS) == {"paper", "residual", "token_mean", "skip_first"}
    assert all(isinstance(text, str) and len(text) > 20 for text in GAIN_DEFINITIONS.values())
