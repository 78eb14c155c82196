"""Where each architecture keeps its attention and MLP sublayers.

One table, keyed by the config's ``model_type``: the attribute path from the causal-LM to the
list of layers, and each layer's attention and MLP attribute. Supporting a new architecture
is one row here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import UnsupportedArchitectureError


@dataclass(frozen=True)
class ModuleLayout:
    """How to reach one architecture's sublayers from its ``AutoModelForCausalLM``."""

    #: dotted path from the causal-LM to the ``ModuleList`` of transformer layers
    layers: str
    #: attribute of one layer holding its attention module
    attention: str
    #: attribute of one layer holding its MLP module
    mlp: str


LAYOUTS: dict[str, ModuleLayout] = {
    "gpt_neox": ModuleLayout(layers="gpt_neox.layers", attention="attention", mlp="mlp"),
    "gpt2": ModuleLayout(layers="transformer.h", attention="attn", mlp="mlp"),
    "llama": ModuleLayout(layers="model.layers", attention="self_attn", mlp="mlp"),
    "mistral": ModuleLayout(layers="model.layers", attention="self_attn", mlp="mlp"),
}

#: the two sublayers gainscale measures, in the order it reports them
MODULE_KINDS = ("attention", "mlp")


def layout_for(model_type: str) -> ModuleLayout:
    """Return the module layout of ``model_type``, or raise naming the supported ones."""
    try:
        return LAYOUTS[model_type]
    except KeyError:
        raise UnsupportedArchitectureError(
            f"model_type {model_type!r} is not supported: gainscale knows where the attention "
            f"and MLP modules are only for {', '.join(sorted(LAYOUTS))}; add a row to "
            "gainscale.architectures.LAYOUTS to measure it"
        ) from None


def find_sublayers(model: Any) -> list[tuple[int, str, Any]]:
    """List ``(layer index, "attention" | "mlp", module)`` of a loaded causal-LM, in order."""
    layout = layout_for(model.config.model_type)
    layers = model
    for name in layout.layers.split("."):
        layers = getattr(layers, name)
    found = []
    for index, layer in enumerate(layers):
        found.append((index, "attention", getattr(layer, layout.attention)))
        found.append((index, "mlp", getattr(layer, layout.mlp)))
    return found
