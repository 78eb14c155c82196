"""The paper's own numbers, shipped as data with their origin, evaluated without torch or a GPU."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from importlib import resources
from typing import Any

from .errors import GainscaleError
from .params import count_parameters
from .suites import pythia_config
from .summary import ModelSummary


@cache
def published_data() -> dict[str, Any]:
    """The shipped table (``gainscale/data/published.json``) as a dict."""
    return json.loads(resources.files("gainscale.data").joinpath("published.json").read_text())


def published_summaries() -> list[ModelSummary]:
    """One summary per model of the paper; parameter counts from the Pythia configs."""
    return [
        ModelSummary(
            model=row["model"],
            n_params=count_parameters(pythia_config(row["model"])),
            n_layers=row["n_layers"],
            final_mlp_gain=row["final_mlp_gain"],
            attn_contracting=row["attn_contracting"],
            mlp_contracting=row["mlp_contracting"],
        )
        for row in published_data()["models"]
    ]


def count_from_printed_percentage(printed: str, layers: int) -> int:
    """The one number of ``layers`` that rounds (half up) to a printed percentage.

    Examples
    --------
    >>> count_from_printed_percentage("97%", 32)   # 31/32 = 96.875% prints as 97%
    31
    >>> count_from_printed_percentage("5.6%", 36)
    2
    """
    value = Decimal(printed.rstrip("%"))
    step = Decimal(1).scaleb(value.as_tuple().exponent)  # 1 for "97", 0.1 for "96.9"
    counts = [k for k in range(layers + 1) if (Decimal(100 * k) / layers).quantize(step, ROUND_HALF_UP) == value]
    if len(counts) != 1:
        raise GainscaleError(f"{printed} of {layers} layers matches {len(counts)} counts ({counts}), not exactly one")
    return counts[0]
