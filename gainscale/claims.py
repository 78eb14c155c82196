"""The paper's four claims as functions from numbers to verdicts.

Each function takes the summaries (or the fit) a claim is about and the threshold the paper
set, and returns a :class:`Verdict` whose message states the numbers:
``"pythia-6.9b: 31 of 32 attention layers contract = 96.875% < 97%"``. The test modules in
``claims/`` call these and assert; the thresholds can be changed in pytest.ini.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import GainscaleError
from .stats import PowerLawFit, TrendTest, falling_trend, fit_power_law
from .summary import ModelSummary


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, as the report and the ``claim`` marker name it."""

    id: str
    #: the claim in one sentence
    statement: str
    #: where the paper makes it
    where: str
    #: ``model`` for a verdict per model, ``suite`` for one across the models
    scope: str
    #: how a verdict's value and threshold read in the report, e.g. ``"p = {}"`` / ``"p < {}"``
    value_format: str = "{}"
    threshold_format: str = "{}"

    def describe_value(self, value: float | None) -> str:
        return "" if value is None else self.value_format.format(f"{value:.4g}")

    def describe_threshold(self, threshold: float | None) -> str:
        return "" if threshold is None else self.threshold_format.format(f"{threshold:g}")


CLAIMS: dict[str, Claim] = {
    c.id: c
    for c in (
        Claim("attention_contractive", "attention is contractive (gain < 1) in at least 97% of the layers of every model",
              "§3, §8.1", "model", "{}% of layers", ">= {}% of layers"),
        Claim("final_mlp_expands", "the final layer's MLP always expands (gain > 1)", "§3, §8.2", "model", "gain {}", "gain > {}"),
        Claim("scaling_law_significant", "the final MLP gain follows a power law in parameter count (p < 0.05)",
              "§2, §8.3", "suite", "p = {}", "p < {}"),
        Claim("scaling_exponent_matches", "the exponent alpha is within 2 standard errors of the hypothesised 0.35",
              "§2 Hypothesis Test", "suite", "alpha = {}", "alpha = {} within 2 stderr"),
        Claim("mlp_contraction_falls", "the share of contracting MLP layers falls as models grow",
              "§3, §8.4", "suite", "Spearman p = {}", "p < {}"),
    )
}


@dataclass(frozen=True)
class Thresholds:
    """What each claim must reach; defaults are the paper's (SCALING_LAW_ANALYSIS.md)."""

    #: §3 "Attention ist IMMER kontraktiv (97-100% in ALLEN Modellen)": the share of layers
    #: whose attention gain is < 1 must be at least this, in percent
    attention_contracting_min_pct: float = 97.0
    #: §3 "Letzter Layer EXPLODIERT immer ... All > 1.0": the last MLP's gain must exceed this
    final_mlp_gain_min: float = 1.0
    #: §2 "p-value = 0.015, Significant (p < 0.05)": the fit's slope p-value must be below this
    scaling_p_max: float = 0.05
    #: §2 "Hypothesized alpha 0.35"
    hypothesised_alpha: float = 0.35
    #: §2 "Within 2 sigma": |alpha - hypothesised| must be below this many standard errors
    alpha_sigmas: float = 2.0
    #: §3 "MLP Kontraktion FÄLLT mit Modellgröße": one-sided Spearman p must be below this
    trend_p_max: float = 0.05


@dataclass(frozen=True, repr=False)
class Verdict:
    """A claim evaluated on some numbers."""

    #: the claim's id, e.g. ``attention_contractive``
    claim: str
    #: True / False, or None when the source lacks what the claim needs
    passed: bool | None
    #: the number compared with the threshold
    value: float | None
    threshold: float
    #: the comparison in words and numbers
    message: str
    #: the numbers a baseline keeps for this claim: name -> (kind, value); kinds set the tolerance
    tracked: dict[str, tuple[str, float]] = field(default_factory=dict)
    #: the fit or trend behind a cross-model verdict, for the report
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def outcome(self) -> str:
        return {True: "passed", False: "failed", None: "not evaluable"}[self.passed]

    def __repr__(self) -> str:  # short, because pytest prints it under a failed assert
        return f"Verdict({self.claim}: {self.outcome}, {self.value!r} vs {self.threshold!r})"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["tracked"] = {k: list(v) for k, v in self.tracked.items()}
        return data


def attention_contractive(summary: ModelSummary, min_pct: float) -> Verdict:
    """Claim 1: attention gain < 1 in at least ``min_pct`` percent of the model's layers."""
    name = "attention_contractive"
    if summary.attn_contracting is None:
        return Verdict(name, None, None, min_pct, f"{summary.model}: the source gives no per-layer attention gains")
    pct = summary.attn_contracting_pct
    passed = pct >= min_pct
    message = (
        f"{summary.model}: {summary.attn_contracting} of {summary.n_layers} attention layers contract = "
        f"{_pct(pct)} {'>=' if passed else '<'} {_pct(min_pct)}"
    )
    return Verdict(name, passed, pct, min_pct, message, {"attn_contracting": ("count", summary.attn_contracting)})


