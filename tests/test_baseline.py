"""Baselines: same state green, flips and drifts fail, known failures xfail, other settings
refused before anything runs, skips never pass for verdicts, and nothing silent."""

from __future__ import annotations

import json
from dataclasses import replace
from glob import escape

import pytest
from helpers import claims_project, notebook_file, synthetic_rows

from gainscale.baseline import Baseline, BaselineEntry, Tolerances
from gainscale.cli import main as gainscale_cli
from gainscale.errors import BaselineError
from gainscale.paper import final_mlp_expands
from gainscale.results import ClaimInfo, ClaimResult, RunResult, SourceInfo, SourceResult
from gainscale.summary import ModelSummary

ODD_PROMPTS = "Numbers: 1 2 3 4 5 6 7 8 9 10 11 12.\nZzz qqq xxx!!! ???\nA\n"
XS = "claims/test_final_mlp_expands.py::test_final_mlp_expands[measured-tiny-xs]"
L = "claims/test_final_mlp_expands.py::test_final_mlp_expands[measured-tiny-l]"


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


def edit_baseline(pytester, change) -> None:
    path = pytester.path / "baseline.json"
    baseline = json.loads(path.read_text())
    change(baseline)
    path.write_text(json.dumps(baseline))


def test_same_state_is_green_and_known_failures_are_xfail(project):
    written = run(project, "--gainscale-update-baseline")
    written.stdout.fnmatch_lines(["baseline written: baseline.json (30 entries written, 0 kept, 0 removed)"])
    baseline = json.loads((project.path / "baseline.json").read_text())
    assert baseline["tests"][XS]["outcome"] == "failed" and baseline["tests"][XS]["module"] == "claims/test_final_mlp_expands.py"
    measured = baseline["sources"]["measured"]["identity"]
    assert {measured["suite"], measured["dtype"], measured["device"]} == {"tiny", "float32", "cpu"}
    assert baseline["thresholds"]["final_mlp_expands"] == {"final_mlp_gain_min": 1.0}

    again = run(project)
    assert again.ret == 0
    failing = [t for t, c in baseline["tests"].items() if c["outcome"] == "failed"]
    again.assert_outcomes(passed=30 - len(failing), xfailed=len(failing))
    result = outcomes(project)[XS]
    assert result["outcome"] == "xfailed" and result["message"].startswith("tiny-xs: final MLP gain 0.08")
    assert result["baseline"]["message"].startswith("known failing claim, recorded in baseline")
    report = (project.path / "reports" / "REPORT.md").read_text()
    assert "(baseline: failed, 0.08" in report


def test_a_flipped_verdict_is_a_regression_or_an_improvement_and_says_which(project):
    run(project, "--gainscale-update-baseline")
    attention_70m = "claims/test_attention_contractive.py::test_attention_contractive[published-pythia-70m]"

    def flip(baseline):
        baseline["tests"][XS]["outcome"] = "passed"  # it fails now: a regression
        baseline["tests"][attention_70m]["outcome"] = "failed"  # it passes now: an improvement

    edit_baseline(project, flip)
    result = run(project)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    results = outcomes(project)
    regressed, improved = results[XS], results[attention_70m]
    assert regressed["outcome"] == "regression" and regressed["message"].startswith("REGRESSION: tiny-xs: final MLP gain")
    assert improved["outcome"] == "improvement" and improved["message"] == (
        "IMPROVEMENT: pythia-70m: 6 of 6 attention layers contract = 100% >= 97% (baseline baseline.json: failed with "
        "value 100; now passed with 100); accept it with --gainscale-update-baseline"
    )
    result.stdout.fnmatch_lines(["attention_contractive *published *1 improvement: IMPROVEMENT: pythia-70m*"])
    report = (project.path / "reports" / "REPORT.md").read_text()
    assert "📈 IMPROVEMENT (accept it)" in report and "🚨 REGRESSION" in report


def test_a_drift_beyond_tolerance_fails_though_the_verdict_holds(project):
    run(project, "--gainscale-update-baseline")
    edit_baseline(project, lambda b: b["tests"][L]["tracked"].update(final_mlp_gain=b["tests"][L]["tracked"]["final_mlp_gain"] * 1.03))
    assert run(project).ret == 0  # 3% is within the default 5%
    run(project, ini="gainscale_tolerance_gain = 0.01\n")
    drifted = outcomes(project)[L]
    assert drifted["outcome"] == "regression" and drifted["verdict"] == "passed"
    assert drifted["message"].startswith("DRIFT beyond tolerance: final_mlp_gain 4.6") and "(tolerance 1%)" in drifted["message"]


