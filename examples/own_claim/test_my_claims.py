"""Two claims of my own about layer internals, made executable, cached and reported by gainscale.

Each claim is declared where it is tested: its id, its statement (with ``{threshold}`` fields
the report fills in), whether it is checked per model or across the models, its thresholds
and where it was made. gainscale parametrizes each test over the models of the run's source
(``--gainscale-suite``), measures them once (or replays the cache), and writes REPORT.md and
results.json from the verdicts.
"""

from statistics import fmean

import pytest

from gainscale import Claim
from gainscale.stats import falling_trend

FIRST_ATTENTION_EXPANDS = Claim(
    id="first_attention_expands",
    statement="the first layer's attention expands (gain > {first_attention_gain_min:g}) in every model",
    scope="per-model",
    thresholds={"first_attention_gain_min": 1.0},
    where="my notes, section 1",
    value_format="gain {}",
    threshold_format="gain > {}",
)


@pytest.mark.claim(FIRST_ATTENTION_EXPANDS)
def test_first_attention_expands(model_summary, thresholds, record_verdict):
    gain = model_summary.attn_gains[0]  # every layer's gains are there, and each prompt's
    minimum = thresholds["first_attention_gain_min"]
    prompts_above = sum(g > minimum for g in model_summary.attn_prompt_gains[0])
    record_verdict(
        passed=gain > minimum,
        value=gain,
        threshold=minimum,
        message=f"{model_summary.model}: layer 0 attention gain {gain:.3g} {'>' if gain > minimum else '<='} {minimum:g} "
                f"({prompts_above} of {len(model_summary.attn_prompt_gains[0])} prompts above)",
        tracked={"first_attention_gain": ("gain", gain)},  # a baseline holds it within the gain tolerance
    )


MEAN_ATTENTION_GAIN_FALLS = Claim(
    id="mean_attention_gain_falls",
    statement="the mean attention gain falls as models grow (one-sided Spearman p < {trend_p_max:g})",
    scope="cross-model",
    thresholds={"trend_p_max": 0.05},
    where="my notes, section 2",
    value_format="p = {}",
    threshold_format="p < {}",
)


@pytest.mark.claim(MEAN_ATTENTION_GAIN_FALLS)
def test_mean_attention_gain_falls(source_summaries, thresholds, record_verdict):
    means = [fmean(s.attn_gains) for s in source_summaries]
    trend = falling_trend([s.model for s in source_summaries], [s.n_params for s in source_summaries], means)
    p_max = thresholds["trend_p_max"]
    record_verdict(
        passed=trend.spearman_p < p_max,
        value=trend.spearman_p,
        threshold=p_max,
        message=f"Spearman rho = {trend.spearman_rho:.3f}, one-sided p = {trend.spearman_p:.4f} over {len(means)} models; "
                f"mean attention gain {means[0]:.3g} ({source_summaries[0].model}) -> {means[-1]:.3g} ({source_summaries[-1].model})",
        tracked={"spearman_rho": ("statistic", trend.spearman_rho)},
        evidence=(trend,),  # the report lays out the rank tests
    )
