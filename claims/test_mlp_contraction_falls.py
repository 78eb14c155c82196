"""Claim 4: the share of contracting MLP layers falls as models grow.

SCALING_LAW_ANALYSIS.md §3, "MLP Kontraktion FÄLLT mit Modellgröße": 83% at 70M down to 6% at
12B ("Dramatischer Trend"); §8.4 "MLP Kontraktion sinkt mit Größe (83% -> 6%)". The paper shows
the end points only; here it is tested as a one-sided rank correlation over all models.
"""

import pytest

from gainscale.claims import mlp_contraction_falls


@pytest.mark.claim("mlp_contraction_falls")
def test_mlp_contraction_falls(source_summaries, claim_thresholds, record_verdict):
    # threshold: one-sided Spearman p < 0.05, the significance level the paper uses for its fit (§2);
    # pytest.ini: gainscale_trend_p_max
    verdict = mlp_contraction_falls(source_summaries, p_max=claim_thresholds.trend_p_max)
    record_verdict(verdict)
    assert verdict.passed, verdict.message
