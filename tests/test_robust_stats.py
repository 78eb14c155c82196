"""Exact trend tests, outlier diagnostics, robust slopes and power: each against scipy.stats or brute force.

The first half pins the statistical review's numbers on the paper's own table (each beside an
independent computation); the second half checks the methods on random data.
"""

from __future__ import annotations

import doctest
import itertools
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from gainscale import _exactstats, params, permutation, stats
from gainscale.paper import contraction_trend, scaling_fit
from gainscale.params import count_non_embedding_parameters, count_parameters
from gainscale.published import published_data, published_summaries
from gainscale.stats import LeaveOneOut, PowerLawFit, Residual, TheilSen, TrendTest, falling_trend, fit_power_law
from gainscale.suites import pythia_config

EXAMPLES = settings(max_examples=150, deadline=None)


@pytest.fixture(scope="module")
def published():
    return published_summaries()


@pytest.fixture(scope="module")
def fit(published):
    return scaling_fit(published)


@pytest.fixture(scope="module")
def trend(published):
    return contraction_trend(published)


def _published_xy(published):
    return np.array([s.n_params for s in published], dtype=float), np.array([100 * s.mlp_contracting / s.n_layers for s in published])


def _spearman_rows(x, ys):
    """Spearman's rho of x with each row of ys: Pearson's r of scipy's average ranks."""
    rx = scipy_stats.rankdata(x)
    ry = scipy_stats.rankdata(ys, axis=-1)
    rx, ry = rx - rx.mean(), ry - ry.mean(axis=-1, keepdims=True)
    return (ry @ rx) / np.sqrt((rx @ rx) * (ry**2).sum(axis=-1))


def _kendall_rows(x, ys):
    """Kendall's tau-b of x with each row of ys, by its definition: (C - D) / sqrt((n0 - n1)(n0 - n2))."""
    x = np.asarray(x, dtype=float)
    i, j = np.triu_indices(len(x), k=1)
    sx = np.sign(x[i] - x[j])
    sy = np.sign(ys[..., i] - ys[..., j])
    return (sy @ sx) / np.sqrt(np.count_nonzero(sx) * np.count_nonzero(sy, axis=-1))


def _exact_permutation_p(x, y, rows):
    """scipy.stats.permutation_test over all n! pairings, one-sided (less), with a vectorized statistic."""
    result = scipy_stats.permutation_test((np.asarray(y, dtype=float),), lambda ys, axis: rows(x, ys), permutation_type="pairings",
                                          n_resamples=np.inf, alternative="less", vectorized=True)
    return result.pvalue


def _brute_force_p(x, y, correlation):
    """The share of all orderings of y whose scipy correlation with x is at most the observed (to 1e-12)."""
    observed = correlation(x, y).statistic
    values = [correlation(x, list(p)).statistic for p in itertools.permutations(y)]
    return sum(v <= observed + 1e-12 for v in values) / len(values)


def test_the_vectorized_correlations_are_scipys():
    rng = np.random.default_rng(0)
    x, ys = rng.integers(0, 4, 9), rng.integers(0, 3, (20, 9)).astype(float)
    for y, rho, tau in zip(ys, _spearman_rows(x, ys), _kendall_rows(x, ys)):
        assert rho == pytest.approx(scipy_stats.spearmanr(x, y).statistic, rel=1e-12)
        assert tau == pytest.approx(scipy_stats.kendalltau(x, y).statistic, rel=1e-12)


# --- claim 4: the MLP contraction trend on the published table ---------------------------------


def test_claim_4_exact_permutation_p_values(published, trend):
    """Exact one-sided p: Spearman 0.0625, Kendall tau-b 0.0688 (every one of the 8! orderings)."""
    x, y = _published_xy(published)
    assert trend.permutation_method == "exact: all 40320 orderings"
    assert round(trend.spearman_exact_p, 4) == 0.0625 and round(trend.kendall_exact_p, 4) == 0.0688
    assert trend.spearman_exact_p == pytest.approx(_exact_permutation_p(x, y, _spearman_rows), rel=1e-12)
    assert trend.kendall_exact_p == pytest.approx(_exact_permutation_p(x, y, _kendall_rows), rel=1e-12)
    # the asymptotic p-values stay as they were: the claim's verdict does not change here
    assert (round(trend.spearman_p, 4), round(trend.kendall_p, 4)) == (0.0584, 0.0525)


