"""What every claim is evaluated on: one model's numbers, whatever source they came from."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from .errors import VariantUnavailable

#: the two sublayers, as per-layer data name them
MODULES = ("attention", "mlp")


@dataclass(frozen=True)
class ModelSummary:
    """One model's numbers as a claim sees them, from the paper, a measurement or an import.

    Every source gives the four numbers the paper tabulates; sources that measured the model
    give its per-layer gains too, and measured ones each prompt's gain at each layer.
    """

    #: model name, e.g. ``pythia-6.9b``
    model: str
    #: every parameter of the causal-LM (embeddings and LM head included)
    n_params: int
    n_layers: int
    #: gain of the last layer's MLP (None only in a sensitivity variant that cannot know it)
    final_mlp_gain: float | None
    #: layers whose attention gain is < 1; None where the source does not say
    attn_contracting: int | None
    #: layers whose MLP gain is < 1; None where the source does not say
    mlp_contracting: int | None
    #: per-layer gains, where the source has them
    attn_gains: tuple[float, ...] | None = None
    mlp_gains: tuple[float, ...] | None = None
    #: ``attn_prompt_gains[layer][prompt]``: each prompt's gain, where the source kept them
    attn_prompt_gains: tuple[tuple[float, ...], ...] | None = None
    mlp_prompt_gains: tuple[tuple[float, ...], ...] | None = None
    #: parameters in the input embedding and an untied output embedding; None if unknown
    n_embedding_params: int | None = None
    #: the config's ``model_type`` (``gpt_neox``, ``llama``, ...), where known
    architecture: str | None = None
    #: what a gain is measured against (see ``gainscale.measurement.GAIN_DEFINITIONS``)
    gain_definition: str = "paper"
    #: the training step of the checkpoint, for a model of a revision sweep
    step: int | None = None
    #: the sweep (the base model) a checkpoint belongs to
    sweep: str | None = None
    #: for a control (the same network with re-drawn weights), the trained model it stands beside
    control_of: str | None = None

    @property
    def attn_contracting_pct(self) -> float | None:
        return _percent(self.attn_contracting, self.n_layers)

    @property
    def mlp_contracting_pct(self) -> float | None:
        return _percent(self.mlp_contracting, self.n_layers)

    @property
    def has_layers(self) -> bool:
        return self.attn_gains is not None or self.mlp_gains is not None

    def gains(self, module: str) -> tuple[float, ...] | None:
        """Per-layer gains of ``attention`` or ``mlp``."""
        return {"attention": self.attn_gains, "mlp": self.mlp_gains}[module]

    def prompt_gains(self, module: str) -> tuple[tuple[float, ...], ...] | None:
        """``[layer][prompt]`` gains of ``attention`` or ``mlp``, where the source kept them."""
        return {"attention": self.attn_prompt_gains, "mlp": self.mlp_prompt_gains}[module]

    # ------------------------------------------------------------------ variants

    def recounted(self, cutoff: float) -> ModelSummary:
        """The summary with a layer counted as contracting where its gain is below ``cutoff``;
        the counts are None (unknown) where the source gives no per-layer gains."""
        count = (lambda gains: None if gains is None else sum(g < cutoff for g in gains))
        return replace(self, attn_contracting=count(self.attn_gains), mlp_contracting=count(self.mlp_gains))

    def without_layer(self, layer: int) -> ModelSummary:
        """The summary as if the model lacked its first (``0``) or last (``-1``) layer.

        With per-layer gains every number is recomputed; without them, what the four published
        numbers still tell (the last MLP contracts iff the final gain is < 1; a count of none or
        all) is kept and the rest is None.
        """
        if self.n_layers < 2:
            raise VariantUnavailable(f"{self.model}: has one layer; it cannot lose one")
        keep = slice(1, None) if layer == 0 else slice(None, -1)
        if self.attn_gains is not None and self.mlp_gains is not None:
            return replace(ModelSummary.from_gains(self.model, self.n_params, self.attn_gains[keep], self.mlp_gains[keep]),
                           **self._identity())
        mlp = _count_without(self.mlp_contracting, self.n_layers, self.final_mlp_gain < 1 if layer == -1 else None)
        return replace(self, n_layers=self.n_layers - 1, attn_contracting=_count_without(self.attn_contracting, self.n_layers, None),
                       mlp_contracting=mlp, final_mlp_gain=self.final_mlp_gain if layer == 0 else None)

    def _identity(self) -> dict[str, Any]:
        """What a variant keeps: everything that is not a gain or a count."""
        keep = ("n_embedding_params", "architecture", "gain_definition", "step", "sweep", "control_of")
        return {name: getattr(self, name) for name in keep}

    # ------------------------------------------------------------------ tables

    def table_row(self) -> dict[str, Any]:
        """The paper's numbers of this model as one flat row (for a DataFrame)."""
        return {
            "model": self.model, "n_params": self.n_params, "n_layers": self.n_layers,
            "final_mlp_gain": self.final_mlp_gain, "attn_contracting": self.attn_contracting,
            "mlp_contracting": self.mlp_contracting, "attn_contracting_pct": self.attn_contracting_pct,
            "mlp_contracting_pct": self.mlp_contracting_pct, "architecture": self.architecture,
            "gain_definition": self.gain_definition,
        }

    def layer_rows(self) -> Iterator[dict[str, Any]]:
        """One row per layer and module with its gain (long form); nothing without per-layer gains."""
        for module in MODULES:
            for layer, gain in enumerate(self.gains(module) or ()):
                yield {"model": self.model, "n_params": self.n_params, "layer": layer,
                       "depth": layer / max(self.n_layers - 1, 1), "module": module, "gain": gain}

    # ------------------------------------------------------------------ JSON

    def to_json(self) -> dict[str, Any]:
        """Fields, plus the contracting percentages (derived, for readers of results.json)."""
        data = {f.name: _lists(getattr(self, f.name)) for f in fields(self)}
        data.update(attn_contracting_pct=self.attn_contracting_pct, mlp_contracting_pct=self.mlp_contracting_pct)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelSummary:
        values = {k: _tuples(v) for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**values)

    @classmethod
    def from_gains(cls, model: str, n_params: int, attn_gains, mlp_gains, **extra: Any) -> ModelSummary:
        """Summarise per-layer gains: contracting counts and the final MLP gain follow from them."""
        attn, mlp = tuple(attn_gains), tuple(mlp_gains)
        return cls(
            model=model,
            n_params=n_params,
            n_layers=len(mlp),
            final_mlp_gain=mlp[-1],
            attn_contracting=sum(g < 1 for g in attn),
            mlp_contracting=sum(g < 1 for g in mlp),
            attn_gains=attn,
            mlp_gains=mlp,
            **extra,
        )

    @classmethod
    def from_prompt_gains(cls, model: str, n_params: int, attn: Sequence[Sequence[float]], mlp: Sequence[Sequence[float]],
                          **extra: Any) -> ModelSummary:
        """Summarise each prompt's gains: a layer's gain is their mean over the prompts."""
        attn_rows = tuple(tuple(row) for row in attn)
        mlp_rows = tuple(tuple(row) for row in mlp)
        return cls.from_gains(model, n_params, map(_mean, attn_rows), map(_mean, mlp_rows), attn_prompt_gains=attn_rows, mlp_prompt_gains=mlp_rows, **extra)


def _count_without(count: int | None, layers: int, dropped_contracts: bool | None) -> int | None:
    """A contracting count less one layer: known when the dropped layer's state is, or when all or none contract."""
    if count is None:
        return None
    if dropped_contracts is not None:
        return count - dropped_contracts
    return {0: 0, layers: layers - 1}.get(count)


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _percent(count: int | None, total: int) -> float | None:
    return None if count is None else 100.0 * count / total


def _lists(value: Any) -> Any:
    return [_lists(v) for v in value] if isinstance(value, tuple) else value


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value
