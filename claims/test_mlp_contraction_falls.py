"""Claim 4: the share of contracting MLP layers falls as models grow.

SCALING_LAW_ANALYSIS.md §3, "MLP Kontraktion FÄLLT mit Modellgröße": 83% at 70M down to 6% at
12B ("Dramatischer Trend"); §8.4 "MLP Kontraktion sinkt mit Größe (83% -> 6%)". The paper shows
the end points only; here it is tested as a one-sided rank correlation over all models.
"""

import pytest

from gainscale import Claim, paper

MLP_CONTRACTION_FALLS = Claim(
    id="mlp_contraction_falls",
    number="4",
    statement="the share of contracting MLP layers falls as models grow (one-sided Spearman p < {trend_p_max:g})",
    where="§3, §8.4",
    scope="cross-model",
    # one-sided Spearman p < 0.05: the significance level the paper uses for its fit (§2)
    thresholds={"trend_p_max": 0.05},
    value_format="Spearman p = {}",
    threshold_format="p < {}",
    check=paper.mlp_contraction_falls,
)


@pytest.mark.claim(MLP_CONTRACTION_FALLS)
def test_mlp_contraction_falls(source_summaries, thresholds, record_verdict):
    record_verdict(paper.mlp_contraction_falls(source_summaries, thresholds))
