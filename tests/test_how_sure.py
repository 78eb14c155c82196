"""How sure each verdict is, end to end: the sensitivity table on the paper's numbers, the
bootstrap on measured ones, and every claim under each gain definition."""

from __future__ import annotations

import json

import pytest
from helpers import claims_project, validate
from scipy import stats as scipy_stats

from gainscale.published import published_summaries
from gainscale.results import load_results


@pytest.fixture
def project(pytester, tmp_path, monkeypatch):
    monkeypatch.setenv("GAINSCALE_CACHE", str(tmp_path / "cache"))
    claims_project(pytester)
    return pytester


def cells(run, claim_id: str, source: str = "published") -> dict[str, list]:
    """Per variant, the verdicts of the claim's tests on ``source``."""
    found: dict[str, list] = {}
    for result in run.claims_of(source):
        if result.claim.id == claim_id:
            for cell in result.sensitivity:
                found.setdefault(cell.variant, []).append(cell)
    return found


def test_the_papers_numbers_say_which_variants_flip_claims_1_3b_and_4(project):
    project.runpytest("claims", "--gainscale-source", "published")
    run = load_results(project.path / "reports" / "results.json")
    four = cells(run, "mlp_contraction_falls")
    assert four["exact p-values"][0].value == pytest.approx(0.0625, abs=1e-12) and four["exact p-values"][0].verdict == "failed"
    without_last = four["without the last layer"][0]
    shares = [100 * s.mlp_contracting / (s.n_layers - 1) for s in published_summaries()]  # the last MLP expands in all 8
    expected = scipy_stats.spearmanr([s.n_params for s in published_summaries()], shares, alternative="less").pvalue
    assert without_last.verdict == "passed" and without_last.value == pytest.approx(expected, rel=1e-9)
    three_b = cells(run, "scaling_exponent_matches")["non-embedding parameters"][0]
    assert three_b.verdict == "failed" and three_b.value == pytest.approx(0.2130, abs=5e-5)

    report = (project.path / "reports" / "REPORT.md").read_text()
    assert "- **attention\\_contractive**: failed, but passes under without pythia-6.9b" in report
    assert "- **scaling\\_exponent\\_matches**: passed, but fails under non-embedding parameters" in report
    assert "- **mlp\\_contraction\\_falls**: failed, but passes under without the last layer, without pythia-160m, without pythia-1.4b" in report
    assert "| Spearman | rho = -0.599 | 0.0584 | 0.0625 |" in report and "| Kendall | tau = -0.473 | 0.0525 | 0.0688 |" in report
    outlier = next(line for line in report.splitlines() if line.startswith("| pythia-2.8b | -0.290"))
    assert "-1.97 / -3.04" in outlier and "**outlier**" in outlier
    assert "cannot reject any hypothesised alpha from 0.107 to 0.422" in report and "a 90.8% interval; 95% takes 2.447σ" in report
    for note in ("± 1 standard error", "do not follow from its own fit", "4 short English prompts", "96.9% is 31 of 32"):
        assert note in report, note
    assert "Over resampled prompts: not available (published kept no per-prompt gains to resample)" in report


