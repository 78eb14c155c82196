"""The statistics behind the cross-model claims, as frozen results (scipy's methods, bit for bit).

The scaling fit is the paper's exactly: ``scipy.stats.linregress(log10(n_params),
log10(final_mlp_gain))``; alpha is the slope. Beyond the paper: the t-test of H0 alpha = alpha0
with n - 2 degrees of freedom, the confidence interval of alpha, residuals (internally and
externally studentized, leverage, Cook's distance), leave-one-out fits, Theil-Sen's robust slope,
the power of the slope test, prediction intervals, and rank tests of the MLP-contraction trend:
asymptotic as scipy gives them, exact by permutation (:mod:`gainscale.permutation`), and Pearson's
r on log10 parameters beside them.

The numbers come from :mod:`gainscale._exactstats`, which repeats scipy.stats' computations
without importing scipy.stats (a second of import time, more than a whole replay from cache).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields

from . import _exactstats
from .errors import GainscaleError
from .permutation import PermutationP, falling_permutation_p

#: the variance of Fisher's z of Spearman's rho at n models is this / (n - 3) (Fieller, Hartley
#: and Pearson 1957; Bonett and Wright 2000)
SPEARMAN_Z_VARIANCE = 1.06


class FieldsJson:
    """``to_json`` / ``from_json`` for a dataclass whose fields are plain JSON values."""

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict):
        """Rebuild from :meth:`to_json`; entries that are not fields (derived ones) are left out."""
        return cls(**{f.name: data[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class AlphaTest:
    """Is the measured exponent consistent with a hypothesised one?"""

    #: the hypothesised exponent (the paper: 0.35)
    alpha0: float
    #: measured alpha - alpha0
    difference: float
    #: (alpha - alpha0) / stderr
    t: float
    degrees_of_freedom: int
    #: two-sided p-value of the t-test
    p_value: float
    #: the paper's check: |alpha - alpha0| < sigmas * stderr
    sigmas: float
    within_sigmas: bool
    #: the two-sided confidence level that ``sigmas`` standard errors are at n - 2 degrees of
    #: freedom (2 at 6 df: 0.908, not 0.95)
    sigma_level: float = math.nan


@dataclass(frozen=True)
class Residual(FieldsJson):
    """One model's distance from the fitted line, in log10 units, and its influence on the line."""

    #: the model's name
    model: str
    #: log10(gain) - fitted log10(gain)
    residual: float
    #: internally studentized: residual / (s * sqrt(1 - leverage)), s from all n models
    studentized: float
    #: the model's leverage h = 1/n + (x - mean x)^2 / Sxx (in [1/n, 1])
    leverage: float = math.nan
    #: externally studentized: the residual over s refitted without the model; t with n - 3 df
    externally_studentized: float = math.nan
    #: Cook's distance: how far the fitted line moves without the model, r^2 h / (2 (1 - h))
    cooks_distance: float = math.nan
    #: |externally studentized| beyond this flags the model: the two-sided 95% t quantile with n - 3 df
    outlier_cutoff: float = math.nan

    @property
    def outlier(self) -> bool:
        """|internally studentized residual| > 2 (the paper's rule; kept as it was).

        It is nearly blind at these n: the internal residual is bounded by sqrt(n - 2), 2.45 at 8
        models, reached only when one model carries all the scatter. Prefer :attr:`external_outlier`.
        """
        return abs(self.studentized) > 2

    @property
    def external_outlier(self) -> bool:
        """|externally studentized residual| > :attr:`outlier_cutoff`.

        The externally studentized residual of a model that follows the line is exactly t
        distributed with n - 3 degrees of freedom, so the cutoff (2.571 at 8 models) flags such a
        model with probability 5%, at every n. Not corrected for testing n models at once.
        """
        return abs(self.externally_studentized) > self.outlier_cutoff

    def to_json(self) -> dict:
        """The fields and both outlier flags (which :meth:`from_json` recomputes)."""
        return {**asdict(self), "outlier": self.outlier, "external_outlier": self.external_outlier}


