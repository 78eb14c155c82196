"""gainscale.stats gives scipy.stats' numbers, to the last bit, without importing scipy.stats.

scipy.stats is the reference here and only here: the paper's fit is
``scipy.stats.linregress(log10(n_params), log10(final_mlp_gain))`` (docs/method.md), and the
trend tests are scipy's ``spearmanr`` and ``kendalltau`` with ``alternative="less"``.
"""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from gainscale import _exactstats
from gainscale.errors import GainscaleError
from gainscale.stats import falling_trend, fit_power_law

EXAMPLES = settings(max_examples=300, deadline=None)

#: parameter counts of a few real models, drawn from to make sizes repeat
_SIZES = [70_426_624, 162_322_944, 405_334_016, 1_011_781_632, 2_775_208_960, 6_857_302_016, 11_846_072_320]


def _same(measured: float, expected: float) -> bool:
    """Equal to 1e-12 relative (today they are bit for bit; a later scipy may reorder a sum); nan matches nan."""
    expected = float(expected)
    if math.isnan(measured) or math.isnan(expected):
        return math.isnan(measured) and math.isnan(expected)
    return measured == expected or math.isclose(measured, expected, rel_tol=1e-12, abs_tol=1e-300)


@st.composite
def power_law_data(draw):
    """3-12 models with positive sizes (sometimes repeated, never all equal) and positive gains."""
    n = draw(st.integers(3, 12))
    size = st.sampled_from(_SIZES) | st.floats(1e3, 1e13) | st.integers(1, 10**12)
    n_params = draw(st.lists(size, min_size=n, max_size=n).filter(lambda p: len({math.log10(v) for v in p}) > 1))
    gains = draw(st.lists(st.sampled_from([0.5, 1.0, 1.7]) | st.floats(1e-4, 1e4), min_size=n, max_size=n))
    return [f"m{i}" for i in range(n)], n_params, gains


@st.composite
def trend_data(draw, ties: bool):
    """3-40 models; with ``ties``, sizes and shares repeat (shares from a handful of values)."""
    n = draw(st.integers(3, 40))
    if ties:
        n_params = draw(st.lists(st.sampled_from(_SIZES), min_size=n, max_size=n))
        shares = draw(st.lists(st.sampled_from([0.0, 5.556, 12.5, 37.5, 83.333]), min_size=n, max_size=n))
    else:
        n_params = draw(st.lists(st.integers(10**6, 10**11), min_size=n, max_size=n, unique=True))
        shares = draw(st.lists(st.floats(0, 100), min_size=n, max_size=n, unique=True))
    return [f"m{i}" for i in range(n)], n_params, shares


@EXAMPLES
@given(power_law_data())
def test_fit_matches_linregress(data):
    """Slope, intercept, R², p-value and both standard errors equal linregress's on log10 data."""
    models, n_params, gains = data
    fit = fit_power_law(models, n_params, gains)
    expected = scipy_stats.linregress([math.log10(p) for p in n_params], [math.log10(g) for g in gains])
    measured = (fit.alpha, fit.intercept, fit.r_squared, fit.p_value, fit.alpha_stderr, fit.intercept_stderr)
    reference = (expected.slope, expected.intercept, expected.rvalue**2, expected.pvalue,
                 expected.stderr, expected.intercept_stderr)
    assert all(map(_same, measured, reference)), (measured, reference)


@EXAMPLES
@given(power_law_data(), st.floats(0.01, 0.9999), st.floats(1e3, 1e14), st.floats(-2, 2))
def test_intervals_and_alpha_test_match_the_t_distribution(data, level, n_params, alpha0):
    """CI and prediction interval use t.ppf, the alpha test t.sf, with n - 2 degrees of freedom."""
    fit = fit_power_law(*data)
    assume(fit.alpha_stderr > 0)  # not a perfect fit, nor equal gains (stderr nan): t is defined
    t_crit = scipy_stats.t.ppf(0.5 + level / 2, fit.degrees_of_freedom)
    half = t_crit * fit.alpha_stderr
    assert fit.confidence_interval(level) == (fit.alpha - half, fit.alpha + half)
    x = math.log10(n_params)
    mean_x, sxx = fit._x_moments()
    half = t_crit * (fit._residual_std() * math.sqrt(1 + 1 / fit.n + (x - mean_x) ** 2 / sxx))
    assume(abs(fit.fitted(x)) + half < 300)  # wider, and predict's 10 ** bound overflows (OverflowError)
    prediction = fit.predict(n_params, level)
    assert (prediction.lower, prediction.upper) == (10 ** (fit.fitted(x) - half), 10 ** (fit.fitted(x) + half))
    test = fit.test_alpha(alpha0)
    assert _same(test.p_value, 2 * scipy_stats.t.sf(abs(test.t), fit.degrees_of_freedom))