def test_claim_4_without_the_last_layer(published):
    """The share among layers 0..L-2: the last MLP expands in every model, so its count is unchanged
    and only the denominator drops; rho -0.79, one-sided p 0.010 (0.014 exact)."""
    assert all(s.final_mlp_gain > 1 for s in published)
    shares = [100 * s.mlp_contracting / (s.n_layers - 1) for s in published]
    trend = falling_trend([s.model for s in published], [s.n_params for s in published], shares)
    expected = scipy_stats.spearmanr([s.n_params for s in published], shares, alternative="less")
    assert (round(trend.spearman_rho, 2), round(trend.spearman_p, 3)) == (-0.79, 0.010)
    assert (trend.spearman_rho, trend.spearman_p) == pytest.approx((expected.statistic, expected.pvalue), rel=1e-12)
    x = np.array([s.n_params for s in published], dtype=float)
    assert trend.spearman_exact_p == pytest.approx(_exact_permutation_p(x, shares, _spearman_rows), rel=1e-12)


def test_claim_4_pearson_on_log_params(published, trend):
    x, y = _published_xy(published)
    expected = scipy_stats.pearsonr(np.log10(x), y, alternative="less")
    assert round(trend.pearson_p, 3) == 0.032
    assert (trend.pearson_r, trend.pearson_p) == pytest.approx((expected.statistic, expected.pvalue), rel=1e-12)


def test_claim_4_power_at_the_observed_rho(trend):
    """About 44% power at n = 8 (the review's "about 40%"); 17 models for 80% (Fisher z, var 1.06/(n-3))."""

    def fisher_power(rho, n):
        return scipy_stats.norm.cdf(-np.arctanh(rho) / math.sqrt(1.06 / (n - 3)) - scipy_stats.norm.ppf(0.95))

    assert trend.power() == pytest.approx(fisher_power(trend.spearman_rho, 8), rel=1e-12)
    assert round(trend.power(), 2) == 0.44 and round(fisher_power(-0.6, 8), 2) == 0.44
    assert trend.n_for_power(0.8) == 17
    brute = next(n for n in range(4, 1000) if fisher_power(trend.spearman_rho, n) >= 0.8)
    assert brute == 17 and trend.power(n=16) < 0.8 <= trend.power(n=17)


# --- claim 3: the scaling law -------------------------------------------------------------------


def test_claim_3b_equivalence_range(fit):
    """The 2-sigma check passes for every hypothesised alpha strictly between 0.107 and 0.422 (0.2648 ±
    2 x 0.0788; the paper's rounded 0.265 ± 2 x 0.079 gives 0.423)."""
    low, high = fit.equivalence_range(2)
    assert (round(low, 3), round(high, 3)) == (0.107, 0.422)
    assert round(0.265 + 2 * 0.079, 3) == 0.423
    grid = np.linspace(0, 0.6, 601)
    passing = [a for a in grid if fit.test_alpha(float(a), 2).within_sigmas]
    assert min(passing) == pytest.approx(0.108) and max(passing) == pytest.approx(0.422)
    assert all(low < a < high for a in passing) and not fit.test_alpha(low - 1e-9).within_sigmas


def test_claim_3b_two_sigma_is_a_90_8_percent_interval(fit):
    assert fit.sigma_level(2) == pytest.approx(scipy_stats.t.cdf(2, 6) - scipy_stats.t.cdf(-2, 6), rel=1e-12)
    assert round(fit.sigma_level(2), 3) == 0.908 and fit.test_alpha(0.35).sigma_level == fit.sigma_level(2)
    assert fit.sigmas_for_level(0.95) == pytest.approx(scipy_stats.t.ppf(0.975, 6), rel=1e-12)
    assert round(fit.sigmas_for_level(0.95), 3) == 2.447


