"""The bootstrap over prompts: hand-computed distributions, the resampling scheme, seeds and intervals."""

from __future__ import annotations

import doctest
import itertools
import json
import math
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from scipy import stats as scipy_stats

from gainscale import bootstrap
from gainscale.bootstrap import Interval, ModelBootstrap, PromptGains, SuiteBootstrap, bootstrap_model, bootstrap_prompts
from gainscale.errors import GainscaleError
from gainscale.measurement import Measurement, ModuleNorms, Provenance
from gainscale.stats import fit_power_law


def _synthetic_model(name: str, n_params: int, layers: int = 6, prompts: int = 40, final: float = 2.0, seed: int = 0) -> PromptGains:
    """Attention about 0.6, MLP about 0.9 and a final MLP about ``final``, lognormal over prompts."""
    rng = np.random.default_rng(seed)
    attn = 0.6 * rng.lognormal(0, 0.15, (layers, prompts))
    mlp = 0.9 * rng.lognormal(0, 0.15, (layers, prompts))
    mlp[-1] = final * rng.lognormal(0, 0.2, prompts)
    return PromptGains(name, n_params, tuple(map(tuple, attn.tolist())), tuple(map(tuple, mlp.tolist())))


@pytest.fixture(scope="module")
def suite_gains():
    sizes = [70_426_624, 162_322_944, 405_334_016, 1_011_781_632, 1_414_647_808, 2_775_208_960, 6_857_302_016, 11_846_072_320]
    finals = [1.50, 2.82, 1.78, 3.72, 3.52, 2.10, 6.30, 7.71]  # the paper's final MLP gains
    return [_synthetic_model(f"m{i}", n, layers=4 + i, final=f, seed=i) for i, (n, f) in enumerate(zip(sizes, finals))]


@pytest.fixture(scope="module")
def suite(suite_gains):
    return bootstrap_prompts(suite_gains, resamples=400, seed=0)


def test_two_prompts_one_layer_by_hand():
    """Prompts with MLP gains 0.8 and 1.4: the 4 equally likely resamples (1,1), (1,2), (2,1), (2,2)
    give 0.8, 1.1, 1.1, 1.4, so 0.8 and 1.4 each with probability 1/4 and 1.1 with 1/2."""
    gains = PromptGains("m", 10**6, attn=((0.5, 0.7),), mlp=((0.8, 1.4),))
    result = bootstrap_model(gains, resamples=4000, seed=0)
    draws = [round(v, 12) for v in result.mlp_draws_of_layer(-1)]
    counts = Counter(draws)
    assert set(counts) == {0.8, 1.1, 1.4}
    assert scipy_stats.chisquare([counts[0.8], counts[1.1], counts[1.4]], [1000, 2000, 1000]).pvalue > 0.001
    assert result.final_mlp_gain == Interval(1.1, 0.8, 1.4, 0.95)  # 2.5% and 97.5% both fall on the atoms
    # contracting MLP layers: 1 in the resamples of 0.8 alone, else 0; attention contracts always
    assert result.mlp_contracting == Interval(0.0, 0.0, 1.0, 0.95) and result.attn_contracting == Interval(1.0, 1.0, 1.0, 0.95)
    assert result.stability(lambda s: s.final_mlp_gain > 1) == pytest.approx(0.75, abs=0.03)
    assert result.stability(lambda s: s.final_mlp_gain > 1) == 1 - counts[0.8] / 4000


def test_three_prompts_against_every_resample():
    """All 27 index triples of 3 prompts, equally likely: the bootstrap's draws follow that law."""
    values = (0.7, 1.0, 1.9)
    exact = Counter(round(sum(values[i] for i in triple) / 3, 12) for triple in itertools.product(range(3), repeat=3))
    result = bootstrap_model(PromptGains("m", 10**6, ((0.5, 0.5, 0.5),), (values,)), resamples=27_000, seed=1)
    seen = Counter(round(v, 12) for v in result.mlp_draws_of_layer(0))
    assert set(seen) == set(exact)
    atoms = sorted(exact)
    assert scipy_stats.chisquare([seen[a] for a in atoms], [1000 * exact[a] for a in atoms]).pvalue > 0.001
    cdf = np.cumsum([exact[a] for a in atoms]) / 27
    lower, upper = atoms[int(np.searchsorted(cdf, 0.025))], atoms[int(np.searchsorted(cdf, 0.975))]
    assert (result.final_mlp_gain.lower, result.final_mlp_gain.upper) == pytest.approx((lower, upper), rel=1e-12)


