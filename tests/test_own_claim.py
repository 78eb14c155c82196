"""A researcher's own claims with only gainscale installed: the example project, the typed
results it leaves (schema, notebooks), and the layering that keeps the report light."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from helpers import PROJECT, claims_project, validate

from gainscale.files import ordered_json
from gainscale.measurer import Measurer
from gainscale.results import RunResult, load_results
from gainscale.settings import Settings
from gainscale.suites import load_suite

EXAMPLE = PROJECT / "examples" / "own_claim"


@pytest.fixture
def example(pytester, tiny_cache, monkeypatch):
    """The example copied into an empty directory outside this repository (no conftest, no fixtures/)."""
    shutil.copytree(EXAMPLE, pytester.path, dirs_exist_ok=True)
    monkeypatch.setenv("GAINSCALE_CACHE", str(tiny_cache))
    assert PROJECT not in pytester.path.parents
    return pytester


def test_the_example_project_runs_its_own_claims_with_only_gainscale_installed(example, tiny_cache):
    result = example.runpytest_subprocess("--gainscale-suite", "tiny", "-p", "no:cacheprovider")
    suite = load_suite("tiny", tiny_cache)
    measurer = Measurer(suite, Settings(suite="tiny", cache=tiny_cache, progress=False))
    first_gains = {spec.name: measurer.get(spec)[0].attn_gains[0] for spec in suite.models}  # from the cache
    expanding = sum(g > 1 for g in first_gains.values())
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 5, result.stdout.str()

    run = load_results(example.path / "reports" / "results.json")
    per_model = [c for c in run.claims if c.claim.id == "first_attention_expands"]
    assert {c.model: c.value for c in per_model} == pytest.approx(first_gains, rel=1e-12)
    assert sum(c.outcome == "passed" for c in per_model) == expanding
    (trend,) = [c for c in run.claims if c.claim.id == "mean_attention_gain_falls"]
    assert trend.claim.scope == "suite" and trend.verdict in ("passed", "failed") and trend.evidence
    result.stdout.fnmatch_lines(["first_attention_expands * measured *", "mean_attention_gain_falls * measured *"])

    report = (example.path / "reports" / "REPORT.md").read_text()
    assert "### Trend with model size" in report and "SCALING_LAW" not in report  # nothing of the paper leaks in
    for row in expected_summary_rows(suite, measurer):
        assert row in report, f"{row}\nnot in\n{report}"
    validate(example.path / "reports" / "results.json")


def expected_summary_rows(suite, measurer) -> list[str]:
    """The example's two rows of REPORT.md's executive summary, from the cached gains and scipy alone."""
    from scipy import stats

    gains = {spec.name: measurer.get(spec)[0] for spec in suite.models}  # smallest first
    first = {name: m.attn_gains[0] for name, m in gains.items()}
    above = {name: sum(o / i > 1 for i, o in zip(m.attention.inputs[0], m.attention.outputs[0])) for name, m in gains.items()}
    failing = "; ".join(f"failed: {name}: layer 0 attention gain {g:.3g} \\<= 1 ({above[name]} of 40 prompts above)"
                        for name, g in first.items() if g <= 1)
    passing = sum(g > 1 for g in first.values())
    means = [sum(m.attn_gains) / len(m.attn_gains) for m in gains.values()]
    rho, p = stats.spearmanr([m.n_params for m in gains.values()], means, alternative="less")
    badge = "✅ PASSED" if p < 0.05 else "❌ FAILED"
    return [
        f"| the first layer's attention expands (gain \\> 1) in every model (my notes, section 1) | "
        f"{'✅ PASSED' if passing == 4 else '❌ FAILED'} | {passing} of 4 models pass | gain \\> 1 | {failing} |",
        f"| the mean attention gain falls as models grow (one-sided Spearman p \\< 0.05) (my notes, section 2) | {badge} | "
        f"p = {p:.4g} | p \\< 0.05 | Spearman rho = {rho:.3f}, one-sided p = {p:.4f} over 4 models; mean attention gain "
        f"{means[0]:.3g} (tiny-xs) -\\> {means[-1]:.3g} (tiny-l) |",
    ]


def test_the_example_held_to_its_baseline_passes_until_a_verdict_changes(example):
    """A user's claims under the baseline loop: record, then green with the known failures as
    xfails, then a flipped verdict fails, naming it, and leaves the baseline as it was."""
    from gainscale.baseline import Baseline

    args = ("-p", "no:cacheprovider", "--gainscale-bootstrap-resamples", "0", "--gainscale-baseline", "baseline.json")
    example.runpytest(*args, "--gainscale-update-baseline")
    recorded = Baseline.load(example.path / "baseline.json").tests
    assert len(recorded) == 5
    failing = sum(entry.outcome == "failed" for entry in recorded.values())

    held = example.runpytest(*args)
    held.assert_outcomes(passed=5 - failing, xfailed=failing)
    assert held.ret == 0

    test_file = example.path / "test_my_claims.py"
    source = test_file.read_text()
    assert source.count("passed=gain > minimum,") == 1
    test_file.write_text(source.replace("passed=gain > minimum,", "passed=gain <= minimum,"))  # every per-model verdict flips
    changed = example.runpytest(*args)
    first = {test: entry for test, entry in recorded.items() if "test_first_attention_expands" in test}
    assert len(first) == 4
    changed.assert_outcomes(failed=4, **{"passed" if recorded_passed(recorded) else "xfailed": 1})
    for test, entry in first.items():
        model = test.partition("[measured-")[2].rstrip("]")
        changed.stdout.fnmatch_lines([f"{'REGRESSION' if entry.outcome == 'passed' else 'IMPROVEMENT'}: {model}: layer 0 attention gain*"])
    assert Baseline.load(example.path / "baseline.json").tests == recorded


def recorded_passed(recorded) -> bool:
    """Whether the baseline holds the example's cross-model claim as passed."""
    (entry,) = [e for test, e in recorded.items() if "test_mean_attention_gain_falls" in test]
    return entry.outcome == "passed"


