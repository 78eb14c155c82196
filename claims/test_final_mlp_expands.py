"""Claim 2: the final layer's MLP always expands (gain > 1).

SCALING_LAW_ANALYSIS.md §3, "Letzter Layer EXPLODIERT immer": the last-layer MLP gains 1.50x
to 7.71x, "All > 1.0 CONFIRMED"; §8.2 "Letzter Layer MLP EXPLODIERT immer (100% der Modelle)".
"""

import pytest

from gainscale.claims import final_mlp_expands


@pytest.mark.claim("final_mlp_expands")
def test_final_mlp_expands(model_summary, claim_thresholds, record_verdict):
    # threshold: gain 1, where a sublayer stops shrinking the hidden state (REFERENCE.md:
    # "contracting when its gain is < 1"); pytest.ini: gainscale_final_mlp_gain_min
    verdict = final_mlp_expands(model_summary, min_gain=claim_thresholds.final_mlp_gain_min)
    record_verdict(verdict)
    assert verdict.passed, verdict.message