def test_draws_are_prompt_means_of_the_seeded_indices():
    """Replaying the rng: resample b of every layer is the mean of the gains at the same drawn indices."""
    gains = _synthetic_model("m", 10**8, layers=3, prompts=7, seed=3)
    result = bootstrap_model(gains, resamples=50, seed=11)
    indices = np.random.default_rng(11).integers(0, 7, size=(50, 7))
    attn, mlp = np.array(gains.attn), np.array(gains.mlp)
    assert np.allclose(np.array(result.attn_draws), attn[:, indices].mean(axis=2).T, rtol=1e-12, atol=0)
    assert np.allclose(np.array(result.mlp_draws), mlp[:, indices].mean(axis=2).T, rtol=1e-12, atol=0)


def test_one_draw_of_prompts_serves_every_layer_and_both_modules():
    """MLP gains twice the attention gains prompt by prompt, a second layer one more: if the layers and
    modules drew their own prompts, these relations would not survive resampling."""
    rng = np.random.default_rng(5)
    base = rng.uniform(0.3, 1.7, 12)
    gains = PromptGains("m", 10**7, attn=(tuple(base), tuple(base + 1)), mlp=(tuple(2 * base), tuple(2 * base + 1)))
    result = bootstrap_model(gains, resamples=300, seed=2)
    attn, mlp = np.array(result.attn_draws), np.array(result.mlp_draws)
    assert np.allclose(mlp[:, 0], 2 * attn[:, 0], rtol=1e-12) and np.allclose(attn[:, 1], attn[:, 0] + 1, rtol=1e-12)
    assert np.allclose(mlp[:, 1], mlp[:, 0] + 1, rtol=1e-12) and np.ptp(attn[:, 0]) > 0.1


def test_models_are_resampled_independently():
    twin = _synthetic_model("a", 10**8, seed=9)
    other = PromptGains("b", 10**9, twin.attn, twin.mlp)
    result = bootstrap_prompts([twin, other], resamples=500, seed=0)
    a, b = (np.array(m.mlp_draws)[:, -1] for m in result.models)
    assert not np.array_equal(a, b) and abs(np.corrcoef(a, b)[0, 1]) < 0.2
    assert result.alpha is None and result.alpha_ols is None  # two models: no power law


def test_the_same_seed_repeats_and_another_differs(suite_gains, suite):
    again = bootstrap_prompts(suite_gains, resamples=400, seed=0)
    assert again == suite and json.dumps(again.to_json()) == json.dumps(suite.to_json())
    other = bootstrap_prompts(suite_gains, resamples=400, seed=1)
    assert other.alpha_draws != suite.alpha_draws and other.models[0].mlp_draws != suite.models[0].mlp_draws
    assert other.alpha.estimate == suite.alpha.estimate  # the point estimate does not depend on the seed


def test_one_model_alone_is_the_first_of_a_suite(suite_gains):
    alone = bootstrap_model(suite_gains[0], resamples=100, seed=4)
    assert alone == bootstrap_prompts(suite_gains[:3], resamples=100, seed=4).models[0]


def test_intervals_contain_the_estimates(suite_gains, suite):
    for gains, result in zip(suite_gains, suite.models):
        layers = [(i, math.fsum(row) / len(row)) for i, row in enumerate(gains.mlp)]
        for (k, mean), interval in zip(layers, result.mlp_gains):
            assert interval.estimate == mean and interval.lower < mean < interval.upper, (result.model, k)
        for interval in result.attn_gains:
            assert interval.lower < interval.estimate < interval.upper
        for interval in (result.final_mlp_gain, result.attn_contracting, result.mlp_contracting):
            assert interval.contains(interval.estimate)
        assert result.final_mlp_gain == result.mlp_gains[-1]
    assert suite.alpha.lower < suite.alpha.estimate < suite.alpha.upper


