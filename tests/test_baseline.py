"""Baselines: same state green, flips and drifts fail, known failures xfail, nothing silent."""

from __future__ import annotations

import json

import pytest
from helpers import claims_project

from gainscale.baseline import Baseline, Tolerances
from gainscale.claims import final_mlp_expands
from gainscale.errors import BaselineError
from gainscale.summary import ModelSummary

ODD_PROMPTS = "Numbers: 1 2 3 4 5 6 7 8 9 10 11 12.\nZzz qqq xxx!!! ???\nA\n"


@pytest.fixture
def project(pytester, tmp_path, monkeypatch, tiny_cache):
    monkeypatch.setenv("GAINSCALE_CACHE", str(tiny_cache))
    claims_project(pytester)
    return pytester


TINY = ["claims", "--gainscale-suite", "tiny", "--gainscale-baseline", "baseline.json"]


def run(pytester, *args, ini: str = ""):
    if ini:
        with open(pytester.path / "pytest.ini", "a") as handle:
            handle.write(ini)
    return pytester.runpytest(*TINY, *args)


def outcomes(pytester) -> dict[str, dict]:
    return {c["test"]: c for c in json.loads((pytester.path / "reports" / "results.json").read_text())["claims"]}


def test_same_state_is_green_and_known_failures_are_xfail(project):
    written = run(project, "--gainscale-update-baseline")
    written.stdout.fnmatch_lines(["baseline written: *baseline.json (30 tests)"])
    baseline = json.loads((project.path / "baseline.json").read_text())
    assert baseline["tests"]["test_final_mlp_expands[measured-tiny-xs]"]["outcome"] == "failed"
    assert set(baseline["models"]) == {"published", "measured"} and "alpha" in baseline["fits"]["measured"]

    again = run(project)
    assert again.ret == 0
    failing = [t for t, c in baseline["tests"].items() if c["outcome"] == "failed"]
    again.assert_outcomes(passed=30 - len(failing), xfailed=len(failing))
    result = outcomes(project)["test_final_mlp_expands[measured-tiny-xs]"]
    assert result["outcome"] == "xfailed" and result["message"].startswith("tiny-xs: final MLP gain 0.08")
    assert result["baseline"]["message"].startswith("known failing claim, recorded in baseline")
    report = (project.path / "reports" / "REPORT.md").read_text()
    assert "(baseline: failed, 0.08" in report


def test_a_flipped_verdict_fails_as_a_regression_or_improvement(project):
    run(project, "--gainscale-update-baseline")
    result = run(project, ini="gainscale_final_mlp_gain_min = 0.01\ngainscale_attention_contracting_min_pct = 101\n")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    results = outcomes(project)
    improved = results["test_final_mlp_expands[measured-tiny-xs]"]
    assert improved["outcome"] == "regression" and improved["message"].startswith("IMPROVEMENT: tiny-xs: final MLP gain")
    assert "accept it with --gainscale-update-baseline" in improved["message"]
    regressed = results["test_attention_contractive[published-pythia-70m]"]
    assert regressed["outcome"] == "regression"
    assert regressed["message"] == (
        "REGRESSION: pythia-70m: 6 of 6 attention layers contract = 100% < 101% (baseline "
        "baseline.json: passed with value 100; now failed with 100)"
    )
    result.stdout.fnmatch_lines(["*REGRESSION: pythia-70m*"])


def test_a_drift_beyond_tolerance_fails_though_the_verdict_holds(project):
    run(project, "--gainscale-update-baseline")
    (project.path / "odd.txt").write_text(ODD_PROMPTS)
    run(project, "--gainscale-prompts", "odd.txt", ini="gainscale_tolerance_gain = 0.01\n")
    drifted = outcomes(project)["test_final_mlp_expands[measured-tiny-l]"]
    assert drifted["outcome"] == "regression" and drifted["verdict"] == "passed"
    assert drifted["message"].startswith("DRIFT beyond tolerance: final_mlp_gain 4.50")
    assert "(tolerance 1%)" in drifted["message"]


