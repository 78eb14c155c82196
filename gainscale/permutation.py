"""Permutation tests that a response falls with size: Spearman's rho and Kendall's tau-b, one-sided.

Under H0 (no association) every pairing of the responses with the sizes is equally likely, so
the p-value of "falls with size" is the share of pairings whose statistic is at most the
observed one. For n <= :data:`EXACT_MAX_N` every one of the n! pairings is enumerated (8
models: 40,320, in milliseconds). Above that the p-value is refused (nan, and the method says
why) unless a number of resamples is given: then a seeded Monte Carlo sample of pairings is
drawn and the p-value is ``(hits + 1) / (resamples + 1)``, as ``scipy.stats.permutation_test``
does. (A Monte Carlo run costs resamples x n^2 / 2 pair comparisons for Kendall: about 0.1 s for
9,999 resamples of 40 models.)

Both statistics are compared as integers, so ties between pairings count exactly: with average
ranks r, Spearman's rho is an increasing function of ``sum(2 r_x * 2 r_y)`` (the rank means
and spreads do not change under permutation), and tau-b one of
``sum_{i<j} sign(x_i - x_j) sign(y_i - y_j)`` (its tie-corrected denominator does not either).

Under every ordering, both null distributions depend only on the tie patterns of x and y (their
sorted ranks), not on which model holds which value: each pattern's pair of sorted null
distributions is built once per process and the p-values are binary searches in it, so the
leave-one-out and sensitivity variants of one claim pay for a single enumeration. numpy loads
inside the functions, so importing gainscale stays cheap, and a run that keeps a memo
(:mod:`gainscale.statmemo`) reads known p-values back without loading it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache, lru_cache
from typing import NamedTuple

from ._exactstats import _average_ranks, _check_pairs, _has_nan
from .errors import GainscaleError
from .statmemo import remembered

#: the largest number of models whose orderings are all enumerated (9! = 362,880)
EXACT_MAX_N = 9


class PermutationP(NamedTuple):
    """One-sided (alternative: falls) permutation p-values and how they were found."""

    spearman_p: float
    kendall_p: float
    #: e.g. ``exact: all 40320 orderings`` or ``Monte Carlo: 9999 random orderings, seed 0``
    method: str


@remembered(PermutationP._make)
def falling_permutation_p(x: Sequence[float], y: Sequence[float], resamples: int | None = None, seed: int = 0) -> PermutationP:
    """Permutation p-values of Spearman's rho and Kendall's tau-b against "y falls as x grows".

    Parameters
    ----------
    x, y
        One entry per model: its size and the response (ties allowed).
    resamples, seed
        The Monte Carlo sample above :data:`EXACT_MAX_N` models (None: no p-value there);
        unused at or below it.

    Returns
    -------
    PermutationP
        nan p-values, with the reason as the method, for constant or nan input, and above
        :data:`EXACT_MAX_N` models without ``resamples``.
    """
    _check_pairs(x, y)
    if all(v == x[0] for v in x) or all(v == y[0] for v in y) or _has_nan(x, y):
        return PermutationP(math.nan, math.nan, "undefined: a constant or nan input has no rank correlation")
    if len(x) <= EXACT_MAX_N:
        return _exact_p(x, y)
    orderings, method = _sampled_orderings(len(x), resamples, seed)
    if orderings is None:
        return PermutationP(math.nan, math.nan, method)
    spearman = _share_at_most(_spearman_statistics(x, y, orderings), _spearman_statistics(x, y, None))
    kendall = _share_at_most(_kendall_statistics(x, y, orderings), _kendall_statistics(x, y, None))
    return PermutationP(spearman, kendall, method)


def _exact_p(x: Sequence[float], y: Sequence[float]) -> PermutationP:
    """The share of all n! orderings whose statistics are at most the observed ones (exact counts)."""
    import numpy as np

    rank_x, rank_y = _doubled_ranks(x), _doubled_ranks(y)
    spearman_null, kendall_null = _exact_nulls(tuple(sorted(rank_x)), tuple(sorted(rank_y)))
    spearman = sum(a * b for a, b in zip(rank_x, rank_y))
    kendall = _kendall_observed([float(v) for v in x], [float(v) for v in y])
    # side="right": the count of null statistics <= the observed one; integers, so exact
    hits = (int(np.searchsorted(spearman_null, spearman, side="right")), int(np.searchsorted(kendall_null, kendall, side="right")))
    return PermutationP(hits[0] / len(spearman_null), hits[1] / len(kendall_null), f"exact: all {len(spearman_null)} orderings")


@lru_cache(maxsize=256)
def _exact_nulls(rank_x: tuple[int, ...], rank_y: tuple[int, ...]):
    """Both statistics under every ordering, each sorted, for x and y with these (sorted) doubled ranks.

    Which model holds which value does not change the set of statistics over all orderings, so
    the sorted ranks are the whole key: one enumeration serves every data set of a tie pattern.
    """
    import numpy as np

    orderings = _all_permutations(len(rank_x))
    spearman = np.sort(np.array(rank_y, dtype=np.int64)[orderings] @ np.array(rank_x, dtype=np.int64))
    kendall = np.sort(_kendall_statistics(rank_x, rank_y, orderings, every=True))
    spearman.setflags(write=False)
    kendall.setflags(write=False)
    return spearman, kendall


def _doubled_ranks(values: Sequence[float]) -> list[int]:
    """2 x the average ranks: integers, ties included."""
    return [round(2 * r) for r in _average_ranks(values)]


def _kendall_observed(x: Sequence[float], y: Sequence[float]) -> int:
    """``sum_{i<j} sign(x_i - x_j) sign(y_i - y_j)`` of the data as given (floats, as numpy compares them)."""
    n = len(x)
    return sum(_sign(x[i] - x[j]) * _sign(y[i] - y[j]) for i in range(n) for j in range(i + 1, n))


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


def _share_at_most(null, observed) -> float:
    """P(statistic <= observed) estimated from a sample of orderings: (hits + 1) / (draws + 1)."""
    hits = int((null <= observed[0]).sum())
    return (hits + 1) / (len(null) + 1)


def _spearman_statistics(x, y, orderings):
    """``sum(2 r_x * 2 r_y[ordering])`` per ordering (the identity where ``orderings`` is None)."""
    import numpy as np

    rank_x = np.array(_doubled_ranks(x), dtype=np.int64)
    rank_y = np.array(_doubled_ranks(y), dtype=np.int64)
    permuted = rank_y[None, :] if orderings is None else rank_y[orderings]
    return permuted @ rank_x


def _kendall_statistics(x, y, orderings, every: bool = False):
    """``sum_{i<j} sign(x_i - x_j) sign(y_o(i) - y_o(j))`` per ordering o (the identity where None);
    ``every``: the orderings are all of them, :func:`_all_permutations`, whose pair indices are cached.

    Signs and sums are float64 (BLAS): integers far below 2**53, so exact.
    """
    import numpy as np

    n = len(x)
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    first, second = np.triu_indices(n, k=1)
    sign_x = np.sign(xa[first] - xa[second])
    sign_y = np.sign(ya[:, None] - ya[None, :]).ravel()  # sign_y[a * n + b] = sign(y_a - y_b)
    if orderings is None:
        return sign_y[first * n + second][None, :] @ sign_x
    if every:
        return sign_y[_all_pair_indices(n)] @ sign_x
    chunk = max(1, 2**22 // len(first))  # about 4 M pair signs at a time
    parts = [sign_y[block[:, first] * n + block[:, second]] @ sign_x for block in _blocks(orderings, chunk)]
    return np.concatenate(parts)


@cache
def _all_pair_indices(n: int):
    """``o(i) * n + o(j)`` for every ordering o and pair i < j (uint8: 13 MB at n = 9)."""
    import numpy as np

    first, second = np.triu_indices(n, k=1)
    orderings = _all_permutations(n)
    if n * n > 256:  # the indices leave uint8 (only where EXACT_MAX_N was raised beyond 16)
        orderings = orderings.astype(np.intp)
    indices = orderings[:, first] * np.uint8(n) + orderings[:, second]
    indices.setflags(write=False)
    return indices


def _blocks(rows, size: int):
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


@cache
def _all_permutations(n: int):
    """Every ordering of ``range(n)`` as rows of an (n!, n) array, built by inserting one value at a time."""
    import numpy as np

    rows = np.zeros((1, 0), dtype=np.uint8)  # n <= EXACT_MAX_N: small numbers, small rows
    for value in range(n):
        count, width = rows.shape
        grown = np.empty((count * (width + 1), width + 1), dtype=np.uint8)
        for position in range(width + 1):
            block = grown[position * count : (position + 1) * count]
            block[:, :position], block[:, position], block[:, position + 1 :] = rows[:, :position], value, rows[:, position:]
        rows = grown
    rows.setflags(write=False)
    return rows


def _sampled_orderings(n: int, resamples: int | None, seed: int):
    """Above :data:`EXACT_MAX_N` models: a seeded Monte Carlo sample of orderings and its method,
    or None and why there is none (no ``resamples`` given)."""
    if resamples is None:
        return None, (f"not computed: {n} models, more than the {EXACT_MAX_N} whose orderings are all enumerated; "
                      "give resamples for a Monte Carlo p-value")
    if resamples < 1:
        raise GainscaleError(f"a Monte Carlo permutation test needs at least 1 resample, got {resamples}")
    return _random_permutations(n, resamples, seed), f"Monte Carlo: {resamples} random orderings, seed {seed}"


def _random_permutations(n: int, resamples: int, seed: int):
    """``resamples`` uniformly random orderings of ``range(n)``, reproducible from ``seed``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.permuted(np.tile(np.arange(n), (resamples, 1)), axis=1)


