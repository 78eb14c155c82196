"""The claims as pytest tests, run through pytester: outcomes, ids, skips and recorded numbers."""

from __future__ import annotations

from fnmatch import fnmatch

import numpy as np
import pytest
from helpers import SYNTHETIC_FIT, claims_project, junit_cases, notebook_file, synthetic_rows
from reference import paper_gains
from scipy import stats as scipy_stats

from gainscale.cli import main as gainscale_cli
from gainscale.figures import attention_threshold
from gainscale.results import load_results
from gainscale.stats import PowerLawFit
from gainscale.suites import TINY_MODELS


@pytest.fixture
def project(pytester, tmp_path, monkeypatch):
    monkeypatch.setenv("GAINSCALE_CACHE", str(tmp_path / "cache"))
    claims_project(pytester)
    return pytester


def test_published_source_tells_which_claims_hold_on_the_papers_own_numbers(project):
    result = project.runpytest("claims", "--gainscale-source", "published", "--junitxml=out.xml")
    result.assert_outcomes(passed=17, failed=2)
    result.stdout.fnmatch_lines([
        "*pythia-6.9b: 31 of 32 attention layers contract = 96.875% < 97%",
        "*Spearman rho = -0.599, one-sided p = 0.0584 >= 0.05*pythia-70m 83.333% -> pythia-12b 5.556%; "
        "not shown at n = 8: at this rho the test has 44% power, about 17 models would give 80%",
    ])
    cases = junit_cases(project.path / "out.xml")
    failing = cases["test_attention_contractive[published-pythia-6.9b]"]
    assert failing["outcome"] == "failed"
    expected = {"claim": "attention_contractive", "source": "published", "model": "pythia-6.9b", "value": "96.875", "threshold": "97.0"}
    assert {k: failing["properties"][k] for k in expected} == expected
    fit = cases["test_scaling_law_significant[published]"]["properties"]
    assert fit["model"] == "" and float(fit["value"]) == pytest.approx(0.0152, abs=1e-4)
    assert "gainscale" not in fit  # the typed record rides on the report, not in the JUnit XML
    (published,) = load_results(project.path / "reports" / "results.json").sources
    assert published.info.recorded_fit["exponent_alpha"] == 0.265


def test_live_tests_skip_with_a_reason_without_gpu_or_cache(project):
    """Without --gainscale-require-measured they skip, and the summary says nothing was measured."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = project.runpytest("claims", "-m", "gpu", "-rs")
    result.assert_outcomes(skipped=19)
    result.stdout.fnmatch_lines([
        "nothing was checked on source measured: none of its 19 tests got its numbers here (no measurement of "
        "this model *); --gainscale-require-measured makes this a failure",
        "SKIPPED [[]8] *no measurement of this model (float16, prompts *) is cached in *, and cuda is not available here*",
    ])
    assert "pytest claims -m gpu" not in result.stdout.str()  # not the command the user just ran


def test_k_runs_one_model_and_ids_read_source_model(project):
    result = project.runpytest("-k", "pythia-12b", "--collect-only", "-q")
    result.stdout.fnmatch_lines([
        "claims/test_attention_contractive.py::test_attention_contractive[published-pythia-12b]",
        "claims/test_attention_contractive.py::test_attention_contractive[measured-pythia-12b]",
        "claims/test_final_mlp_expands.py::test_final_mlp_expands[published-pythia-12b]",
        "claims/test_final_mlp_expands.py::test_final_mlp_expands[measured-pythia-12b]",
        "4/38 tests collected (34 deselected)*",
    ])


def _independent_tiny_numbers(cache):
    """Gains of each tiny model by the paper's own loop (tests/reference.py), and the verdicts."""
    from gainscale.params import count_parameters
    from gainscale.prompts import load_prompts
    from gainscale.suites import tiny_config

    numbers = {}
    for model in TINY_MODELS:
        attn, mlp = paper_gains(cache / "tiny-models" / model, load_prompts().prompts)
        numbers[model] = (count_parameters(tiny_config(model)), attn, mlp)
    return numbers