def final_mlp_expands(summary: ModelSummary, min_gain: float) -> Verdict:
    """Claim 2: the last layer's MLP gain exceeds ``min_gain`` (1: it expands)."""
    gain = summary.final_mlp_gain
    passed = gain > min_gain
    message = f"{summary.model}: final MLP gain {gain:.4g} {'>' if passed else '<='} {min_gain:g}"
    return Verdict("final_mlp_expands", passed, gain, min_gain, message, {"final_mlp_gain": ("gain", gain)})


def scaling_fit(summaries: Sequence[ModelSummary]) -> PowerLawFit:
    """The paper's fit over ``summaries``: log10 final MLP gain against log10 parameters."""
    return fit_power_law([s.model for s in summaries], [s.n_params for s in summaries], [s.final_mlp_gain for s in summaries])


def scaling_law_significant(summaries: Sequence[ModelSummary], p_max: float) -> Verdict:
    """Claim 3a: the slope of the log-log fit is significant (p < ``p_max``)."""
    name = "scaling_law_significant"
    fit = _fit_or_reason(summaries)
    if isinstance(fit, str):
        return Verdict(name, None, None, p_max, fit)
    passed = fit.p_value < p_max
    message = (
        f"alpha = {fit.alpha:.3f} ± {fit.alpha_stderr:.3f} over {fit.n} models (R² = {fit.r_squared:.3f}): "
        f"p = {fit.p_value:.4f} {'<' if passed else '>='} {p_max:g}"
    )
    tracked = {"alpha": ("alpha", fit.alpha), "p_value": ("p_value", fit.p_value)}
    return Verdict(name, passed, fit.p_value, p_max, message, tracked, {"fit": fit.to_json()})


def scaling_exponent_matches(summaries: Sequence[ModelSummary], alpha0: float, sigmas: float) -> Verdict:
    """Claim 3b: |alpha - ``alpha0``| < ``sigmas`` standard errors (the paper's hypothesis check)."""
    name = "scaling_exponent_matches"
    fit = _fit_or_reason(summaries)
    if isinstance(fit, str):
        return Verdict(name, None, None, alpha0, fit)
    test = fit.test_alpha(alpha0, sigmas)
    band = sigmas * fit.alpha_stderr
    message = (
        f"|alpha - {alpha0:g}| = |{fit.alpha:.3f} - {alpha0:g}| = {abs(test.difference):.3f} "
        f"{'<' if test.within_sigmas else '>='} {sigmas:g} x {fit.alpha_stderr:.3f} = {band:.3f} "
        f"(t = {test.t:.2f}, df = {test.degrees_of_freedom}, two-sided p = {test.p_value:.3f})"
    )
    details = {"fit": fit.to_json(), "alpha_test": asdict(test)}
    return Verdict(name, test.within_sigmas, fit.alpha, alpha0, message, {"alpha": ("alpha", fit.alpha)}, details)


def _fit_or_reason(summaries: Sequence[ModelSummary]) -> PowerLawFit | str:
    """The fit, or why there is none (too few models, a gain that is not positive)."""
    try:
        return scaling_fit(summaries)
    except GainscaleError as error:
        return str(error)


def contraction_trend(summaries: Sequence[ModelSummary]) -> TrendTest | None:
    """Rank tests of the MLP contracting share against parameters; None if a model lacks it."""
    if any(s.mlp_contracting is None for s in summaries) or len(summaries) < 3:
        return None
    return falling_trend([s.model for s in summaries], [s.n_params for s in summaries], [s.mlp_contracting_pct for s in summaries])


def mlp_contraction_falls(summaries: Sequence[ModelSummary], p_max: float) -> Verdict:
    """Claim 4: the MLP contracting share falls with size (one-sided Spearman p < ``p_max``)."""
    name = "mlp_contraction_falls"
    trend = contraction_trend(summaries)
    if trend is None:
        reason = "a trend needs at least 3 models" if len(summaries) < 3 else "the source gives no per-layer MLP gains for some models"
        return Verdict(name, None, None, p_max, f"{reason}; got {len(summaries)}")
    if math.isnan(trend.spearman_rho):  # a rank correlation of a constant is undefined
        shares = ", ".join(f"{s:.4g}%" for s in trend.shares)
        return Verdict(name, None, None, p_max, f"the MLP contracting share does not vary across the models ({shares}): no trend to test")
    passed = trend.spearman_p < p_max
    (small, small_pct), (large, large_pct) = trend.smallest, trend.largest
    message = (
        f"Spearman rho = {trend.spearman_rho:.3f}, one-sided p = {trend.spearman_p:.4f} {'<' if passed else '>='} {p_max:g} "
        f"(Kendall tau = {trend.kendall_tau:.3f}, p = {trend.kendall_p:.4f}); "
        f"{small} {_pct(small_pct)} -> {large} {_pct(large_pct)}"
    )
    tracked = {"spearman_rho": ("statistic", trend.spearman_rho), "p_value": ("p_value", trend.spearman_p)}
    tracked |= {f"mlp_contracting[{s.model}]": ("count", s.mlp_contracting) for s in summaries}
    return Verdict(name, passed, trend.spearman_p, p_max, message, tracked, {"trend": trend.to_json()})


def _pct(value: float) -> str:
    """96.875 -> "96.875%", 97.2222 -> "97.222%", 100.0 -> "100%"."""
    return f"{round(value, 3):g}%"
