"""The paper's claims as functions from numbers to verdicts.

The analysis (``SCALING_LAW_ANALYSIS.md`` of the public repository ``buk81/uniformity-asymmetry``,
folder ``paper3/``) makes four claims about eight Pythia models; each function below takes what
one claim is about (a model's summary, or every model's) and the conditions it is checked under,
and returns a :class:`~gainscale.results.Verdict` whose message states the numbers:
``"pythia-6.9b: 31 of 32 attention layers contract = 96.875% < 97%"``. The claims are declared
and tested in the repository's ``claims/`` modules; these functions are their ``check``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from .errors import GainscaleError
from .permutation import slope_permutation_p
from .results import Verdict
from .stats import PowerLawFit, TrendTest, falling_trend, fit_power_law
from .summary import ModelSummary


def attention_contractive(summary: ModelSummary, thresholds: Mapping[str, float]) -> Verdict:
    """Claim 1: attention gain < 1 in at least ``attention_contracting_min_pct`` percent of the layers."""
    min_pct = thresholds["attention_contracting_min_pct"]
    if summary.attn_contracting is None:
        return Verdict(None, None, min_pct, f"{summary.model}: the source gives no per-layer attention gains")
    pct = summary.attn_contracting_pct
    passed = pct >= min_pct
    message = (
        f"{summary.model}: {summary.attn_contracting} of {summary.n_layers} attention layers contract = "
        f"{_pct(pct)} {'>=' if passed else '<'} {_pct(min_pct)}"
    )
    return Verdict(passed, pct, min_pct, message, {"attn_contracting": ("count", summary.attn_contracting)})


def final_mlp_expands(summary: ModelSummary, thresholds: Mapping[str, float]) -> Verdict:
    """Claim 2: the last layer's MLP gain exceeds ``final_mlp_gain_min`` (1: it expands)."""
    min_gain = thresholds["final_mlp_gain_min"]
    gain = summary.final_mlp_gain
    if gain is None:  # a sensitivity variant without the per-layer gains to say it
        return Verdict(None, None, min_gain, f"{summary.model}: the source gives no per-layer MLP gains")
    passed = gain > min_gain
    message = f"{summary.model}: final MLP gain {gain:.4g} {'>' if passed else '<='} {min_gain:g}"
    return Verdict(passed, gain, min_gain, message, {"final_mlp_gain": ("gain", gain)})


def scaling_fit(summaries: Sequence[ModelSummary], thresholds: Mapping[str, float] | None = None) -> PowerLawFit:
    """The paper's fit over ``summaries``: log10 final MLP gain against log10 parameters."""
    return fit_power_law([s.model for s in summaries], _n_params(summaries, thresholds), [s.final_mlp_gain for s in summaries])


def scaling_law_significant(summaries: Sequence[ModelSummary], thresholds: Mapping[str, float]) -> Verdict:
    """Claim 3a: the slope of the log-log fit is significant (p < ``scaling_p_max``)."""
    p_max = thresholds["scaling_p_max"]
    fit = _fit_or_reason(summaries, thresholds)
    if isinstance(fit, str):
        return Verdict(None, None, p_max, fit)
    exact = getattr(thresholds, "exact_p", False)
    # the exact variant: the share of all pairings of gains with sizes whose slope is as steep, not the t-test's
    p = slope_permutation_p(fit.log_params, fit.log_gains).p_value if exact else fit.p_value
    passed = p < p_max
    message = (
        f"alpha = {fit.alpha:.3f} ± {fit.alpha_stderr:.3f} over {fit.n} models (R² = {fit.r_squared:.3f}): "
        f"{'exact permutation ' if exact else ''}p = {p:.4f} {'<' if passed else '>='} {p_max:g}"
    )
    tracked = {"alpha": ("alpha", fit.alpha), "p_value": ("p_value", p)}
    return Verdict(passed, p, p_max, message, tracked, (fit,))


