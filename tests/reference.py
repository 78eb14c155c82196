"""An independent reference of every gain definition: one prompt per forward through the full
causal-LM, norms averaged with ``mean()``, module paths written out by hand per architecture.

It shares no code with gainscale's meter; tests compare the two. Where the meter reads the
residual stream at the input of each norm module, the reference rebuilds it from the layer's
own arithmetic: the attention reads the layer's input; the MLP reads the layer's input under
GPT-NeoX's parallel residual, and the layer's input plus the attention's output otherwise.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from statistics import fmean

#: per model_type: (path to the layers, attention, MLP) as written in transformers' modeling files
_PATHS = {
    "gpt_neox": (("gpt_neox", "layers"), "attention", "mlp"),
    "llama": (("model", "layers"), "self_attn", "mlp"),
    "gpt2": (("transformer", "h"), "attn", "mlp"),
}


def _layers(model):
    path, attention, mlp = _PATHS[model.config.model_type]
    layers = getattr(getattr(model, path[0]), path[1])
    return layers, attention, mlp


def _parallel_residual(model) -> bool:
    return model.config.model_type == "gpt_neox" and model.config.use_parallel_residual


def _token_norms(tensor):
    """(T,) float32 L2 norms of one prompt's (1, T, C) hidden states."""
    return tensor[0].float().norm(dim=-1)


def prompt_numbers(model, tokenizer, prompt):
    """Per (layer, kind): the token norms of the module's input and output and of the residual
    stream it reads, for one prompt run alone through the full causal-LM."""
    import torch

    layers, attention, mlp = _layers(model)
    seen = {}

    def on_layer(index):
        def hook(module, args, kwargs):
            seen[(index, "layer_in")] = args[0] if args else kwargs["hidden_states"]

        return hook

    def on_module(index, kind):
        def hook(module, args, kwargs, output):
            seen[(index, kind, "in")] = args[0] if args else kwargs["hidden_states"]
            seen[(index, kind, "out")] = output[0] if isinstance(output, tuple) else output

        return hook

    handles = []
    for index, layer in enumerate(layers):
        handles.append(layer.register_forward_pre_hook(on_layer(index), with_kwargs=True))
        handles.append(getattr(layer, attention).register_forward_hook(on_module(index, "attention"), with_kwargs=True))
        handles.append(getattr(layer, mlp).register_forward_hook(on_module(index, "mlp"), with_kwargs=True))
    try:
        with torch.no_grad():
            model(**tokenizer(prompt, return_tensors="pt"))
    finally:
        for handle in handles:
            handle.remove()
    numbers = {}
    for index in range(len(layers)):
        layer_in, attn_out = seen[(index, "layer_in")], seen[(index, "attention", "out")]
        residual = {"attention": layer_in, "mlp": layer_in if _parallel_residual(model) else layer_in + attn_out}
        for kind in ("attention", "mlp"):
            numbers[(index, kind)] = (
                _token_norms(seen[(index, kind, "in")]),
                _token_norms(seen[(index, kind, "out")]),
                _token_norms(residual[kind]),
            )
    return numbers


def prompt_gain(definition, norm_in, norm_out, norm_residual):
    """One prompt's gain under ``definition`` from its (T,) token norms."""
    if definition == "paper":
        return norm_out.mean().item() / norm_in.mean().item()
    if definition == "residual":
        return norm_out.mean().item() / norm_residual.mean().item()
    if definition == "token_mean":
        return (norm_out / norm_in).mean().item()
    if definition == "skip_first":
        if len(norm_in) < 2:
            raise ValueError("skip_first needs two tokens")
        return norm_out[1:].mean().item() / norm_in[1:].mean().item()
    raise ValueError(definition)


def load(path, dtype="float32"):
    """``(model, tokenizer)`` straight from transformers: a directory, or a ``.gguf`` file."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    where, extra = (path.parent, {"gguf_file": path.name}) if path.suffix == ".gguf" else (path, {})
    model = AutoModelForCausalLM.from_pretrained(where, dtype=getattr(torch, dtype), **extra).eval()
    return model, AutoTokenizer.from_pretrained(where, **extra)


def reference_gains(model_dir, prompts, definitions=("paper", "residual", "token_mean", "skip_first"), dtype="float32"):
    """``{definition: (attention gains, MLP gains)}`` per layer, one prompt per forward; ``model_dir``
    may also be a ``.gguf`` file."""
    model, tokenizer = load(model_dir, dtype)
    gains = defaultdict(list)  # (definition, layer, kind) -> [gain_p]
    for prompt in prompts:
        for (layer, kind), norms in prompt_numbers(model, tokenizer, prompt).items():
            for definition in definitions:
                gains[(definition, layer, kind)].append(prompt_gain(definition, *norms))
    layers = range(len(_layers(model)[0]))
    return {
        definition: (
            [fmean(gains[(definition, layer, "attention")]) for layer in layers],
            [fmean(gains[(definition, layer, "mlp")]) for layer in layers],
        )
        for definition in definitions
    }


def paper_gains(model_dir, prompts, dtype="float32"):
    """Return ``(attention gains, MLP gains)`` per layer, computed as the paper's notebook did."""
    return reference_gains(model_dir, prompts, ("paper",), dtype)["paper"]
