"""What makes a replay of known numbers cheap: the statistics memo (the same bits back, nothing
guessed, nothing lost that matters), exact p-values from one enumeration per tie pattern, and
report files left alone when unchanged."""

from __future__ import annotations

import itertools
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gainscale import _exactstats, permutation, statmemo
from gainscale.stats import falling_trend, fit_power_law


@pytest.fixture
def memo(tmp_path):
    """The memo in use in a fresh cache directory; closed (and written) after the test."""
    statmemo.use(tmp_path)
    yield tmp_path
    statmemo.close()


def _bits(value):
    """A value with every float as its hex form, so that nan equals nan and -0.0 differs from 0.0."""
    if isinstance(value, float):
        return value.hex()
    if isinstance(value, tuple):
        return (type(value).__name__, *map(_bits, value))
    return value


def _memo_file(directory):
    return directory / "stats" / f"memo-{statmemo.fingerprint()}.json"


finite = st.floats(-1e6, 1e6, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 10**11), st.sampled_from([0.0, 12.5, 50.0]) | st.floats(0, 100)), min_size=3, max_size=9),
       st.floats(0.01, 0.99), finite)
def test_remembered_results_are_the_computed_bits(tmp_path_factory, pairs, q, t):
    """Every kernel gives the same bits computed, read back in the run, and read back from the file."""
    x, y = [float(a) for a, _ in pairs], [b for _, b in pairs]
    calls = [
        lambda: _exactstats.t_sf(t, len(x) - 2), lambda: _exactstats.t_ppf(q, len(x) - 2),
        lambda: _exactstats.spearman_less(x, y), lambda: _exactstats.kendall_less(x, y), lambda: _exactstats.pearson_less(x, y),
        lambda: _exactstats.norm_cdf(t / 1e5), lambda: _exactstats.norm_ppf(q), lambda: _exactstats.nct_cdf(t / 1e5, 6, 1.5),
        lambda: permutation.falling_permutation_p(x, y),
    ]
    if len(set(x)) > 1:
        calls += [lambda: _exactstats.linregress(x, y), lambda: _exactstats.theilslopes(y, x, q)]
    computed = [_bits(call()) for call in calls]  # the memo is off: scipy's numbers
    directory = tmp_path_factory.mktemp("memo")
    statmemo.use(directory)
    try:
        assert [_bits(call()) for call in calls] == computed  # computed and remembered
        assert [_bits(call()) for call in calls] == computed  # read back in this run
    finally:
        statmemo.close()
    statmemo.use(directory)
    try:
        assert [_bits(call()) for call in calls] == computed  # read back from the file
    finally:
        statmemo.close()


def test_a_known_result_is_not_computed_again(memo, monkeypatch):
    calls = []

    @statmemo.remembered()
    def square(value):
        calls.append(value)
        return value * value

    assert square(3.0) == square(3.0) == 9.0
    statmemo.close()
    statmemo.use(memo)
    assert square(3.0) == 9.0
    assert calls == [3.0]


def test_arguments_not_written_exactly_pass_by(memo):
    """numpy values, booleans and strings are never keys: the kernel runs every time."""
    import numpy as np

    calls = []

    @statmemo.remembered()
    def kernel(value):
        calls.append(value)
        return 1.0

    for value in (np.float64(2.0), np.array([1.0, 2.0]), True, "2.0", [np.float64(1.0)]):
        kernel(value)
        kernel(value)
    assert len(calls) == 10
    statmemo.close()
    assert not _memo_file(memo).exists()


def test_keys_tell_ints_floats_zeros_and_nan_apart():
    key = statmemo._key
    keys = {key("f", (value,), {}) for value in (1, 1.0, 0.0, -0.0, math.nan, math.inf, None, (1.0,), [1.0, 2.0])}
    assert len(keys) == 9
    assert key("f", ([1.0, 2.0],), {}) == key("f", ((1.0, 2.0),), {})  # a list and a tuple of the same numbers agree
    assert key("f", (1.0,), {"level": 0.9}) != key("f", (1.0,), {"level": 0.95})


def test_off_unless_used(tmp_path):
    assert not statmemo.active()
    fit_power_law(["a", "b", "c"], [1e6, 1e7, 1e8], [1.0, 2.0, 4.1]).to_json()
    assert not any(tmp_path.iterdir())