def test_results_json_carries_each_claims_sensitivity_and_its_sentence(project):
    """The table the report prints, "without <model>" cells and sentence included, is in results.json, schema-valid."""
    project.runpytest("claims", "--gainscale-source", "published")
    path = project.path / "reports" / "results.json"
    data = validate(path)
    (published,) = [s for s in data["sources"] if s["info"]["name"] == "published"]
    table = {column["claim"]: column for column in published["sensitivity"]}
    assert list(table) == ["attention_contractive", "final_mlp_expands", "scaling_law_significant",
                           "scaling_exponent_matches", "mlp_contraction_falls"]
    cells = {claim: {c["variant"]: c for c in column["cells"]} for claim, column in table.items()}
    assert table["attention_contractive"]["flips"] == ["without pythia-6.9b"]
    assert cells["attention_contractive"]["without pythia-6.9b"]["verdict"] == "passed"
    assert cells["attention_contractive"]["without pythia-6.9b"]["message"] == "7 of 7 other models pass"
    assert table["scaling_exponent_matches"]["flips"] == ["non-embedding parameters"]
    assert cells["scaling_exponent_matches"]["non-embedding parameters"]["value"] == pytest.approx(0.2130, abs=5e-5)
    assert table["mlp_contraction_falls"]["flips"] == ["without the last layer", "without pythia-160m", "without pythia-1.4b"]
    assert (table["mlp_contraction_falls"]["verdict"], table["mlp_contraction_falls"]["value"]) == ("failed", pytest.approx(0.0584, abs=5e-5))
    assert table["final_mlp_expands"]["flips"] == [] and table["final_mlp_expands"]["robustness"].startswith("robust: passed")

    report = (project.path / "reports" / "REPORT.md").read_text()
    for column in table.values():  # the report prints the stored sentence, not one of its own
        assert f"- **{column['claim'].replace('_', chr(92) + '_')}**: {column['robustness']}." in report
    (trend,) = [e for c in data["claims"] for e in c["evidence"] if e["type"] == "trend_test"]
    assert round(trend["power"], 2) == 0.44 and trend["n_for_power_80"] == 17
    assert load_results(path).source("published").claim_sensitivity("mlp_contraction_falls").flips == tuple(table["mlp_contraction_falls"]["flips"])


def test_measured_sources_get_bootstrap_intervals_stability_and_every_gain_definition(project, tiny_cache):
    args = ["claims", "--gainscale-suite", "tiny", "--gainscale-source", "measured", "--gainscale-cache", str(tiny_cache),
            "--gainscale-bootstrap-resamples", "200"]
    project.runpytest(*args, "--gainscale-report", "first")
    project.runpytest(*args, "--gainscale-report", "again")
    project.runpytest(*args, "--gainscale-report", "other", "--gainscale-bootstrap-seed", "7")
    first, again, other = (load_results(project.path / name / "results.json") for name in ("first", "again", "other"))

    measured = first.source("measured")
    assert set(measured.uncertainty) == {"tiny-xs", "tiny-s", "tiny-m", "tiny-l"}
    large = measured.uncertainty["tiny-l"]
    assert large.resamples == 200 and large.final_mlp_gain.lower <= measured.model("tiny-l").final_mlp_gain <= large.final_mlp_gain.upper
    assert len(large.mlp_gains) == 6
    assert again.source("measured").uncertainty == measured.uncertainty  # the seed decides everything
    assert other.source("measured").uncertainty["tiny-l"] != large
    stability = {c.test: c.stability for c in first.claims}
    assert stability == {c.test: c.stability for c in again.claims}
    assert all(s.share is not None and 0 <= s.share <= 1 and s.resamples == 200 for s in stability.values())
    fits = [e for c in first.claims for e in c.evidence if type(e).__name__ == "AlphaBootstrap"]
    assert fits and fits[0].alpha.lower < fits[0].alpha.estimate < fits[0].alpha.upper

    for claim_id in ("attention_contractive", "final_mlp_expands", "scaling_law_significant", "scaling_exponent_matches", "mlp_contraction_falls"):
        variants = cells(first, claim_id, "measured")
        for definition in ("residual", "token_mean", "skip_first"):
            assert all(c.verdict in ("passed", "failed") for c in variants[f"gain {definition}"]), (claim_id, definition)
    report = (project.path / "first" / "REPORT.md").read_text()
    assert "Over resampled prompts (95% bootstrap intervals):" in report and "| gain residual |" in report
    assert "alpha over resampled prompts (200 resamples, seed 0)" in report


def test_the_residual_gain_is_selectable_for_every_claim_and_the_tables_say_they_cannot(project, tiny_cache):
    result = project.runpytest("claims", "--gainscale-suite", "tiny", "--gainscale-cache", str(tiny_cache), "--gainscale-gain", "residual")
    run = load_results(project.path / "reports" / "results.json")
    assert {m.gain_definition for m in run.source("measured").models} == {"residual"}
    assert all(c.verdict is not None for c in run.claims_of("measured"))
    published = run.claims_of("published")
    assert all(c.outcome == "skipped" and "has the paper's gain alone" in c.message for c in published)
    assert json.loads((project.path / "reports" / "results.json").read_text())["provenance"]["settings"]["suite"] == "tiny"
    assert result.ret in (0, 1)
