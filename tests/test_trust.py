"""The regression loop never passes by accident: strict runs fail on missing numbers, runs that
did not finish say so and destroy nothing, unwritable outputs fail naming the path, reruns leave
committed reports unchanged, and bad input is one clear line before anything runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import claims_project, notebook_file, notebook_row

from gainscale.cli import main as gainscale_cli
from gainscale.writer import PARTIAL


@pytest.fixture
def project(pytester, tmp_path, monkeypatch):
    monkeypatch.setenv("GAINSCALE_CACHE", str(tmp_path / "cache"))
    claims_project(pytester)
    return pytester


def no_cuda() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")


# ---------------------------------------------------------------------------- no vacuous pass


def test_require_measured_fails_every_test_that_got_no_numbers(project):
    """The GPU workflow's command on a machine without CUDA or a filled cache: red, not 19 skips."""
    no_cuda()
    result = project.runpytest("claims", "-m", "gpu", "--gainscale-require-measured")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(errors=19)  # in the fixture that fetches the numbers, before the test body
    result.stdout.fnmatch_lines(["*--gainscale-require-measured: no measurement of this model (float16, prompts *) is "
                                 "cached in *, and cuda is not available here*"])
    ini = project.runpytest("claims", "-m", "gpu", "-o", "gainscale_require_measured=true")
    assert ini.ret == pytest.ExitCode.TESTS_FAILED  # the ini key too


# ---------------------------------------------------------------------------- runs that do not finish

#: a conftest that parks the run in one test until the harness interrupts it
PARK = """
import time
from pathlib import Path

def pytest_runtest_call(item):
    if item.name == "test_final_mlp_expands[published-pythia-1b]":
        Path("parked").write_text("now")
        time.sleep(120)
"""


def _interrupted_run(project, *args) -> subprocess.CompletedProcess:
    with open(project.path / "conftest.py", "a") as conftest:
        conftest.write(PARK)
    process = subprocess.Popen([sys.executable, "-m", "pytest", "claims", "--gainscale-source", "published", "-p", "no:randomly", *args],
                               cwd=project.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not (project.path / "parked").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.stdout.read()
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, output, "")


def test_ctrl_c_writes_a_partial_report_beside_the_complete_one_and_keeps_the_baseline(project):
    project.runpytest("claims", "--gainscale-source", "published", "--gainscale-update-baseline")
    reports = project.path / "reports"
    complete = {p: p.read_bytes() for p in (reports / "REPORT.md", reports / "results.json", reports / "baseline.json")}
    result = _interrupted_run(project, "--gainscale-update-baseline")
    assert result.returncode == pytest.ExitCode.INTERRUPTED, result.stdout
    assert {p: p.read_bytes() for p in complete} == complete  # the last complete report and the baseline, untouched
    assert "the run was interrupted: its partial report is reports/partial/REPORT.md; the last complete report in reports is kept" in result.stdout
    assert "baseline reports/baseline.json was not updated" in result.stdout
    partial = (reports / "partial" / "REPORT.md").read_text()
    assert "> **This run was interrupted**: the report shows only what ran." in partial.splitlines()[2]
    stopped = json.loads((reports / "partial" / "results.json").read_text())["interruption"]
    assert stopped["reason"] == "interrupted"
    assert "claims/test_mlp_contraction_falls.py::test_mlp_contraction_falls[published]" in stopped["not_run"]


def test_a_complete_run_clears_an_old_partial_report(project):
    (project.path / "reports" / "partial").mkdir(parents=True)
    (project.path / "reports" / "partial" / "REPORT.md").write_text("stale")
    project.runpytest("claims", "--gainscale-source", "published")
    assert not (project.path / "reports" / "partial").exists()


def test_x_stops_early_and_says_so(project):
    """With no complete report before it, the run says so rather than claim to keep one."""
    result = project.runpytest("claims", "--gainscale-source", "published", "-x")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    text = (project.path / "reports" / "partial" / "results.json").read_text()
    results = json.loads(text)
    assert results["interruption"]["reason"] == "stopped early" and len(results["interruption"]["not_run"]) > 0
    # a reader opening the file sees it at once, before thousands of lines of claims and models
    assert text.splitlines()[1:4] == [' "gainscale_results": 3,', ' "interruption": {', '  "reason": "stopped early",']
    assert not (project.path / "reports" / "results.json").exists()
    result.stdout.fnmatch_lines(["the run was stopped early: its partial report is reports/partial/REPORT.md; "
                                 "there was no complete report in reports to keep"])
    assert "is kept" not in result.stdout.str()

    project.runpytest("claims", "--gainscale-source", "published")
    again = project.runpytest("claims", "--gainscale-source", "published", "-x")
    again.stdout.fnmatch_lines(["the run was stopped early: its partial report is reports/partial/REPORT.md; "
                                "the last complete report in reports is kept"])