def test_tiny_suite_end_to_end_matches_an_independent_computation(project, tiny_cache):
    result = project.runpytest("claims", "--gainscale-suite", "tiny", "--gainscale-source", "measured",
                               "--gainscale-cache", str(tiny_cache), "--junitxml=out.xml", "-p", "no:randomly")
    cases = junit_cases(project.path / "out.xml")
    numbers = _independent_tiny_numbers(tiny_cache)
    for model, (_, attn, mlp) in numbers.items():
        expands = cases[f"test_final_mlp_expands[measured-{model}]"]
        assert float(expands["properties"]["value"]) == pytest.approx(mlp[-1], rel=1e-5)
        assert expands["outcome"] == ("passed" if mlp[-1] > 1 else "failed")
        contractive = cases[f"test_attention_contractive[measured-{model}]"]
        pct = 100 * sum(g < 1 for g in attn) / len(attn)
        assert float(contractive["properties"]["value"]) == pytest.approx(pct)
        assert contractive["outcome"] == ("passed" if pct >= 97 else "failed")
    params = [n for n, _, _ in numbers.values()]
    fit = scipy_stats.linregress(np.log10(params), np.log10([mlp[-1] for _, _, mlp in numbers.values()]))
    significant = cases["test_scaling_law_significant[measured]"]
    assert float(significant["properties"]["value"]) == pytest.approx(fit.pvalue, rel=1e-4)
    run = load_results(project.path / "reports" / "results.json")
    (recorded,) = [c for c in run.claims if c.test.endswith("test_scaling_law_significant[measured]")]
    assert recorded.evidence_of(PowerLawFit).alpha == pytest.approx(fit.slope, rel=1e-5)
    assert len(cases) == 11 and result.ret in (0, 1)


def test_imported_notebook_is_evaluated_with_its_recorded_fit(project, tmp_path, capsys):
    file = notebook_file(tmp_path / "results.json", synthetic_rows(), SYNTHETIC_FIT)
    assert gainscale_cli(["import-notebook", str(file), "--name", "nb"]) == 0
    assert "imported 4 models" in capsys.readouterr().out
    result = project.runpytest("claims", "--gainscale-source", "nb", "--junitxml=out.xml", "-rs")
    cases = junit_cases(project.path / "out.xml")
    assert cases["test_attention_contractive[nb-m-small]"]["outcome"] == "failed"  # 3 of 4 = 75%
    assert cases["test_attention_contractive[nb-m-huge]"]["outcome"] == "skipped"  # a reference row
    assert cases["test_final_mlp_expands[nb-m-huge]"]["outcome"] == "passed"
    assert cases["test_mlp_contraction_falls[nb]"]["outcome"] == "skipped"
    (nb,) = load_results(project.path / "reports" / "results.json").sources
    assert nb.info.recorded_fit == SYNTHETIC_FIT and nb.info.kind == "imported"
    result.stdout.fnmatch_lines(["*m-huge: the source gives no per-layer attention gains*"])


def test_unknown_source_is_a_usage_error_listing_the_known(project):
    result = project.runpytest("claims", "--gainscale-source", "publisehd")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown source 'publisehd'*did you mean 'published'? Known: measured, published*"])


def test_thresholds_are_set_in_pytest_ini_and_on_the_command_line(pytester, tmp_path, monkeypatch):
    monkeypatch.setenv("GAINSCALE_CACHE", str(tmp_path / "cache"))
    claims_project(pytester, ini_extra="gainscale_threshold =\n    attention_contracting_min_pct = 96.5\n    trend_p_max=0.1\n")
    result = pytester.runpytest("claims", "--gainscale-source", "published")
    result.assert_outcomes(passed=19)
    report = (pytester.path / "reports" / "REPORT.md").read_text()
    assert "in at least 96.5% of the layers of every model" in report  # the title states the run's threshold
    # claim 1 marks its threshold for the figures: their line is the run's value, read from results.json
    assert attention_threshold(load_results(pytester.path / "reports" / "results.json")) == 96.5
    stricter = pytester.runpytest("claims", "--gainscale-source", "published", "--gainscale-threshold", "trend_p_max=0.01")
    stricter.assert_outcomes(passed=18, failed=1)