def test_percentile_intervals_are_numpys(suite):
    model = suite.models[3]
    for layer, interval in enumerate(model.attn_gains):
        draws = [d[layer] for d in model.attn_draws]
        assert (interval.lower, interval.upper) == pytest.approx(tuple(np.percentile(draws, [2.5, 97.5])), rel=1e-14)
    counts = [sum(g < 1 for g in d) for d in model.mlp_draws]
    assert model.mlp_contracting.lower == np.percentile(counts, 2.5, method="lower")
    assert model.mlp_contracting.upper == np.percentile(counts, 97.5, method="higher")
    assert model.mlp_contracting.estimate == sum(i.estimate < 1 for i in model.mlp_gains)


def test_alpha_refitted_on_every_resampled_suite(suite_gains, suite):
    """Each draw of alpha is linregress's slope on resample b of every model; the estimate and the
    OLS interval are the fit of the measured gains."""
    for b in (0, 17, 399):
        x = np.log10([g.n_params for g in suite_gains])
        y = np.log10([m.mlp_draws[b][-1] for m in suite.models])
        assert suite.alpha_draws[b] == pytest.approx(scipy_stats.linregress(x, y).slope, rel=1e-10)
    fit = fit_power_law([g.model for g in suite_gains], [g.n_params for g in suite_gains],
                        [math.fsum(g.mlp[-1]) / g.n_prompts for g in suite_gains])
    assert suite.alpha.estimate == fit.alpha and suite.alpha_ols == fit.confidence_interval(0.95)
    assert (suite.alpha.lower, suite.alpha.upper) == tuple(np.percentile(suite.alpha_draws, [2.5, 97.5]))
    # prompts resampled within models say less about alpha than the scatter between models does
    assert suite.alpha.upper - suite.alpha.lower < suite.alpha_ols[1] - suite.alpha_ols[0]


def test_stability_of_predicates(suite):
    """The share of resamples in which a claim's own predicate holds, counted by hand from the draws."""
    model = suite.models[0]
    by_hand = np.mean([d[-1] > 1.5 for d in model.mlp_draws])
    assert model.stability(lambda s: s.final_mlp_gain > 1.5) == by_hand and 0 < by_hand < 1
    every = np.mean([all(m.mlp_draws[b][-1] > 1.6 for m in suite.models) for b in range(suite.resamples)])
    assert suite.stability(lambda summaries: all(s.final_mlp_gain > 1.6 for s in summaries)) == every
    assert suite.stability(lambda summaries: len(summaries) == 8) == 1.0
    summary = model.summary(7)
    assert summary.mlp_gains == model.mlp_draws[7] and summary.n_params == model.n_params


def test_round_trip_through_json(suite):
    data = json.loads(json.dumps(suite.to_json()))
    assert SuiteBootstrap.from_json(data) == suite
    assert ModelBootstrap.from_json(json.loads(json.dumps(suite.models[2].to_json()))) == suite.models[2]
    assert Interval.from_json(suite.alpha.to_json()) == suite.alpha
    assert suite.model("m2") is suite.models[2]
    with pytest.raises(GainscaleError, match="no model 'm9' in this bootstrap; it has m0, m1"):
        suite.model("m9")


def test_from_measurement_uses_the_kept_norms():
    norms_in = ((2.0, 4.0, 5.0), (1.0, 1.0, 2.0))
    attention = ModuleNorms(norms_in, ((1.0, 3.0, 2.0), (0.5, 0.25, 1.0)))
    mlp = ModuleNorms(norms_in, ((3.0, 4.0, 4.0), (0.5, 2.0, 5.0)))
    provenance = Provenance("0", "t", "tf", "cpu", "eager", 1, "2026-01-01T00:00:00Z", 1.0)
    measurement = Measurement("m", "src", None, "sha", "float32", "p", "h", 1, 123, 2, 8, attention, mlp, provenance)
    gains = PromptGains.from_measurement(measurement)
    assert gains.attn == ((0.5, 0.75, 0.4), (0.5, 0.25, 0.5)) and gains.n_params == 123
    result = bootstrap_model(gains, resamples=20)
    assert tuple(i.estimate for i in result.mlp_gains) == measurement.mlp_gains
    assert tuple(i.estimate for i in result.attn_gains) == measurement.attn_gains


