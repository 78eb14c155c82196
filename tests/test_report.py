"""The report: written from test outcomes, faithful to what ran, robust to failures."""

from __future__ import annotations

import json
import re

import pytest
from helpers import claims_project

import gainscale.figures
from gainscale.report import escape, render_markdown
from gainscale.results import ClaimInfo, ClaimResult, RunResult, SourceInfo, SourceResult
from gainscale.summary import ModelSummary


@pytest.fixture
def project(pytester, tmp_path, monkeypatch):
    monkeypatch.setenv("GAINSCALE_CACHE", str(tmp_path / "cache"))
    claims_project(pytester)
    return pytester


def results_of(pytester) -> dict:
    return json.loads((pytester.path / "reports" / "results.json").read_text())


def claim(results: dict, test: str) -> dict:
    """The result of the test whose name (with its parameters) is ``test``."""
    return next(c for c in results["claims"] if c["test"].endswith("::" + test))


def source(results: dict, name: str) -> dict:
    return next(s for s in results["sources"] if s["info"]["name"] == name)


def test_published_run_leaves_report_figures_and_results(project):
    result = project.runpytest("claims", "--gainscale-source", "published")
    result.stdout.fnmatch_lines(["*gainscale claims*", "attention_contractive     published  7 passed, 1 failed: pythia-6.9b*", "report: *REPORT.md*"])
    results = results_of(project)
    assert len(results["claims"]) == 19
    failing = claim(results, "test_attention_contractive[published-pythia-6.9b]")
    assert failing["claim"]["id"] == "attention_contractive" and failing["claim"]["thresholds"] == {"attention_contracting_min_pct": 97.0}
    assert {k: failing[k] for k in ("test", "module", "source", "model", "outcome", "value", "threshold", "message", "verdict", "tracked")} == {
        "test": "claims/test_attention_contractive.py::test_attention_contractive[published-pythia-6.9b]",
        "module": "claims/test_attention_contractive.py", "source": "published", "model": "pythia-6.9b", "outcome": "failed",
        "value": 96.875, "threshold": 97.0, "message": "pythia-6.9b: 31 of 32 attention layers contract = 96.875% < 97%",
        "verdict": "failed", "tracked": {"attn_contracting": ["count", 31.0]},
    }
    (fit,) = claim(results, "test_scaling_law_significant[published]")["evidence"]
    assert fit["type"] == "power_law_fit" and round(fit["alpha"], 4) == 0.2648 and fit["n_models"] == 8
    published = source(results, "published")
    assert published["info"]["recorded_fit"]["exponent_alpha"] == 0.265
    twelve = published["models"][-1]
    assert {k: twelve[k] for k in ("model", "n_params", "n_layers", "final_mlp_gain", "attn_contracting", "mlp_contracting", "attn_gains")} == {
        "model": "pythia-12b", "n_params": 11_846_072_320, "n_layers": 36, "final_mlp_gain": 7.71,
        "attn_contracting": 35, "mlp_contracting": 2, "attn_gains": None}
    assert twelve["attn_contracting_pct"] == pytest.approx(97.222, abs=1e-3) and twelve["n_embedding_params"] == 2 * 50688 * 5120
    assert results["provenance"]["command"].startswith("pytest claims --gainscale-source published")
    report = (project.path / "reports" / "REPORT.md").read_text()
    assert "![Final MLP gain scaling and sublayer contraction, published](figures/scaling_published.png)" in report
    assert (project.path / "reports" / "figures" / "scaling_published.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| pythia-6.9b | 6,857,302,016 | 32 | **6.3x** | 31/32 = 96.9% | 18/32 = 56.2% |" in report


def test_a_claim_made_to_fail_shows_failed_with_its_numbers(pytester, tmp_path, monkeypatch):
    monkeypatch.setenv("GAINSCALE_CACHE", str(tmp_path / "cache"))
    claims_project(pytester, ini_extra="gainscale_threshold = final_mlp_gain_min=2\n")
    pytester.runpytest("claims", "--gainscale-source", "published")
    results = results_of(pytester)
    assert claim(results, "test_final_mlp_expands[published-pythia-70m]")["outcome"] == "failed"
    report = (pytester.path / "reports" / "REPORT.md").read_text()
    assert "| the final layer's MLP always expands (gain \\> 2) (§3, §8.2) | ❌ FAILED | 6 of 8 models pass | gain \\> 2 | failed: pythia-70m: final MLP gain 1.5 \\<= 2; failed: pythia-410m: final MLP gain 1.78 \\<= 2 |" in report


def test_a_skipped_model_shows_skipped_with_its_reason(project):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    project.runpytest("claims")
    skipped = claim(results_of(project), "test_final_mlp_expands[measured-pythia-1b]")
    assert skipped["outcome"] == "skipped" and "cuda is not available here" in skipped["message"]
    report = (project.path / "reports" / "REPORT.md").read_text()
    assert "| the final layer's MLP always expands (gain \\> 1) (§3, §8.2) | ⏭ skipped |  |  | 8 skipped: no measurement of this model" in report


def test_one_model_selected_reports_that_model_alone(project):
    project.runpytest("-k", "published-pythia-12b")
    results = results_of(project)
    assert [c["test"].partition("::")[2] for c in results["claims"]] == [
        "test_attention_contractive[published-pythia-12b]", "test_final_mlp_expands[published-pythia-12b]"]
    assert [m["model"] for m in source(results, "published")["models"]] == ["pythia-12b"]
    assert all(c["evidence"] == [] for c in results["claims"])
    report = (project.path / "reports" / "REPORT.md").read_text()
    assert report.count("| not run | | | not selected in this session") == 3 and "### Scaling law" not in report


def test_report_none_writes_nothing(project):
    project.runpytest("claims", "--gainscale-source", "published", "--gainscale-report", "none")
    assert not (project.path / "reports").exists()


def test_a_figure_that_fails_is_named_and_the_markdown_still_written(project, monkeypatch):
    def broken(run, directory):
        raise RuntimeError("no display for you")

    monkeypatch.setattr(gainscale.figures, "draw_figures", broken)
    result = project.runpytest("claims", "--gainscale-source", "published")
    result.stdout.fnmatch_lines(["figure not drawn: figures: RuntimeError: no display for you"])
    report = (project.path / "reports" / "REPORT.md").read_text()
    assert "Figures that could not be drawn:" in report and "RuntimeError: no display for you" in report
    assert json.loads((project.path / "reports" / "results.json").read_text())["claims"]


def test_a_crashed_worker_loses_no_other_outcome(project):
    """os._exit in one test kills its xdist worker; that test shows failed, all others are kept."""
    with open(project.path / "conftest.py", "a") as conftest:
        conftest.write(
            "\nimport os\n"
            "def pytest_runtest_call(item):\n"
            "    if item.name == 'test_final_mlp_expands[published-pythia-1b]':\n"
            "        os._exit(1)\n"
        )
    project.runpytest("claims", "--gainscale-source", "published", "-n", "2")
    results = results_of(project)
    assert len(results["claims"]) == 19
    crashed = claim(results, "test_final_mlp_expands[published-pythia-1b]")
    assert crashed["outcome"] == "failed" and crashed["model"] == "pythia-1b"
    assert claim(results, "test_final_mlp_expands[published-pythia-12b]")["outcome"] == "passed"


def test_xdist_and_serial_runs_write_the_same_results(project, tmp_path):
    common = ["claims", "--gainscale-suite", "tiny", "--gainscale-cache", str(tmp_path / "tiny")]
    project.runpytest(*common, "--gainscale-report", "serial")
    project.runpytest(*common, "--gainscale-report", "parallel", "-n", "2")
    serial = json.loads((project.path / "serial" / "results.json").read_text())
    parallel = json.loads((project.path / "parallel" / "results.json").read_text())
    for run in (serial, parallel):  # the first run measured, the second read the cache
        run.pop("provenance")
        for model in source(run, "measured")["provenance"].values():
            model.pop("obtained")
    assert serial == parallel
    assert len(serial["claims"]) == 30 and [s["info"]["name"] for s in serial["sources"]] == ["published", "measured"]
    assert (project.path / "parallel" / "figures" / "measured" / "tiny-l.png").exists()


def test_crafted_names_cannot_break_the_markdown():
    evil = "x](http://evil) | <script>alert(1)</script> **bold** `code`\n# heading"
    claim_info = ClaimInfo(evil, f"{evil} holds", "model", where=evil)
    result = ClaimResult(claim_info, "t", "t.py", evil, evil, "failed", "failed", 0.5, 1.0, f"{evil}: final MLP gain 0.5 <= 1")
    models = (ModelSummary(evil, 10, 2, 0.5, 1, 2),)
    run = RunResult({"command": "pytest `x`"}, (result,), (SourceResult(SourceInfo(evil, evil, evil, (evil,)), models, {evil: {evil: evil}}),))
    text = render_markdown(run, [], [])
    rows = [line for line in text.splitlines() if line.startswith("| x")]
    # summary (5 cells), model (6), provenance (2): the name's pipes are escaped
    assert [row.count("|") - row.count("\\|") for row in rows] == [6, 7, 3]
    assert not re.search(r"(?<!\\)\]\(", text), "an unescaped ]( would make a link"
    assert not re.search(r"(?<!\\)<script", text) and "\n# heading" not in text
    assert escape("a_b*c") == "a\\_b\\*c"