def test_claim_3b_fails_with_non_embedding_parameters(published):
    """Without embeddings alpha is 0.213 ± 0.067 and |0.213 - 0.35| >= 2 stderr: 3b flips."""
    counts = [count_non_embedding_parameters(pythia_config(s.model)) for s in published]
    independent = [s.n_params - 2 * pythia_config(s.model)["vocab_size"] * pythia_config(s.model)["hidden_size"] for s in published]
    assert counts == independent
    fit = fit_power_law([s.model for s in published], counts, [s.final_mlp_gain for s in published])
    expected = scipy_stats.linregress(np.log10(independent), np.log10([s.final_mlp_gain for s in published]))
    assert (fit.alpha, fit.alpha_stderr) == pytest.approx((expected.slope, expected.stderr), rel=1e-12)
    assert (round(fit.alpha, 3), round(fit.alpha_stderr, 3)) == (0.213, 0.067)
    assert not fit.test_alpha(0.35, 2).within_sigmas and fit.p_value < 0.05  # 3a still holds (p 0.019)


def test_outliers_on_the_published_fit(fit):
    """The internal |r| > 2 rule misses pythia-2.8b (-1.97); externally studentized it is -3.04
    (Cook's D 0.39), beyond t(0.975, 5) = 2.571, and it is the only model flagged."""
    residuals = {r.model: r for r in fit.residuals()}
    worst = residuals["pythia-2.8b"]
    assert (round(worst.studentized, 2), round(worst.externally_studentized, 2), round(worst.cooks_distance, 2)) == (-1.97, -3.04, 0.39)
    assert not worst.outlier and worst.external_outlier
    assert worst.outlier_cutoff == pytest.approx(scipy_stats.t.ppf(0.975, 5), rel=1e-12)
    assert [m for m, r in residuals.items() if r.external_outlier] == ["pythia-2.8b"]
    assert max(abs(r.externally_studentized) for m, r in residuals.items() if m != "pythia-2.8b") < 1.3


def test_the_internal_rule_is_bounded_by_sqrt_n_minus_2():
    """|internal r| <= sqrt(n - 2), reached when one point alone leaves an exact line: at 8 models
    2.449 (so |r| > 2 can fire, but only then), at 6 models or fewer never above 2."""
    x = [6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5]
    y = [0.3 * v - 2 for v in x]
    y[5] -= 0.4
    residual = {r.model: r for r in fit_power_law([f"m{i}" for i in range(8)], [10**v for v in x], [10**v for v in y]).residuals()}["m5"]
    assert residual.studentized == pytest.approx(-math.sqrt(6), rel=1e-9) and residual.outlier
    assert math.isinf(residual.externally_studentized) and residual.external_outlier


@settings(max_examples=60, deadline=None)
@given(st.integers(3, 12).flatmap(lambda n: st.tuples(st.lists(st.floats(5, 11), min_size=n, max_size=n, unique=True),
                                                      st.lists(st.floats(-1, 1), min_size=n, max_size=n))))
def test_internal_residuals_never_pass_their_bound(data):
    x, y = data
    assume(max(x) - min(x) > 1e-3)
    fit = fit_power_law([f"m{i}" for i in range(len(x))], [10**v for v in x], [10**v for v in y])
    assume(fit._residual_std() > 1e-9)
    for residual in fit.residuals():
        assert abs(residual.studentized) <= math.sqrt(len(x) - 2) * (1 + 1e-9)  # at n <= 6 at most 2, up to rounding


def test_the_papers_predictions_disagree_with_its_formula():
    """§ predictions print 6, 8, 13, 18 and 30x for 7B, 13B, 70B, 175B and 1T parameters; the paper's
    own formula 10 ** (beta + alpha log10 N), alpha 0.265 and beta -1.891, gives 5.2, 6.2, 9.6, 12.3, 19.5."""
    recorded = published_data()["recorded_fit"]
    sizes, printed = [7e9, 13e9, 70e9, 175e9, 1e12], [6, 8, 13, 18, 30]
    formula = [10 ** (recorded["intercept"] + recorded["exponent_alpha"] * math.log10(n)) for n in sizes]
    assert [round(g, 1) for g in formula] == [5.2, 6.2, 9.6, 12.3, 19.5]
    assert all(p / g > 1.1 for p, g in zip(printed, formula))


