"""An independent reference of the paper's gain for the Llama layout: one prompt per forward
through the full causal-LM, norms averaged with ``mean()``, Llama's module paths written out
by hand (``model.layers[i].self_attn`` and ``.mlp``).

It shares no code with gainscale's meter, loader or architecture table; tests compare them.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from statistics import fmean


def load_llama(path, dtype="float32"):
    """``(model, tokenizer)`` straight from transformers: a directory, or a ``.gguf`` file."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    where, extra = (path.parent, {"gguf_file": path.name}) if path.suffix == ".gguf" else (path, {})
    model = AutoModelForCausalLM.from_pretrained(where, dtype=getattr(torch, dtype), **extra).eval()
    return model, AutoTokenizer.from_pretrained(where, **extra)


def llama_gains(model, tokenizer, prompts):
    """Return ``(attention gains, MLP gains)`` per layer of a Llama causal-LM, as the paper's notebook did."""
    import torch

    assert model.config.model_type == "llama", model.config.model_type
    gains = defaultdict(list)  # (layer, kind) -> [gain_p]

    def recorder(key):
        def hook(module, args, kwargs, output):
            hidden_in = args[0] if args else kwargs["hidden_states"]
            hidden_out = output[0] if isinstance(output, tuple) else output
            in_p = hidden_in.float().norm(dim=-1).mean().item()
            out_p = hidden_out.float().norm(dim=-1).mean().item()
            gains[key].append(out_p / in_p)

        return hook

    handles = []
    for index, layer in enumerate(model.model.layers):
        handles.append(layer.self_attn.register_forward_hook(recorder((index, "attention")), with_kwargs=True))
        handles.append(layer.mlp.register_forward_hook(recorder((index, "mlp")), with_kwargs=True))
    try:
        with torch.no_grad():
            for prompt in prompts:
                model(**tokenizer(prompt, return_tensors="pt"))
    finally:
        for handle in handles:
            handle.remove()
    layers = len(model.model.layers)
    return (
        [fmean(gains[(layer, "attention")]) for layer in range(layers)],
        [fmean(gains[(layer, "mlp")]) for layer in range(layers)],
    )
