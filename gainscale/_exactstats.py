"""scipy.stats' ``linregress``, t distribution, ``spearmanr``, ``kendalltau``, ``pearsonr`` and
``theilslopes``, the normal and noncentral t distributions, without scipy.stats.

Why: ``import scipy.stats`` takes about a second, longer than replaying the cached claims, while
numpy and ``scipy.special`` load in a fraction of that. Each function repeats scipy 1.17's steps
(the same numpy reductions, the same special functions, the same edge cases), so the numbers
are scipy's to the last bit; ``tests/test_stats_against_scipy.py`` compares them on random data.
numpy and scipy.special load inside the functions, so importing gainscale stays cheap, and
while a run keeps a memo (:mod:`gainscale.statmemo`) a result already known is read back, the
same bits, without loading them at all.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from .statmemo import remembered

#: scipy's guard against dividing by zero when r = ±1 (``linregress``'s TINY)
_TINY = 1.0e-20


class Line(NamedTuple):
    """The fields of ``scipy.stats.linregress``'s result."""

    slope: float
    intercept: float
    rvalue: float
    #: two-sided p-value of H0 slope = 0, t with n - 2 degrees of freedom
    pvalue: float
    #: standard error of the slope
    stderr: float
    intercept_stderr: float


@remembered(Line._make)
def linregress(x: Sequence[float], y: Sequence[float]) -> Line:
    """``scipy.stats.linregress(x, y)``, two-sided."""
    import numpy as np

    if len(x) != len(y) or len(x) < 2:
        raise ValueError(f"linregress needs two sequences of one length >= 2, got {len(x)} and {len(y)}")
    if all(v == x[0] for v in x):  # as scipy's amax == amin: nan counts as different
        raise ValueError("Cannot calculate a linear regression if all x values are identical")
    n = len(x)
    xmean, ymean = float(np.mean(x)), float(np.mean(y))
    # np.cov, as scipy calls it, so that the sums run in scipy's order
    ssxm, ssxym, _, ssym = (float(v) for v in np.cov(x, y, bias=1).flat)
    if ssxm == 0.0 or ssym == 0.0:
        r = math.nan if ssxym == 0 else 0.0
    else:
        r = ssxym / math.sqrt(ssxm * ssym)
        r = 1.0 if r > 1.0 else -1.0 if r < -1.0 else r  # rounding can step past ±1; nan stays nan
    slope = ssxym / ssxm
    intercept = ymean - slope * xmean
    if n == 2:
        return Line(slope, intercept, r, 1.0 if y[0] == y[1] else 0.0, 0.0, 0.0)
    df = n - 2
    t = r * math.sqrt(df / ((1.0 - r + _TINY) * (1.0 + r + _TINY)))
    slope_stderr = math.sqrt((1 - r**2) * ssym / ssxm / df)
    intercept_stderr = slope_stderr * math.sqrt(ssxm + xmean**2)
    return Line(slope, intercept, r, 2 * t_sf(abs(t), df), slope_stderr, intercept_stderr)


@remembered()
def t_sf(t: float, degrees_of_freedom: int) -> float:
    """``scipy.stats.t.sf(t, df)``: P(T > t)."""
    from scipy.special import stdtr

    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    return float(stdtr(degrees_of_freedom, -t))


@remembered()
def t_ppf(q: float, degrees_of_freedom: int) -> float:
    """``scipy.stats.t.ppf(q, df)``: the q quantile; ±inf at q = 0 or 1, nan outside [0, 1]."""
    from scipy.special import stdtrit

    if q == 0:
        return -math.inf  # stdtrit itself answers +inf here
    if q == 1:
        return math.inf
    if not 0 < q < 1:
        return math.nan
    return float(stdtrit(degrees_of_freedom, q))