@pytest.mark.parametrize("q", [0.0, 1e-300, 0.5, 0.975, 1 - 1e-16, 1.0, -0.1, 1.5, math.nan])
@pytest.mark.parametrize("df", [1, 2, 6, 38])
def test_t_quantile_edges_match_scipy(q, df):
    """t.ppf at and beyond 0 and 1 (where scipy.special.stdtrit alone answers +inf at 0)."""
    assert _same(_exactstats.t_ppf(q, df), scipy_stats.t.ppf(q, df))


@pytest.mark.parametrize("t", [-math.inf, -40.0, -0.0, 0.0, 1e-300, 3.5, 1e200, math.inf, math.nan])
@pytest.mark.parametrize("df", [1, 6, 38])
def test_t_tail_edges_match_scipy(t, df):
    assert _same(_exactstats.t_sf(t, df), scipy_stats.t.sf(t, df))


def test_fit_refuses_models_of_one_size():
    """linregress cannot fit a vertical line; gainscale says which models share the size."""
    with pytest.raises(GainscaleError, match="models of different sizes: a, b, c all have 1,000,000 parameters"):
        fit_power_law(["a", "b", "c"], [1_000_000] * 3, [1.0, 2.0, 3.0])


@pytest.mark.parametrize("log_gains", [[-1.0] * 5, [0.0] * 5, [math.log10(3.3)] * 5, [0.1, 0.2, math.inf, 0.3, 0.4],
                                       [0.1, math.nan, 0.2, 0.3, 0.4]], ids=["equal", "zero", "equal-rounded", "inf", "nan"])
def test_degenerate_fits_match_linregress(log_gains):
    """Equal gains (r 0 or nan as the means round), infinite or nan ones: scipy's numbers, not an exception."""
    x = [math.log10(p) for p in _SIZES[:5]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = scipy_stats.linregress(x, log_gains)
        line = _exactstats.linregress(x, log_gains)  # inf - inf in the means warns in both
    reference = (expected.slope, expected.intercept, expected.rvalue, expected.pvalue, expected.stderr, expected.intercept_stderr)
    assert all(map(_same, line, reference)), (line, reference)


def _assert_trend_matches_scipy(models, n_params, shares):
    trend = falling_trend(models, n_params, shares)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy_stats.ConstantInputWarning)
        spearman = scipy_stats.spearmanr(n_params, shares, alternative="less")
    kendall = scipy_stats.kendalltau(n_params, shares, alternative="less")
    measured = (trend.spearman_rho, trend.spearman_p, trend.kendall_tau, trend.kendall_p)
    expected = (spearman.statistic, spearman.pvalue, kendall.statistic, kendall.pvalue)
    assert all(map(_same, measured, expected)), (measured, expected)


@EXAMPLES
@given(trend_data(ties=False))
def test_trend_without_ties_matches_scipy(data):
    """Spearman, and Kendall by its exact distribution (n <= 33) or the normal approximation."""
    _assert_trend_matches_scipy(*data)


@EXAMPLES
@given(trend_data(ties=True))
def test_trend_with_ties_matches_scipy(data):
    """Average ranks for Spearman; tau-b and the tie-corrected variance for Kendall."""
    _assert_trend_matches_scipy(*data)


@pytest.mark.parametrize("n", [3, 8, 33, 34, 60, 200])
@pytest.mark.parametrize("swaps", [0, 1, 2, 5])
@pytest.mark.parametrize("rising", [False, True], ids=["falling", "rising"])
def test_trend_near_perfect_order_matches_scipy(n, swaps, rising):
    """rho and tau at or next to ±1, where Spearman's t is infinite and Kendall stays exact for any n
    with at most one discordant pair (up to n = 200, beyond the factorial's float range)."""
    shares = list(range(n)) if rising else list(range(n, 0, -1))
    for i in range(min(swaps, n // 2)):
        shares[2 * i], shares[2 * i + 1] = shares[2 * i + 1], shares[2 * i]
    _assert_trend_matches_scipy([f"m{i}" for i in range(n)], list(range(1, n + 1)), [float(s) for s in shares])


@pytest.mark.parametrize("shares", [[5.0, 5.0, 5.0, 5.0], [1.0, math.nan, 2.0, 3.0]], ids=["constant", "nan"])
def test_undefined_trend_is_nan_like_scipy(shares):
    _assert_trend_matches_scipy(["a", "b", "c", "d"], [1, 2, 3, 4], shares)


def test_replay_statistics_do_not_import_scipy_stats():
    """Importing scipy.stats costs about a second, more than replaying the claims from cache."""
    code = (
        "import sys\n"
        "from gainscale.stats import falling_trend, fit_power_law\n"
        "fit = fit_power_law(['a', 'b', 'c', 'd'], [1e6, 1e7, 1e8, 1e9], [1.0, 2.0, 4.1, 7.9])\n"
        "fit.confidence_interval(0.95), fit.test_alpha(0.35), fit.predict(1e10), fit.residuals()\n"
        "falling_trend(['a', 'b', 'c', 'd'], [1, 2, 3, 4], [9.0, 7.0, 8.0, 1.0])\n"
        "print('scipy.stats' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
