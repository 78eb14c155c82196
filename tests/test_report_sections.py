"""The report's sections beyond one source: every source side by side, claims over training, a
trained model beside its control (which counts in none of its source's aggregates), and the note
on what a gain's "input" is for each architecture. Typed runs built by hand, whose expected rows
are worked out here from the numbers; then the real SmolLM2 run where CI has measured it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from helpers import claims_project, validate

from gainscale.architectures import describe_input
from gainscale.errors import ModelUnavailable
from gainscale.measurer import Measurer
from gainscale.report import escape, render_markdown
from gainscale.results import ClaimInfo, ClaimResult, RunResult, SourceInfo, SourceResult, VariantResult, load_results
from gainscale.sensitivity_table import with_sensitivity
from gainscale.settings import Settings
from gainscale.sources.measured import MeasuredSource
from gainscale.sources.published import PublishedSource
from gainscale.suites import load_suite
from gainscale.summary import ModelSummary

ATTENTION = ClaimInfo("attention_contractive", "attention contracts in 97% of layers", "model", number="1",
                      value_format="{}% of layers", threshold_format=">= {}% of layers")
FINAL_MLP = ClaimInfo("final_mlp_expands", "the final MLP expands", "model", number="2",
                      value_format="gain {}", threshold_format="gain > {}")


def claims_on(source: str, models: list[ModelSummary], residual_final: dict[str, float] | None = None) -> list[ClaimResult]:
    """Claims 1 and 2 on each model, decided from its numbers; controls marked as the summaries say.

    ``residual_final`` gives a model's final MLP gain against the residual stream: claim 2's
    ``gain residual`` variant.
    """
    results = []
    for m in models:
        for info, value, threshold, holds in ((ATTENTION, m.attn_contracting_pct, 97.0, m.attn_contracting_pct >= 97),
                                              (FINAL_MLP, m.final_mlp_gain, 1.0, m.final_mlp_gain > 1)):
            verdict = "passed" if holds else "failed"
            variants = (VariantResult("cutoff 0.95", "cutoff", verdict, value, ""),)
            if info is FINAL_MLP and residual_final and m.model in residual_final:
                gain = residual_final[m.model]
                variants += (VariantResult("gain residual", "gain", "passed" if gain > 1 else "failed", gain, ""),)
            results.append(ClaimResult(info, f"test_{info.id}[{source}-{m.model}]", "t.py", source, m.model, verdict, verdict,
                                       value, threshold, f"{m.model}: {value:.4g}", sensitivity=variants,
                                       control_of=m.control_of))
    return results


def run_of(sources: dict[str, list[ModelSummary]], **residual_final) -> RunResult:
    claims = [c for name, models in sources.items() for c in claims_on(name, models, residual_final.get(name))]
    results = tuple(SourceResult(SourceInfo(name, "test", notes=(f"note of {name}",)), tuple(models)) for name, models in sources.items())
    return with_sensitivity(RunResult({}, tuple(claims), results, declared=(ATTENTION, FINAL_MLP)))


def section(report: str, title: str) -> list[str]:
    """The lines of the ``## title`` section, up to the next ``##``."""
    lines = report.splitlines()
    start = lines.index(f"## {title}")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start + 1:end]


PYTHIA_70M = ModelSummary.from_gains("pythia-70m", 70_426_624, [0.5] * 6, [0.5] * 5 + [1.5], architecture="gpt_neox")
PYTHIA_1B = ModelSummary("pythia-1b", 1_011_781_632, 16, 3.72, 16, 11, architecture="gpt_neox")  # a table's four numbers
SMALL = ModelSummary.from_gains("small", 134_515_008, [2.3, 6.7, 3.4, 2.1], [20.8, 14.4, 7.2, 72.2], architecture="llama")
SMALL_RANDOM = ModelSummary.from_gains("small-random", 134_515_008, [0.1, 0.18, 0.21, 0.21], [0.097, 0.098, 0.096, 0.094],
                                       architecture="llama", control_of="small")


# ---------------------------------------------------------------------------- across sources


def test_every_model_of_every_source_side_by_side():
    report = render_markdown(run_of({"published": [PYTHIA_70M, PYTHIA_1B], "measured": [SMALL, SMALL_RANDOM]}), [], [])
    rows = [line for line in section(report, "Across sources and architectures") if line.startswith("| ")]
    assert rows == [
        "| Source | Model | Architecture | Parameters | Layers | Attention contracting | MLP contracting | Final MLP gain |",
        "| published | pythia-70m | gpt\\_neox | 70,426,624 | 6 | 6/6 = 100.0% | 5/6 = 83.3% | 1.5 |",
        "| published | pythia-1b | gpt\\_neox | 1,011,781,632 | 16 | 16/16 = 100.0% | 11/16 = 68.8% | 3.72 |",
        "| measured | small | llama | 134,515,008 | 4 | 0/4 = 0.0% | 0/4 = 0.0% | 72.2 |",
        "| measured | small-random | llama | 134,515,008 | 4 | 4/4 = 100.0% | 4/4 = 100.0% | 0.094 |",
    ]