@dataclass(frozen=True)
class LeaveOneOut(FieldsJson):
    """The power-law fit without one model."""

    #: the model left out
    model: str
    #: the slope of the other models
    alpha: float
    #: its standard error
    alpha_stderr: float
    #: two-sided p-value of the slope (H0: alpha = 0), n - 3 degrees of freedom
    p_value: float
    #: R² of the fit of the other models
    r_squared: float


@dataclass(frozen=True)
class TheilSen(FieldsJson):
    """Theil-Sen's robust slope: the median of the slopes between every two models."""

    #: the median pairwise slope
    slope: float
    #: median(log gain) - slope * median(log params)
    intercept: float
    #: lower end of Sen's (1968) confidence interval of the slope (order statistics of the slopes)
    low: float
    #: upper end of that interval
    high: float
    #: its confidence level
    level: float


@dataclass(frozen=True)
class Prediction:
    """Predicted final MLP gain at a parameter count, with a prediction interval."""

    n_params: float
    gain: float
    lower: float
    upper: float
    level: float


@dataclass(frozen=True, repr=False)
class PowerLawFit:
    """``log10(gain) = alpha * log10(params) + intercept`` over the models, fitted by least squares."""

    models: tuple[str, ...]
    #: log10 of each model's parameter count
    log_params: tuple[float, ...]
    #: log10 of each model's final MLP gain
    log_gains: tuple[float, ...]
    #: the slope: the scaling exponent
    alpha: float
    alpha_stderr: float
    intercept: float
    intercept_stderr: float
    r_squared: float
    #: p-value of the slope (H0: alpha = 0), two-sided, as linregress gives it
    p_value: float

    @property
    def n(self) -> int:
        return len(self.models)

    def __repr__(self) -> str:  # short, because pytest prints fixtures of a failed test
        return f"PowerLawFit(alpha={self.alpha:.4f} ± {self.alpha_stderr:.4f}, p={self.p_value:.4g}, n={self.n})"

    @property
    def degrees_of_freedom(self) -> int:
        return self.n - 2

    def confidence_interval(self, level: float = 0.95) -> tuple[float, float]:
        """Interval for alpha from the t distribution with n - 2 degrees of freedom."""
        half = _t_quantile(level, self.degrees_of_freedom) * self.alpha_stderr
        return (self.alpha - half, self.alpha + half)

    def test_alpha(self, alpha0: float, sigmas: float = 2.0) -> AlphaTest:
        """The paper's check (|alpha - alpha0| < sigmas * stderr) and the two-sided t-test of H0 alpha = alpha0."""
        t = (self.alpha - alpha0) / self.alpha_stderr
        p = 2 * _exactstats.t_sf(abs(t), self.degrees_of_freedom)
        difference = self.alpha - alpha0
        within = abs(difference) < sigmas * self.alpha_stderr
        return AlphaTest(alpha0, difference, t, self.degrees_of_freedom, p, sigmas, within, self.sigma_level(sigmas))

    def equivalence_range(self, sigmas: float = 2.0) -> tuple[float, float]:
        """The hypothesised exponents that the check ``|alpha - alpha0| < sigmas * stderr`` accepts.

        Every alpha0 strictly between the two ends passes :meth:`test_alpha`; the ends themselves fail.

        Examples
        --------
        >>> fit = fit_power_law(["a", "b", "c", "d"], [1e6, 1e7, 1e8, 1e9], [1.0, 2.0, 4.1, 7.9])
        >>> [round(v, 3) for v in fit.equivalence_range(2)]
        [0.293, 0.308]
        """
        half = sigmas * self.alpha_stderr
        return (self.alpha - half, self.alpha + half)

    def sigma_level(self, sigmas: float = 2.0) -> float:
        """The two-sided confidence level of ``alpha ± sigmas * stderr`` (t with n - 2 df).

        Examples
        --------
        >>> fit = fit_power_law(["a", "b", "c", "d", "e", "f", "g", "h"], [10**k for k in range(3, 11)], [1, 2, 2, 3, 5, 4, 7, 9])
        >>> round(fit.sigma_level(2), 3)   # 2 sigma at 6 df is a 90.8% interval
        0.908
        """
        return 1 - 2 * _exactstats.t_sf(sigmas, self.degrees_of_freedom)

    def sigmas_for_level(self, level: float = 0.95) -> float:
        """How many standard errors a two-sided ``level`` interval spans at n - 2 df (2.447 at 95%, 6 df)."""
        return _t_quantile(level, self.degrees_of_freedom)

    def power(self, significance: float = 0.05) -> float:
        """Power of the two-sided slope t-test (H0 alpha = 0) if the true slope were the fitted one.

        The t statistic is then noncentral t with n - 2 df and noncentrality alpha / stderr. This
        "observed power" is a function of the p-value itself: it says how repeatable a verdict at
        ``significance`` is, not whether the effect exists.
        """
        if not self.alpha_stderr > 0:
            return math.nan
        return _slope_test_power(self.alpha / self.alpha_stderr, self.degrees_of_freedom, significance)

    def n_for_power(self, target: float = 0.8, significance: float = 0.05) -> int | None:
        """The fewest models for which :meth:`power` reaches ``target``.

        Assumes that more models spread in log10 parameters as these do (the same variance) and
        scatter about the line as these do (the same residual standard deviation); then the
        noncentrality grows as sqrt(n). None where the fitted slope is 0 or undefined.
        """
        if not abs(self.alpha) > 0 or not self.alpha_stderr > 0:
            return None
        per_model = self.alpha / (self.alpha_stderr * math.sqrt(self.n))
        return _smallest_n(lambda n: _slope_test_power(per_model * math.sqrt(n), n - 2, significance), target, 3)

    def theil_sen(self, level: float = 0.95) -> TheilSen:
        """Theil-Sen's slope and Sen's ``level`` interval: ``scipy.stats.theilslopes``' numbers."""
        line = _exactstats.theilslopes(self.log_gains, self.log_params, level)
        return TheilSen(line.slope, line.intercept, line.low_slope, line.high_slope, level)

    def fitted(self, log_param: float) -> float:
        return self.alpha * log_param + self.intercept

    def residuals(self) -> tuple[Residual, ...]:
        """Each model's residual: raw, internally and externally studentized, leverage and Cook's distance."""
        s = self._residual_std()
        mean_x, sxx = self._x_moments()
        cutoff = _t_quantile(0.95, self.n - 3) if self.n > 3 else math.nan
        result = []
        for model, x, y in zip(self.models, self.log_params, self.log_gains):
            residual = y - self.fitted(x)
            leverage = 1 / self.n + (x - mean_x) ** 2 / sxx
            internal = _ratio(residual, s * math.sqrt(max(1 - leverage, 0.0)))
            external = _externally_studentized(internal, self.n)
            cooks = _ratio(internal**2 * leverage, 2 * (1 - leverage))
            result.append(Residual(model, residual, internal, leverage, external, cooks, cutoff))
        return tuple(result)

    def predict(self, n_params: float, level: float = 0.95) -> Prediction:
        """Predicted final MLP gain at ``n_params`` with its prediction interval (in gain units)."""
        x = math.log10(n_params)
        mean_x, sxx = self._x_moments()
        spread = self._residual_std() * math.sqrt(1 + 1 / self.n + (x - mean_x) ** 2 / sxx)
        half = _t_quantile(level, self.degrees_of_freedom) * spread
        y = self.fitted(x)
        return Prediction(n_params, _power_of_ten(y), _power_of_ten(y - half), _power_of_ten(y + half), level)

    def leave_one_out(self) -> dict[str, float]:
        """alpha refitted without each model in turn."""
        result = {}
        for drop in range(self.n):
            keep = [i for i in range(self.n) if i != drop]
            result[self.models[drop]] = _slope([self.log_params[i] for i in keep], [self.log_gains[i] for i in keep])
        return result

    def leave_one_out_fits(self) -> tuple[LeaveOneOut, ...]:
        """The fit without each model in turn: its slope, standard error, p-value and R² (linregress's)."""
        result = []
        for drop in range(self.n):
            keep = [i for i in range(self.n) if i != drop]
            x, y = [self.log_params[i] for i in keep], [self.log_gains[i] for i in keep]
            if all(v == x[0] for v in x):  # the others share one size: no slope
                result.append(LeaveOneOut(self.models[drop], math.nan, math.nan, math.nan, math.nan))
                continue
            line = _exactstats.linregress(x, y)
            result.append(LeaveOneOut(self.models[drop], line.slope, line.stderr, line.pvalue, line.rvalue**2))
        return tuple(result)

    def _residual_std(self) -> float:
        squares = sum((y - self.fitted(x)) ** 2 for x, y in zip(self.log_params, self.log_gains))
        return math.sqrt(squares / self.degrees_of_freedom)

    def _x_moments(self) -> tuple[float, float]:
        mean_x = sum(self.log_params) / self.n
        return mean_x, sum((x - mean_x) ** 2 for x in self.log_params)

    def to_json(self) -> dict:
        data = asdict(self)
        data.update(n_models=self.n, alpha_ci95=list(self.confidence_interval(0.95)), loo_alpha=self.leave_one_out())
        data.update(
            residuals=[r.to_json() for r in self.residuals()],
            leave_one_out=[f.to_json() for f in self.leave_one_out_fits()],
            theil_sen=self.theil_sen(0.95).to_json(),
            alpha_2sigma_range=list(self.equivalence_range(2.0)),
            sigma_level_2=self.sigma_level(2.0),
            power=self.power(0.05),
            n_for_power_80=self.n_for_power(0.8, 0.05),
        )
        return data

    @classmethod
    def from_json(cls, data: dict) -> PowerLawFit:
        """Rebuild from :meth:`to_json` (derived entries are recomputed)."""
        values = {f.name: data[f.name] for f in fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def fit_power_law(models: Sequence[str], n_params: Sequence[float], gains: Sequence[float]) -> PowerLawFit:
    """Fit the paper's power law of final MLP gain in parameter count.

    Parameters
    ----------
    models, n_params, gains
        One entry per model: its name, parameter count and final MLP gain (> 0).

    Examples
    --------
    >>> fit = fit_power_law(["a", "b", "c"], [1e6, 1e7, 1e8], [1.0, 2.0, 4.1])
    >>> round(fit.alpha, 3)
    0.306
    """
    if len(models) < 3:
        raise GainscaleError(f"a power-law fit needs at least 3 models, got {len(models)}: {', '.join(models)}")
    bad = [f"{m} ({g})" for m, g in zip(models, gains) if not g > 0]
    if bad:
        raise GainscaleError(f"final MLP gains must be positive for a log-log fit: {', '.join(bad)}")
    x = [math.log10(p) for p in n_params]
    if all(v == x[0] for v in x):
        raise GainscaleError(
            f"a power-law fit needs models of different sizes: {', '.join(models)} all have {n_params[0]:,} parameters")
    y = [math.log10(g) for g in gains]
    line = _exactstats.linregress(x, y)  # scipy.stats.linregress's numbers, without its import time
    return PowerLawFit(
        models=tuple(models),
        log_params=tuple(x),
        log_gains=tuple(y),
        alpha=line.slope,
        alpha_stderr=line.stderr,
        intercept=line.intercept,
        intercept_stderr=line.intercept_stderr,
        r_squared=line.rvalue**2,
        p_value=line.pvalue,
    )


@dataclass(frozen=True)
class TrendTest:
    """Does a share fall as models grow? Rank correlations with parameter count, one-sided.

    Each one-sided p-value answers "it falls" (alternative: a negative correlation):
    ``spearman_p`` from the t approximation and ``kendall_p`` from scipy's ``kendalltau`` (exact
    without ties for n <= 33, else the normal approximation), as scipy gives them; beside them
    the permutation p-values of the same statistics (ties by average ranks and tau-b), exact by
    enumerating every ordering up to :data:`gainscale.permutation.EXACT_MAX_N` models (above
    that a seeded Monte Carlo estimate where asked for, else nan), and Pearson's r on log10
    parameters.
    """

    #: the models, in the order given
    models: tuple[str, ...]
    #: their parameter counts
    n_params: tuple[int, ...]
    #: the share per model, in percent
    shares: tuple[float, ...]
    #: Spearman's rho of shares and parameter counts (average ranks for ties)
    spearman_rho: float
    #: one-sided p-value of Spearman's rho (alternative: it falls), t approximation with n - 2 df
    spearman_p: float
    #: Kendall's tau-b
    kendall_tau: float
    #: one-sided p-value of Kendall's tau (alternative: it falls)
    kendall_p: float
    #: one-sided permutation p-value of Spearman's rho
    spearman_exact_p: float = math.nan
    #: one-sided permutation p-value of Kendall's tau-b
    kendall_exact_p: float = math.nan
    #: how the permutation p-values were found, e.g. ``exact: all 40320 orderings``
    permutation_method: str = ""
    #: Pearson's r of the shares and log10(parameters)
    pearson_r: float = math.nan
    #: its one-sided p-value (alternative: negative), t with n - 2 df as scipy.stats.pearsonr
    pearson_p: float = math.nan

    @property
    def smallest(self) -> tuple[str, float]:
        """(model, share) of the model with the fewest parameters."""
        i = min(range(len(self.models)), key=lambda k: self.n_params[k])
        return self.models[i], self.shares[i]

    @property
    def largest(self) -> tuple[str, float]:
        i = max(range(len(self.models)), key=lambda k: self.n_params[k])
        return self.models[i], self.shares[i]

    def power(self, alpha: float = 0.05, n: int | None = None) -> float:
        """Power of the one-sided Spearman test at level ``alpha`` if the true rho were the observed one.

        Fisher's z: atanh(rho) is about normal with variance 1.06 / (n - 3), so the power is
        Phi(-atanh(rho) / sqrt(1.06 / (n - 3)) - z_(1 - alpha)); nan for n <= 3.

        Parameters
        ----------
        alpha
            The one-sided significance level.
        n
            The number of models; default: this test's.
        """
        return _spearman_power(self.spearman_rho, len(self.models) if n is None else n, alpha)

    def n_for_power(self, power: float = 0.8, alpha: float = 0.05) -> int | None:
        """The fewest models at which :meth:`power` reaches ``power``; None where rho does not fall."""
        if not self.spearman_rho < 0:
            return None
        return _smallest_n(lambda n: _spearman_power(self.spearman_rho, n, alpha), power, 4)

    def to_json(self) -> dict:
        data = asdict(self)
        data.update(smallest=list(self.smallest), largest=list(self.largest), power=self.power(0.05),
                    n_for_power_80=self.n_for_power(0.8, 0.05))
        return data

    @classmethod
    def from_json(cls, data: dict) -> TrendTest:
        """Rebuild from :meth:`to_json` (derived entries are recomputed)."""
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def falling_trend(models: Sequence[str], n_params: Sequence[int], shares: Sequence[float], *,
                  permutation: bool = True, resamples: int | None = None, seed: int = 0) -> TrendTest:
    """Spearman's and Kendall's one-sided tests that ``shares`` fall with ``n_params``.

    Parameters
    ----------
    models, n_params, shares
        One entry per model: its name, parameter count and share (percent).
    permutation
        False skips the permutation p-values (nan; 25 ms at 8 models, which adds up inside a
        bootstrap's thousand resamples).
    resamples, seed
        The Monte Carlo permutation sample where there are too many models to enumerate every
        ordering (more than :data:`gainscale.permutation.EXACT_MAX_N`); None leaves the
        permutation p-values nan there, and ``permutation_method`` says why.

    Returns
    -------
    TrendTest
        The asymptotic p-values exactly as scipy.stats gives them, the permutation p-values and
        Pearson's r on log10 parameters beside them.
    """
    if len(models) < 3:
        raise GainscaleError(f"a trend test needs at least 3 models, got {len(models)}: {', '.join(models)}")
    # scipy.stats.spearmanr / kendalltau(alternative="less"), without scipy.stats' import time
    spearman_rho, spearman_p = _exactstats.spearman_less(n_params, shares)
    kendall_tau, kendall_p = _exactstats.kendall_less(n_params, shares)
    exact = falling_permutation_p(n_params, shares, resamples, seed) if permutation else _NOT_ASKED
    pearson_r, pearson_p = _exactstats.pearson_less([_log10(p) for p in n_params], shares)
    return TrendTest(tuple(models), tuple(n_params), tuple(shares), spearman_rho, spearman_p, kendall_tau, kendall_p,
                     exact.spearman_p, exact.kendall_p, exact.method, pearson_r, pearson_p)


_NOT_ASKED = PermutationP(math.nan, math.nan, "not computed: not asked for (permutation=False)")


def _spearman_power(rho: float, n: int, alpha: float) -> float:
    """Power of the one-sided (falling) Spearman test at ``n`` models, Fisher's z with variance 1.06 / (n - 3)."""
    if n <= 3 or math.isnan(rho):
        return math.nan
    z = math.atanh(rho) if abs(rho) < 1 else math.copysign(math.inf, rho)
    return _exactstats.norm_cdf(-z / math.sqrt(SPEARMAN_Z_VARIANCE / (n - 3)) - _exactstats.norm_ppf(1 - alpha))


def _slope_test_power(noncentrality: float, degrees_of_freedom: int, significance: float) -> float:
    """P(|T| > t_crit) for T noncentral t: the power of a two-sided t-test at ``significance``."""
    critical = _exactstats.t_ppf(1 - significance / 2, degrees_of_freedom)
    effect = abs(noncentrality)  # the power is symmetric in the sign of the effect
    far = _exactstats.nct_cdf(-critical, degrees_of_freedom, effect)
    if math.isnan(far) and _exactstats.norm_cdf(-effect) < 1e-9:
        far = 0.0  # nctdtr gives up deep in the tail; there it is below P(T < 0) = Phi(-effect) < 1e-9
    return 1 - _exactstats.nct_cdf(critical, degrees_of_freedom, effect) + far


def _smallest_n(power_at: Callable[[int], float], target: float, start: int, limit: int = 10**9) -> int | None:
    """The smallest n >= ``start`` with ``power_at(n) >= target`` (power rising with n); None beyond ``limit``."""
    if power_at(start) >= target:
        return start
    low, high = start, start + 1
    while not power_at(high) >= target:  # double until it is reached: low fails, high passes
        if high > limit:
            return None
        low, high = high, 2 * high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if power_at(middle) >= target else (middle, high)
    return high


def _externally_studentized(internal: float, n: int) -> float:
    """r * sqrt((n - 3) / (n - 2 - r^2)): the residual over s refitted without the model."""
    if n <= 3 or math.isnan(internal):
        return math.nan
    room = n - 2 - internal**2
    if room <= 0:  # r^2 reaches its bound n - 2: the model carries all the scatter
        return math.copysign(math.inf, internal)
    return internal * math.sqrt((n - 3) / room)


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, nan where the denominator is 0 (a perfect fit, a leverage of 1)."""
    return numerator / denominator if denominator != 0 else math.nan


def _log10(value: float) -> float:
    return math.log10(value) if value > 0 else math.nan


def _power_of_ten(exponent: float) -> float:
    """10 ** exponent, inf where a very wide interval leaves the float range."""
    try:
        return 10.0**exponent
    except OverflowError:
        return math.inf


def _t_quantile(level: float, degrees_of_freedom: int) -> float:
    return _exactstats.t_ppf(0.5 + level / 2, degrees_of_freedom)


def _slope(x: Sequence[float], y: Sequence[float]) -> float:
    mean_x, mean_y = sum(x) / len(x), sum(y) / len(y)
    return sum((a - mean_x) * (b - mean_y) for a, b in zip(x, y)) / sum((a - mean_x) ** 2 for a in x)