def test_an_unknown_threshold_is_a_usage_error_with_the_closest_name(project):
    result = project.runpytest("claims", "--gainscale-source", "published", "--gainscale-threshold", "trend_pmax=0.1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--gainscale-threshold trend_pmax: no claim of this run has a threshold 'trend_pmax'; did you mean 'trend_p_max'?*"])
    bad = project.runpytest("claims", "--gainscale-threshold", "trend_p_max")
    bad.stderr.fnmatch_lines(["*--gainscale-threshold 'trend_p_max': write NAME=VALUE with a number*"])


@pytest.mark.parametrize(("marker", "message"), [
    ("'attention contracts'", "*claim id 'attention contracts': use letters, digits*"),
    ("'x', scope='per-layer'", "*claim x: scope 'per-layer' is not one of model, per-model, suite, cross-model*"),
    ("'x', thresholds={'t': 'high'}", "*claim x: threshold t = 'high' must be a finite number*"),
    ("'x', treshold=1", "*unknown argument 'treshold'*"),
    ("'x', statement='gain above {limit}'", "*claim x: statement 'gain above {limit}' cannot be filled with its thresholds (none)*"),
    ("'x', thresholds={'t': 1}, marks={'attention_pct': 't'}", "*claim x: marks 'attention_pct', which no figure draws; known: attention_contracting_pct*"),
    ("'x', thresholds={'t': 1}, marks={'attention_contracting_pct': 'u'}",
     "*claim x: marks attention_contracting_pct with 'u', which is not one of its thresholds (t)*"),
])
def test_a_bad_claim_declaration_is_named(project, marker, message):
    (project.path / "claims" / "test_extra.py").write_text(
        f"import pytest\n@pytest.mark.claim({marker})\ndef test_x(model_summary, record_verdict):\n    pass\n"
    )
    result = project.runpytest("claims/test_extra.py", "--gainscale-source", "published")
    assert result.ret != 0
    assert any(fnmatch(line, message) for line in result.stdout.lines + result.stderr.lines), message


def test_one_claim_id_declared_twice_differently_is_refused(project):
    (project.path / "claims" / "test_extra.py").write_text(
        "import pytest\n"
        "@pytest.mark.claim('same', statement='one thing')\ndef test_a(model_summary):\n    pass\n"
        "@pytest.mark.claim('same', statement='another thing')\ndef test_b(model_summary):\n    pass\n"
    )
    result = project.runpytest("claims/test_extra.py", "--gainscale-source", "published")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*test_extra.py::test_b: claim 'same' is declared twice, differently "
                                 "(statement 'one thing' vs 'another thing'); give each claim its own id*"])


def test_a_claim_declared_by_marker_arguments_alone_is_reported(project):
    (project.path / "claims" / "test_extra.py").write_text(
        "import pytest\n"
        "@pytest.mark.claim('deep_enough', statement='every model has at least {min_layers:g} layers',\n"
        "                   scope='model', thresholds={'min_layers': 8}, where='my notes')\n"
        "def test_deep_enough(model_summary, thresholds, record_verdict):\n"
        "    n = model_summary.n_layers\n"
        "    record_verdict(passed=n >= thresholds['min_layers'], value=n, threshold=thresholds['min_layers'],\n"
        "                   message=f'{model_summary.model}: {n} layers', tracked={'layers': ('count', n)})\n"
    )
    result = project.runpytest("claims/test_extra.py", "--gainscale-source", "published")
    result.assert_outcomes(passed=7, failed=1)
    result.stdout.fnmatch_lines(["deep_enough *published *7 passed, 1 failed: pythia-70m: 6 layers"])
    report = (project.path / "reports" / "REPORT.md").read_text()
    assert "| every model has at least 8 layers (my notes) | ❌ FAILED | 7 of 8 models pass |" in report


def test_xdist_gives_the_same_verdicts_as_a_serial_run(project, tiny_cache):
    common = ["claims", "--gainscale-suite", "tiny", "--gainscale-cache", str(tiny_cache)]
    project.runpytest(*common, "--junitxml=serial.xml")
    project.runpytest(*common, "-n", "2", "--junitxml=parallel.xml")
    serial, parallel = junit_cases(project.path / "serial.xml"), junit_cases(project.path / "parallel.xml")
    assert {k: v["outcome"] for k, v in serial.items()} == {k: v["outcome"] for k, v in parallel.items()}
    assert {k: v["properties"].get("value") for k, v in serial.items()} == {k: v["properties"].get("value") for k, v in parallel.items()}
    assert len(serial) == 30
