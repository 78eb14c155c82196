"""The typed result model: what a run of claims produced, from one test to the whole report.

Every claims test records one :class:`CaseRecord` (its claim, source, model, verdict and the
numbers behind it); under pytest-xdist it travels to the controller as JSON and is rebuilt
there, as pytest's own reports are. The collector folds the records and the test outcomes
into a :class:`RunResult`, which the report, the figures, the baseline and the terminal
summary all read by attribute. ``results.json`` is :meth:`RunResult.to_json`, versioned and
described by ``gainscale/data/results.schema.json``; :func:`load_results` reads it back::

    >>> run = gainscale.load_results("reports/results.json")          # doctest: +SKIP
    >>> run.to_frame("claims")                                        # doctest: +SKIP

This module imports neither torch nor the measuring code.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from .errors import ClaimDeclarationError, ResultsError
from .bootstrap import Interval
from .stats import AlphaTest, PowerLawFit, TrendTest
from .summary import ModelSummary

#: version of results.json; bump when a field changes meaning or a required one is added
RESULTS_FORMAT = 3
#: earlier versions :func:`load_results` still reads (what they lack is derived from what they hold)
READABLE_FORMATS = (2, RESULTS_FORMAT)

#: a test's outcome as the report names it
OUTCOMES = ("passed", "failed", "skipped", "xfailed", "regression", "improvement")
#: outcomes that are a claim failing
FAILING = ("failed", "regression", "improvement", "xfailed")


# ---------------------------------------------------------------------------- claims and verdicts


@dataclass(frozen=True)
class ClaimInfo:
    """A claim's declaration as results carry it: everything the report needs, no code."""

    id: str
    #: the claim in one sentence, with the run's threshold values filled in
    statement: str
    #: ``model`` (one verdict per model) or ``suite`` (one across the models)
    scope: str
    #: where the claim is made, e.g. ``§3, §8.1``
    where: str = ""
    #: its number in that paper, e.g. ``3a``; orders the report
    number: str | None = None
    #: the thresholds it was tested against, by name
    thresholds: dict[str, float] = field(default_factory=dict)
    value_format: str = "{}"
    threshold_format: str = "{}"
    #: the figures' quantities its thresholds are levels of (figure quantity -> threshold name),
    #: drawn as lines where the figures show them; results.json files older than the field have none
    marks: dict[str, str] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return f"{self.statement} ({self.where})" if self.where else self.statement

    def describe_value(self, value: float | None) -> str:
        return "" if value is None else self.value_format.format(f"{value:.4g}")

    def describe_threshold(self, threshold: float | None) -> str:
        return "" if threshold is None else self.threshold_format.format(f"{threshold:g}")

    def level(self, quantity: str) -> float | None:
        """The run's value of the threshold that marks ``quantity`` (a figure's), None if none does."""
        name = self.marks.get(quantity)
        return None if name is None else self.thresholds.get(name)

    def order(self) -> tuple:
        """Numbered claims first, by number; then by id."""
        return (self.number is None, _natural(self.number or ""), self.id)

    def to_json(self) -> dict[str, Any]:
        return _plain(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClaimInfo:
        return _build(cls, data)


@dataclass(frozen=True)
class Tracked:
    """A number a baseline holds steady, and its kind (which sets its tolerance)."""

    #: ``gain``, ``alpha``, ``count``, ``p_value``, ``statistic`` or a kind of your own
    kind: str
    value: float

    @classmethod
    def of(cls, name: str, value: Any) -> Tracked:
        """From a :class:`Tracked` or a ``(kind, value)`` pair; refuses anything else, naming it."""
        if isinstance(value, Tracked):
            return value
        try:
            kind, number = value
            return cls(str(kind), float(number))
        except (TypeError, ValueError):
            raise ClaimDeclarationError(f"tracked number {name!r} must be (kind, value), not {value!r}") from None

    def to_json(self) -> list:
        return [self.kind, self.value]


@dataclass(frozen=True, repr=False)
class Verdict:
    """A claim evaluated on some numbers.

    Parameters
    ----------
    passed
        True or False; None when the numbers do not allow a verdict (the test skips, saying why).
    value
        The number compared with the threshold.
    threshold
        What it was compared with.
    message
        The comparison in words and numbers: ``"pythia-6.9b: 31 of 32 ... = 96.875% < 97%"``.
    tracked
        Numbers a baseline holds steady, by name: ``Tracked(kind, value)`` or ``(kind, value)``;
        the kind (``gain``, ``alpha``, ``count``, ``p_value``, ``statistic``, ...) sets the tolerance.
    evidence
        The statistics behind the verdict (a fit, a trend test), which the report lays out.
    """

    passed: bool | None
    value: float | None
    threshold: float | None
    message: str
    tracked: Mapping[str, Tracked] = field(default_factory=dict)
    evidence: tuple = ()

    def __post_init__(self):
        if self.passed not in (True, False, None):
            raise ClaimDeclarationError(f"a verdict's passed must be True, False or None, not {self.passed!r}")
        object.__setattr__(self, "passed", None if self.passed is None else bool(self.passed))
        object.__setattr__(self, "value", _number_or_none("value", self.value))
        object.__setattr__(self, "threshold", _number_or_none("threshold", self.threshold))
        object.__setattr__(self, "message", str(self.message))
        object.__setattr__(self, "tracked", {str(n): Tracked.of(n, t) for n, t in dict(self.tracked).items()})
        object.__setattr__(self, "evidence", tuple(self.evidence))
        for item in self.evidence:
            evidence_name(item)  # an unknown kind of evidence is refused here, not at the report

    @property
    def outcome(self) -> str:
        return {True: "passed", False: "failed", None: "not evaluable"}[self.passed]

    def __repr__(self) -> str:  # short: pytest prints it under a failed assert
        return f"Verdict({self.outcome}, {self.value!r} vs {self.threshold!r})"

    def evidence_of(self, kind: type) -> Any | None:
        return next((e for e in self.evidence if isinstance(e, kind)), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "value": self.value,
            "threshold": self.threshold,
            "message": self.message,
            "tracked": {name: t.to_json() for name, t in self.tracked.items()},
            "evidence": [evidence_to_json(e) for e in self.evidence],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Verdict:
        return cls(
            passed=data["passed"],
            value=data["value"],
            threshold=data["threshold"],
            message=data["message"],
            tracked={name: Tracked(*pair) for name, pair in data["tracked"].items()},
            evidence=tuple(evidence_from_json(e) for e in data["evidence"]),
        )


def _number_or_none(name: str, value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)  # numpy scalars too
    except (TypeError, ValueError):
        raise ClaimDeclarationError(f"a verdict's {name} must be a number or None, not {value!r}") from None
    if isinstance(value, bool):
        raise ClaimDeclarationError(f"a verdict's {name} must be a number or None, not {value!r}")
    return number


# ---------------------------------------------------------------------------- how sure a verdict is


@dataclass(frozen=True)
class VariantResult:
    """A claim evaluated again under one variant of the analysis (the sensitivity table's cell)."""

    #: the variant, e.g. ``cutoff 0.95``, ``without the last layer``, ``without pythia-2.8b``
    variant: str
    #: the kind of variant: ``cutoff``, ``layers``, ``parameters``, ``p-value``, ``leave one out``, ``gain``
    group: str
    #: ``passed`` / ``failed``; None where the variant cannot be evaluated on these numbers
    verdict: str | None
    value: float | None
    #: the variant's verdict in words, or why it cannot be evaluated
    message: str

    def to_json(self) -> dict[str, Any]:
        return _plain(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VariantResult:
        return _build(cls, data)


@dataclass(frozen=True)
class ClaimSensitivity:
    """One claim on one source under every variant of the analysis: a column of the sensitivity table.

    A per-model claim holds under a variant only if every model does; a control (a model's
    network with its weights drawn again) stands beside its model in the report and is left out.
    """

    #: the claim's id
    claim: str
    #: ``passed`` / ``failed`` as tested (for a per-model claim, every model's but the controls'); None without one
    verdict: str | None
    #: the claim's value as tested; None for a per-model claim over several models (one value per model)
    value: float | None
    #: the verdict under each variant, in the order the tests gave them; a per-model claim over
    #: several models ends with one ``without <model>`` variant per model
    cells: tuple[VariantResult, ...]
    #: the variants under which the verdict differs from ``verdict``
    flips: tuple[str, ...]
    #: in one sentence: robust under every variant that can be evaluated, or which variants flip it
    robustness: str

    @property
    def robust(self) -> bool:
        return self.verdict is not None and not self.flips

    def cell(self, variant: str) -> VariantResult | None:
        return next((c for c in self.cells if c.variant == variant), None)

    def to_json(self) -> dict[str, Any]:
        return {"claim": self.claim, "verdict": self.verdict, "value": self.value, "robustness": self.robustness,
                "flips": list(self.flips), "cells": [c.to_json() for c in self.cells]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClaimSensitivity:
        return cls(data["claim"], data["verdict"], data["value"], tuple(VariantResult.from_json(c) for c in data["cells"]),
                   tuple(data["flips"]), data["robustness"])


@dataclass(frozen=True)
class Stability:
    """How often a claim's verdict holds when the prompts are resampled (a seeded bootstrap)."""

    #: the share of resamples in which the verdict is "passed"; None where there are none
    share: float | None
    resamples: int = 0
    seed: int = 0
    #: why there is no share (a source without per-prompt numbers, a claim without a check)
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return _plain(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Stability:
        return _build(cls, data)


@dataclass(frozen=True)
class ModelUncertainty:
    """One model's numbers with their 95% bootstrap intervals over resampled prompts."""

    model: str
    resamples: int
    #: the seed this model's resamples were drawn from
    seed: int
    attn_gains: tuple[Interval, ...]
    mlp_gains: tuple[Interval, ...]
    final_mlp_gain: Interval
    attn_contracting: Interval
    mlp_contracting: Interval

    @classmethod
    def of(cls, bootstrap) -> ModelUncertainty:
        """The intervals of a :class:`~gainscale.bootstrap.ModelBootstrap`, without its draws."""
        return cls(bootstrap.model, bootstrap.resamples, bootstrap.seed, bootstrap.attn_gains, bootstrap.mlp_gains,
                   bootstrap.final_mlp_gain, bootstrap.attn_contracting, bootstrap.mlp_contracting)

    def to_json(self) -> dict[str, Any]:
        return _plain(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelUncertainty:
        values = dict(data)
        for name in ("attn_gains", "mlp_gains"):
            values[name] = tuple(Interval.from_json(i) for i in data[name])
        for name in ("final_mlp_gain", "attn_contracting", "mlp_contracting"):
            values[name] = Interval.from_json(data[name])
        return cls(**values)


@dataclass(frozen=True)
class AlphaBootstrap:
    """The power law's exponent over resampled prompts (every model's), beside its OLS interval."""

    #: alpha as fitted, and its percentile interval over the resampled suites
    alpha: Interval
    #: alpha's t interval at the same level, from the fit
    ols: tuple[float, float]
    resamples: int
    seed: int

    def to_json(self) -> dict[str, Any]:
        return {"alpha": self.alpha.to_json(), "ols": list(self.ols), "resamples": self.resamples, "seed": self.seed}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlphaBootstrap:
        return cls(Interval.from_json(data["alpha"]), tuple(data["ols"]), data["resamples"], data["seed"])


# ---------------------------------------------------------------------------- evidence

#: the kinds of statistics a verdict can carry, by the name results.json gives them
EVIDENCE_TYPES: dict[str, type] = {
    "power_law_fit": PowerLawFit, "alpha_test": AlphaTest, "trend_test": TrendTest, "alpha_bootstrap": AlphaBootstrap,
}


def register_evidence(name: str, kind: type) -> None:
    """Let verdicts carry a new kind of statistic (a frozen dataclass with ``to_json``)."""
    EVIDENCE_TYPES[name] = kind


def evidence_name(item: Any) -> str:
    for name, kind in EVIDENCE_TYPES.items():
        if type(item) is kind:
            return name
    raise ClaimDeclarationError(
        f"a verdict's evidence must be one of {', '.join(k.__name__ for k in EVIDENCE_TYPES.values())} "
        f"(or a kind registered with gainscale.results.register_evidence), not {type(item).__name__}"
    )


def evidence_to_json(item: Any) -> dict[str, Any]:
    data = item.to_json() if hasattr(item, "to_json") else _plain(item)
    return {"type": evidence_name(item), **_jsonable(data)}


def evidence_from_json(data: Mapping[str, Any]) -> Any:
    kind = EVIDENCE_TYPES.get(data.get("type", ""))
    if kind is None:
        raise ResultsError(f"evidence of unknown type {data.get('type')!r}; known: {', '.join(EVIDENCE_TYPES)}")
    if hasattr(kind, "from_json"):
        return kind.from_json({k: v for k, v in data.items() if k != "type"})
    return _build(kind, data)


# ---------------------------------------------------------------------------- one test


@dataclass(frozen=True)
class BaselineComparison:
    """A verdict set beside its baseline entry."""

    #: ``same``, ``known_failing``, ``regression``, ``improvement``, ``drift``, ``new`` or ``missing``
    status: str
    message: str
    #: the baseline's outcome and value (None for a test it does not have)
    outcome: str | None = None
    value: float | None = None

    @property
    def fails(self) -> bool:
        return self.status in ("regression", "improvement", "drift", "new", "missing")

    def to_json(self) -> dict[str, Any]:
        return _plain(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BaselineComparison:
        return _build(cls, data)


@dataclass(frozen=True)
class SourceInfo:
    """What the report says of a source, besides its numbers."""

    name: str
    #: the kind of source: ``published``, ``measured``, ``imported``, ...
    kind: str
    #: one sentence on where its numbers come from
    description: str = ""
    #: caveats a reader should know, e.g. the paper's own inconsistencies
    notes: tuple[str, ...] = ()
    #: the fit as the source itself recorded it, keyed as it keyed it; None if it has none
    recorded_fit: dict[str, float] | None = None
    #: what identifies its numbers (suite, dtype, prompts ...): a baseline is only valid for the same
    identity: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return _plain(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SourceInfo:
        return _build(cls, data)


@dataclass(frozen=True)
class CaseRecord:
    """What one claims test recorded: the case it is, and what it found (filled in as it runs)."""

    claim: ClaimInfo
    source: str
    #: None for a cross-model claim
    model: str | None
    #: the test module's path, relative to the rootdir
    module: str
    verdict: Verdict | None = None
    baseline: BaselineComparison | None = None
    source_info: SourceInfo | None = None
    #: the summaries the test read
    models: tuple[ModelSummary, ...] = ()
    #: per model, how its numbers were obtained
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: why the source could not give the numbers here (nothing cached and no device, ...)
    unavailable: str | None = None
    #: the claim under each variant of the analysis
    sensitivity: tuple[VariantResult, ...] = ()
    #: how often the verdict holds over resampled prompts
    stability: Stability | None = None
    #: per model read, its numbers' bootstrap intervals (sources with per-prompt numbers)
    uncertainty: dict[str, ModelUncertainty] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "claim": self.claim.to_json(),
            "source": self.source,
            "model": self.model,
            "module": self.module,
            "unavailable": self.unavailable,
            "sensitivity": [v.to_json() for v in self.sensitivity],
            "stability": self.stability.to_json() if self.stability else None,
            "uncertainty": {model: u.to_json() for model, u in self.uncertainty.items()},
            "verdict": self.verdict.to_json() if self.verdict else None,
            "baseline": self.baseline.to_json() if self.baseline else None,
            "source_info": self.source_info.to_json() if self.source_info else None,
            "models": [m.to_json() for m in self.models],
            "provenance": self.provenance,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CaseRecord:
        return cls(
            claim=ClaimInfo.from_json(data["claim"]),
            source=data["source"],
            model=data["model"],
            module=data["module"],
            verdict=_maybe(Verdict, data["verdict"]),
            baseline=_maybe(BaselineComparison, data["baseline"]),
            source_info=_maybe(SourceInfo, data["source_info"]),
            models=tuple(ModelSummary.from_json(m) for m in data["models"]),
            provenance=data["provenance"],
            unavailable=data["unavailable"],
            sensitivity=tuple(VariantResult.from_json(v) for v in data["sensitivity"]),
            stability=_maybe(Stability, data["stability"]),
            uncertainty={model: ModelUncertainty.from_json(u) for model, u in data["uncertainty"].items()},
        )


@dataclass(frozen=True)
class ClaimResult:
    """One claims test's outcome and numbers."""

    claim: ClaimInfo
    #: test name with its parameters, e.g. ``test_attention_contractive[published-pythia-6.9b]``
    test: str
    #: the test module's path, relative to the rootdir
    module: str
    source: str
    #: None for a cross-model claim
    model: str | None
    #: one of :data:`OUTCOMES`
    outcome: str
    #: the verdict itself (``passed`` / ``failed``), whatever the baseline made of the test;
    #: None when none was reached (skipped, or an error before it)
    verdict: str | None = None
    value: float | None = None
    threshold: float | None = None
    #: the verdict's numbers, or the reason of a skip, or the error
    message: str = ""
    tracked: dict[str, Tracked] = field(default_factory=dict)
    evidence: tuple = ()
    baseline: BaselineComparison | None = None
    #: why the source could not give the numbers here; None when it could
    unavailable: str | None = None
    #: the claim under each variant of the analysis (where the claim declares a check)
    sensitivity: tuple[VariantResult, ...] = ()
    #: how often the verdict holds over resampled prompts
    stability: Stability | None = None
    #: for a test on a control (the network of ``control_of`` with its weights drawn again), that
    #: trained model: the control stands beside it and counts in none of the source's aggregates
    control_of: str | None = None

    @property
    def failing(self) -> bool:
        return self.outcome in FAILING

    @property
    def is_control(self) -> bool:
        return self.control_of is not None

    def evidence_of(self, kind: type) -> Any | None:
        return next((e for e in self.evidence if isinstance(e, kind)), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "claim": self.claim.to_json(),
            "test": self.test,
            "module": self.module,
            "source": self.source,
            "model": self.model,
            "control_of": self.control_of,
            "outcome": self.outcome,
            "verdict": self.verdict,
            "value": self.value,
            "threshold": self.threshold,
            "message": self.message,
            "tracked": {name: t.to_json() for name, t in self.tracked.items()},
            "evidence": [evidence_to_json(e) for e in self.evidence],
            "baseline": self.baseline.to_json() if self.baseline else None,
            "unavailable": self.unavailable,
            "sensitivity": [v.to_json() for v in self.sensitivity],
            "stability": self.stability.to_json() if self.stability else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClaimResult:
        return cls(
            claim=ClaimInfo.from_json(data["claim"]),
            test=data["test"],
            module=data["module"],
            source=data["source"],
            model=data["model"],
            outcome=data["outcome"],
            verdict=data["verdict"],
            value=data["value"],
            threshold=data["threshold"],
            message=data["message"],
            tracked={name: Tracked(*pair) for name, pair in data["tracked"].items()},
            evidence=tuple(evidence_from_json(e) for e in data["evidence"]),
            baseline=_maybe(BaselineComparison, data["baseline"]),
            unavailable=data["unavailable"],
            sensitivity=tuple(VariantResult.from_json(v) for v in data["sensitivity"]),
            stability=_maybe(Stability, data["stability"]),
            control_of=data["control_of"],
        )


# ---------------------------------------------------------------------------- sources and the run


@dataclass(frozen=True)
class SourceResult:
    """One source as the run saw it: what it is, the models its tests read, how they were obtained."""

    info: SourceInfo
    #: smallest first
    models: tuple[ModelSummary, ...] = ()
    #: per model, how its numbers were obtained
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: per model, its numbers' bootstrap intervals over resampled prompts (where it has per-prompt numbers)
    uncertainty: dict[str, ModelUncertainty] = field(default_factory=dict)
    #: each claim with variants under every variant, in report order (see :mod:`gainscale.sensitivity_table`)
    sensitivity: tuple[ClaimSensitivity, ...] = ()

    @property
    def name(self) -> str:
        return self.info.name

    def model(self, name: str) -> ModelSummary | None:
        return next((m for m in self.models if m.model == name), None)

    def claim_sensitivity(self, claim: str) -> ClaimSensitivity | None:
        """The claim's column of this source's sensitivity table; None where it has none."""
        return next((c for c in self.sensitivity if c.claim == claim), None)

    def to_json(self) -> dict[str, Any]:
        return {"info": self.info.to_json(), "sensitivity": [c.to_json() for c in self.sensitivity],
                "models": [m.to_json() for m in self.models], "provenance": self.provenance,
                "uncertainty": {model: u.to_json() for model, u in self.uncertainty.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SourceResult:
        return cls(SourceInfo.from_json(data["info"]), tuple(ModelSummary.from_json(m) for m in data["models"]), data["provenance"],
                   {model: ModelUncertainty.from_json(u) for model, u in data["uncertainty"].items()},
                   tuple(ClaimSensitivity.from_json(c) for c in data["sensitivity"]))


@dataclass(frozen=True)
class Interruption:
    """A run that did not finish: interrupted (Ctrl-C) or stopped early (``-x``, ``--maxfail``)."""

    #: ``interrupted`` or ``stopped early``
    reason: str
    #: the claims tests that were collected and did not run
    not_run: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return _plain(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Interruption:
        return _build(cls, data)


@dataclass(frozen=True)
class BaselineSummary:
    """What the run made of its baseline, beyond each test's comparison."""

    file: str
    #: tests this run evaluated that the baseline has no entry for
    not_in_baseline: tuple[str, ...] = ()
    #: baseline entries no test of this run evaluated
    not_run: tuple[str, ...] = ()
    #: what ``--gainscale-update-baseline`` did: counts of entries written, kept and removed
    written: dict[str, int] | None = None
    #: entries an update removed because their tests no longer exist
    removed: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return _plain(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BaselineSummary:
        return _build(cls, data)


@dataclass(frozen=True)
class RunResult:
    """Everything a claims run produced: ``results.json`` as objects."""

    #: where, when and with what the run happened (versions, command, settings)
    provenance: dict[str, Any]
    claims: tuple[ClaimResult, ...] = ()
    #: in the order the run named them
    sources: tuple[SourceResult, ...] = ()
    interruption: Interruption | None = None
    baseline: BaselineSummary | None = None
    #: every claim the run declared, whether or not a test of it was selected
    declared: tuple[ClaimInfo, ...] = ()
    format: int = RESULTS_FORMAT

    def source(self, name: str) -> SourceResult | None:
        return next((s for s in self.sources if s.name == name), None)

    def claims_of(self, source: str) -> list[ClaimResult]:
        return [c for c in self.claims if c.source == source]

    def claim_infos(self) -> list[ClaimInfo]:
        """Every claim declared or with a result, in report order."""
        infos = {c.id: c for c in self.declared} | {c.claim.id: c.claim for c in self.claims}
        return sorted(infos.values(), key=ClaimInfo.order)

    def evidence(self, source: str, kind: type) -> Any | None:
        """The first piece of evidence of ``kind`` any verdict on ``source`` carried."""
        return next((e for c in self.claims_of(source) for e in c.evidence if isinstance(e, kind)), None)

    @property
    def outcome_counts(self) -> dict[str, int]:
        return {o: n for o in OUTCOMES if (n := sum(c.outcome == o for c in self.claims))}

    def with_baseline(self, baseline: BaselineSummary | None) -> RunResult:
        return replace(self, baseline=baseline)

    def to_json(self) -> dict[str, Any]:
        """results.json as data, in the order it is written: the run's state first, its bulk last."""
        return {
            "gainscale_results": self.format,
            "interruption": self.interruption.to_json() if self.interruption else None,
            "outcomes": self.outcome_counts,
            "baseline": self.baseline.to_json() if self.baseline else None,
            "provenance": self.provenance,
            "declared": [c.to_json() for c in self.declared],
            "claims": [c.to_json() for c in self.claims],
            "sources": [s.to_json() for s in self.sources],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunResult:
        """Rebuild from :meth:`to_json`, or from results of an earlier readable format."""
        found = data.get("gainscale_results") if isinstance(data, Mapping) else type(data).__name__
        if found not in READABLE_FORMATS:
            readable = " or ".join(map(str, READABLE_FORMATS))
            raise ResultsError(f"not gainscale results of format {readable} (found {found!r})")
        if found == 2:
            return _from_format_2(data)
        return cls(
            provenance=data["provenance"],
            claims=tuple(ClaimResult.from_json(c) for c in data["claims"]),
            sources=tuple(SourceResult.from_json(s) for s in data["sources"]),
            interruption=_maybe(Interruption, data["interruption"]),
            baseline=_maybe(BaselineSummary, data["baseline"]),
            declared=tuple(ClaimInfo.from_json(c) for c in data["declared"]),
        )

    # ------------------------------------------------------------------ for notebooks

    def to_frame(self, table: str = "claims"):
        """A pandas DataFrame of ``claims`` (one row per test), ``models`` (one row per source
        and model) or ``layers`` (per-layer gains in long form: source, model, layer, module, gain).

        Example
        -------
        >>> run.to_frame("layers").pivot_table(index="layer", columns="model", values="gain")  # doctest: +SKIP
        """
        rows = {"claims": self._claim_rows, "models": self._model_rows, "layers": self._layer_rows}
        if table not in rows:
            raise ValueError(f"no table {table!r}; choose one of {', '.join(rows)}")
        import pandas as pd

        return pd.DataFrame(list(rows[table]()))

    def _claim_rows(self) -> Iterable[dict]:
        for c in self.claims:
            yield {"claim": c.claim.id, "statement": c.claim.statement, "scope": c.claim.scope, "source": c.source,
                   "model": c.model, "control_of": c.control_of, "test": c.test, "outcome": c.outcome, "verdict": c.verdict, "value": c.value,
                   "threshold": c.threshold, "message": c.message}

    def _model_rows(self) -> Iterable[dict]:
        for source in self.sources:
            for m in source.models:
                yield {"source": source.name, **m.table_row()}

    def _layer_rows(self) -> Iterable[dict]:
        for source in self.sources:
            for m in source.models:
                for row in m.layer_rows():
                    yield {"source": source.name, **row}


def load_results(path: str | Path) -> RunResult:
    """Read a ``results.json`` back as a :class:`RunResult`.

    Raises
    ------
    ResultsError
        Naming the file when it is missing, not JSON, or not gainscale results of this format.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultsError(f"{path}: cannot read results ({error})") from None
    try:
        return RunResult.from_json(data)
    except ResultsError as error:
        raise ResultsError(f"{path}: {error}") from None
    except (KeyError, TypeError, ValueError) as error:
        raise ResultsError(f"{path}: malformed results ({type(error).__name__}: {error})") from None


def _from_format_2(data: Mapping[str, Any]) -> RunResult:
    """Format 2 lacks each claim's ``control_of`` and each source's sensitivity table: both follow
    from what it holds (the sources' models say which are controls; the tests' variants make the table)."""
    from .sensitivity_table import with_sensitivity  # it reads this module's classes

    controls = {(s["info"]["name"], m["model"]): m.get("control_of") for s in data["sources"] for m in s["models"]}
    claims = [{**c, "control_of": controls.get((c["source"], c["model"]))} for c in data["claims"]]
    sources = [{**s, "sensitivity": []} for s in data["sources"]]
    run = RunResult.from_json({**data, "gainscale_results": RESULTS_FORMAT, "claims": claims, "sources": sources})
    return with_sensitivity(run)


# ---------------------------------------------------------------------------- helpers


def _plain(obj: Any) -> dict[str, Any]:
    """A flat frozen dataclass as JSON-ready data: tuples become lists."""
    return {f.name: _jsonable(getattr(obj, f.name)) for f in fields(obj)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if is_dataclass(value):
        return _plain(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _build(cls: type, data: Mapping[str, Any]) -> Any:
    """A flat frozen dataclass from :func:`_plain` data: lists become tuples where the field is one."""
    values = {}
    for f in fields(cls):
        if f.name in data:
            value = data[f.name]
            values[f.name] = tuple(_tupled(v) for v in value) if isinstance(value, list) else value
    return cls(**values)


def _tupled(value: Any) -> Any:
    return tuple(_tupled(v) for v in value) if isinstance(value, list) else value


def _maybe(cls: Any, data: Mapping[str, Any] | None) -> Any:
    return None if data is None else cls.from_json(data)


def _natural(text: str) -> tuple:
    """``"3a"`` -> ``(3, "a")``: numbers order as numbers, ``10`` after ``9``."""
    digits = "".join(c for c in text if c.isdigit())
    return (int(digits) if digits else math.inf, text)
