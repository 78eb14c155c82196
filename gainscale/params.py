"""Parameter counts from a model's config, without its weights.

The paper counts every parameter of ``AutoModelForCausalLM`` (embeddings and LM head
included, a tied LM head once). For GPT-NeoX and Llama the count is a closed formula, so
listing the Pythia and SmolLM2 suites or replaying them from cache needs no torch; other
architectures are built on torch's meta device, which allocates nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def count_parameters(config: Mapping[str, Any]) -> int:
    """Count the parameters of the causal-LM that ``config`` (a config.json dict) describes.

    Examples
    --------
    >>> from gainscale.suites import pythia_config
    >>> count_parameters(pythia_config("pythia-70m"))
    70426624
    """
    if config.get("model_type") == "gpt_neox":
        return _gpt_neox_parameters(config)
    if config.get("model_type") == "llama" and all(key in config for key in _LLAMA_KEYS):
        return _llama_parameters(config)
    return _meta_device_parameters(config)


def count_embedding_parameters(config: Mapping[str, Any]) -> int:
    """Parameters in the input embedding and, when it is not tied to it, the output embedding.

    A fit over non-embedding parameters subtracts these (vocab x hidden each) from the total.
    """
    # config.json files say; where one does not, GPT-2 ties them and GPT-NeoX and Llama do not
    tied = config.get("tie_word_embeddings", config.get("model_type") == "gpt2")
    hidden = config.get("hidden_size") or config["n_embd"]  # GPT-2 configs name it n_embd
    return config["vocab_size"] * hidden * (1 if tied else 2)


#: the keys the Llama formula needs; a config without one falls back to the meta device,
#: which knows transformers' defaults
_LLAMA_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size")


def _llama_parameters(config: Mapping[str, Any]) -> int:
    hidden = config["hidden_size"]
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or hidden // heads
    kv_heads = config.get("num_key_value_heads") or heads
    inner = config["intermediate_size"]
    attention_bias = 1 if config.get("attention_bias", False) else 0
    mlp_bias = 1 if config.get("mlp_bias", False) else 0
    query_out, key_value_out = heads * head_dim, kv_heads * head_dim
    attention = (hidden + attention_bias) * (query_out + 2 * key_value_out) + query_out * hidden + hidden * attention_bias
    mlp = 2 * (hidden * inner + inner * mlp_bias) + inner * hidden + hidden * mlp_bias  # gate, up; down
    layer_norms = 2 * hidden  # RMSNorm: weight only
    layers = config["num_hidden_layers"] * (layer_norms + attention + mlp)
    return count_embedding_parameters(config) + layers + hidden  # final RMSNorm


def _gpt_neox_parameters(config: Mapping[str, Any]) -> int:
    hidden = config["hidden_size"]
    inner = config.get("intermediate_size") or 4 * hidden
    bias = 1 if config.get("attention_bias", True) else 0
    layer_norms = 2 * (2 * hidden)  # input and post-attention LayerNorm, weight + bias
    attention = 3 * hidden * hidden + 3 * hidden * bias + hidden * hidden + hidden * bias
    mlp = hidden * inner + inner + inner * hidden + hidden  # dense_h_to_4h, dense_4h_to_h
    layers = config["num_hidden_layers"] * (layer_norms + attention + mlp)
    final_layer_norm = 2 * hidden
    return count_embedding_parameters(config) + layers + final_layer_norm


def _meta_device_parameters(config: Mapping[str, Any]) -> int:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    settings = {k: v for k, v in config.items() if k != "model_type"}
    hf_config = AutoConfig.for_model(config["model_type"], **settings)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(hf_config)
    return sum(p.numel() for p in model.parameters())


def count_non_embedding_parameters(config: Mapping[str, Any]) -> int:
    """Count the parameters of the causal-LM that ``config`` describes, less its embeddings.

    Less the input (token) embedding, and less the output embedding (the LM head) where it is
    a matrix of its own; a tied head is the input embedding, counted once and taken away once.
    Position embeddings, layer norms and biases stay.

    Examples
    --------
    >>> from gainscale.suites import pythia_config
    >>> count_non_embedding_parameters(pythia_config("pythia-70m"))
    18915328
    """
    return count_parameters(config) - count_embedding_parameters(config)