def test_one_source_or_a_source_without_models_is_not_compared():
    assert "## Across sources" not in render_markdown(run_of({"published": [PYTHIA_70M, PYTHIA_1B]}), [], [])
    assert "## Across sources" not in render_markdown(run_of({"published": [PYTHIA_70M], "measured": []}), [], [])


# ---------------------------------------------------------------------------- over training


def test_claims_over_training_in_step_order_with_each_claims_verdict_and_value():
    def checkpoint(step, attn, mlp):
        return ModelSummary.from_gains(f"neox@step{step}", 19_000_000, attn, mlp, architecture="gpt_neox", sweep="neox", step=step)

    sweep = [checkpoint(143000, [0.5, 0.6, 1.2], [0.8, 0.9, 3.0]), checkpoint(0, [0.2, 0.3, 0.4], [0.5, 0.6, 0.7]),
             checkpoint(1000, [0.4, 0.5, 0.9], [0.6, 0.8, 1.5])]
    report = render_markdown(run_of({"measured": sweep}), [], [])
    lines = section(report, "Claims over training: neox (measured)")
    assert [line for line in lines if line.startswith("| ")] == [
        "| Step | Final MLP gain | Attention contracting | MLP contracting | attention\\_contractive | final\\_mlp\\_expands |",
        "| 0 | 0.7 | 3/3 = 100.0% | 3/3 = 100.0% | ✅ 100% of layers | ❌ gain 0.7 |",
        "| 1,000 | 1.5 | 3/3 = 100.0% | 2/3 = 66.7% | ✅ 100% of layers | ✅ gain 1.5 |",
        "| 143,000 | 3 | 2/3 = 66.7% | 2/3 = 66.7% | ❌ 66.67% of layers | ✅ gain 3 |",
    ]
    assert "Step 0 is the untrained network: a claim that holds there holds by architecture, not by training." in lines
    assert "## Claims over training" not in render_markdown(run_of({"measured": [SMALL]}), [], [])


# ---------------------------------------------------------------------------- controls


def test_a_trained_model_beside_its_control():
    report = render_markdown(run_of({"measured": [SMALL, SMALL_RANDOM]}), [], [])
    lines = section(report, "Trained and untrained: small (measured)")
    assert [line for line in lines if line.startswith("| ")] == [
        "| Model | Final MLP gain | Attention contracting | MLP contracting | attention\\_contractive | final\\_mlp\\_expands |",
        "| small | 72.2 | 0/4 = 0.0% | 0/4 = 0.0% | ❌ 0% of layers | ✅ gain 72.2 |",
        "| small-random | 0.094 | 4/4 = 100.0% | 4/4 = 100.0% | ✅ 100% of layers | ❌ gain 0.094 |",
    ]
    assert ("small-random is small's network with its weights drawn again: the step-0 control. "
            "A claim that holds for both holds by architecture.") in lines


def test_a_control_counts_in_no_verdict_pass_count_or_robustness_sentence_of_its_source():
    """Counted, the failing control would make claim 2 fail on its source and hide the residual flip."""
    run = run_of({"measured": [SMALL, SMALL_RANDOM]}, measured={"small": 0.668, "small-random": 0.02})
    report = render_markdown(run, [], [])
    summary = "\n".join(section(report, "1. Source: measured"))
    assert ("| the final MLP expands | ✅ passed | 1 of 1 models pass | gain \\> 1 | "
            "not counted: control small-random (❌ gain 0.094), see Trained and untrained |") in summary
    assert ("| attention contracts in 97% of layers | ❌ FAILED | 0 of 1 models pass | \\>= 97% of layers | "
            "failed: small: 0; not counted: control small-random (✅ 100% of layers), see Trained and untrained |") in summary
    assert "- **final\\_mlp\\_expands**: passed, but fails under gain residual." in summary
    assert "| gain residual | – | ❌ 0.668 |" in summary and "| **as tested** | ❌ 0 | ✅ 72.2 |" in summary
    stored = run.source("measured").claim_sensitivity("final_mlp_expands")
    assert stored.flips == ("gain residual",) and stored.cell("gain residual").value == 0.668
    # the control's own test keeps its outcome: a baseline still holds its numbers
    assert [c.outcome for c in run.claims if c.is_control and c.claim.id == "final_mlp_expands"] == ["failed"]


def test_results_of_format_2_learn_which_tests_are_on_controls_from_the_sources_models():
    run = run_of({"measured": [SMALL, SMALL_RANDOM]}, measured={"small": 0.668, "small-random": 0.02})
    data = json.loads(json.dumps(run.to_json()))
    older = {**data, "gainscale_results": 2,
             "claims": [{k: v for k, v in c.items() if k != "control_of"} for c in data["claims"]],
             "sources": [{k: v for k, v in s.items() if k != "sensitivity"} for s in data["sources"]]}
    read = RunResult.from_json(older)
    assert {c.model: c.control_of for c in read.claims} == {"small": None, "small-random": "small"}
    assert read == run  # the sensitivity table too, controls left out