def test_leave_one_out_fits_against_linregress(fit, published):
    """Leaving out pythia-70m or pythia-12b takes claim 3a's p above 0.05 (0.065, 0.072)."""
    loo = {f.model: f for f in fit.leave_one_out_fits()}
    for s in published:
        kept = [t for t in published if t.model != s.model]
        expected = scipy_stats.linregress(np.log10([t.n_params for t in kept]), np.log10([t.final_mlp_gain for t in kept]))
        got = loo[s.model]
        assert (got.alpha, got.alpha_stderr, got.p_value, got.r_squared) == pytest.approx(
            (expected.slope, expected.stderr, expected.pvalue, expected.rvalue**2), rel=1e-12)
        assert got.alpha == pytest.approx(fit.leave_one_out()[s.model], rel=1e-12)
    assert sorted(m for m, f in loo.items() if f.p_value >= 0.05) == ["pythia-12b", "pythia-70m"]


def test_theil_sen_on_the_published_fit(fit, published):
    expected = scipy_stats.theilslopes(fit.log_gains, fit.log_params)
    got = fit.theil_sen()
    assert (got.slope, got.intercept, got.low, got.high) == (expected.slope, expected.intercept, expected.low_slope, expected.high_slope)
    assert round(got.slope, 3) == 0.290 and got.low <= fit.alpha <= got.high


def test_slope_power_at_the_observed_effect(fit):
    """Noncentral t: about 80% at 8 models (0.799); 9 models reach 80%."""
    t_crit = scipy_stats.t.ppf(0.975, 6)
    nc = fit.alpha / fit.alpha_stderr
    expected = scipy_stats.nct.sf(t_crit, 6, nc) + scipy_stats.nct.cdf(-t_crit, 6, nc)
    assert fit.power() == pytest.approx(expected, rel=1e-12) and round(fit.power(), 3) == 0.799
    assert fit.n_for_power(0.8) == 9


def test_slope_power_against_simulation(fit):
    """Simulate the regression at the fitted line and scatter: the share of p < 0.05 is the power."""
    rng = np.random.default_rng(1)
    x = np.array(fit.log_params)
    sims = 40_000
    y = fit.intercept + fit.alpha * x + rng.normal(0, fit._residual_std(), size=(sims, len(x)))
    dx = x - x.mean()
    slopes = (y - y.mean(axis=1, keepdims=True)) @ dx / (dx @ dx)
    residual = y - y.mean(axis=1, keepdims=True) - slopes[:, None] * dx
    stderr = np.sqrt((residual**2).sum(axis=1) / (len(x) - 2) / (dx @ dx))
    rejected = np.abs(slopes / stderr) > scipy_stats.t.ppf(0.975, len(x) - 2)
    assert fit.power() == pytest.approx(rejected.mean(), abs=0.01)


def test_slope_n_for_power_by_brute_force(fit):
    """The same spread of log sizes and residual scatter, n models: noncentrality alpha / stderr * sqrt(n / 8)."""
    per_model = fit.alpha / fit.alpha_stderr / math.sqrt(fit.n)

    def power(n, target_alpha=0.05):
        t_crit = scipy_stats.t.ppf(1 - target_alpha / 2, n - 2)
        nc = per_model * math.sqrt(n)
        return scipy_stats.nct.sf(t_crit, n - 2, nc) + scipy_stats.nct.cdf(-t_crit, n - 2, nc)

    for target in (0.5, 0.8, 0.9, 0.99):
        assert fit.n_for_power(target) == next(n for n in range(3, 10_000) if power(n) >= target)
    assert fit.n_for_power(0.95, significance=0.01) == next(n for n in range(3, 10_000) if power(n, 0.01) >= 0.95)


