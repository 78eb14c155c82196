"""The statistics reproduce the paper's printed fit and agree with independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from gainscale.paper import contraction_trend, scaling_fit
from gainscale.published import count_from_printed_percentage, published_data, published_summaries
from gainscale.stats import falling_trend, fit_power_law


@pytest.fixture(scope="module")
def published():
    return published_summaries()


def test_published_counts_are_the_only_ones_that_print_as_the_paper_does():
    """Every stored count is derived from the printed percentage and layer count, uniquely."""
    for row in published_data()["models"]:
        for field in ("attn_contracting", "mlp_contracting"):
            assert count_from_printed_percentage(row["printed"][field + "_pct"], row["n_layers"]) == row[field], row["model"]


def test_a_percentage_that_fits_two_counts_is_refused():
    from gainscale.errors import GainscaleError

    with pytest.raises(GainscaleError, match=r"50% of 200 layers matches 2 counts \(\[99, 100\]\)|matches"):
        count_from_printed_percentage("50%", 201)


def test_refit_of_the_published_table_reproduces_the_paper(published):
    """SCALING_LAW_ANALYSIS.md §2 prints alpha 0.265 ± 0.079, R² 0.653, p 0.015; the exact
    refit gives alpha 0.2648, stderr 0.0788, intercept -1.889, R² 0.6532, p 0.0152."""
    fit = scaling_fit(published)
    assert (round(fit.alpha, 3), round(fit.alpha_stderr, 3), round(fit.r_squared, 3), round(fit.p_value, 3)) == (0.265, 0.079, 0.653, 0.015)
    assert (round(fit.alpha, 4), round(fit.alpha_stderr, 4), round(fit.intercept, 3), round(fit.r_squared, 4), round(fit.p_value, 4)) == (
        0.2648, 0.0788, -1.889, 0.6532, 0.0152)


def test_fit_agrees_with_normal_equations(published):
    """Slope, stderr, t-test, CI and prediction interval, each by the textbook formula in numpy."""
    fit = scaling_fit(published)
    x = np.log10([s.n_params for s in published])
    y = np.log10([s.final_mlp_gain for s in published])
    n = len(x)
    design = np.column_stack([x, np.ones(n)])
    (slope, intercept), residual_ss, *_ = np.linalg.lstsq(design, y, rcond=None)
    s2 = residual_ss[0] / (n - 2)
    sxx = ((x - x.mean()) ** 2).sum()
    stderr = math.sqrt(s2 / sxx)
    assert fit.alpha == pytest.approx(slope, rel=1e-12) and fit.intercept == pytest.approx(intercept, rel=1e-12)
    assert fit.alpha_stderr == pytest.approx(stderr, rel=1e-9)

    t_crit = scipy_stats.t.ppf(0.975, n - 2)
    assert fit.confidence_interval(0.95) == pytest.approx((slope - t_crit * stderr, slope + t_crit * stderr), rel=1e-9)
    test = fit.test_alpha(0.35)
    t = (slope - 0.35) / stderr
    assert test.t == pytest.approx(t) and test.p_value == pytest.approx(2 * scipy_stats.t.cdf(-abs(t), n - 2))
    assert test.within_sigmas == bool(abs(slope - 0.35) < 2 * stderr)

    x0 = math.log10(70e9)
    half = t_crit * math.sqrt(s2 * (1 + 1 / n + (x0 - x.mean()) ** 2 / sxx))
    prediction = fit.predict(70e9)
    centre = slope * x0 + intercept
    assert (prediction.gain, prediction.lower, prediction.upper) == pytest.approx((10**centre, 10 ** (centre - half), 10 ** (centre + half)))


def test_residuals_and_leave_one_out(published):
    fit = scaling_fit(published)
    residuals = fit.residuals()
    assert sum(r.residual for r in residuals) == pytest.approx(0, abs=1e-12)
    worst = min(residuals, key=lambda r: r.residual)
    assert worst.model == "pythia-2.8b" and not worst.outlier  # the paper's "Outlier (low)"; |r| = 1.97 < 2
    for model, alpha in fit.leave_one_out().items():
        kept = [s for s in published if s.model != model]
        expected = scipy_stats.linregress(np.log10([s.n_params for s in kept]), np.log10([s.final_mlp_gain for s in kept])).slope
        assert alpha == pytest.approx(expected, rel=1e-12), model


def test_trend_of_the_published_mlp_shares(published):
    """Spearman on the published shares, against ranks computed by hand; one-sided p > 0.05."""
    trend = contraction_trend(published)
    shares = [100 * s.mlp_contracting / s.n_layers for s in published]
    rank_shares = scipy_stats.rankdata(shares)
    rho = np.corrcoef(np.arange(1, 9), rank_shares)[0, 1]  # published is sorted by parameters
    assert trend.spearman_rho == pytest.approx(rho)
    assert 0.05 < trend.spearman_p < 0.06 and trend.kendall_tau < 0
    assert trend.smallest == ("pythia-70m", pytest.approx(83.333, abs=1e-3)) and trend.largest == ("pythia-12b", pytest.approx(5.556, abs=1e-3))


def test_fit_refuses_too_few_or_non_positive_gains():
    from gainscale.errors import GainscaleError

    with pytest.raises(GainscaleError, match="at least 3 models, got 2: a, b"):
        fit_power_law(["a", "b"], [1, 2], [1, 2])
    with pytest.raises(GainscaleError, match=r"must be positive for a log-log fit: b \(0.0\)"):
        fit_power_law(["a", "b", "c"], [1, 2, 3], [1, 0.0, 2])
    with pytest.raises(GainscaleError, match="at least 3 models"):
        falling_trend(["a"], [1], [1.0])


def test_a_flat_mlp_share_has_no_trend_to_test():
    """Every model at 100%: Spearman is undefined, so the claim is not evaluable (a skip), not failed."""
    from gainscale.paper import mlp_contraction_falls
    from gainscale.summary import ModelSummary

    flat = [ModelSummary(f"m{i}", 10**i, 4, 2.0, 4, 4) for i in range(3, 7)]
    verdict = mlp_contraction_falls(flat, {"trend_p_max": 0.05})
    assert verdict.passed is None and "does not vary across the models (100%, 100%, 100%, 100%)" in verdict.message
