"""An independent reference of the paper's gain: one prompt per forward through the full
causal-LM, norms averaged with ``mean()``, GPT-NeoX module paths written out by hand.

It shares no code with gainscale's meter; tests compare the two.
"""

from __future__ import annotations

from collections import defaultdict
from statistics import fmean


def paper_gains(model_dir, prompts, dtype="float32"):
    """Return ``(attention gains, MLP gains)`` per layer, computed as the paper's notebook did."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype)).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
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
    for index, layer in enumerate(model.gpt_neox.layers):
        handles.append(layer.attention.register_forward_hook(recorder((index, "attention")), with_kwargs=True))
        handles.append(layer.mlp.register_forward_hook(recorder((index, "mlp")), with_kwargs=True))
    with torch.no_grad():
        for prompt in prompts:
            model(**tokenizer(prompt, return_tensors="pt"))
    for handle in handles:
        handle.remove()
    layers = len(model.gpt_neox.layers)
    return (
        [fmean(gains[(layer, "attention")]) for layer in range(layers)],
        [fmean(gains[(layer, "mlp")]) for layer in range(layers)],
    )