def test_results_json_follows_its_schema_and_reads_back_whole(pytester, tmp_path, monkeypatch):
    monkeypatch.setenv("GAINSCALE_CACHE", str(tmp_path / "cache"))
    claims_project(pytester)
    pytester.runpytest("claims", "--gainscale-source", "published")
    path = pytester.path / "reports" / "results.json"
    data = validate(path)
    run = load_results(path)
    assert run.to_json() == data  # one schema both ways
    assert RunResult.from_json(json.loads(json.dumps(run.to_json()))) == run
    assert ordered_json(run.to_json()) == path.read_text()  # read and written again: the same bytes
    assert list(data) == ["gainscale_results", "interruption", "outcomes", "baseline", "provenance", "declared", "claims", "sources"]


def test_results_of_format_2_are_read_with_what_they_lack_derived(pytester, tmp_path, monkeypatch):
    """Format 2 had no sensitivity table and no control_of: reading it rebuilds both as a run would."""
    monkeypatch.setenv("GAINSCALE_CACHE", str(tmp_path / "cache"))
    claims_project(pytester)
    pytester.runpytest("claims", "--gainscale-source", "published")
    current = json.loads((pytester.path / "reports" / "results.json").read_text())
    older = {**current, "gainscale_results": 2,
             "claims": [{k: v for k, v in c.items() if k != "control_of"} for c in current["claims"]],
             "sources": [{k: v for k, v in s.items() if k != "sensitivity"} for s in current["sources"]]}
    (tmp_path / "format2.json").write_text(json.dumps(older))
    assert load_results(tmp_path / "format2.json") == load_results(pytester.path / "reports" / "results.json")


def test_results_are_one_line_away_from_a_data_frame(pytester, tmp_path, monkeypatch, tiny_cache):
    monkeypatch.setenv("GAINSCALE_CACHE", str(tiny_cache))
    claims_project(pytester)
    pytester.runpytest("claims", "--gainscale-suite", "tiny")
    run = load_results(pytester.path / "reports" / "results.json")
    claims = run.to_frame("claims")
    assert len(claims) == 30 and set(claims["outcome"]) <= {"passed", "failed"}
    models = run.to_frame("models")
    assert list(models["source"].unique()) == ["published", "measured"] and len(models) == 12
    layers = run.to_frame("layers")
    tiny_l = layers[(layers["model"] == "tiny-l") & (layers["module"] == "mlp")]
    assert list(tiny_l["layer"]) == list(range(6)) and tiny_l["gain"].iloc[-1] == pytest.approx(run.source("measured").model("tiny-l").final_mlp_gain)
    with pytest.raises(ValueError, match="no table 'prompts'; choose one of claims, models, layers"):
        run.to_frame("prompts")