# --- the methods on random data --------------------------------------------------------------


@st.composite
def small_trend(draw, max_n=6):
    """3 to ``max_n`` models, sizes and shares with ties."""
    n = draw(st.integers(3, max_n))
    x = draw(st.lists(st.sampled_from([1e6, 2e6, 5e6, 1e7, 3e7, 1e8, 1e9]), min_size=n, max_size=n))
    y = draw(st.lists(st.sampled_from([0.0, 12.5, 25.0, 50.0, 83.3, 100.0]), min_size=n, max_size=n))
    assume(len(set(x)) > 1 and len(set(y)) > 1)
    return x, y


@settings(max_examples=60, deadline=None)
@given(small_trend())
def test_exact_p_matches_scipy_permutation_test(data):
    """Ties in both, n <= 6: scipy's exact pairings test, and every ordering through scipy's own
    spearmanr and kendalltau."""
    x, y = data
    trend = falling_trend([f"m{i}" for i in range(len(x))], x, y)
    assert trend.spearman_exact_p == pytest.approx(_exact_permutation_p(x, y, _spearman_rows), rel=1e-12)
    assert trend.kendall_exact_p == pytest.approx(_exact_permutation_p(x, y, _kendall_rows), rel=1e-12)
    if len(x) <= 5:
        assert trend.spearman_exact_p == pytest.approx(_brute_force_p(x, y, scipy_stats.spearmanr), rel=1e-12)
        assert trend.kendall_exact_p == pytest.approx(_brute_force_p(x, y, scipy_stats.kendalltau), rel=1e-12)
    assert trend.permutation_method == f"exact: all {math.factorial(len(x))} orderings"


@pytest.mark.parametrize("n", [7, 9])
def test_exact_p_at_seven_and_nine_models_matches_scipy(n):
    rng = np.random.default_rng(n)
    x, y = rng.integers(1, 6, n).astype(float), rng.integers(0, 4, n).astype(float)
    trend = falling_trend([f"m{i}" for i in range(n)], list(x), list(y))
    assert trend.spearman_exact_p == pytest.approx(_exact_permutation_p(x, y, _spearman_rows), rel=1e-12)
    if n == 7:  # 9! orderings of 36 pairs each take scipy seconds
        assert trend.kendall_exact_p == pytest.approx(_exact_permutation_p(x, y, _kendall_rows), rel=1e-12)


def test_monte_carlo_above_nine_models_is_seeded_and_close_to_exact(monkeypatch):
    """Above EXACT_MAX_N a seeded sample: the method says so, a seed repeats, and the p-values agree
    with the exact ones within sampling error (checked by lowering the limit below 8 models)."""
    x, y = [1, 2, 3, 4, 5, 6, 7, 8], [8.0, 7.0, 7.0, 3.0, 6.0, 5.0, 1.0, 2.0]
    exact = permutation.falling_permutation_p(x, y)
    monkeypatch.setattr(permutation, "EXACT_MAX_N", 5)
    sampled = permutation.falling_permutation_p(x, y, resamples=20_000, seed=3)
    assert sampled.method == "Monte Carlo: 20000 random orderings, seed 3"
    assert sampled == permutation.falling_permutation_p(x, y, resamples=20_000, seed=3)
    assert sampled != permutation.falling_permutation_p(x, y, resamples=20_000, seed=4)
    for got, want in ((sampled.spearman_p, exact.spearman_p), (sampled.kendall_p, exact.kendall_p)):
        assert abs(got - want) < 4 * math.sqrt(want * (1 - want) / 20_000) + 1e-4


