"""Claim 1: attention is contractive (gain < 1) in at least 97% of the layers of every model.

SCALING_LAW_ANALYSIS.md §3, "Attention ist IMMER kontraktiv": 97-100% of the attention layers
contract in all eight models ("Attention ist ein UNIVERSELLES Kompressionsprinzip"); §8.1
repeats it. The §1 table prints 97% for pythia-6.9b, whose §3 figure is 96.9% (31 of 32).
"""

import pytest

from gainscale.claims import attention_contractive


@pytest.mark.claim("attention_contractive")
def test_attention_contractive(model_summary, claim_thresholds, record_verdict):
    # threshold: 97% of layers, the lower end of the paper's "97-100% in ALLEN Modellen" (§3);
    # pytest.ini: gainscale_attention_contracting_min_pct
    verdict = attention_contractive(model_summary, min_pct=claim_thresholds.attention_contracting_min_pct)
    record_verdict(verdict)
    assert verdict.passed, verdict.message