class SlopePermutationP(NamedTuple):
    """Two-sided permutation p-value of a least-squares slope, and how it was found."""

    p_value: float
    #: e.g. ``exact: all 40320 orderings``
    method: str


#: orderings whose statistic is within this relative distance of the observed one count as
#: ties (the pairing that produced it, and its mirror images, must count however floats round)
SLOPE_TIE_TOLERANCE = 1e-12


@remembered(SlopePermutationP._make)
def slope_permutation_p(x: Sequence[float], y: Sequence[float], resamples: int | None = None, seed: int = 0) -> SlopePermutationP:
    """Permutation p-value of the slope of ``y`` on ``x`` (H0: no linear association), two-sided.

    Under H0 every pairing of the ``y`` with the ``x`` is equally likely, and the least-squares
    slope of a pairing is ``sum((x - mean x) y)`` over a constant: the p-value is the share of
    pairings whose ``|sum((x - mean x) y)|`` is at least the observed one. Every one of the n!
    pairings is enumerated for n <= :data:`EXACT_MAX_N`; above that, as
    :func:`falling_permutation_p` does, a seeded Monte Carlo sample if ``resamples`` is given,
    else nan with the reason.
    """
    _check_pairs(x, y)
    if all(v == x[0] for v in x) or all(v == y[0] for v in y) or _has_nan(x, y):
        return SlopePermutationP(math.nan, "undefined: a constant or nan input has no slope to test")
    n = len(x)
    if n <= EXACT_MAX_N:
        orderings, method = _all_permutations(n), f"exact: all {math.factorial(n)} orderings"
    else:
        orderings, method = _sampled_orderings(n, resamples, seed)
        if orderings is None:
            return SlopePermutationP(math.nan, method)
    import numpy as np

    centred = np.asarray(x, dtype=float) - np.mean(x)
    values = np.asarray(y, dtype=float)
    observed = abs(float(centred @ values))
    null = np.abs(values[orderings] @ centred)
    hits = int(np.count_nonzero(null >= observed * (1 - SLOPE_TIE_TOLERANCE)))
    if n <= EXACT_MAX_N:
        return SlopePermutationP(hits / len(orderings), method)
    return SlopePermutationP((hits + 1) / (resamples + 1), method)
