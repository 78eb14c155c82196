"""What a verdict depends on: a claim evaluated again under variants of the analysis.

Each variant changes one choice the paper made and keeps the rest: where a layer counts as
contracting (gain < 0.95 or < 1.05 instead of < 1), which layers count (without the first, or
the last), which parameters a fit counts (without the embeddings), how a rank test's p-value is
found (exactly, by permutation), which models are fitted (each one left out), and what a gain
is measured against (each other definition). A claim whose ``check`` is declared is run under
each; a verdict that holds under every variant is robust, one that flips says under which.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .claims import Claim, Conditions
from .errors import GainscaleError
from .measurement import GAIN_DEFINITIONS
from .results import VariantResult
from .summary import ModelSummary

#: the gain values where a layer is counted as contracting below, besides the paper's 1
CUTOFFS = (0.95, 1.05)

#: (data, conditions): a model's summary (per-model claim) or a source's summaries (cross-model)
Inputs = tuple[Any, Conditions]


@dataclass(frozen=True)
class Variant:
    """One change to the analysis, as a function of the claim's inputs."""

    name: str
    group: str
    #: the inputs under the variant; raises a :class:`GainscaleError` saying why it cannot
    apply: Callable[[Any, Conditions], Inputs]


def variants(claim: Claim, data: Any, conditions: Conditions, other_gain: Callable[[str], Any]) -> Iterator[Variant]:
    """Every variant of the analysis that applies to ``claim``.

    ``other_gain(definition)`` gives ``data`` under another gain definition (or raises saying
    why the source cannot).
    """
    for cutoff in CUTOFFS:
        yield Variant(f"cutoff {cutoff:g}", "cutoff", lambda d, c, cut=cutoff: _recounted(claim, d, c, cut))
    yield Variant("without layer 0", "layers", lambda d, c: (_each(d, lambda s: s.without_layer(0)), c))
    yield Variant("without the last layer", "layers", lambda d, c: (_each(d, lambda s: s.without_layer(-1)), c))
    if claim.scope == "suite":
        yield Variant("non-embedding parameters", "parameters", lambda d, c: (_each(d, _has_embeddings), replace(c, parameters="non_embedding")))
        yield Variant("exact p-values", "p-value", lambda d, c: (d, replace(c, exact_p=True)))
        for model in data:
            yield Variant(f"without {model.model}", "leave one out", lambda d, c, m=model.model: ([s for s in d if s.model != m], c))
    current = _definition(data)
    for definition in GAIN_DEFINITIONS:
        if definition != current:
            yield Variant(f"gain {definition}", "gain", lambda d, c, g=definition: (other_gain(g), c))


def evaluate(claim: Claim, data: Any, conditions: Conditions, other_gain: Callable[[str], Any]) -> tuple[VariantResult, ...]:
    """``claim``'s check under every variant that applies; () for a claim without a check."""
    if claim.check is None:
        return ()
    lean = replace(conditions, full=False)  # each variant's verdict; the report's statistics come from the main run
    return tuple(_evaluate(claim, variant, data, lean) for variant in variants(claim, data, lean, other_gain))


def _evaluate(claim: Claim, variant: Variant, data: Any, conditions: Conditions) -> VariantResult:
    try:
        verdict = claim.check(*variant.apply(data, conditions))
    except GainscaleError as error:
        return VariantResult(variant.name, variant.group, None, None, str(error))
    outcome = None if verdict.passed is None else verdict.outcome
    return VariantResult(variant.name, variant.group, outcome, verdict.value, verdict.message)


def _recounted(claim: Claim, data: Any, conditions: Conditions, cutoff: float) -> Inputs:
    """Layers counted as contracting below ``cutoff``, and the claim's cutoff thresholds moved with them."""
    values = {**conditions.values, **{name: cutoff for name in claim.cutoffs}}
    return _each(data, lambda s: s.recounted(cutoff)), replace(conditions, values=values)


def _each(data: Any, change: Callable[[ModelSummary], ModelSummary]) -> Any:
    return [change(s) for s in data] if isinstance(data, Sequence) else change(data)


def _has_embeddings(summary: ModelSummary) -> ModelSummary:
    if summary.n_embedding_params is None:
        raise GainscaleError(f"{summary.model}: the source gives no embedding parameter count")
    return summary


def _definition(data: Any) -> str:
    first = data[0] if isinstance(data, Sequence) and data else data
    return getattr(first, "gain_definition", "paper")
