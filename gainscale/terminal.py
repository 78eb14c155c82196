"""The terminal summary of a claims run: one line per claim and source."""

from __future__ import annotations

from collections import Counter

from .results import OUTCOMES, ClaimResult, RunResult


def summary_lines(run: RunResult, width: int | None = None) -> list[str]:
    """One line per claim and source: the verdict, or for per-model claims the tally and what fails.

    Lines are cut to ``width`` on a terminal; with ``width`` None (a CI log) they are whole.
    """
    groups: dict[tuple[str, str], list[ClaimResult]] = {}
    for result in run.claims:
        groups.setdefault((result.claim.id, result.source), []).append(result)
    id_width = max((len(claim) for claim, _ in groups), default=0)
    source_width = max((len(source) for _, source in groups), default=0)
    lines = []
    for (claim, source), group in groups.items():
        line = f"{claim:<{id_width}}  {source:<{source_width}}  {_verdicts(group)}"
        lines.append(line if width is None or len(line) <= width else line[: width - 1] + "…")
    return lines + _nothing_obtained(run)


def _verdicts(group: list[ClaimResult]) -> str:
    if group[0].claim.scope != "model":
        return f"{group[0].outcome}: {group[0].message}"
    counted = [r for r in group if not r.is_control]  # a control stands beside its model, uncounted
    tally = {o: sum(r.outcome == o for r in counted) for o in OUTCOMES}
    text = ", ".join(f"{n} {o}" for o, n in tally.items() if n)
    bad = Counter(r.message for r in counted if r.failing)  # the same reason for every model once, counted
    text += f": {'; '.join(m if n == 1 else f'{n}x {m}' for m, n in bad.items())}" if bad else ""
    controls = ", ".join(f"{r.model} {r.outcome}" for r in group if r.is_control)
    return text + (f" (not counted: control {controls})" if controls else "")


def _nothing_obtained(run: RunResult) -> list[str]:
    """A line for each source none of whose numbers could be had: a green run that checked nothing."""
    lines = []
    for source in run.sources:
        results = run.claims_of(source.name)
        reasons = [r.unavailable for r in results if r.unavailable]
        if results and len(reasons) == len(results):
            lines.append(f"nothing was checked on source {source.name}: none of its {len(results)} tests got "
                         f"its numbers here ({reasons[0]}); --gainscale-require-measured makes this a failure")
    return lines
