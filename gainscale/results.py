"""Gathering what the claims tests recorded into the results a report is written from.

A test hands its numbers to pytest with ``record_property``; under pytest-xdist those
properties travel with each report to the controller. :class:`ResultsCollector` folds every
phase report of every claims test into one :class:`ClaimResult` per test and builds the
``results.json`` structure. It reads only what the tests recorded: no torch, no models.
"""

from __future__ import annotations

import json
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from .claims import CLAIMS
from .prompts import PromptSet
from .settings import Settings

#: outcomes as the report names them
OUTCOMES = ("passed", "failed", "skipped", "xfailed", "regression")


@dataclass(frozen=True)
class ClaimResult:
    """One claims test's outcome and numbers."""

    claim: str
    #: test name with its parameters, e.g. ``test_attention_contractive[published-pythia-6.9b]``
    test: str
    source: str
    #: None for a cross-model claim
    model: str | None
    #: one of :data:`OUTCOMES`
    outcome: str
    value: float | None = None
    threshold: float | None = None
    #: the verdict's numbers, or the reason of a skip, or the error
    message: str = ""
    #: the baseline's outcome and value for this test, when a baseline was compared
    baseline: dict[str, Any] | None = None
    #: the verdict itself (``passed`` / ``failed``), whatever the baseline made of the test
    verdict: str | None = None
    #: the numbers a baseline keeps: name -> [kind, value]
    tracked: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _TestRecord:
    """What is known of one test so far, phase by phase."""

    properties: dict[str, Any] = field(default_factory=dict)
    outcome: str = "passed"
    message: str = ""
    ran_call: bool = False


class ResultsCollector:
    """Folds phase reports of claims tests into results; see :meth:`add_phase`."""

    def __init__(self):
        self._tests: dict[str, _TestRecord] = {}

    def __bool__(self) -> bool:
        return bool(self._tests)

    def add_phase(self, test: str, when: str, outcome: str, properties, message: str = "", xfailed: bool = False) -> None:
        """Fold in one phase report.

        Parameters
        ----------
        test
            The test's name with its parameters.
        when
            ``setup``, ``call`` or ``teardown``.
        outcome
            pytest's phase outcome: ``passed``, ``failed`` or ``skipped``.
        properties
            The test's user properties so far (pairs of name and value).
        message
            The skip reason or failure text of this phase, if any.
        xfailed
            Whether pytest reported the phase as an expected failure.
        """
        record = self._tests.setdefault(test, _TestRecord())
        record.properties.update({name: value for name, value in properties})
        if when == "call":
            record.ran_call = True
        if xfailed:
            record.outcome, record.message = "xfailed", message
        elif outcome == "failed" and record.outcome != "failed":
            prefix = "" if when == "call" else f"error in {when}: "
            record.outcome, record.message = "failed", prefix + message
        elif outcome == "skipped" and record.outcome == "passed":
            record.outcome, record.message = "skipped", message

    def claim_results(self) -> list[ClaimResult]:
        """One result per test: in the claims' order, then by source, then by model size."""
        results = [self._result(test, record) for test, record in self._tests.items()]
        order = list(CLAIMS)
        sizes = {(source, m["model"]): m["n_params"] for source, models in self.models().items() for m in models}

        def position(r: ClaimResult):
            return (order.index(r.claim), source_order(r.source), sizes.get((r.source, r.model), float("inf")), r.test)

        return sorted(results, key=position)

    def _result(self, test: str, record: _TestRecord) -> ClaimResult:
        p = record.properties
        outcome, message = record.outcome, record.message
        if outcome in ("passed", "failed", "xfailed") and "message" in p:
            message = p["message"]  # the verdict's own words, not the assertion's traceback
        baseline = _json(p.get("gainscale_baseline"))
        if baseline and baseline.get("status") in ("regression", "improvement", "drift") and outcome == "failed":
            outcome, message = "regression", baseline["message"]
        elif baseline and outcome == "failed":  # a test the baseline lacks
            message = baseline["message"]
        verdict = _json(p.get("gainscale_verdict")) or {}
        return ClaimResult(
            claim=p["claim"],
            test=test,
            source=p["source"],
            model=p.get("model") or None,
            outcome=outcome,
            value=_number(p.get("value")),
            threshold=_number(p.get("threshold")),
            message=message,
            baseline=baseline,
            verdict={True: "passed", False: "failed"}.get(verdict.get("passed")),
            tracked=verdict.get("tracked", {}),
        )

    def models(self) -> dict[str, list[dict]]:
        """Per source, every model summary the tests used, smallest first."""
        by_source: dict[str, dict[str, dict]] = {}
        for record in self._tests.values():
            for summary in _json(record.properties.get("gainscale_summaries")) or []:
                summary = {k: v for k, v in summary.items() if k != "origin"}  # origin is provenance
                by_source.setdefault(record.properties["source"], {})[summary["model"]] = summary
        return {source: sorted(models.values(), key=lambda m: m["n_params"]) for source, models in sorted(by_source.items())}

    def details(self, claim: str, key: str) -> dict[str, dict]:
        """Per source, a detail (``fit``, ``trend``, ``alpha_test``) the verdicts of ``claim`` recorded."""
        found = {}
        for record in self._tests.values():
            verdict = _json(record.properties.get("gainscale_verdict"))
            if verdict and verdict["claim"] == claim and key in verdict["details"]:
                found[record.properties["source"]] = verdict["details"][key]
        return dict(sorted(found.items()))

    def property_by_source(self, name: str) -> dict[str, Any]:
        """Per source, a JSON property any of its tests recorded (e.g. ``gainscale_recorded_fit``)."""
        found = {}
        for record in self._tests.values():
            value = _json(record.properties.get(name))
            if value is not None:
                found[record.properties["source"]] = value
        return dict(sorted(found.items()))

    def provenance_by_source(self) -> dict[str, dict[str, dict]]:
        """Per source and model, how its numbers were obtained."""
        found: dict[str, dict[str, dict]] = {}
        for record in self._tests.values():
            for model, provenance in (_json(record.properties.get("gainscale_provenance")) or {}).items():
                found.setdefault(record.properties["source"], {})[model] = provenance
        return {source: dict(sorted(models.items())) for source, models in sorted(found.items())}

    def results(self, provenance: dict[str, Any]) -> dict[str, Any]:
        """The ``results.json`` structure."""
        fits = self.details("scaling_law_significant", "fit") | self.details("scaling_exponent_matches", "fit")
        return {
            "claims": [r.to_json() for r in self.claim_results()],
            "fits": {source: _fit_summary(fit) for source, fit in sorted(fits.items())},
            "alpha_tests": self.details("scaling_exponent_matches", "alpha_test"),
            "trends": self.details("mlp_contraction_falls", "trend"),
            "recorded_fits": self.property_by_source("gainscale_recorded_fit"),
            "models": self.models(),
            "provenance": {**provenance, "sources": self.provenance_by_source()},
        }