# ---------------------------------------------------------------------------- what "input" means


@pytest.mark.parametrize("model_type, norm, attention_norm, mlp_norm", [
    ("gpt_neox", "LayerNorm", "input_layernorm", "post_attention_layernorm"),
    ("gpt2", "LayerNorm", "ln_1", "ln_2"),
    ("llama", "RMSNorm", "input_layernorm", "post_attention_layernorm"),
])
def test_the_input_note_names_the_norm_each_sublayer_reads_through(model_type, norm, attention_norm, mlp_norm):
    note = describe_input(model_type)
    assert note.startswith(f"{model_type}: a sublayer's input is its {norm}'s output ({attention_norm} before the "
                           f"attention, {mlp_norm} before the MLP)")
    assert "--gainscale-gain residual" in note
    assert describe_input("rwkv") == "rwkv: not a layout gainscale knows"


def test_each_source_notes_what_input_means_for_its_architectures(tmp_path):
    def notes(suite: str) -> tuple[str, ...]:
        return MeasuredSource(Measurer(load_suite(suite, tmp_path), Settings(cache=tmp_path, progress=False))).info().notes

    assert notes("smollm2") == (describe_input("llama"),)  # SmolLM2 is a Llama: RMSNorm
    assert notes("tiny")[1:] == (describe_input("gpt_neox"),) and notes("tiny")[0].startswith("FOR TESTS AND DEMOS ONLY")
    assert PublishedSource().info().notes[-1] == describe_input("gpt_neox")  # Pythia
    info = SourceInfo("measured", "measured", notes=notes("smollm2"))
    report = render_markdown(RunResult({}, (), (SourceResult(info),)), [], [])
    assert f"> - {escape(describe_input('llama'))}" in report.splitlines()


# ---------------------------------------------------------------------------- the real SmolLM2


#: where .ci/run keeps SmolLM2's measurement between runs (read at import: pytester moves HOME)
CI_CACHE = Path(os.environ.get("GAINSCALE_CI_CACHE") or Path.home() / ".cache" / "gainscale-ci")


@pytest.fixture
def smollm2_cache(tmp_path) -> Path:
    """SmolLM2 and its control as CI measured them (copied from the CI cache); skips where they are not there."""
    ci = CI_CACHE
    cache = tmp_path / "cache"
    (cache / "measurements").mkdir(parents=True)
    for entry in (ci / "measurements").glob("smollm2-*.json"):
        shutil.copy(entry, cache / "measurements")
    suite = load_suite("smollm2", cache)
    measurer = Measurer(suite, Settings(suite="smollm2", cache=cache, progress=False))
    try:
        found = [measurer.cache.lookup(measurer.request(spec)) for spec in suite.models]
    except ModelUnavailable as missing:
        pytest.skip(str(missing))
    if not all(found):
        pytest.skip(f"{ci} holds no SmolLM2 measurement under these prompts and method (.ci/run measures it)")
    return cache


def test_smollm2_report_counts_the_trained_model_alone_and_shows_its_residual_flips(pytester, smollm2_cache, monkeypatch):
    monkeypatch.setenv("GAINSCALE_CACHE", str(smollm2_cache))
    claims_project(pytester)
    result = pytester.runpytest("claims", "--gainscale-suite", "smollm2", "--gainscale-source", "measured", "--gainscale-require-measured")
    result.stdout.fnmatch_lines(["final_mlp_expands * measured  1 passed (not counted: control smollm2-135m-random failed)"])
    path = pytester.path / "reports" / "results.json"
    validate(path)
    run = load_results(path)
    measured = run.source("measured")
    final, attention = (measured.claim_sensitivity(c) for c in ("final_mlp_expands", "attention_contractive"))
    trained = measured.model("smollm2-135m")
    assert (final.verdict, final.value) == ("passed", trained.final_mlp_gain) and final.flips == ("gain residual",)
    assert final.cell("gain residual").value == pytest.approx(0.668, abs=5e-4)  # the last MLP against the residual stream
    assert attention.verdict == "failed" and attention.flips == ("gain residual",) and attention.cell("gain residual").value == 100
    assert {c.model: c.control_of for c in run.claims if c.model} == {"smollm2-135m": None, "smollm2-135m-random": "smollm2-135m"}

    report = (pytester.path / "reports" / "REPORT.md").read_text()
    summary = section(report, "1. Source: measured")
    final_row = next(line for line in summary if line.startswith("| the final layer's MLP always expands"))
    assert "| ✅ passed | 1 of 1 models pass |" in final_row and "not counted: control smollm2-135m-random (❌ gain 0.09422)" in final_row
    assert "- **final\\_mlp\\_expands**: passed, but fails under gain residual. Its verdict passes in 100% of 1000 resamples of the prompts." in summary
    assert "- **attention\\_contractive**: failed, but passes under gain residual. Its verdict passes in 0% of 1000 resamples of the prompts." in summary
    assert f"> - {escape(describe_input('llama'))}" in summary
    assert "## Trained and untrained: smollm2-135m (measured)" in report
