"""Each claim's verdict under every variant of the analysis, gathered over its tests.

A per-model claim has one test per model, and each test evaluated the variants on its model;
the claim holds under a variant only if every model does. A control (a model's network with
its weights drawn again) is no model of the claim: it stands beside its model in the report
and is left out here. This module folds the tests into one verdict per claim and variant, the
cells of the report's sensitivity table and of the figures' heat-map, so that both say the
same, and says in one sentence whether each verdict is robust; :func:`with_sensitivity` stores
that in the run's typed result (results.json carries it). It reads the typed result model
only: the report imports it without matplotlib, the figures without the Markdown.

Examples
--------
>>> columns = sensitivity_columns(run.claim_infos(), run.claims_of("published"))  # doctest: +SKIP
>>> [c.info.id for c in columns], variant_names(columns)[:2]                      # doctest: +SKIP
(['attention_contractive', ...], ['cutoff 0.95', 'cutoff 1.05'])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from .results import ClaimInfo, ClaimResult, ClaimSensitivity, RunResult, VariantResult

#: the group of the variants that leave one model out
LEAVE_ONE_OUT = "leave one out"


@dataclass(frozen=True)
class SensitivityColumn:
    """One claim of one source: its verdict as tested and under each variant."""

    info: ClaimInfo
    #: ``passed`` / ``failed`` as tested (every model's, for a per-model claim); None without a verdict
    verdict: str | None
    #: the claim's value as tested; None for a per-model claim over several models (one value per model)
    value: float | None
    #: the verdict under each variant, by the variant's name, in the order the tests gave them
    cells: dict[str, VariantResult]
    #: the claim's tests on this source, controls left out
    results: tuple[ClaimResult, ...]

    def typed(self) -> ClaimSensitivity:
        """The column as the typed result keeps it, with its verdict in one sentence."""
        cells = tuple(self.cells.values())
        return ClaimSensitivity(self.info.id, self.verdict, self.value, cells, flips(self.verdict, cells),
                                robustness(self.verdict, cells))


def sensitivity_columns(infos: Sequence[ClaimInfo], claims: Sequence[ClaimResult]) -> list[SensitivityColumn]:
    """One column per claim that has variants to show, in the order of ``infos``.

    Parameters
    ----------
    infos
        The claims, in report order (:meth:`RunResult.claim_infos`).
    claims
        One source's claims tests (:meth:`RunResult.claims_of`); those on controls are left out.

    Returns
    -------
    list[SensitivityColumn]
        Claims without a test on the source, or whose tests evaluated no variant, are left out.
    """
    columns = []
    for info in infos:
        results = tuple(c for c in claims if c.claim.id == info.id and not c.is_control)
        if not any(c.sensitivity for c in results):
            continue
        value = results[0].value if info.scope == "suite" or len(results) == 1 else None
        columns.append(SensitivityColumn(info, main_verdict(results), value, variant_cells(results), results))
    return columns


def with_sensitivity(run: RunResult) -> RunResult:
    """``run`` with each source's sensitivity table (:class:`ClaimSensitivity` per claim) filled in."""
    infos = run.claim_infos()
    sources = tuple(replace(s, sensitivity=tuple(c.typed() for c in sensitivity_columns(infos, run.claims_of(s.name))))
                    for s in run.sources)
    return replace(run, sources=sources)


def flips(verdict: str | None, cells: Sequence[VariantResult]) -> tuple[str, ...]:
    """The variants whose verdict is reached and differs from ``verdict``."""
    if verdict is None:
        return ()
    return tuple(c.variant for c in cells if c.verdict is not None and c.verdict != verdict)


def robustness(verdict: str | None, cells: Sequence[VariantResult]) -> str:
    """Whether ``verdict`` holds under every variant that can be evaluated, or which flip it, in one sentence.

    Example
    -------
    ``"failed, but passes under without pythia-6.9b; 7 of 15 variants cannot be evaluated on these numbers"``
    """
    if verdict is None:
        return "no verdict to test"
    reached = [c for c in cells if c.verdict is not None]
    flipped = flips(verdict, cells)
    unknown = f"; {len(cells) - len(reached)} of {len(cells)} variants cannot be evaluated on these numbers" if len(reached) < len(cells) else ""
    if not flipped:
        return f"robust: {verdict} under all {len(reached)} variants that can be evaluated{unknown}"
    return f"{verdict}, but {'passes' if verdict == 'failed' else 'fails'} under {', '.join(flipped)}{unknown}"


def variant_names(columns: Sequence[SensitivityColumn]) -> list[str]:
    """Every variant of any column, once, in the order they first appear."""
    return list(dict.fromkeys(name for column in columns for name in column.cells))


def main_verdict(results: Sequence[ClaimResult]) -> str | None:
    """The claim's verdict over its tests: passed only if every model's passed; None if none reached one."""
    reached = [r.verdict for r in results if r.verdict is not None]
    if not reached:
        return None
    return "passed" if all(v == "passed" for v in reached) else "failed"


def variant_cells(results: Sequence[ClaimResult]) -> dict[str, VariantResult]:
    """Each variant's verdict for the claim: one test's, or for a per-model claim every model's together.

    A per-model claim over several models gets one more variant per model, ``without <model>``:
    the claim holds for the others (from their verdicts as tested), since "every model" is a
    choice of models as much as a cross-model fit's is.
    """
    by_variant: dict[str, list[VariantResult]] = {}
    for result in results:
        for cell in result.sensitivity:
            by_variant.setdefault(cell.variant, []).append(cell)
    cells = {name: aggregate(found) for name, found in by_variant.items()}
    if results and results[0].claim.scope == "model" and len(results) > 1:
        for left in results:
            cells[f"without {left.model}"] = _without(left, results)
    return cells


def aggregate(found: Sequence[VariantResult]) -> VariantResult:
    """One variant over a claim's tests: failed if any model fails, passed if all pass, else not evaluable."""
    if len(found) == 1:
        return found[0]
    reached = [f for f in found if f.verdict is not None]
    passing = sum(f.verdict == "passed" for f in reached)
    if len(reached) < len(found) and passing == len(reached):
        verdict = None  # the models it cannot evaluate could be the ones that fail
    else:
        verdict = "passed" if passing == len(found) else "failed" if reached else None
    unknown = len(found) - len(reached)
    message = f"{passing} of {len(found)} models pass" + (f", {unknown} not evaluable" if unknown else "")
    return VariantResult(found[0].variant, found[0].group, verdict, None, message)


def _without(left: ClaimResult, results: Sequence[ClaimResult]) -> VariantResult:
    """The per-model claim over every model but ``left``, from the others' verdicts as tested."""
    rest = [r.verdict for r in results if r is not left and r.verdict is not None]
    verdict = ("passed" if all(v == "passed" for v in rest) else "failed") if rest else None
    name = f"without {left.model}"
    return VariantResult(name, LEAVE_ONE_OUT, verdict, None, f"{sum(v == 'passed' for v in rest)} of {len(rest)} other models pass")