def source_order(source: str) -> tuple[int, str]:
    """published, then measured, then imported sets by name."""
    return ({"published": 0, "measured": 1}.get(source, 2), source)


def labels_from_test_name(test: str, sources: list[str]) -> list[tuple[str, str]] | None:
    """Claim, source and model from a name like ``test_final_mlp_expands[published-pythia-70m]``.

    For a test whose report carries no properties, e.g. one on a pytest-xdist worker that
    crashed: it is still reported, as the failure it is. None for a test that is no claim's.
    """
    function, _, params = test.partition("[")
    claim = function.removeprefix("test_")
    params = params.rstrip("]")
    if claim not in CLAIMS or not params:
        return None
    for source in sorted(sources, key=len, reverse=True):  # the longest source name that fits
        if params == source or params.startswith(source + "-"):
            return [("claim", claim), ("source", source), ("model", params[len(source) + 1 :])]
    return None


def summary_lines(results: list[ClaimResult], width: int = 110) -> list[str]:
    """One line per claim and source: the verdict, or for per-model claims the tally and what fails."""
    groups: dict[tuple[str, str], list[ClaimResult]] = {}
    for result in results:
        groups.setdefault((result.claim, result.source), []).append(result)
    lines = []
    for (claim, source), group in groups.items():
        if group[0].model is None:
            text = f"{group[0].outcome}: {group[0].message}"
        else:
            tally = {o: sum(r.outcome == o for r in group) for o in OUTCOMES}
            text = ", ".join(f"{n} {o}" for o, n in tally.items() if n)
            bad = [r.message for r in group if r.outcome in ("failed", "regression", "xfailed")]
            text += f": {'; '.join(bad)}" if bad else ""
        line = f"{claim:<25} {source:<10} {text}"
        lines.append(line if len(line) <= width else line[: width - 1] + "…")
    return lines


def run_provenance(root: Path, settings: Settings, prompts: PromptSet, command: str) -> dict[str, Any]:
    """Where, when and with what a run happened; versions are read without importing torch."""
    from . import __version__

    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "gainscale_version": __version__,
        "git_commit": _git_commit(root),
        "torch_version": _installed_version("torch"),
        "transformers_version": _installed_version("transformers"),
        "python_version": platform.python_version(),
        "command": command,
        "suite": settings.suite,
        "device": settings.device,
        "dtype": settings.dtype,
        "batch_size": settings.batch_size,
        "prompts": prompts.name,
        "prompts_sha256": prompts.sha256,
    }


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


def _fit_summary(fit: dict[str, Any]) -> dict[str, Any]:
    keys = ("alpha", "alpha_stderr", "intercept", "intercept_stderr", "r_squared", "p_value", "n_models", "alpha_ci95", "loo_alpha", "models", "log_params", "log_gains")
    return {key: fit[key] for key in keys if key in fit}


def _json(value: Any) -> Any:
    if value is None or isinstance(value, (dict, list)):
        return value
    return json.loads(value)


def _number(value: Any) -> float | None:
    if value is None or value == "None":
        return None
    return float(value)