def test_processes_adding_at_once_keep_both(tmp_path):
    """Two memos of one directory (two xdist workers) both keep what they added: merged under a lock."""
    first, second = statmemo._Memo(tmp_path), statmemo._Memo(tmp_path)
    first.values, second.values  # noqa: B018  (both read the empty file before either writes)
    first.put("a", 1.0)
    second.put("b", 2.0)
    first.save()
    second.save()
    assert statmemo._read(first.path) == {"a": 1.0, "b": 2.0}


def test_the_least_recently_used_go_first(tmp_path, monkeypatch):
    monkeypatch.setattr(statmemo, "MAX_ENTRIES", 3)
    old = statmemo._Memo(tmp_path)
    for key in "abc":
        old.put(key, 0.0)
    old.save()
    new = statmemo._Memo(tmp_path)
    new.get("a")  # used again: kept
    new.put("d", 1.0)
    new.save()
    assert list(statmemo._read(new.path)) == ["c", "a", "d"]


def test_a_corrupt_or_foreign_file_is_ignored_and_replaced(memo):
    path = _memo_file(memo)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert _exactstats.t_sf(1.5, 6) == _exactstats.t_sf.uncached(1.5, 6)
    statmemo.close()
    assert json.loads(path.read_text())["format"] == statmemo.FORMAT
    path.write_text(json.dumps({"format": 999, "values": {"x": 1}}))
    assert statmemo._read(path) == {}


def test_a_cache_that_cannot_be_written_only_costs_the_memo(tmp_path):
    (tmp_path / "stats").write_text("a file where the memo's directory should be")
    statmemo.use(tmp_path)
    assert _exactstats.t_sf(1.5, 6) == _exactstats.t_sf.uncached(1.5, 6)
    statmemo.close()  # nothing raised, nothing written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stats"]


def test_a_trend_from_the_memo_is_the_trend_computed():
    models, sizes, shares = [f"m{i}" for i in range(8)], [10**k for k in range(3, 11)], [83.3, 75, 70, 62.5, 55, 45, 30, 5.6]
    computed = falling_trend(models, sizes, shares).to_json()
    assert computed == falling_trend(models, sizes, shares).to_json()


# ---------------------------------------------------------------------------- exact permutation p-values


def _brute_force(x, y):
    """P(statistic <= observed) over every ordering, by itertools, with the module's own statistics."""
    rank_x, rank_y = permutation._doubled_ranks(x), permutation._doubled_ranks(y)
    orderings = list(itertools.permutations(range(len(x))))

    def spearman(o):
        return sum(rank_x[i] * rank_y[o[i]] for i in range(len(x)))

    def kendall(o):
        return permutation._kendall_observed([float(v) for v in x], [float(y[o[i]]) for i in range(len(x))])

    identity = tuple(range(len(x)))
    return (sum(spearman(o) <= spearman(identity) for o in orderings) / len(orderings),
            sum(kendall(o) <= kendall(identity) for o in orderings) / len(orderings))


@settings(max_examples=150, deadline=None)
@given(st.integers(3, 6).flatmap(lambda n: st.tuples(st.lists(st.sampled_from([1, 2, 3, 5, 8, 13]), min_size=n, max_size=n),
                                                     st.lists(st.sampled_from([0.0, 12.5, 37.5, 50.0, 100.0]), min_size=n, max_size=n))))
def test_exact_p_values_are_the_counts_over_every_ordering(data):
    """Ties in both, any order of the models: the cached null of the tie pattern gives the exact counts."""
    x, y = data
    result = permutation.falling_permutation_p.uncached(x, y)
    if math.isnan(result.spearman_p):
        assert len(set(x)) == 1 or len(set(y)) == 1
        return
    assert (result.spearman_p, result.kendall_p) == _brute_force(x, y)


def test_one_enumeration_serves_a_tie_pattern():
    permutation._exact_nulls.cache_clear()
    permutation.falling_permutation_p.uncached([1, 2, 3, 4, 5], [5.0, 4.0, 3.0, 1.0, 2.0])
    permutation.falling_permutation_p.uncached([50, 40, 30, 20, 10], [0.1, 0.2, 0.5, 0.4, 0.3])
    assert permutation._exact_nulls.cache_info().misses == 1


# ---------------------------------------------------------------------------- reports of unchanged numbers


def test_an_unchanged_file_is_not_written_again(tmp_path):
    from gainscale.files import write_if_changed

    path = tmp_path / "results.json"
    assert write_if_changed(path, "{}\n") is True
    before = path.stat().st_mtime_ns
    assert write_if_changed(path, "{}\n") is False and write_if_changed(path, b"{}\n") is False
    assert path.stat().st_mtime_ns == before
    assert write_if_changed(path, "{ }\n") is True and path.read_text() == "{ }\n"