def test_above_nine_models_the_permutation_p_is_refused_unless_resamples_are_given():
    n = 12
    models, sizes, shares = [f"m{i}" for i in range(n)], list(range(1, n + 1)), [float(n - i) for i in range(n)]
    refused = falling_trend(models, sizes, shares)
    assert math.isnan(refused.spearman_exact_p) and math.isnan(refused.kendall_exact_p)
    assert refused.permutation_method.startswith("not computed: 12 models, more than the 9")
    sampled = falling_trend(models, sizes, shares, resamples=999, seed=5)
    assert sampled.permutation_method == "Monte Carlo: 999 random orderings, seed 5"
    assert sampled.spearman_exact_p == sampled.kendall_exact_p == 1 / 1000  # only the observed ordering is as extreme
    assert (sampled.spearman_p, sampled.kendall_p) == (refused.spearman_p, refused.kendall_p)


def test_permutation_p_values_can_be_skipped(published):
    """Inside a bootstrap loop the asymptotic p-values alone: the same numbers, no enumeration."""
    args = ([s.model for s in published], [s.n_params for s in published], [s.mlp_contracting / s.n_layers for s in published])
    full, quick = falling_trend(*args), falling_trend(*args, permutation=False)
    assert (quick.spearman_p, quick.kendall_p, quick.pearson_p) == (full.spearman_p, full.kendall_p, full.pearson_p)
    assert math.isnan(quick.spearman_exact_p) and quick.permutation_method == "not computed: not asked for (permutation=False)"


def test_permutation_p_of_a_constant_share_is_undefined():
    trend = falling_trend(["a", "b", "c"], [1, 2, 3], [5.0, 5.0, 5.0])
    assert math.isnan(trend.spearman_exact_p) and math.isnan(trend.kendall_exact_p) and math.isnan(trend.pearson_p)
    assert trend.permutation_method.startswith("undefined")


@EXAMPLES
@given(st.integers(3, 30).flatmap(lambda n: st.tuples(st.lists(st.integers(10**6, 10**11), min_size=n, max_size=n),
                                                      st.lists(st.floats(0, 100), min_size=n, max_size=n))))
def test_pearson_matches_scipy(data):
    x, y = data
    assume(len(set(x)) > 1 and len(set(y)) > 1)
    r, p = _exactstats.pearson_less([math.log10(v) for v in x], y)
    expected = scipy_stats.pearsonr(np.log10(x), y, alternative="less")
    assert r == pytest.approx(expected.statistic, rel=1e-12, abs=1e-15) and p == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-15)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning", "ignore:invalid value encountered:RuntimeWarning")
@EXAMPLES
@given(st.integers(2, 15).flatmap(lambda n: st.tuples(st.lists(st.sampled_from([1.0, 2.0, 3.5]) | st.floats(-5, 5), min_size=n, max_size=n),
                                                      st.lists(st.sampled_from([0.0, 1.0]) | st.floats(-5, 5), min_size=n, max_size=n))),
       st.sampled_from([0.95, 0.9, 0.5, 0.99, 0.05]))
def test_theil_sen_matches_scipy(data, level):
    """Slope, intercept and Sen's interval equal scipy.stats.theilslopes', ties in x and y included."""
    x, y = data
    assume(len(set(x)) > 1)
    got = _exactstats.theilslopes(y, x, level)
    expected = scipy_stats.theilslopes(y, x, alpha=level)
    assert all(a == b or (math.isnan(a) and math.isnan(b)) for a, b in zip(got, expected)), (got, expected)  # to the last bit