@pytest.mark.parametrize(("attn", "mlp", "message"), [
    (((1.0, 1.0),), ((1.0,),), "MLP layer 0 has gains for 1 prompts|attention layer 0 has gains for 2 prompts"),
    (((1.0,),), ((1.0,), (1.0,)), "attention and MLP need gains for the same layers, got 1 and 2 layers"),
    (((1.0, math.nan),), ((1.0, 1.0),), r"m: attention layer 0 has a gain that is not a finite positive number \(nan\)"),
    (((1.0, 1.0),), ((1.0, 0.0),), r"m: MLP layer 0 has a gain that is not a finite positive number \(0.0\)"),
    ((), (), "got 0 and 0 layers"),
])
def test_gains_that_cannot_be_resampled_are_refused(attn, mlp, message):
    with pytest.raises(GainscaleError, match=message):
        PromptGains("m", 1, attn, mlp)


def test_bad_settings_are_refused():
    gains = PromptGains("m", 1, ((1.0,),), ((1.0,),))
    with pytest.raises(GainscaleError, match="whole number of resamples >= 1, got 0"):
        bootstrap_model(gains, resamples=0)
    with pytest.raises(GainscaleError, match="level must be between 0 and 1, got 1.0"):
        bootstrap_prompts([gains], level=1.0)
    with pytest.raises(GainscaleError, match="at least one model, got none"):
        bootstrap_prompts([])


def test_doctest_and_no_scipy_stats():
    """The module's example holds, and resampling imports numpy, not scipy.stats (a second of import)."""
    assert doctest.testmod(bootstrap).failed == 0
    lines = [
        "import sys",
        "from gainscale.bootstrap import PromptGains, bootstrap_prompts",
        "models = [PromptGains(m, 10**(6 + k), ((0.5, 0.6),), ((1.0 + k, 1.5 + k),)) for k, m in enumerate('abc')]",
        "bootstrap_prompts(models, resamples=50).to_json()",
        "print('scipy.stats' in sys.modules)",
    ]
    assert subprocess.run([sys.executable, "-c", "\n".join(lines)], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_stability_of_the_cross_model_claims(suite_gains):
    """Claims 3a and 4 as predicates over each resampled suite, against scipy on the same draws: a
    noisy suite (10 prompts, MLP gains about 1, final gains widely spread) where neither always holds."""
    from gainscale.stats import falling_trend

    def noisy(i: int, model: PromptGains) -> PromptGains:
        rng = np.random.default_rng(100 + i)
        mlp = (0.97 + 0.01 * i) * rng.lognormal(0, 0.25, (6, 10))
        mlp[-1] = math.fsum(model.mlp[-1]) / model.n_prompts * rng.lognormal(0, 0.8, 10)
        attn = 0.6 * rng.lognormal(0, 0.1, (6, 10))
        return PromptGains(model.model, model.n_params, tuple(map(tuple, attn.tolist())), tuple(map(tuple, mlp.tolist())))

    suite = bootstrap_prompts([noisy(i, m) for i, m in enumerate(suite_gains)], resamples=300, seed=0)

    def significant(summaries):
        return fit_power_law([s.model for s in summaries], [s.n_params for s in summaries], [s.final_mlp_gain for s in summaries]).p_value < 0.05

    def falls(summaries):
        trend = falling_trend([s.model for s in summaries], [s.n_params for s in summaries],
                              [s.mlp_contracting_pct for s in summaries], permutation=False)
        return trend.spearman_p < 0.3

    x = np.log10([g.n_params for g in suite_gains])
    finals = np.array([[d[-1] for d in m.mlp_draws] for m in suite.models])  # (models, resamples)
    shares = np.array([[100 * sum(g < 1 for g in d) / len(d) for d in m.mlp_draws] for m in suite.models])
    by_hand_3a = np.mean([scipy_stats.linregress(x, np.log10(finals[:, b])).pvalue < 0.05 for b in range(suite.resamples)])
    by_hand_4 = np.mean([scipy_stats.spearmanr(x, shares[:, b], alternative="less").pvalue < 0.3 for b in range(suite.resamples)])
    assert suite.stability(significant) == by_hand_3a and 0.1 < by_hand_3a < 0.9
    assert suite.stability(falls) == by_hand_4 and 0.1 < by_hand_4 < 0.9
