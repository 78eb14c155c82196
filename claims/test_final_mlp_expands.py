"""Claim 2: the final layer's MLP always expands (gain > 1).

SCALING_LAW_ANALYSIS.md §3, "Letzter Layer EXPLODIERT immer": the last-layer MLP gains 1.50x
to 7.71x, "All > 1.0 CONFIRMED"; §8.2 "Letzter Layer MLP EXPLODIERT immer (100% der Modelle)".
"""

import pytest

from gainscale import Claim, paper

FINAL_MLP_EXPANDS = Claim(
    id="final_mlp_expands",
    number="2",
    statement="the final layer's MLP always expands (gain > {final_mlp_gain_min:g})",
    where="§3, §8.2",
    scope="per-model",
    # gain 1: where a sublayer stops shrinking the hidden state (docs/method.md: contracting below 1)
    thresholds={"final_mlp_gain_min": 1.0},
    value_format="gain {}",
    threshold_format="gain > {}",
    check=paper.final_mlp_expands,
)


@pytest.mark.claim(FINAL_MLP_EXPANDS)
def test_final_mlp_expands(model_summary, thresholds, record_verdict):
    record_verdict(paper.final_mlp_expands(model_summary, thresholds))