@EXAMPLES
@given(st.floats(-0.99, 0.99), st.integers(4, 200), st.sampled_from([0.01, 0.05, 0.1]))
def test_spearman_power_is_the_fisher_z_formula(rho, n, alpha):
    trend = TrendTest(("a", "b", "c"), (1, 2, 3), (3.0, 2.0, 1.0), rho, 0.5, -0.5, 0.5)
    expected = scipy_stats.norm.cdf(-np.arctanh(rho) * math.sqrt((n - 3) / 1.06) - scipy_stats.norm.ppf(1 - alpha))
    assert trend.power(alpha, n) == pytest.approx(expected, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("rho", [-0.95, -0.6, -0.3, -0.1])
def test_spearman_n_for_power_by_brute_force(rho):
    trend = TrendTest(("a", "b", "c"), (1, 2, 3), (3.0, 2.0, 1.0), rho, 0.5, -0.5, 0.5)
    expected = next(n for n in range(4, 100_000) if trend.power(0.05, n) >= 0.8)
    assert trend.n_for_power(0.8) == expected


def test_no_sample_size_powers_a_rising_trend():
    trend = falling_trend(["a", "b", "c", "d"], [1, 2, 3, 4], [1.0, 2.0, 4.0, 3.0])
    assert trend.n_for_power(0.8) is None and trend.power() < 0.05


@EXAMPLES
@given(st.integers(4, 12).flatmap(lambda n: st.tuples(st.lists(st.floats(5, 11), min_size=n, max_size=n, unique=True),
                                                      st.lists(st.floats(-1, 1), min_size=n, max_size=n))))
def test_external_residuals_and_cooks_distance_by_refitting(data):
    """Externally studentized: the residual over s of the fit without the model; Cook's D: how far
    every fitted value moves without it, sum (yhat - yhat_(i))^2 / (2 s^2)."""
    x, y = map(np.array, data)
    assume(np.ptp(x) > 1e-2)
    fit = fit_power_law([f"m{i}" for i in range(len(x))], list(10**x), list(10**y))
    s = fit._residual_std()
    assume(s > 1e-3)  # a fit that is all but exact leaves the refits to rounding
    design = np.column_stack([np.ones(len(x)), x])
    fitted = design @ np.linalg.lstsq(design, y, rcond=None)[0]
    for i, residual in enumerate(fit.residuals()):
        keep = np.arange(len(x)) != i
        assume(np.ptp(x[keep]) > 1e-2)
        coef, ss, *_ = np.linalg.lstsq(design[keep], y[keep], rcond=None)
        s_without = math.sqrt(((y[keep] - design[keep] @ coef) ** 2).sum() / (len(x) - 3))
        assume(s_without > 1e-3)
        external = (y[i] - fitted[i]) / (s_without * math.sqrt(1 - residual.leverage))
        cooks = ((fitted - design @ coef) ** 2).sum() / (2 * s**2)
        assert residual.externally_studentized == pytest.approx(external, rel=1e-6, abs=1e-9)
        assert residual.cooks_distance == pytest.approx(cooks, rel=1e-5, abs=1e-9)
        assert residual.leverage == pytest.approx((design @ np.linalg.pinv(design.T @ design) @ design.T)[i, i], rel=1e-9)


# --- the result types ------------------------------------------------------------------------


def test_results_round_trip_through_json(fit, trend):
    data = json.loads(json.dumps(trend.to_json()))
    assert TrendTest.from_json(data) == trend
    assert data["power"] == trend.power() and round(data["power"], 2) == 0.44 and data["n_for_power_80"] == 17
    for residual in fit.residuals():
        assert Residual.from_json(json.loads(json.dumps(residual.to_json()))) == residual
    for left_out in fit.leave_one_out_fits():
        assert LeaveOneOut.from_json(json.loads(json.dumps(left_out.to_json()))) == left_out
    assert TheilSen.from_json(json.loads(json.dumps(fit.theil_sen().to_json()))) == fit.theil_sen()
    data = json.loads(json.dumps(fit.to_json()))
    assert PowerLawFit.from_json(data) == fit
    assert data["residuals"][5]["external_outlier"] is True and data["n_for_power_80"] == 9


def test_a_trend_at_three_models_has_no_power_and_its_json_says_null():
    """Fisher's z needs n > 3: results.json writes the power as null, not NaN (which JSON lacks)."""
    from gainscale.results import evidence_to_json

    trend = falling_trend(["a", "b", "c"], [1, 2, 3], [30.0, 20.0, 10.0])
    data = evidence_to_json(trend)
    assert math.isnan(trend.power()) and data["power"] is None
    assert data["n_for_power_80"] == trend.n_for_power(0.8) >= 4
    json.dumps(data, allow_nan=False)


def test_doctests_of_the_statistics_modules():
    for module in (stats, permutation, params):
        failures, _ = doctest.testmod(module, raise_on_error=False, optionflags=doctest.ELLIPSIS)
        assert failures == 0, module.__name__


def test_new_statistics_do_not_import_scipy_stats():
    """Exact p-values, Pearson, Theil-Sen and power: numpy and scipy.special only."""
    lines = [
        "import sys",
        "from gainscale.stats import falling_trend, fit_power_law",
        "fit = fit_power_law(['a', 'b', 'c', 'd'], [1e6, 1e7, 1e8, 1e9], [1.0, 2.0, 4.1, 7.9])",
        "fit.to_json(), fit.theil_sen(), fit.power(), fit.n_for_power(), fit.residuals()",
        "t = falling_trend(['a', 'b', 'c', 'd'], [1, 2, 3, 4], [9.0, 7.0, 8.0, 1.0])",
        "t.power(), t.n_for_power()",
        "falling_trend([str(i) for i in range(12)], list(range(12)), [float(i % 5) for i in range(12)], resamples=99)",
        "print('scipy.stats' in sys.modules)",
    ]
    result = subprocess.run([sys.executable, "-c", "\n".join(lines)], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_non_embedding_counts_of_every_pythia_model():
    """GPT-NeoX's closed form: the total less two vocab x hidden matrices (untied embeddings)."""
    for model in ("pythia-70m", "pythia-410m", "pythia-12b"):
        config = pythia_config(model)
        assert count_non_embedding_parameters(config) == count_parameters(config) - 2 * config["vocab_size"] * config["hidden_size"]
    assert count_non_embedding_parameters(pythia_config("pythia-70m")) == 18_915_328


# --- claim 3a's exact variant: a permutation test of the slope ---------------------------------


def _slope_permutation_p(x, y):
    """scipy.stats.permutation_test of |slope| over all n! pairings (two-sided as 'as steep either way')."""
    x = np.asarray(x, dtype=float)
    centred = x - x.mean()
    result = scipy_stats.permutation_test((np.asarray(y, dtype=float),), lambda ys, axis: np.abs(ys @ centred) / (centred @ centred),
                                          permutation_type="pairings", n_resamples=np.inf, alternative="greater", vectorized=True)
    return result.pvalue


def test_claim_3a_exact_permutation_p_of_the_slope(fit):
    """On the paper's table: 666 of the 8! pairings give a slope as steep, p = 0.0165 (t-test 0.0152)."""
    exact = permutation.slope_permutation_p(fit.log_params, fit.log_gains)
    assert exact.method == "exact: all 40320 orderings" and exact.p_value * 40320 == 666
    assert exact.p_value == pytest.approx(_slope_permutation_p(fit.log_params, fit.log_gains), rel=1e-12)
    brute = [abs(scipy_stats.linregress(fit.log_params, ys).slope) for ys in itertools.permutations(fit.log_gains)]
    assert exact.p_value == sum(b >= abs(fit.alpha) * (1 - 1e-9) for b in brute) / len(brute)


@settings(max_examples=40, deadline=None)
@given(small_trend())
def test_slope_permutation_p_matches_scipy_with_ties(data):
    x, y = data
    assert permutation.slope_permutation_p(x, y).p_value == pytest.approx(_slope_permutation_p(x, y), rel=1e-12)


def test_slope_permutation_p_above_nine_models_is_refused_or_seeded():
    x, y = list(range(12)), [float(v) for v in (3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8)]
    refused = permutation.slope_permutation_p(x, y)
    assert math.isnan(refused.p_value) and refused.method.startswith("not computed: 12 models")
    sampled = permutation.slope_permutation_p(x, y, resamples=2000, seed=1)
    assert sampled == permutation.slope_permutation_p(x, y, resamples=2000, seed=1)
    assert sampled.method == "Monte Carlo: 2000 random orderings, seed 1"
    assert abs(sampled.p_value - scipy_stats.linregress(x, y).pvalue) < 0.05  # near the t-test's at this n
    assert math.isnan(permutation.slope_permutation_p([1, 2, 3], [2.0, 2.0, 2.0]).p_value)