@pytest.mark.parametrize(("option", "line"), [
    (["--gainscale-dtype", "bfloat16"],
     "measured: made with dtype float32, this run bfloat16: use --gainscale-dtype float32, or --gainscale-update-baseline to replace it"),
    (["--gainscale-prompts", "odd.txt"],
     "measured: made with prompts 7d45200cd7*, this run *: use --gainscale-prompts with the prompt file whose SHA-256 is 7d45200cd7*"),
    (["--gainscale-threshold", "final_mlp_gain_min=0.5"],
     "claim final_mlp_expands: made with threshold final_mlp_gain_min = 1, this run 0.5: pass --gainscale-threshold "
     "final_mlp_gain_min=1, or --gainscale-update-baseline to replace it"),
])
def test_a_run_under_other_settings_is_refused_before_any_test_runs(project, option, line):
    run(project, "--gainscale-update-baseline")
    (project.path / "odd.txt").write_text(ODD_PROMPTS)
    result = run(project, *option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*baseline.json was made under other settings; nothing was run:", f"  {line}"])
    assert "passed" not in result.stdout.str() and "REGRESSION" not in result.stdout.str()


def test_a_threshold_changed_in_the_claim_itself_is_named_not_a_regression(project):
    run(project, "--gainscale-update-baseline")
    module = project.path / "claims" / "test_final_mlp_expands.py"
    module.write_text(module.read_text().replace('thresholds={"final_mlp_gain_min": 1.0}', 'thresholds={"final_mlp_gain_min": 0.05}'))
    result = run(project)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*claim final_mlp_expands: made with threshold final_mlp_gain_min = 1, this run 0.05: *"])


def test_missing_and_stale_entries_are_named_never_silently_passed(project):
    run(project, "--gainscale-update-baseline")
    medium = "claims/test_final_mlp_expands.py::test_final_mlp_expands[measured-tiny-m]"
    gone = "claims/test_final_mlp_expands.py::test_final_mlp_expands[measured-tiny-xxl]"

    def change(baseline):
        del baseline["tests"][medium]
        baseline["tests"][gone] = {**baseline["tests"][L], "value": 9.0}

    edit_baseline(project, change)
    result = run(project)
    result.stdout.fnmatch_lines([
        escape(f"not in baseline baseline.json (1): {medium}"),
        escape(f"in baseline baseline.json but not evaluated this run (1): {gone}"),
    ])
    missing = outcomes(project)[medium]
    assert missing["outcome"] == "failed" and "is not in baseline" in missing["message"]
    assert json.loads((project.path / "reports" / "results.json").read_text())["baseline"]["not_run"] == [gone]


def test_a_skip_is_not_the_same_verdict(pytester, tmp_path, monkeypatch):
    """A test the baseline holds a verdict for fails when this run reaches none (here: a reference row)."""
    monkeypatch.setenv("GAINSCALE_CACHE", str(tmp_path / "cache"))
    claims_project(pytester)
    assert gainscale_cli(["import-notebook", str(notebook_file(tmp_path / "r.json", synthetic_rows())), "--name", "nb"]) == 0
    args = ["claims", "--gainscale-source", "nb", "--gainscale-baseline", "baseline.json"]
    pytester.runpytest(*args, "--gainscale-update-baseline")
    huge = "claims/test_attention_contractive.py::test_attention_contractive[nb-m-huge]"
    edit_baseline(pytester, lambda b: b["tests"].update({huge: {**b["tests"][huge.replace("m-huge", "m-large")], "value": 100.0}}))
    pytester.runpytest(*args)
    missing = outcomes(pytester)[huge]
    assert missing["outcome"] == "failed" and missing["message"].startswith(
        "MISSING: baseline baseline.json holds passed with value 100, but this run reached no verdict: m-huge: the source gives no per-layer attention gains")


def test_an_update_writes_only_what_ran_prunes_what_no_longer_exists_and_keeps_other_sources(project):
    run(project, "--gainscale-update-baseline")
    old = "claims/test_attention_contractive.py::test_attention_contractive[measured-tiny-old]"
    deleted = "claims/test_deleted.py::test_deleted[published]"
    edit_baseline(project, lambda b: b["tests"].update({old: b["tests"][XS], deleted: {**b["tests"][XS], "module": "claims/test_deleted.py"}}))
    result = run(project, "--gainscale-update-baseline", "--gainscale-source", "measured", "-k", "final_mlp")
    result.stdout.fnmatch_lines([escape(f"baseline written: baseline.json (4 entries written, 26 kept, 2 removed: {old}, {deleted})")])
    tests = json.loads((project.path / "baseline.json").read_text())["tests"]
    assert old not in tests and deleted not in tests and len(tests) == 30
    assert "claims/test_scaling_law.py::test_scaling_law_significant[published]" in tests  # another source's entry, kept


@pytest.mark.parametrize("strict", [[], ["--gainscale-require-measured"]], ids=["lenient", "strict"])
def test_an_update_from_a_run_that_measured_nothing_keeps_that_sources_entries_and_identity(project, tmp_path, monkeypatch, strict):
    """A source none of whose tests reached a verdict (no device, empty cache) is no evidence of changed settings."""
    run(project, "--gainscale-update-baseline")
    before = (project.path / "baseline.json").read_text()
    measured = [t for t, e in json.loads(before)["tests"].items() if e["source"] == "measured"]
    monkeypatch.setenv("GAINSCALE_CACHE", str(tmp_path / "empty-cache"))
    result = run(project, "--gainscale-update-baseline", "--gainscale-device", "cuda", *strict)
    assert result.parseoutcomes().get("skipped", 0) == (0 if strict else len(measured))  # strict: they fail instead
    result.stdout.fnmatch_lines([f"baseline written: baseline.json ({30 - len(measured)} entries written, {len(measured)} kept: "
                                 "measured reached no verdict in this run, 0 removed)"])
    assert (project.path / "baseline.json").read_text() == before  # its entries and its identity, untouched


def test_an_unknown_identity_never_replaces_a_known_one_and_a_source_without_entries_is_not_recorded(tmp_path):
    """A baseline holds an identity only for a source it has entries of, and never an empty one."""
    entry = BaselineEntry("claims/test_x.py", "published", "final_mlp_expands", "passed", 1.5, {"final_mlp_gain": 1.5})
    known = {"kind": "measured", "identity": {"suite": "tiny", "dtype": "float32"}}
    baseline = Baseline(tmp_path / "b.json", sources={"published": {"kind": "published", "identity": {"gain": "paper"}},
                                                      "measured": known, "gone": known},
                        tests={"t": entry, "m": replace(entry, source="measured")})
    unknown = SourceResult(SourceInfo("measured", "unknown"), (), {}, {})
    published = SourceResult(SourceInfo("published", "published", identity={"gain": "paper"}), (), {}, {})
    claim = ClaimInfo("final_mlp_expands", "", "model", {"final_mlp_gain_min": 1.0})
    reached = ClaimResult(claim, "t", "claims/test_x.py", "published", "m", "passed", "passed", 1.5, 1.0, "")
    skipped = ClaimResult(claim, "m", "claims/test_x.py", "measured", "m", "skipped", None, None, None, "no device")
    update = baseline.updated(RunResult({}, (reached, skipped), (published, unknown)), None, tmp_path)
    assert update.baseline.sources == {"published": baseline.sources["published"], "measured": known}
    assert set(update.baseline.tests) == {"t", "m"} and update.summary.removed == () and update.unreached == {"measured": 1}

    unrecorded = Baseline(tmp_path / "b.json", sources={"measured": {"kind": "unknown", "identity": {}}}, tests={"t": entry})
    assert unrecorded.updated(RunResult({}, (reached, skipped), (published, unknown)), None, tmp_path).baseline.sources == {
        "published": baseline.sources["published"]}


def test_entries_without_recorded_settings_are_refused_in_one_line(tmp_path):
    """A baseline whose source has entries but an empty identity (an older bug wrote them) cannot vouch for them."""
    entry = BaselineEntry("claims/test_x.py", "measured", "final_mlp_expands", "passed", 1.5)
    baseline = Baseline(tmp_path / "b.json", sources={"measured": {"kind": "unknown", "identity": {}}}, tests={"t": entry})
    assert baseline.setting_differences({"measured": {"suite": "tiny", "dtype": "float32"}}) == [
        "measured: the baseline does not record the settings its entries were made under: --gainscale-update-baseline to replace them"]


def test_a_hand_edited_baseline_of_a_wrong_type_names_the_entry_and_field(project):
    run(project, "--gainscale-update-baseline")
    edit_baseline(project, lambda b: b["tests"][L].update(value="4.5"))
    result = run(project)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*" + escape(f"baseline.json: entry tests['{L}']: field 'value' must be a finite number or null, not '4.5'") + "*"])


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
    assert Tolerances(default=0.5).allows("my_kind", 1.0, 1.4)  # a kind of one's own claim


def test_compare_reports_the_old_and_new_values_side_by_side(tmp_path):
    entry = BaselineEntry("claims/test_x.py", "published", "final_mlp_expands", "passed", 1.5, {"final_mlp_gain": 1.5})
    baseline = Baseline(tmp_path / "b.json", tests={"t": entry})
    summary = ModelSummary("m", 10, 2, 0.9, 1, 1)
    comparison = baseline.compare("t", final_mlp_expands(summary, {"final_mlp_gain_min": 1.0}), Tolerances())
    assert comparison.status == "regression" and comparison.fails
    assert comparison.message.endswith("passed with value 1.5; now failed with 0.9)")


def test_a_baseline_of_another_format_is_refused(tmp_path):
    path = tmp_path / "b.json"
    path.write_text('{"gainscale_baseline": 1, "tests": {}}')
    with pytest.raises(BaselineError, match=r"not a gainscale baseline of format 2 \(found 1\)"):
        Baseline.load(path)
