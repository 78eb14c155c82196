"""Baselines: the known state of every claim, committed, so that CI flags what changes.

A baseline file is small, sorted JSON with one value a line::

    {"gainscale_baseline": 1,
     "tests": {"test_final_mlp_expands[published-pythia-70m]":
                 {"outcome": "passed", "value": 1.5, "tracked": {"final_mlp_gain": 1.5}}, ...},
     "models": {"published": {"pythia-70m": {"attn_contracting": 6, "final_mlp_gain": 1.5, "mlp_contracting": 5}}},
     "fits": {"published": {"alpha": 0.2648}}}

Comparing a verdict with its entry gives a :class:`Comparison`: the same verdict within
tolerance (``same``, or ``known_failing`` for a claim that failed there too), a flipped
verdict (``regression`` or ``improvement``), a value that moved beyond tolerance (``drift``),
or a test the baseline does not have (``new``). Only ``same`` passes and ``known_failing``
is an expected failure; everything else fails until accepted with --gainscale-update-baseline.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .files import write_atomic
from .claims import Verdict
from .errors import BaselineError

FORMAT = 1
ACCEPT = "accept it with --gainscale-update-baseline"


@dataclass(frozen=True)
class Tolerances:
    """How far a tracked number may move before it is drift, per kind of number."""

    #: relative, for gains (final MLP gain)
    gain: float = 0.05
    #: relative, for the scaling exponent
    alpha: float = 0.05
    #: absolute, in layers, for contracting counts
    count: float = 0.0
    #: relative, for p-values
    p_value: float = 0.05
    #: relative, for rank statistics (Spearman's rho)
    statistic: float = 0.05

    def allows(self, kind: str, old: float, new: float) -> bool:
        tolerance = getattr(self, kind)
        if kind == "count":
            return abs(new - old) <= tolerance
        return abs(new - old) <= tolerance * abs(old) or new == old

    def describe(self, kind: str) -> str:
        tolerance = getattr(self, kind)
        return f"{tolerance:g} layers" if kind == "count" else f"{tolerance:.0%}"


@dataclass(frozen=True)
class Comparison:
    """A verdict set beside its baseline entry."""

    #: ``same``, ``known_failing``, ``regression``, ``improvement``, ``drift`` or ``new``
    status: str
    message: str
    #: the baseline's outcome and value (None for a test it does not have)
    outcome: str | None = None
    value: float | None = None

    @property
    def fails(self) -> bool:
        return self.status in ("regression", "improvement", "drift", "new")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Baseline:
    """The baseline file's content."""

    path: Path
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    fits: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> Baseline:
        """Read a baseline; raise :class:`BaselineError` naming the file and the fault."""
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BaselineError(f"{path}: no baseline file; write one with --gainscale-update-baseline") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise BaselineError(f"{path}: not a valid baseline JSON file ({error}); fix it or write it anew with --gainscale-update-baseline") from None
        if not isinstance(raw, dict) or raw.get("gainscale_baseline") != FORMAT or not isinstance(raw.get("tests"), dict):
            raise BaselineError(f"{path}: not a gainscale baseline (format {FORMAT} with a 'tests' object); write it anew with --gainscale-update-baseline")
        for test, entry in raw["tests"].items():
            if not isinstance(entry, dict) or entry.get("outcome") not in ("passed", "failed"):
                raise BaselineError(f"{path}: entry {test!r} has no outcome 'passed' or 'failed'")
        return cls(path, raw["tests"], raw.get("models", {}), raw.get("fits", {}))

    def compare(self, test: str, verdict: Verdict, tolerances: Tolerances) -> Comparison:
        """Set ``verdict`` (of the test named ``test``) beside its entry."""
        entry = self.tests.get(test)
        if entry is None:
            return Comparison("new", f"{test} is not in baseline {self.path}: it {verdict.outcome} "
                                     f"({verdict.message}); {ACCEPT}")
        old, value = entry["outcome"], entry.get("value")
        was = f"baseline {self.path}: {old} with value {_show(value)}; now {verdict.outcome} with {_show(verdict.value)}"
        if old != verdict.outcome:
            status = "regression" if old == "passed" else "improvement"
            advice = "" if status == "regression" else f"; {ACCEPT}"
            return Comparison(status, f"{status.upper()}: {verdict.message} ({was}){advice}", old, value)
        drifted = list(_drifts(entry.get("tracked", {}), verdict.tracked, tolerances))
        if drifted:
            return Comparison("drift", f"DRIFT beyond tolerance: {'; '.join(drifted)} ({was}); {ACCEPT} if intended", old, value)
        if old == "failed":
            return Comparison("known_failing", f"known failing claim, recorded in baseline {self.path}: {verdict.message}", old, value)
        return Comparison("same", f"as in baseline {self.path}", old, value)

    def not_run(self, tests_run: Iterable[str]) -> list[str]:
        """Baseline entries with no evaluated test this run."""
        return sorted(set(self.tests) - set(tests_run))

    def updated(self, results: dict[str, Any]) -> Baseline:
        """This baseline with every test evaluated in ``results`` (results.json) recorded anew."""
        tests = dict(self.tests)
        for claim in results["claims"]:
            if claim["verdict"] is not None:
                tracked = {name: value for name, (_kind, value) in claim["tracked"].items()}
                tests[claim["test"]] = {"outcome": claim["verdict"], "value": claim["value"], "tracked": tracked}
        models = {source: dict(models) for source, models in self.models.items()}
        for source, summaries in results["models"].items():
            for m in summaries:
                models.setdefault(source, {})[m["model"]] = {
                    k: m[k] for k in ("final_mlp_gain", "attn_contracting", "mlp_contracting") if m.get(k) is not None
                }
        fits = {**self.fits, **{source: {"alpha": fit["alpha"]} for source, fit in results["fits"].items()}}
        return Baseline(self.path, tests, models, fits)

    def write(self) -> None:
        body = {"gainscale_baseline": FORMAT, "tests": self.tests, "models": self.models, "fits": self.fits}
        write_atomic(self.path, json.dumps(body, indent=1, sort_keys=True) + "\n")


def _drifts(old: dict[str, float], new: dict[str, tuple[str, float]], tolerances: Tolerances):
    for name, (kind, value) in sorted(new.items()):
        if name in old and not tolerances.allows(kind, old[name], value):
            yield f"{name} {_show(old[name])} -> {_show(value)} (tolerance {tolerances.describe(kind)})"


def _show(value: float | None) -> str:
    return "none" if value is None else f"{value:.6g}"
