"""Where each architecture keeps its attention and MLP sublayers, and the norms before them.

One table, keyed by the config's ``model_type``: the attribute path from the causal-LM to the
list of layers, each layer's attention and MLP attribute, and the norm module each of the two
reads its input through. Supporting a new architecture is one row here.
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
    #: attribute of one layer holding the norm whose output is the attention's input; its
    #: input is the residual stream the attention reads
    attention_norm: str
    #: attribute of one layer holding the norm whose output is the MLP's input; its input is
    #: the residual stream the MLP reads (the layer's input under GPT-NeoX's parallel residual)
    mlp_norm: str
    #: the kind of norm in front of each sublayer, for saying what a gain's "input" is
    norm_kind: str = "LayerNorm"

    def norm_of(self, kind: str) -> str:
        """The norm attribute in front of ``kind`` (``attention`` or ``mlp``)."""
        return {"attention": self.attention_norm, "mlp": self.mlp_norm}[kind]


_PRE_NORM = {"attention_norm": "input_layernorm", "mlp_norm": "post_attention_layernorm"}

LAYOUTS: dict[str, ModuleLayout] = {
    "gpt_neox": ModuleLayout(layers="gpt_neox.layers", attention="attention", mlp="mlp", **_PRE_NORM),
    "gpt2": ModuleLayout(layers="transformer.h", attention="attn", mlp="mlp", attention_norm="ln_1", mlp_norm="ln_2"),
    "llama": ModuleLayout(layers="model.layers", attention="self_attn", mlp="mlp", norm_kind="RMSNorm", **_PRE_NORM),
    "mistral": ModuleLayout(layers="model.layers", attention="self_attn", mlp="mlp", norm_kind="RMSNorm", **_PRE_NORM),
}


def describe_input(model_type: str) -> str:
    """What a sublayer's input, the denominator of the paper's gain, is in ``model_type``."""
    layout = LAYOUTS.get(model_type)
    if layout is None:
        return f"{model_type}: not a layout gainscale knows"
    return (f"{model_type}: a sublayer's input is its {layout.norm_kind}'s output ({layout.attention_norm} before the "
            f"attention, {layout.mlp_norm} before the MLP), a normalised vector whose norm the {layout.norm_kind}'s "
            "weights set; the paper's gain is the sublayer's output norm over that, and the residual gain "
            "(--gainscale-gain residual) is over the residual stream the norm reads")

#: the two sublayers gainscale measures, in the order it reports them
MODULE_KINDS = ("attention", "mlp")


@dataclass(frozen=True)
class Sublayer:
    """One measured module of a loaded model and the norm that feeds it."""

    #: index of the transformer layer, from 0
    layer: int
    #: ``attention`` or ``mlp``
    kind: str
    #: the attention or MLP module; its input is the norm's output
    module: Any
    #: the LayerNorm / RMSNorm in front of it; its input is the residual stream
    norm: Any


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


def find_sublayers(model: Any) -> list[Sublayer]:
    """List every layer's attention and MLP :class:`Sublayer` of a loaded causal-LM, in order."""
    model_type = model.config.model_type
    layout = layout_for(model_type)
    layers = model
    for name in layout.layers.split("."):
        layers = getattr(layers, name)
    found = []
    for index, layer in enumerate(layers):
        for kind in MODULE_KINDS:
            module = _attribute(layer, getattr(layout, kind), model_type, index)
            norm = _attribute(layer, layout.norm_of(kind), model_type, index)
            found.append(Sublayer(index, kind, module, norm))
    return found


def _attribute(layer: Any, name: str, model_type: str, index: int) -> Any:
    try:
        return getattr(layer, name)
    except AttributeError:
        raise UnsupportedArchitectureError(
            f"{model_type}: layer {index} has no module {name!r}, where gainscale.architectures.LAYOUTS "
            f"expects one; this {type(layer).__name__} is laid out differently: correct its row"
        ) from None
