"""Claim 3: the final MLP gain follows a power law in parameter count, alpha near 0.35.

SCALING_LAW_ANALYSIS.md §2: ``log10(Final_MLP_Gain) = alpha * log10(Params) + beta`` with
alpha = 0.265 ± 0.079, R² = 0.653, p = 0.015 ("Significant (p < 0.05)"); the hypothesis test
finds |0.265 - 0.35| = 0.085 < 0.158 = 2 sigma ("Within 2 sigma: Yes"). The fit is the
paper's (docs/method.md): ``scipy.stats.linregress(log10(n_params), log10(final_mlp_gain))``.
"""

import pytest

from gainscale import Claim, paper

SCALING_LAW_SIGNIFICANT = Claim(
    id="scaling_law_significant",
    number="3a",
    statement="the final MLP gain follows a power law in parameter count (p < {scaling_p_max:g})",
    where="§2, §8.3",
    scope="cross-model",
    # p < 0.05: the paper's "Significant (p < 0.05)" (§2)
    thresholds={"scaling_p_max": 0.05},
    value_format="p = {}",
    threshold_format="p < {}",
    check=paper.scaling_law_significant,
)

SCALING_EXPONENT_MATCHES = Claim(
    id="scaling_exponent_matches",
    number="3b",
    statement="the exponent alpha is within {alpha_sigmas:g} standard errors of the hypothesised {hypothesised_alpha:g}",
    where="§2 Hypothesis Test",
    scope="cross-model",
    # |alpha - 0.35| < 2 stderr: the paper's "Hypothesized alpha 0.35", "Within 2 sigma" (§2)
    thresholds={"hypothesised_alpha": 0.35, "alpha_sigmas": 2.0},
    value_format="alpha = {}",
    threshold_format="alpha = {} within the sigma band",
    check=paper.scaling_exponent_matches,
)


@pytest.mark.claim(SCALING_LAW_SIGNIFICANT)
def test_scaling_law_significant(source_summaries, thresholds, record_verdict):
    record_verdict(paper.scaling_law_significant(source_summaries, thresholds))


@pytest.mark.claim(SCALING_EXPONENT_MATCHES)
def test_scaling_exponent_matches(source_summaries, thresholds, record_verdict):
    record_verdict(paper.scaling_exponent_matches(source_summaries, thresholds))