def test_a_broken_results_file_is_named(tmp_path):
    from gainscale.errors import ResultsError

    (tmp_path / "r.json").write_text('{"gainscale_results": 1}')
    with pytest.raises(ResultsError, match=r"r\.json: not gainscale results of format 2 or 3 \(found 1\)"):
        load_results(tmp_path / "r.json")


#: a kind of source in one module: the paper's table with every final MLP gain doubled
DOUBLED_KIND = (
    "from dataclasses import replace\n"
    "from gainscale.results import SourceInfo\n"
    "from gainscale.sources import SourceKind\n"
    "from gainscale.sources.published import PublishedSource\n"
    "class Doubled(PublishedSource):\n"
    "    name = kind = 'doubled'\n"
    "    def summary(self, model, gain='paper'):\n"
    "        s = super().summary(model, gain)\n"
    "        return replace(s, final_mlp_gain=2 * s.final_mlp_gain)\n"
    "    def info(self):\n"
    "        return SourceInfo('doubled', 'doubled', 'the paper with every final MLP gain doubled')\n"
    "KIND = SourceKind('doubled', names=lambda measurer: ['doubled'], open=lambda name, measurer: Doubled())\n"
)


def assert_the_doubled_source_was_evaluated(pytester, result) -> None:
    result.assert_outcomes(passed=9)
    (source,) = load_results(pytester.path / "reports" / "results.json").sources
    assert source.info.kind == "doubled" and source.models[0].final_mlp_gain == 3.0
    assert "*the paper with every final MLP gain doubled*" in (pytester.path / "reports" / "REPORT.md").read_text()


def test_a_new_kind_of_source_is_one_module_and_a_registration(pytester, tmp_path, monkeypatch):
    """A source kind registered from a conftest: --gainscale-source finds it, the report shows it."""
    monkeypatch.setenv("GAINSCALE_CACHE", str(tmp_path / "cache"))
    claims_project(pytester)
    (pytester.path / "doubled.py").write_text(DOUBLED_KIND)
    with open(pytester.path / "conftest.py", "a") as conftest:
        conftest.write("\nimport doubled\nfrom gainscale.sources import register_source_kind\nregister_source_kind(doubled.KIND)\n")
    result = pytester.runpytest("claims", "--gainscale-source", "doubled", "-k", "final_mlp or scaling_law_significant")
    assert_the_doubled_source_was_evaluated(pytester, result)


def test_a_new_kind_of_source_arrives_through_the_entry_point_group(pytester, tmp_path, monkeypatch):
    """An installed distribution that names its module in the ``gainscale.sources`` group: no conftest change."""
    site = tmp_path / "site"
    (site / "doubled_kind-0.1.dist-info").mkdir(parents=True)
    (site / "doubled_kind.py").write_text(DOUBLED_KIND)
    (site / "doubled_kind-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: doubled-kind\nVersion: 0.1\n")
    (site / "doubled_kind-0.1.dist-info" / "entry_points.txt").write_text("[gainscale.sources]\ndoubled = doubled_kind\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("GAINSCALE_CACHE", str(tmp_path / "cache"))
    claims_project(pytester)
    result = pytester.runpytest_subprocess("claims", "--gainscale-source", "doubled", "-k", "final_mlp or scaling_law_significant")
    assert_the_doubled_source_was_evaluated(pytester, result)


BLOCKER = """
import sys
class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers") or name in BLOCKED:
            raise ImportError(f"blocked: {name}")
BLOCKED = {"gainscale.cache", "gainscale.loading", "gainscale.meter", "gainscale.measurer", "gainscale.measurement"}
sys.meta_path.insert(0, Blocked())
"""


def test_the_report_wing_never_imports_the_measuring_wing(tmp_path):
    """results, report, figures, baseline and the terminal summary import and write a report with
    torch, transformers and the cache, loader and meter modules blocked."""
    code = BLOCKER + (
        "import gainscale.results, gainscale.report, gainscale.figures, gainscale.baseline, gainscale.terminal, gainscale.collect\n"
        "from gainscale.results import RunResult, SourceResult, SourceInfo\n"
        "from gainscale.summary import ModelSummary\n"
        "run = RunResult({'command': 'x'}, (), (SourceResult(SourceInfo('s', 'k'), (ModelSummary('m', 10, 2, 1.5, 1, 1),)),))\n"
        f"gainscale.report.write_report(run, {str(tmp_path)!r})\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (tmp_path / "REPORT.md").is_file()