def scaling_exponent_matches(summaries: Sequence[ModelSummary], thresholds: Mapping[str, float]) -> Verdict:
    """Claim 3b: |alpha - ``hypothesised_alpha``| < ``alpha_sigmas`` standard errors (the paper's check)."""
    alpha0, sigmas = thresholds["hypothesised_alpha"], thresholds["alpha_sigmas"]
    fit = _fit_or_reason(summaries, thresholds)
    if isinstance(fit, str):
        return Verdict(None, None, alpha0, fit)
    test = fit.test_alpha(alpha0, sigmas)
    band = sigmas * fit.alpha_stderr
    message = (
        f"|alpha - {alpha0:g}| = |{fit.alpha:.3f} - {alpha0:g}| = {abs(test.difference):.3f} "
        f"{'<' if test.within_sigmas else '>='} {sigmas:g} x {fit.alpha_stderr:.3f} = {band:.3f} "
        f"(t = {test.t:.2f}, df = {test.degrees_of_freedom}, two-sided p = {test.p_value:.3f})"
    )
    return Verdict(test.within_sigmas, fit.alpha, alpha0, message, {"alpha": ("alpha", fit.alpha)}, (fit, test))


def _fit_or_reason(summaries: Sequence[ModelSummary], thresholds) -> PowerLawFit | str:
    """The fit, or why there is none (too few models, a gain that is not positive)."""
    unknown = [s.model for s in summaries if s.final_mlp_gain is None]
    if unknown:
        return f"the source gives no per-layer MLP gains for {', '.join(unknown)}"
    try:
        return scaling_fit(summaries, thresholds)
    except GainscaleError as error:
        return str(error)


def contraction_trend(summaries: Sequence[ModelSummary], thresholds: Mapping[str, float] | None = None) -> TrendTest | None:
    """Rank tests of the MLP contracting share against parameters; None if a model lacks it."""
    if any(s.mlp_contracting is None for s in summaries) or len(summaries) < 3:
        return None
    shares = [s.mlp_contracting_pct for s in summaries]
    permutation = getattr(thresholds, "exact_p", False) or getattr(thresholds, "full", True)
    return falling_trend([s.model for s in summaries], _n_params(summaries, thresholds), shares, permutation=permutation)


def mlp_contraction_falls(summaries: Sequence[ModelSummary], thresholds: Mapping[str, float]) -> Verdict:
    """Claim 4: the MLP contracting share falls with size (one-sided Spearman p < ``trend_p_max``)."""
    p_max = thresholds["trend_p_max"]
    trend = contraction_trend(summaries, thresholds)
    if trend is None:
        reason = "a trend needs at least 3 models" if len(summaries) < 3 else "the source gives no per-layer MLP gains for some models"
        return Verdict(None, None, p_max, f"{reason}; got {len(summaries)}")
    if math.isnan(trend.spearman_rho):  # a rank correlation of a constant is undefined
        shares = ", ".join(f"{s:.4g}%" for s in trend.shares)
        return Verdict(None, None, p_max, f"the MLP contracting share does not vary across the models ({shares}): no trend to test")
    exact = getattr(thresholds, "exact_p", False)
    p = trend.spearman_exact_p if exact else trend.spearman_p
    kendall = trend.kendall_exact_p if exact else trend.kendall_p
    passed = p < p_max
    (small, small_pct), (large, large_pct) = trend.smallest, trend.largest
    message = (
        f"Spearman rho = {trend.spearman_rho:.3f}, one-sided {'exact ' if exact else ''}p = {p:.4f} {'<' if passed else '>='} {p_max:g} "
        f"(Kendall tau = {trend.kendall_tau:.3f}, p = {kendall:.4f}); "
        f"{small} {_pct(small_pct)} -> {large} {_pct(large_pct)}"
    )
    if not passed and trend.spearman_rho < 0:  # a falling trend too weak to show at this n: say what would show it
        message += (f"; not shown at n = {len(summaries)}: at this rho the test has {trend.power(p_max):.0%} power, "
                    f"about {trend.n_for_power(0.8, p_max)} models would give 80%")
    tracked = {"spearman_rho": ("statistic", trend.spearman_rho), "p_value": ("p_value", p)}
    tracked |= {f"mlp_contracting[{s.model}]": ("count", s.mlp_contracting) for s in summaries}
    return Verdict(passed, p, p_max, message, tracked, (trend,))


def _n_params(summaries: Sequence[ModelSummary], conditions) -> list[int]:
    """Parameter counts as the conditions choose them (total, unless a variant says otherwise)."""
    choose = getattr(conditions, "n_params", None)
    return [choose(s) if choose else s.n_params for s in summaries]


def _pct(value: float) -> str:
    """96.875 -> "96.875%", 97.2222 -> "97.222%", 100.0 -> "100%"."""
    return f"{round(value, 3):g}%"