def test_git_ignores_the_partial_report_beside_every_committed_report():
    """An interrupted `make claims` (or a SmolLM2 run into reports/smollm2) leaves `git status` clean."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    reports = sorted(p.parent.relative_to(root) for p in (root / "reports").rglob("REPORT.md"))
    assert Path("reports") in reports and Path("reports/smollm2") in reports
    partial = [str(directory / PARTIAL / name) for directory in reports for name in ("REPORT.md", "results.json", "figures/a.png")]
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *partial], cwd=root, capture_output=True, text=True, timeout=30)
    assert ignored.stdout.split() == partial


# ---------------------------------------------------------------------------- outputs that cannot be written


def test_a_report_directory_that_is_a_file_fails_the_run_naming_it(project):
    (project.path / "occupied").write_text("a file")
    result = project.runpytest("claims", "--gainscale-source", "published", "-k", "final_mlp", "--gainscale-report", "occupied")
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # every test passed; the report was asked for and not written
    result.stdout.fnmatch_lines(["gainscale: could not write the report to occupied: cannot write occupied/results.json "
                                 "(occupied is a file, not a directory)"])
    assert "cache" not in result.stdout.str().split("gainscale: could not write")[1].splitlines()[0]


def test_a_baseline_that_cannot_be_written_fails_the_run_naming_it(project):
    (project.path / "occupied").write_text("a file")
    result = project.runpytest("claims", "--gainscale-source", "published", "-k", "final_mlp", "--gainscale-update-baseline",
                               "--gainscale-baseline", "occupied/baseline.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["gainscale: could not write the baseline: cannot write occupied/baseline.json "
                                 "(occupied is a file, not a directory)"])


# ---------------------------------------------------------------------------- committed reports stay as they are


def test_a_rerun_on_unchanged_inputs_leaves_the_report_byte_identical(project):
    """This repository's pytest.ini sets gainscale_report_dates = false, as a project with a committed report would."""
    project.runpytest("claims", "--gainscale-source", "published")
    files = sorted(p for p in (project.path / "reports").rglob("*") if p.is_file())
    before = {p: p.read_bytes() for p in files}
    time.sleep(1.1)  # a timestamp would differ by now
    project.runpytest("claims", "--gainscale-source", "published")
    assert {p: p.read_bytes() for p in files} == before
    assert "date" not in json.loads((project.path / "reports" / "results.json").read_text())["provenance"]


def test_reports_are_dated_unless_the_project_says_otherwise(pytester, tmp_path, monkeypatch):
    monkeypatch.setenv("GAINSCALE_CACHE", str(tmp_path / "cache"))
    claims_project(pytester)
    ini = pytester.path / "pytest.ini"
    ini.write_text(ini.read_text().replace("gainscale_report_dates = false\n", ""))
    pytester.runpytest("claims", "--gainscale-source", "published", "-k", "final_mlp")
    provenance = json.loads((pytester.path / "reports" / "results.json").read_text())["provenance"]
    assert provenance["date"].startswith("20") and "git_commit" in provenance


# ---------------------------------------------------------------------------- bad input: one line, nothing run


@pytest.mark.parametrize(("args", "line"), [
    (["--gainscale-device", "gpu"], "*--gainscale-device / gainscale_device: invalid device 'gpu'; use cpu, cuda, cuda:N (N = 0, 1, ...), mps or auto*"),
    (["--gainscale-device", "cpu:0"], "*invalid device 'cpu:0'*"),
    (["--gainscale-prompts", "missing.txt"], "*missing.txt: cannot read the prompt file (No such file or directory)*"),
    (["--gainscale-cache", "a-file"], "*the cache path a-file is a file, not a directory; pass another with --gainscale-cache or GAINSCALE_CACHE*"),
])
def test_a_bad_option_is_one_usage_error_before_any_test(project, args, line):
    (project.path / "a-file").write_text("not a directory")
    result = project.runpytest("claims", "--gainscale-suite", "tiny", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([line])
    assert "Traceback" not in result.stderr.str() and "passed" not in result.stdout.str()


def test_a_revision_of_a_local_directory_is_refused(small_model_dir, tmp_path, capsys):
    assert gainscale_cli(["measure", str(small_model_dir), "--revision", "step1000", "--cache", str(tmp_path)]) == 2
    assert "is a local directory, which has no revisions; drop --revision step1000" in capsys.readouterr().err
    assert not (tmp_path / "measurements").exists()


def test_a_notebook_row_with_a_zero_gain_is_refused_at_import(tmp_path, capsys):
    row = notebook_row("m", 1000, [0.5, 0.0], [0.9, 1.5])
    file = notebook_file(tmp_path / "r.json", [row])
    assert gainscale_cli(["import-notebook", str(file), "--name", "nb", "--cache", str(tmp_path / "cache")]) == 2
    assert "models[0] (m) layer 1: field 'attn_gains' is 0.0; a gain is a ratio of norms and must be > 0" in capsys.readouterr().err
    assert not (tmp_path / "cache" / "sets").exists()


# ---------------------------------------------------------------------------- readable output


def test_verdict_lines_are_whole_in_a_log_and_failures_carry_no_fixture_traceback(project):
    result = project.runpytest("claims", "--gainscale-source", "published")
    line = next(line for line in result.stdout.lines if line.startswith("mlp_contraction_falls"))
    assert line.endswith("about 17 models would give 80%") and len(line) > 120  # not cut at the width
    failures = result.stdout.str().split("= FAILURES =")[1].split("= gainscale claims =")[0]
    assert "pythia-6.9b: 31 of 32 attention layers contract = 96.875% < 97%" in failures
    assert "fixtures.py" not in failures and "def record" not in failures and "Traceback" not in failures


def test_the_version_is_one_flag_away():
    out = subprocess.run([sys.executable, "-m", "gainscale.cli", "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("gainscale ")


def test_nothing_in_the_project_points_outside_it():
    """A clone elsewhere has no workspace folder beside it: the project cites the paper by its public home instead."""
    root = Path(__file__).resolve().parents[1]
    tracked = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True).stdout.split()
    offenders = [name for name in tracked if name.endswith((".py", ".md", ".json", ".toml", ".ini", ".txt", ".yml", ".yaml"))
                 and name != os.path.relpath(__file__, root)
                 and any(mark in (root / name).read_text(encoding="utf-8", errors="replace") for mark in ("../" + "shared", "REFERENCE" + ".md"))]
    assert offenders == []