def test_missing_and_stale_entries_are_named_never_silently_passed(project):
    run(project, "--gainscale-update-baseline")
    path = project.path / "baseline.json"
    baseline = json.loads(path.read_text())
    del baseline["tests"]["test_final_mlp_expands[measured-tiny-m]"]
    baseline["tests"]["test_final_mlp_expands[measured-tiny-xxl]"] = {"outcome": "passed", "value": 9.0, "tracked": {}}
    path.write_text(json.dumps(baseline))
    result = run(project)
    result.stdout.fnmatch_lines([
        "not in baseline *baseline.json (1): test_final_mlp_expands[[]measured-tiny-m]",
        "in baseline *baseline.json but not evaluated this run (1): test_final_mlp_expands[[]measured-tiny-xxl]",
    ])
    missing = outcomes(project)["test_final_mlp_expands[measured-tiny-m]"]
    assert missing["outcome"] == "failed" and "is not in baseline" in missing["message"]
    report = (project.path / "reports" / "results.json").read_text()
    assert json.loads(report)["baseline"]["not_run"] == ["test_final_mlp_expands[measured-tiny-xxl]"]


def test_another_prompt_set_is_flagged_at_default_tolerances(project):
    """The CPU CI's check: a baseline on the default prompts, a run on others, flagged as such."""
    run(project, "--gainscale-update-baseline")
    (project.path / "odd.txt").write_text(ODD_PROMPTS)
    result = run(project, "--gainscale-prompts", "odd.txt")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    results = outcomes(project)
    assert results["test_attention_contractive[measured-tiny-m]"]["message"].startswith("REGRESSION: tiny-m: 0 of 4")
    assert results["test_final_mlp_expands[measured-tiny-xs]"]["message"].startswith("DRIFT beyond tolerance: final_mlp_gain 0.0840746 -> 0.079")


def test_a_tiny_dtype_drift_is_flagged_at_a_tight_tolerance(project):
    """bfloat16 moves the tiny gains by about 0.02%: within the default 5%, beyond 0.001%."""
    run(project, "--gainscale-update-baseline")
    assert run(project, "--gainscale-dtype", "bfloat16").ret == 0
    result = run(project, "--gainscale-dtype", "bfloat16", ini="gainscale_tolerance_gain = 0.00001\n")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert outcomes(project)["test_final_mlp_expands[measured-tiny-l]"]["message"].startswith("DRIFT")


def test_an_invalid_baseline_file_is_a_usage_error(project):
    (project.path / "baseline.json").write_text("{not json")
    result = project.runpytest(*TINY)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*baseline.json: not a valid baseline JSON file (Expecting property name*"])


def test_a_missing_baseline_file_says_how_to_write_one(project):
    result = project.runpytest("claims", "--gainscale-baseline", "nowhere.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*nowhere.json: no baseline file; write one with --gainscale-update-baseline*"])


def test_tolerances_are_relative_except_counts():
    tolerances = Tolerances()
    assert tolerances.allows("gain", 2.0, 2.09) and not tolerances.allows("gain", 2.0, 2.11)
    assert tolerances.allows("count", 31, 31) and not tolerances.allows("count", 31, 32)
    assert Tolerances(count=1).allows("count", 31, 32)


def test_compare_reports_the_old_and_new_values_side_by_side(tmp_path):
    baseline = Baseline(tmp_path / "b.json", tests={"t": {"outcome": "passed", "value": 1.5, "tracked": {"final_mlp_gain": 1.5}}})
    summary = ModelSummary("m", 10, 2, 0.9, 1, 1)
    comparison = baseline.compare("t", final_mlp_expands(summary, 1.0), Tolerances())
    assert comparison.status == "regression" and comparison.fails
    assert comparison.message.endswith("passed with value 1.5; now failed with 0.9)")


def test_a_baseline_without_format_is_refused(tmp_path):
    path = tmp_path / "b.json"
    path.write_text('{"tests": {}}')
    with pytest.raises(BaselineError, match=r"not a gainscale baseline"):
        Baseline.load(path)