@remembered(tuple)
def spearman_less(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """``scipy.stats.spearmanr(x, y, alternative="less")``: (rho, p); nan for constant or nan input."""
    import numpy as np
    from scipy.special import stdtr

    _check_pairs(x, y)
    if all(v == x[0] for v in x) or all(v == y[0] for v in y) or _has_nan(x, y):
        return math.nan, math.nan
    ranks = np.column_stack((_average_ranks(x), _average_ranks(y)))  # (n, 2), as scipy ranks it
    rho = float(np.corrcoef(ranks, rowvar=False)[1, 0])
    dof = len(x) - 2
    t = rho * math.sqrt(max(dof / ((rho + 1.0) * (1.0 - rho)), 0.0)) if abs(rho) < 1 else rho * math.inf
    return rho, float(stdtr(dof, t))


@remembered(tuple)
def kendall_less(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """``scipy.stats.kendalltau(x, y, alternative="less")`` (tau-b, method "auto"): (tau, p).

    Without ties and with n <= 33 (or at most one discordant or concordant pair), the p-value is
    exact; otherwise it is the normal approximation with the tie-corrected variance.
    """
    from scipy.special import ndtr

    _check_pairs(x, y)
    if _has_nan(x, y):
        return math.nan, math.nan
    size = len(x)
    tot = size * (size - 1) // 2
    xtie, x0, x1 = _tie_sums(Counter(x).values())
    ytie, y0, y1 = _tie_sums(Counter(y).values())
    if xtie == tot or ytie == tot:
        return math.nan, math.nan
    ntie = _tie_sums(Counter(zip(x, y)).values())[0]  # pairs tied in both
    dis = sum(1 for i in range(size) for j in range(i) if (x[i] < x[j] and y[i] > y[j]) or (x[i] > x[j] and y[i] < y[j]))
    con_minus_dis = tot - xtie - ytie + ntie - 2 * dis
    tau = min(1.0, max(-1.0, con_minus_dis / math.sqrt(tot - xtie) / math.sqrt(tot - ytie)))
    if xtie == 0 and ytie == 0 and (size <= 33 or min(dis, tot - dis) <= 1):
        return tau, _kendall_p_exact_less(size, tot - dis)
    m = size * (size - 1.0)
    var = (m * (2 * size + 5) - x1 - y1) / 18 + (2 * xtie * ytie) / m + x0 * y0 / (9 * m * (size - 2))
    return tau, float(ndtr(con_minus_dis / math.sqrt(var)))


@remembered(tuple)
def pearson_less(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """``scipy.stats.pearsonr(x, y, alternative="less")``: (r, p); nan for constant input.

    The p-value is the cdf of r under H0, a beta(n/2 - 1, n/2 - 1) distribution on [-1, 1]
    (the t distribution with n - 2 degrees of freedom, in another form).
    """
    import numpy as np
    from scipy.special import betainc

    _check_pairs(x, y)
    if all(v == x[0] for v in x) or all(v == y[0] for v in y) or _has_nan(x, y):
        return math.nan, math.nan
    xm = np.asarray(x, dtype=float) - np.mean(x)
    ym = np.asarray(y, dtype=float) - np.mean(y)
    # as scipy: scale by the largest deviation before the norm, so that it cannot overflow
    normxm = np.max(np.abs(xm)) * np.linalg.norm(xm / np.max(np.abs(xm)))
    normym = np.max(np.abs(ym)) * np.linalg.norm(ym / np.max(np.abs(ym)))
    vecdot = getattr(np, "vecdot", np.dot)  # numpy < 2 has no vecdot
    r = float(np.clip(vecdot(xm / normxm, ym / normym), -1.0, 1.0))
    ab = len(x) / 2 - 1
    return r, float(betainc(ab, ab, (r + 1) / 2))


class TheilSenLine(NamedTuple):
    """The fields of ``scipy.stats.theilslopes``' result."""

    slope: float
    intercept: float
    low_slope: float
    high_slope: float


@remembered(TheilSenLine._make)
def theilslopes(y: Sequence[float], x: Sequence[float], level: float = 0.95) -> TheilSenLine:
    """``scipy.stats.theilslopes(y, x, alpha=level)`` (method "separate"): the median of the pairwise
    slopes, and Sen's (1968) interval of order statistics of the slopes, ties in x and y corrected."""
    import numpy as np
    from scipy.special import ndtri

    if len(x) != len(y) or len(x) < 2:
        raise ValueError(f"theilslopes needs two sequences of one length >= 2, got {len(x)} and {len(y)}")
    xa, ya = np.array(x, dtype=float), np.array(y, dtype=float)
    deltax, deltay = xa[:, None] - xa, ya[:, None] - ya
    slopes = np.sort(deltay[deltax > 0] / deltax[deltax > 0])
    if not slopes.size:
        raise ValueError("All `x` coordinates are identical.")
    slope = float(np.median(slopes))
    intercept = float(np.median(ya) - slope * np.median(xa))
    tail = 1.0 - level if level > 0.5 else level
    z = float(ndtri(tail / 2.0))
    n = len(ya)
    sigsq = 1 / 18.0 * (n * (n - 1) * (2 * n + 5) - _tie_sums(Counter(x).values())[2] - _tie_sums(Counter(y).values())[2])
    if not sigsq >= 0:  # scipy: sqrt of a negative is nan, and int(round(nan)) fails: no interval
        return TheilSenLine(slope, intercept, math.nan, math.nan)
    sigma = math.sqrt(sigsq)
    upper = min(int(np.round((slopes.size - z * sigma) / 2.0)), slopes.size - 1)
    lower = max(int(np.round((slopes.size + z * sigma) / 2.0)) - 1, 0)
    return TheilSenLine(slope, intercept, float(slopes[lower]), float(slopes[upper]))


@remembered()
def norm_cdf(z: float) -> float:
    """``scipy.stats.norm.cdf(z)``."""
    from scipy.special import ndtr

    return float(ndtr(z))


@remembered()
def norm_ppf(q: float) -> float:
    """``scipy.stats.norm.ppf(q)``."""
    from scipy.special import ndtri

    return float(ndtri(q))


@remembered()
def nct_cdf(t: float, degrees_of_freedom: float, noncentrality: float) -> float:
    """``scipy.stats.nct.cdf(t, df, nc)``: P(T' <= t) for the noncentral t distribution."""
    from scipy.special import nctdtr

    return float(nctdtr(degrees_of_freedom, noncentrality, t))


def _kendall_p_exact_less(n: int, c: int) -> float:
    """P(concordant pairs <= c) without ties: scipy's ``_kendall_p_exact`` for alternative "less"."""
    import numpy as np

    in_right_tail = c >= n * (n - 1) // 2 - c
    c = min(c, n * (n - 1) // 2 - c)  # the distribution is symmetric: work in the left tail
    if c == 0:
        prob = 2.0 / math.factorial(n) if n < 171 else 0.0
        p_mass_at_c = prob / 2
    elif c == 1:
        prob = 2.0 / math.factorial(n - 1) if n < 172 else 0.0
        p_mass_at_c = (n - 1) / math.factorial(n)
    else:
        # counts of permutations by number of inversions (scaled by 1/j! beyond float range)
        new = np.zeros(c + 1)
        new[0:2] = 1.0
        for j in range(3, n + 1):
            new = np.cumsum(new) if n < 171 else np.cumsum(new) / j
            if j <= c:
                new[j:] -= new[: c + 1 - j]
        if n < 171:
            prob = float(2.0 * np.sum(new) / math.factorial(n))
            p_mass_at_c = float(new[-1] / math.factorial(n))
        else:
            prob, p_mass_at_c = float(np.sum(new)), float(new[-1] / 2)
    prob = 1 - prob / 2 + p_mass_at_c if in_right_tail else prob / 2
    return 1.0 if prob > 1.0 else 0.0 if prob < 0.0 else prob


def _average_ranks(values: Sequence[float]) -> list[float]:
    """Ranks from 1, ties sharing their average rank (``scipy.stats.rankdata``)."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in range(start, end + 1):
            ranks[order[k]] = (start + end + 2) / 2
        start = end + 1
    return ranks


def _tie_sums(counts: Iterable[int]) -> tuple[int, int, int]:
    """For groups of tied values: tied pairs, sum t(t-1)(t-2), sum t(t-1)(2t+5)."""
    counts = [t for t in counts if t > 1]
    return (sum(t * (t - 1) // 2 for t in counts), sum(t * (t - 1) * (t - 2) for t in counts),
            sum(t * (t - 1) * (2 * t + 5) for t in counts))


def _check_pairs(x: Sequence[float], y: Sequence[float]) -> None:
    if len(x) != len(y) or len(x) < 3:
        raise ValueError(f"a rank correlation needs two sequences of one length >= 3, got {len(x)} and {len(y)}")


def _has_nan(x: Sequence[float], y: Sequence[float]) -> bool:
    return any(v != v for v in (*x, *y))
