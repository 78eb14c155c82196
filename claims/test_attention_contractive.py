"""Claim 1: attention is contractive (gain < 1) in at least 97% of the layers of every model.

SCALING_LAW_ANALYSIS.md §3, "Attention ist IMMER kontraktiv": 97-100% of the attention layers
contract in all eight models ("Attention ist ein UNIVERSELLES Kompressionsprinzip"); §8.1
repeats it. The §1 table prints 97% for pythia-6.9b, whose §3 figure is 96.9% (31 of 32).
"""

import pytest

from gainscale import Claim, paper

ATTENTION_CONTRACTIVE = Claim(
    id="attention_contractive",
    number="1",
    statement="attention is contractive (gain < 1) in at least {attention_contracting_min_pct:g}% of the layers of every model",
    where="§3, §8.1",
    scope="per-model",
    # 97% of layers: the lower end of the paper's "97-100% in ALLEN Modellen" (§3)
    thresholds={"attention_contracting_min_pct": 97.0},
    # the figures' contracting-share panels draw this threshold as a line
    marks={"attention_contracting_pct": "attention_contracting_min_pct"},
    value_format="{}% of layers",
    threshold_format=">= {}% of layers",
    check=paper.attention_contractive,
)


@pytest.mark.claim(ATTENTION_CONTRACTIVE)
def test_attention_contractive(model_summary, thresholds, record_verdict):
    record_verdict(paper.attention_contractive(model_summary, thresholds))
