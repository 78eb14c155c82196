"""A measurement of one model's sublayer gains, as stored in the cache.

Gain follows the paper exactly (``docs/method.md``): for prompt p and module m,
``in_p`` and ``out_p`` are the means over p's tokens of the L2 norm of m's input and output
hidden states (taken in float32), ``gain_p = out_p / in_p``, and the layer's gain is the mean
of ``gain_p`` over the prompts. The per-prompt ``in_p`` and ``out_p`` are kept so that
statistics can resample prompts later.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

from .summary import ModelSummary

#: bump when the measuring code changes what it computes: old cache entries stop matching
METHOD_VERSION = 1


@dataclass(frozen=True)
class ModuleNorms:
    """Per-prompt mean input and output norms of one kind of module, layer by layer."""

    #: ``inputs[layer][prompt]`` = in_p
    inputs: tuple[tuple[float, ...], ...]
    #: ``outputs[layer][prompt]`` = out_p
    outputs: tuple[tuple[float, ...], ...]

    def prompt_gains(self, layer: int) -> list[float]:
        """``gain_p = out_p / in_p`` of every prompt at ``layer``."""
        return [o / i for i, o in zip(self.inputs[layer], self.outputs[layer])]

    def gains(self) -> tuple[float, ...]:
        """Each layer's gain: the mean over prompts of ``gain_p``."""
        return tuple(math.fsum(g) / len(g) for g in map(self.prompt_gains, range(len(self.inputs))))

    def to_json(self) -> dict[str, Any]:
        return {"in": [list(row) for row in self.inputs], "out": [list(row) for row in self.outputs]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModuleNorms:
        return cls(tuple(map(tuple, data["in"])), tuple(map(tuple, data["out"])))


@dataclass(frozen=True)
class Provenance:
    """How and where a measurement was made."""

    gainscale_version: str
    torch_version: str
    transformers_version: str
    #: e.g. ``cpu`` or ``NVIDIA H100 80GB HBM3``
    device: str
    #: transformers' attention implementation, e.g. ``sdpa`` or ``eager``
    attn_implementation: str
    batch_size: int
    #: when the measurement finished, ISO 8601 UTC
    date: str
    wall_seconds: float


@dataclass(frozen=True)
class Measurement:
    """The gains of every attention and MLP sublayer of one model, and what they came from."""

    #: the model's name in its suite, e.g. ``pythia-70m``
    model: str
    #: hub id or local directory it was loaded from
    source: str
    #: the revision asked for (None: the hub's default branch)
    revision: str | None
    #: the commit sha the hub resolved it to, or a fingerprint of a local directory
    resolved_revision: str
    dtype: str
    prompts_name: str
    prompts_sha256: str
    method_version: int
    n_params: int
    n_layers: int
    hidden_size: int
    attention: ModuleNorms = field(repr=False)
    mlp: ModuleNorms = field(repr=False)
    provenance: Provenance

    @cached_property
    def attn_gains(self) -> tuple[float, ...]:
        return self.attention.gains()

    @cached_property
    def mlp_gains(self) -> tuple[float, ...]:
        return self.mlp.gains()

    @property
    def n_prompts(self) -> int:
        return len(self.attention.inputs[0])

    def summary(self) -> ModelSummary:
        """The numbers the claims are evaluated on, each prompt's gain at each layer included."""
        layers = range(self.n_layers)
        return ModelSummary.from_prompt_gains(
            self.model, self.n_params,
            [self.attention.prompt_gains(layer) for layer in layers],
            [self.mlp.prompt_gains(layer) for layer in layers],
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; per-layer gains under the paper notebook's names ``attn_gains``/``mlp_gains``."""
        summary = self.summary()
        data = asdict(self)
        data.update(
            attention=self.attention.to_json(),
            mlp=self.mlp.to_json(),
            attn_gains=list(self.attn_gains),
            mlp_gains=list(self.mlp_gains),
            last_layer_mlp_gain=summary.final_mlp_gain,
            attn_contracting_pct=summary.attn_contracting_pct,
            mlp_contracting_pct=summary.mlp_contracting_pct,
        )
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Measurement:
        """Rebuild from :meth:`to_json`; the derived gains are recomputed, not trusted."""
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["attention"] = ModuleNorms.from_json(data["attention"])
        fields["mlp"] = ModuleNorms.from_json(data["mlp"])
        fields["provenance"] = Provenance(**data["provenance"])
        return cls(**fields)
