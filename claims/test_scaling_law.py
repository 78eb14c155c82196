"""Claim 3: the final MLP gain follows a power law in parameter count, alpha near 0.35.

SCALING_LAW_ANALYSIS.md §2: ``log10(Final_MLP_Gain) = alpha * log10(Params) + beta`` with
alpha = 0.265 ± 0.079, R² = 0.653, p = 0.015 ("Significant (p < 0.05)"); the hypothesis test
finds |0.265 - 0.35| = 0.085 < 0.158 = 2 sigma ("Within 2 sigma: Yes"). The fit is REFERENCE.md's:
``scipy.stats.linregress(log10(n_params), log10(final_mlp_gain))``.
"""

import pytest

from gainscale.claims import scaling_exponent_matches, scaling_law_significant


@pytest.mark.claim("scaling_law_significant")
def test_scaling_law_significant(source_summaries, claim_thresholds, record_verdict):
    # threshold: p < 0.05, the paper's "Significant (p < 0.05)" (§2); pytest.ini: gainscale_scaling_p_max
    verdict = scaling_law_significant(source_summaries, p_max=claim_thresholds.scaling_p_max)
    record_verdict(verdict)
    assert verdict.passed, verdict.message


@pytest.mark.claim("scaling_exponent_matches")
def test_scaling_exponent_matches(source_summaries, claim_thresholds, record_verdict):
    # threshold: |alpha - 0.35| < 2 stderr, the paper's "Within 2 sigma" check (§2 Hypothesis Test);
    # pytest.ini: gainscale_hypothesised_alpha, gainscale_alpha_sigmas
    verdict = scaling_exponent_matches(
        source_summaries, alpha0=claim_thresholds.hypothesised_alpha, sigmas=claim_thresholds.alpha_sigmas
    )
    record_verdict(verdict)
    assert verdict.passed, verdict.message
