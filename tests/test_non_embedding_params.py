"""Non-embedding parameter counts against models built on torch's meta device and closed formulas."""

from __future__ import annotations

import pytest

from gainscale.params import count_non_embedding_parameters, count_parameters
from gainscale.suites import pythia_config

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

#: a small Llama with grouped-query attention: 4 query heads of 16, 2 key/value heads
LLAMA = {"model_type": "llama", "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 3,
         "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 128}


def _meta_model(config: dict):
    settings = {k: v for k, v in config.items() if k != "model_type"}
    with torch.device("meta"):
        return transformers.AutoModelForCausalLM.from_config(transformers.AutoConfig.for_model(config["model_type"], **settings))


def _count_without(model, *names: str) -> int:
    """Parameters whose name contains none of ``names`` (a tied head is listed once, under the input's name)."""
    return sum(p.numel() for name, p in model.named_parameters() if not any(n in name for n in names))


@pytest.mark.parametrize("model", ["pythia-70m", "pythia-1.4b"])
def test_pythia_closed_form_equals_the_meta_model(model):
    config = pythia_config(model)
    built = _meta_model(config)
    assert count_non_embedding_parameters(config) == _count_without(built, "embed_in", "embed_out", "lm_head")


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_llama_on_the_meta_device(tied):
    config = {**LLAMA, "tie_word_embeddings": tied}
    hidden, inner, kv = 64, 160, 2 * 16
    per_layer = hidden * hidden * 2 + hidden * kv * 2 + 3 * hidden * inner + 2 * hidden  # q, o; k, v; MLP; two RMSNorms
    expected = 3 * per_layer + hidden  # the final norm
    assert count_non_embedding_parameters(config) == expected == _count_without(_meta_model(config), "embed_tokens", "lm_head")
    assert count_parameters(config) - expected == 1000 * 64 * (1 if tied else 2)


def test_gpt2_keeps_its_position_embeddings():
    """Only the token embedding (and an untied head) goes: GPT-2's learned positions stay."""
    config = {"model_type": "gpt2", "vocab_size": 500, "n_embd": 32, "n_layer": 2, "n_head": 2, "n_positions": 64}
    built = _meta_model(config)
    assert count_non_embedding_parameters(config) == _count_without(built, "wte") == count_parameters(config) - 500 * 32
    assert any("wpe" in name for name, _ in built.named_parameters())
