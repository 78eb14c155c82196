"""What every claim is evaluated on: one model's summary, whatever source it came from."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ModelSummary:
    """One model's numbers as a claim sees them, from the paper, a measurement or an import."""

    #: model name, e.g. ``pythia-6.9b``
    model: str
    #: every parameter of the causal-LM (embeddings and LM head included)
    n_params: int
    n_layers: int
    #: gain of the last layer's MLP
    final_mlp_gain: float
    #: layers whose attention gain is < 1; None where the source does not say
    attn_contracting: int | None
    #: layers whose MLP gain is < 1; None where the source does not say
    mlp_contracting: int | None
    #: per-layer gains, where the source has them
    attn_gains: tuple[float, ...] | None = None
    mlp_gains: tuple[float, ...] | None = None
    #: where the numbers came from: ``published``, ``cache``, ``measured`` or ``imported``
    origin: str = ""

    @property
    def attn_contracting_pct(self) -> float | None:
        return _percent(self.attn_contracting, self.n_layers)

    @property
    def mlp_contracting_pct(self) -> float | None:
        return _percent(self.mlp_contracting, self.n_layers)

    def to_json(self) -> dict[str, Any]:
        """Fields, plus the contracting percentages (derived, for readers of results.json)."""
        data = asdict(self)
        for key in ("attn_gains", "mlp_gains"):
            data[key] = list(data[key]) if data[key] is not None else None
        data.update(attn_contracting_pct=self.attn_contracting_pct, mlp_contracting_pct=self.mlp_contracting_pct)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelSummary:
        data = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("attn_gains", "mlp_gains"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        return cls(**data)

    @classmethod
    def from_gains(cls, model: str, n_params: int, attn_gains, mlp_gains, origin: str) -> ModelSummary:
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
            origin=origin,
        )


def _percent(count: int | None, total: int) -> float | None:
    return None if count is None else 100.0 * count / total
