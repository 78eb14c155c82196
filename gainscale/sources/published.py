"""The ``published`` source: the paper's own table, shipped as data, evaluated without torch or a GPU."""

from __future__ import annotations

import hashlib
from typing import Any

from ..architectures import describe_input
from ..files import canonical_json
from ..params import count_embedding_parameters
from ..published import published_data, published_summaries
from ..results import SourceInfo
from ..suites import pythia_config
from ..summary import ModelSummary
from . import SourceKind, TableSource

NAME = "published"

#: how the paper measured, as its analysis states it: a GPU in float16, four short English prompts
PAPER_SETTINGS = {"obtained": "published in the paper", "prompts": "4 short English prompts (the paper's)",
                  "dtype": "float16", "device": "GPU"}


class PublishedSource(TableSource):
    """The paper's own table: per model its layers, final MLP gain and contracting counts."""

    name = kind = NAME

    def __init__(self):
        super().__init__(map(_with_embeddings, published_summaries()))

    def provenance(self, model: str) -> dict[str, Any]:
        return dict(PAPER_SETTINGS)

    def info(self) -> SourceInfo:
        data = published_data()
        return SourceInfo(
            name=self.name,
            kind=self.kind,
            description=(
                "The paper's own table (`published`): final MLP gains as printed (two decimals), contracting "
                "layers as counts derived from the printed percentages, parameter counts from the configs. "
                + data["origin"]
            ),
            notes=(*data.get("notes", ()), describe_input("gpt_neox")),
            recorded_fit=data["recorded_fit"],
            identity={"published_table_sha256": _table_sha256()},
        )


def _with_embeddings(summary: ModelSummary) -> ModelSummary:
    from dataclasses import replace

    config = pythia_config(summary.model)
    return replace(summary, n_embedding_params=count_embedding_parameters(config), architecture=config["model_type"])


def _table_sha256() -> str:
    """The hash of the table's numbers alone: a reworded note or origin leaves baselines valid."""
    return hashlib.sha256(canonical_json(published_data()["models"]).encode("utf-8")).hexdigest()


KIND = SourceKind(NAME, names=lambda measurer: [NAME], open=lambda name, measurer: PublishedSource())
