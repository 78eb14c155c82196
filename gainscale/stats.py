"""The statistics behind the cross-model claims, as frozen results (scipy's methods, bit for bit).

The scaling fit is the paper's exactly: ``scipy.stats.linregress(log10(n_params),
log10(final_mlp_gain))``; alpha is the slope. Beyond the paper: the t-test of H0 alpha = alpha0
with n - 2 degrees of freedom, the confidence interval of alpha, residuals, leave-one-out
exponents, prediction intervals, and rank tests of the MLP-contraction trend.

The numbers come from :mod:`gainscale._exactstats`, which repeats scipy.stats' computations
without importing scipy.stats (a second of import time, more than a whole replay from cache).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

from . import _exactstats
from .errors import GainscaleError


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


@dataclass(frozen=True)
class Residual:
    """One model's distance from the fitted line, in log10 units."""

    model: str
    #: log10(gain) - fitted log10(gain)
    residual: float
    #: residual / (s * sqrt(1 - leverage)): comparable across models
    studentized: float

    @property
    def outlier(self) -> bool:
        """|studentized residual| > 2."""
        return abs(self.studentized) > 2


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
        return AlphaTest(alpha0, difference, t, self.degrees_of_freedom, p, sigmas, abs(difference) < sigmas * self.alpha_stderr)

    def fitted(self, log_param: float) -> float:
        return self.alpha * log_param + self.intercept

    def residuals(self) -> tuple[Residual, ...]:
        """Each model's residual, raw and internally studentized."""
        s = self._residual_std()
        mean_x, sxx = self._x_moments()
        result = []
        for model, x, y in zip(self.models, self.log_params, self.log_gains):
            residual = y - self.fitted(x)
            leverage = 1 / self.n + (x - mean_x) ** 2 / sxx
            result.append(Residual(model, residual, residual / (s * math.sqrt(1 - leverage))))
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

    def _residual_std(self) -> float:
        squares = sum((y - self.fitted(x)) ** 2 for x, y in zip(self.log_params, self.log_gains))
        return math.sqrt(squares / self.degrees_of_freedom)

    def _x_moments(self) -> tuple[float, float]:
        mean_x = sum(self.log_params) / self.n
        return mean_x, sum((x - mean_x) ** 2 for x in self.log_params)

    def to_json(self) -> dict:
        data = asdict(self)
        data.update(n_models=self.n, alpha_ci95=list(self.confidence_interval(0.95)), loo_alpha=self.leave_one_out())
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
    """Does a share fall as models grow? Rank correlations with parameter count, one-sided."""

    models: tuple[str, ...]
    n_params: tuple[int, ...]
    #: the share per model, in percent
    shares: tuple[float, ...]
    spearman_rho: float
    #: one-sided p-value of Spearman's rho (alternative: it falls)
    spearman_p: float
    kendall_tau: float
    #: one-sided p-value of Kendall's tau (alternative: it falls)
    kendall_p: float

    @property
    def smallest(self) -> tuple[str, float]:
        """(model, share) of the model with the fewest parameters."""
        i = min(range(len(self.models)), key=lambda k: self.n_params[k])
        return self.models[i], self.shares[i]

    @property
    def largest(self) -> tuple[str, float]:
        i = max(range(len(self.models)), key=lambda k: self.n_params[k])
        return self.models[i], self.shares[i]

    def to_json(self) -> dict:
        data = asdict(self)
        data.update(smallest=list(self.smallest), largest=list(self.largest))
        return data


def falling_trend(models: Sequence[str], n_params: Sequence[int], shares: Sequence[float]) -> TrendTest:
    """Spearman's and Kendall's one-sided tests that ``shares`` fall with ``n_params``."""
    if len(models) < 3:
        raise GainscaleError(f"a trend test needs at least 3 models, got {len(models)}: {', '.join(models)}")
    # scipy.stats.spearmanr / kendalltau(alternative="less"), without scipy.stats' import time
    spearman_rho, spearman_p = _exactstats.spearman_less(n_params, shares)
    kendall_tau, kendall_p = _exactstats.kendall_less(n_params, shares)
    return TrendTest(tuple(models), tuple(n_params), tuple(shares), spearman_rho, spearman_p, kendall_tau, kendall_p)


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
