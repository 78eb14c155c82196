"""Folding what the claims tests recorded, phase by phase, into one :class:`RunResult`.

A claims test's :class:`~gainscale.results.CaseRecord` rides on each of its phase reports as
JSON; under pytest-xdist it travels with them to the controller. :class:`ResultsCollector`
decodes each record once and folds records and outcomes into the run's result. It reads only
what the tests recorded: no torch, no models, no claim ids.
"""

from __future__ import annotations

import json
import platform
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from .results import CaseRecord, ClaimResult, Interruption, RunResult, SourceInfo, SourceResult
from .sensitivity_table import with_sensitivity

#: baseline statuses that turn a failed test into a labelled outcome
_BASELINE_OUTCOMES = {"regression": "regression", "drift": "regression", "improvement": "improvement"}


@dataclass
class _Test:
    """What is known of one test so far, phase by phase."""

    record: CaseRecord
    outcome: str = "passed"
    message: str = ""
    #: the JSON ``record`` was read from: a phase that carries the same text is not decoded again
    record_json: str | None = None


class ResultsCollector:
    """Folds phase reports of claims tests into a :class:`RunResult`; see :meth:`add_phase`.

    Parameters
    ----------
    source_order
        The run's sources in the order it named them: the report's order.
    """

    def __init__(self, source_order: list[str]):
        self.source_order = list(source_order)
        self._tests: dict[str, _Test] = {}
        self._expected: list[str] = []

    def __bool__(self) -> bool:
        return bool(self._tests)

    def expect(self, tests: list[str]) -> None:
        """The claims tests the run collected: those that never report are listed as not run."""
        self._expected += [t for t in tests if t not in self._expected]

    def add_phase(self, test: str, when: str, outcome: str, record: str | None, message: str = "", xfailed: bool = False,
                  decoded: CaseRecord | None = None) -> None:
        """Fold in one phase report.

        Parameters
        ----------
        test
            The test's node id.
        when
            ``setup``, ``call`` or ``teardown``.
        outcome
            pytest's phase outcome: ``passed``, ``failed`` or ``skipped``.
        record
            The claims test's record as JSON, as the report carried it; None for a test that is
            no claim's, or a report made without it (a crashed xdist worker's test: its earlier
            phases carried the record).
        message
            The skip reason or failure text of this phase, if any.
        xfailed
            Whether pytest reported the phase as an expected failure.
        decoded
            ``record`` already decoded, where this process encoded it: read, not parsed again.
        """
        state = self._tests.get(test)
        if record is not None and (state is None or record != state.record_json):
            decoded = decoded or CaseRecord.from_json(json.loads(record))
            if state is None:
                state = self._tests[test] = _Test(decoded)
            state.record, state.record_json = decoded, record
        if state is None:
            return  # not a claims test
        if xfailed:
            state.outcome, state.message = "xfailed", message
        elif outcome == "failed" and state.outcome != "failed":
            prefix = "" if when == "call" else f"error in {when}: "
            state.outcome, state.message = "failed", prefix + message
        elif outcome == "skipped" and state.outcome == "passed":
            state.outcome, state.message = "skipped", message

    def not_run(self) -> tuple[str, ...]:
        return tuple(t for t in self._expected if t not in self._tests)

    def result(self, provenance: dict[str, Any], interruption: str | None = None, declared: tuple = ()) -> RunResult:
        """The run's result, each source's sensitivity table folded from its tests.

        ``interruption`` is ``interrupted`` or ``stopped early`` for a run that did not finish;
        ``declared`` are the claims the run declared (:class:`~gainscale.results.ClaimInfo`), so
        that the report names those none of whose tests were selected.
        """
        claims = [_claim_result(test, state) for test, state in self._tests.items()]
        sources = self._sources()
        sizes = {(s.name, m.model): m.n_params for s in sources for m in s.models}

        def position(c: ClaimResult):
            return (c.claim.order(), self._position(c.source), sizes.get((c.source, c.model), float("inf")), c.test)

        stopped = Interruption(interruption, self.not_run()) if interruption else None
        return with_sensitivity(RunResult(provenance, tuple(sorted(claims, key=position)), sources, stopped, declared=tuple(declared)))

    def _sources(self) -> tuple[SourceResult, ...]:
        infos: dict[str, SourceInfo] = {}
        models: dict[str, dict[str, Any]] = {}
        provenance: dict[str, dict[str, Any]] = {}
        uncertainty: dict[str, dict[str, Any]] = {}
        for state in self._tests.values():
            r = state.record
            if r.source_info is not None:
                infos.setdefault(r.source, r.source_info)
            models.setdefault(r.source, {}).update({m.model: m for m in r.models})
            provenance.setdefault(r.source, {}).update(r.provenance)
            uncertainty.setdefault(r.source, {}).update(r.uncertainty)
        return tuple(
            SourceResult(infos.get(name) or _unread(name), tuple(sorted(models[name].values(), key=lambda m: m.n_params)),
                         dict(sorted(provenance[name].items())), dict(sorted(uncertainty[name].items())))
            for name in sorted(models, key=self._position)
        )

    def _position(self, source: str) -> tuple[int, str]:
        """The run's order of sources; any other after them, by name."""
        known = self.source_order.index(source) if source in self.source_order else len(self.source_order)
        return (known, source)


def _unread(name: str) -> SourceInfo:
    return SourceInfo(name=name, kind="unknown", description="No test of this source got as far as reading it.")


def _claim_result(test: str, state: _Test) -> ClaimResult:
    r, verdict = state.record, state.record.verdict
    outcome, message = state.outcome, state.message
    if verdict is not None and outcome in ("passed", "failed", "xfailed") and verdict.passed is not None:
        message = verdict.message  # the verdict's own words, not the assertion's traceback
    if r.baseline is not None and outcome == "failed" and r.baseline.fails:
        outcome, message = _BASELINE_OUTCOMES.get(r.baseline.status, "failed"), r.baseline.message
    reached = verdict is not None and verdict.passed is not None
    return ClaimResult(
        claim=r.claim,
        test=test,
        module=r.module,
        source=r.source,
        model=r.model,
        outcome=outcome,
        verdict=verdict.outcome if reached else None,
        value=verdict.value if verdict else None,
        threshold=verdict.threshold if verdict else None,
        message=message,
        tracked=dict(verdict.tracked) if reached else {},
        evidence=verdict.evidence if verdict else (),
        baseline=r.baseline,
        unavailable=r.unavailable,
        sensitivity=r.sensitivity,
        stability=r.stability,
        control_of=_control_of(r),
    )


def _control_of(record: CaseRecord) -> str | None:
    """The trained model a per-model test's model is the control of, as its summary says."""
    return next((m.control_of for m in record.models if m.model == record.model), None)


# ---------------------------------------------------------------------------- the run's provenance


def run_provenance(root: Path, settings: dict[str, Any], command: str, dated: bool = True) -> dict[str, Any]:
    """Where, when and with what a run happened; versions are read without importing torch.

    ``dated=False`` leaves out the date and the git commit, so that a rerun on unchanged inputs
    writes the same bytes (a committed example report stays unchanged).
    """
    from . import __version__

    provenance = {
        "gainscale_version": __version__,
        "torch_version": _installed_version("torch"),
        "transformers_version": _installed_version("transformers"),
        "python_version": platform.python_version(),
        "command": command,
        "settings": settings,
    }
    if dated:
        provenance.update(date=datetime.now(timezone.utc).isoformat(timespec="seconds"), git_commit=_git_commit(root))
    return provenance


def _git_commit(root: Path) -> str | None:
    try:
        result = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def _installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
