"""A measurement of one model's sublayer gains, as stored in the cache.

Gain follows the paper exactly by default (definition ``paper``, see ``docs/method.md``): for
prompt p and module m,
``in_p`` and ``out_p`` are the means over p's tokens of the L2 norm of m's input and output
hidden states (taken in float32), ``gain_p = out_p / in_p``, and the layer's gain is the mean
of ``gain_p`` over the prompts. m's input is the output of the LayerNorm or RMSNorm in front
of it, so a gain below 1 partly measures that norm's scale; the other definitions of
:data:`GAIN_DEFINITIONS` come from the same forward pass and answer that. The per-prompt
numbers of every definition are kept so that statistics can resample prompts later.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

from .errors import GainscaleError, UnknownNameError
from .summary import ModelSummary

#: bump when the measuring code changes what it computes: old cache entries stop matching.
#: 2: the residual, token_mean and skip_first definitions' per-prompt numbers are measured too
METHOD_VERSION = 2

#: every gain definition a measurement can give, name -> what it divides by what
GAIN_DEFINITIONS: dict[str, str] = {
    "paper": "mean over prompts of out_p / in_p, token-mean norms of the module's output and input "
    "(the LayerNorm/RMSNorm output), as the paper measured it",
    "residual": "mean over prompts of out_p / res_p, res_p the token-mean norm of the residual stream "
    "entering the module's norm: what the module adds, against what it reads",
    "token_mean": "mean over prompts of the mean over tokens of ||out_t|| / ||in_t||: every token weighs "
    "the same, whatever its norm",
    "skip_first": "as paper, with each prompt's first token (often of outsized norm) left out of both "
    "means; needs prompts of two tokens or more",
}


class GainDefinitionUnavailable(GainscaleError):
    """A known gain definition this measurement has no numbers for (older method, one-token prompt)."""


def check_definition(definition: str) -> str:
    """Return ``definition`` if it is a key of :data:`GAIN_DEFINITIONS`, else raise listing them."""
    if definition not in GAIN_DEFINITIONS:
        raise UnknownNameError("gain definition", definition, GAIN_DEFINITIONS)
    return definition


_Rows = tuple[tuple[float, ...], ...]
_OptionalRows = tuple[tuple["float | None", ...], ...]


@dataclass(frozen=True)
class ModuleNorms:
    """Per-prompt mean norms of one kind of module (attention or MLP), layer by layer.

    Every field is indexed ``[layer][prompt]``, prompts in the prompt set's order. The fields
    after ``outputs`` are None in measurements older than :data:`METHOD_VERSION` 2.
    """

    #: in_p: mean over the prompt's tokens of the module's input norm (the norm's output)
    inputs: _Rows
    #: out_p: mean over the prompt's tokens of the module's output norm
    outputs: _Rows
    #: res_p: mean over the prompt's tokens of the norm of the residual stream entering the
    #: module's LayerNorm/RMSNorm (definition ``residual``)
    residual_inputs: _Rows | None = None
    #: mean over the prompt's tokens of ||out_t|| / ||in_t|| (definition ``token_mean``)
    token_ratios: _Rows | None = None
    #: in_p over the tokens after the first; None for a one-token prompt (``skip_first``)
    inputs_after_first: _OptionalRows | None = None
    #: out_p over the tokens after the first; None for a one-token prompt (``skip_first``)
    outputs_after_first: _OptionalRows | None = None

    def unavailable(self, definition: str) -> str | None:
        """Why ``definition``'s gains cannot be had from these numbers, or None if they can."""
        needed = {"paper": self.inputs, "residual": self.residual_inputs, "token_mean": self.token_ratios,
                  "skip_first": self.inputs_after_first}[check_definition(definition)]
        if needed is None:
            return f"its numbers for the {definition!r} gain were not measured (made before method version {METHOD_VERSION}); measure it again"
        if definition == "skip_first":
            single = [number for number, value in enumerate(self.inputs_after_first[0], 1) if value is None]
            if single:
                return (f"prompt(s) {', '.join(map(str, single[:10]))} have a single token, so no token is left after "
                        "the first: drop one-token prompts from the prompt set to use 'skip_first'")
        return None

    def prompt_gains(self, layer: int, definition: str = "paper") -> list[float]:
        """The per-prompt gain of every prompt at ``layer`` under ``definition``."""
        reason = self.unavailable(definition)
        if reason:
            raise GainDefinitionUnavailable(reason)
        if definition == "token_mean":
            return list(self.token_ratios[layer])
        numerators, denominators = {
            "paper": (self.outputs, self.inputs),
            "residual": (self.outputs, self.residual_inputs),
            "skip_first": (self.outputs_after_first, self.inputs_after_first),
        }[definition]
        return [o / i for i, o in zip(denominators[layer], numerators[layer])]

    def gains(self, definition: str = "paper") -> tuple[float, ...]:
        """Each layer's gain under ``definition``: the mean over prompts of the per-prompt gains."""
        return tuple(_mean(self.prompt_gains(layer, definition)) for layer in range(len(self.inputs)))

    def to_json(self) -> dict[str, Any]:
        data = {key: getattr(self, name) for key, name in _JSON_KEYS.items()}
        return {key: [list(row) for row in rows] for key, rows in data.items() if rows is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModuleNorms:
        """Rebuild from :meth:`to_json`; keys absent from older entries stay None."""
        return cls(**{name: tuple(map(tuple, data[key])) for key, name in _JSON_KEYS.items() if key in data})


#: ModuleNorms' JSON keys and fields; ``in``/``out`` are the names of method version 1
_JSON_KEYS = {
    "in": "inputs",
    "out": "outputs",
    "residual_in": "residual_inputs",
    "token_ratio": "token_ratios",
    "in_after_first": "inputs_after_first",
    "out_after_first": "outputs_after_first",
}


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


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
    #: the most prompts one forward pass held
    batch_size: int
    #: when the measurement finished, ISO 8601 UTC
    date: str
    wall_seconds: float
    #: padded tokens (prompts x longest) one forward pass was allowed at the start; None before
    #: token-budget batching existed
    token_budget: int | None = None
    #: how often a CUDA out-of-memory halved the token budget while measuring
    budget_halvings: int = 0
    #: torch intra-op threads while measuring; None where not recorded
    threads: int | None = None


@dataclass(frozen=True)
class Gains:
    """Every layer's attention and MLP gain under one definition."""

    #: a key of :data:`GAIN_DEFINITIONS`
    definition: str
    #: attention gain of each layer
    attention: tuple[float, ...]
    #: MLP gain of each layer
    mlp: tuple[float, ...]


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
        """Each layer's attention gain as the paper defines it."""
        return self.attention.gains()

    @cached_property
    def mlp_gains(self) -> tuple[float, ...]:
        """Each layer's MLP gain as the paper defines it."""
        return self.mlp.gains()

    @property
    def n_prompts(self) -> int:
        return len(self.attention.inputs[0])

    def gains(self, definition: str = "paper") -> Gains:
        """Every layer's gains under ``definition``, a key of :data:`GAIN_DEFINITIONS`.

        Raises
        ------
        UnknownNameError
            For a name that is not a definition, listing the known ones.
        GainDefinitionUnavailable
            Where this measurement lacks the numbers (an older method version, or a
            one-token prompt under ``skip_first``), naming the model and what to do.
        """
        reason = self.attention.unavailable(definition) or self.mlp.unavailable(definition)
        if reason:
            raise GainDefinitionUnavailable(f"{self.model}: no {definition!r} gains: {reason}")
        if definition == "paper":
            return Gains(definition, self.attn_gains, self.mlp_gains)
        return Gains(definition, self.attention.gains(definition), self.mlp.gains(definition))

    def available_definitions(self) -> tuple[str, ...]:
        """The definitions whose gains this measurement can give."""
        return tuple(d for d in GAIN_DEFINITIONS if not (self.attention.unavailable(d) or self.mlp.unavailable(d)))

    def summary(self, definition: str = "paper") -> ModelSummary:
        """The numbers the claims are evaluated on under ``definition`` (the paper's by default),
        each prompt's gain at each layer included."""
        self.gains(definition)  # refuses a definition this measurement cannot give, saying why
        layers = range(self.n_layers)
        return ModelSummary.from_prompt_gains(
            self.model, self.n_params,
            [self.attention.prompt_gains(layer, definition) for layer in layers],
            [self.mlp.prompt_gains(layer, definition) for layer in layers],
            gain_definition=definition,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; per-layer gains under the paper notebook's names ``attn_gains``/``mlp_gains``.

        ``gains`` adds, derived for readers, the per-layer gains of every available definition.
        """
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
            gains={d: _gains_json(self.gains(d)) for d in self.available_definitions()},
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


def _gains_json(gains: Gains) -> dict[str, list[float]]:
    return {"attention": list(gains.attention), "mlp": list(gains.mlp)}
