"""A claim's verdict under each variant, gathered over its tests: the cells the report's table and
the figures' heat-map share."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dataclasses import replace

from gainscale.results import ClaimInfo, ClaimResult, RunResult, SourceInfo, SourceResult, VariantResult
from gainscale.sensitivity_table import (
    aggregate, main_verdict, robustness, sensitivity_columns, variant_cells, variant_names, with_sensitivity,
)

PER_MODEL = ClaimInfo("per_model", "every model does it", "model", number="1")
ACROSS = ClaimInfo("across", "the models together do it", "suite", number="2", value_format="p = {}")


def cell(verdict, value=None, variant="cutoff 0.95"):
    return VariantResult(variant, "cutoff", verdict, value, f"{verdict}")


def result(info, model, verdict, sensitivity=(), value=None):
    return ClaimResult(info, f"t[{model}]", "t.py", "src", model, verdict or "skipped", verdict, value, None, "", sensitivity=sensitivity)


@pytest.mark.parametrize("verdicts, expected", [
    (["passed", "passed", "passed"], "passed"),
    (["passed", "failed", "passed"], "failed"),
    (["passed", None, "passed"], None),       # the model it cannot evaluate could be the one that fails
    (["failed", None, "passed"], "failed"),   # one failing model is enough, whatever the others
    ([None, None], None),
])
def test_a_variant_over_models_fails_if_any_fails_and_holds_only_if_all_hold(verdicts, expected):
    folded = aggregate([cell(v) for v in verdicts])
    assert folded.verdict == expected
    assert folded.value is None  # each model has its own value: there is no one to show
    assert folded.message.startswith(f"{sum(v == 'passed' for v in verdicts)} of {len(verdicts)} models pass")


def test_one_test_keeps_its_own_cell():
    only = cell("failed", 0.07)
    assert aggregate([only]) is only


def test_a_per_model_claim_gets_one_variant_per_model_left_out():
    results = [result(PER_MODEL, "a", "passed", (cell("passed"),)), result(PER_MODEL, "b", "failed", (cell("passed"),)),
               result(PER_MODEL, "c", "passed", (cell("passed"),))]
    cells = variant_cells(results)
    assert list(cells) == ["cutoff 0.95", "without a", "without b", "without c"]
    assert cells["cutoff 0.95"].verdict == "passed"
    assert [cells[f"without {m}"].verdict for m in "abc"] == ["failed", "passed", "failed"]
    assert cells["without b"].message == "2 of 2 other models pass"
    assert cells["without b"].group == "leave one out"


def test_a_cross_model_claim_keeps_its_variants_as_they_are():
    variants = (cell("passed", 0.01), cell("failed", 0.07, "without a"))
    assert variant_cells([result(ACROSS, None, "passed", variants, 0.02)]) == {v.variant: v for v in variants}


def test_main_verdict():
    assert main_verdict([result(PER_MODEL, "a", "passed"), result(PER_MODEL, "b", None)]) == "passed"
    assert main_verdict([result(PER_MODEL, "a", "passed"), result(PER_MODEL, "b", "failed")]) == "failed"
    assert main_verdict([result(PER_MODEL, "a", None)]) is None


def test_columns_only_for_claims_with_variants_in_the_order_given():
    claims = [result(ACROSS, None, "failed", (cell("passed", 0.01), cell("failed", 0.2, "exact p-values")), value=0.06),
              result(PER_MODEL, "a", "passed", (cell("passed"),)), result(PER_MODEL, "b", "passed", (cell(None),))]
    other = ClaimInfo("other", "no check declared", "suite")
    columns = sensitivity_columns([PER_MODEL, ACROSS, other], claims + [result(other, None, "passed")])
    assert [c.info.id for c in columns] == ["per_model", "across"]
    per_model, across = columns
    assert (per_model.verdict, per_model.value) == ("passed", None)
    assert per_model.cells["cutoff 0.95"].verdict is None  # b cannot say
    assert (across.verdict, across.value) == ("failed", 0.06)
    assert variant_names(columns) == ["cutoff 0.95", "without a", "without b", "exact p-values"]


def test_the_robustness_sentence_names_the_flips_and_what_cannot_be_evaluated():
    cells = [cell("passed", 0.01), cell("failed", 0.2, "exact p-values"), cell(None, None, "without layer 0"),
             cell("failed", 0.3, "without a")]
    assert robustness("passed", cells) == ("passed, but fails under exact p-values, without a; "
                                           "1 of 4 variants cannot be evaluated on these numbers")
    assert robustness("failed", cells) == "failed, but passes under cutoff 0.95; 1 of 4 variants cannot be evaluated on these numbers"
    assert robustness("passed", cells[:1]) == "robust: passed under all 1 variants that can be evaluated"
    assert robustness(None, cells) == "no verdict to test"


# ---------------------------------------------------------------------------- controls


def smollm2_like() -> list[ClaimResult]:
    """SmolLM2's claim 2 on the trained model and its control, with the variants the real run gives
    (the trained model's final MLP: 72.2 as measured, 0.668 against the residual stream)."""
    def variants(as_tested, residual):
        return (cell(as_tested[0], as_tested[1]), cell(residual[0], residual[1], "gain residual"))

    trained = result(PER_MODEL, "smollm2-135m", "passed", variants(("passed", 72.2), ("failed", 0.668)), value=72.2)
    control = result(PER_MODEL, "smollm2-135m-random", "failed", variants(("failed", 0.094), ("failed", 0.02)), value=0.094)
    return [trained, replace(control, control_of="smollm2-135m")]


def test_a_control_is_left_out_of_its_claims_column():
    """Counted with its model, a control that fails everywhere hides the trained model's flip."""
    (column,) = sensitivity_columns([PER_MODEL], smollm2_like())
    assert [r.model for r in column.results] == ["smollm2-135m"]
    assert (column.verdict, column.value) == ("passed", 72.2)  # one model: its value is the claim's
    assert list(column.cells) == ["cutoff 0.95", "gain residual"]  # no "without" variant: one model is left
    assert (column.cells["gain residual"].verdict, column.cells["gain residual"].value) == ("failed", 0.668)
    typed = column.typed()
    assert typed.flips == ("gain residual",) and typed.robustness == "passed, but fails under gain residual"

    counted = sensitivity_columns([PER_MODEL], [replace(r, control_of=None) for r in smollm2_like()])[0]
    assert counted.verdict == "failed" and counted.cells["gain residual"].verdict == "failed"  # what it looked like before


def test_a_source_of_controls_alone_has_no_column():
    controls = [r for r in smollm2_like() if r.is_control]
    assert sensitivity_columns([PER_MODEL], controls) == []


def test_with_sensitivity_stores_each_sources_table_in_the_run():
    claims = [replace(r, source="measured") for r in smollm2_like()]
    claims.append(result(ACROSS, None, "failed", (cell("passed", 0.01, "exact p-values"),), value=0.06))
    run = with_sensitivity(RunResult({}, tuple(claims), (SourceResult(SourceInfo("measured", "measured")),
                                                         SourceResult(SourceInfo("src", "test")))))
    measured, src = run.sources
    assert [c.claim for c in measured.sensitivity] == ["per_model"]
    assert measured.claim_sensitivity("per_model").cell("gain residual").value == 0.668
    assert [c.claim for c in src.sensitivity] == ["across"] and src.sensitivity[0].flips == ("exact p-values",)
    assert src.sensitivity[0].robustness == "failed, but passes under exact p-values" and not src.sensitivity[0].robust


def test_importing_it_imports_neither_matplotlib_nor_the_measuring_code():
    code = "import sys, gainscale.sensitivity_table; assert not {'matplotlib', 'torch', 'gainscale.measurement'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)
