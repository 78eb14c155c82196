"""The report's figures: valid PNGs for every kind of run, the right numbers drawn, only the figures
called for, and failures that stay contained."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import gainscale.figures as figures
from gainscale.bootstrap import Interval
from gainscale.claims import Claim
from gainscale.figures import (
    across_sources_figure, control_figure, draw_figures, fit_bands, model_figure, scaling_figure, sensitivity_figure,
    training_figure,
)
from gainscale.figures import scaling as scaling_module
from gainscale.figures.across import model_groups
from gainscale.figures.sensitivity import sensitivity_grid
from gainscale.published import published_summaries
from gainscale.report import _figure_links
from gainscale.results import ClaimInfo, ClaimResult, ModelUncertainty, RunResult, SourceInfo, SourceResult, VariantResult
from gainscale.sensitivity_table import sensitivity_columns
from gainscale.stats import fit_power_law
from gainscale.summary import ModelSummary

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DPI = 120

ATTENTION = ClaimInfo("attention_contractive", "attention contracts in at least 97% of the layers", "model", number="1",
                      thresholds={"attention_contracting_min_pct": 97.0}, value_format="{}% of layers",
                      threshold_format=">= {}% of layers", marks={"attention_contracting_pct": "attention_contracting_min_pct"})
FINAL_MLP = ClaimInfo("final_mlp_expands", "the final layer's MLP expands (gain > 1)", "model", number="2",
                      thresholds={"final_mlp_gain_min": 1.0}, value_format="gain {}", threshold_format="gain > {}")
SCALING = ClaimInfo("scaling_law_significant", "a power law (p < 0.05)", "suite", number="3a", value_format="p = {}")


# -- the numbers the figures are drawn from ---------------------------------------------------------


def published() -> list[ModelSummary]:
    """The paper's eight Pythia models as the published source gives them: no per-layer gains."""
    return [replace(m, architecture="gpt_neox") for m in published_summaries()]


def measured() -> list[ModelSummary]:
    """Four small models with per-layer gains, 2 to 6 layers, the last MLP expanding."""
    profiles = {
        "tiny-a": ([0.4, 0.6], [0.9, 6.0]),
        "tiny-b": ([0.6, 0.25, 0.2], [1.4, 0.8, 3.7]),
        "tiny-c": ([0.9, 0.55, 0.8, 0.55], [1.2, 0.7, 1.2, 7.8]),
        "tiny-d": ([0.55, 0.7, 0.65, 0.25, 0.7, 0.6], [0.8, 0.55, 1.45, 1.02, 1.3, 8.0]),
    }
    return [ModelSummary.from_gains(name, 2_000_000 * 4**index, attn, mlp, architecture="llama")
            for index, (name, (attn, mlp)) in enumerate(profiles.items())]


def sweep(name: str = "pythia-70m", steps=(0, 1, 512, 1000, 143000)) -> list[ModelSummary]:
    """A revision sweep of six-layer checkpoints: gains near 0.2 untrained, growing with training."""
    models = []
    for index, step in enumerate(steps):
        growth = 1 + 1.5 * index
        attn = [min(0.25 * growth, 0.95)] * 5 + [0.3 * growth]
        mlp = [0.2 * growth, 0.3 * growth, 0.5 * growth, 0.6 * growth, 0.9 * growth, 0.3 * growth**2]
        models.append(ModelSummary.from_gains(f"{name}@step{step}", 70_426_624, attn, mlp, architecture="gpt_neox",
                                              sweep=name, step=step))
    return models


def controlled() -> list[ModelSummary]:
    """A trained model and its control: the same network with re-drawn weights."""
    trained = ModelSummary.from_gains("small", 134_515_008, [2.3, 6.7, 3.4, 2.1], [20.8, 14.4, 7.2, 72.2], architecture="llama")
    control = ModelSummary.from_gains("small-random", 134_515_008, [0.1, 0.18, 0.21, 0.21], [0.097, 0.098, 0.096, 0.094],
                                      architecture="llama", control_of="small")
    return [trained, control]


def uncertainty(model: ModelSummary, spread: float = 0.15) -> ModelUncertainty:
    """Made-up 95% intervals around a model's numbers (a bootstrap's shape: about the estimate)."""
    def around(value):
        return Interval(value, value * (1 - spread), value * (1 + spread), 0.95)

    return ModelUncertainty(model.model, 200, 0, tuple(map(around, model.attn_gains)), tuple(map(around, model.mlp_gains)),
                            around(model.final_mlp_gain), around(model.attn_contracting), around(model.mlp_contracting))


def per_model_claims(source: str, models, sensitivity: bool = False) -> list[ClaimResult]:
    """Claims 1 and 2 on each model, their verdicts computed from its numbers."""
    results = []
    for model in models:
        for info, value, threshold, passed in ((ATTENTION, model.attn_contracting_pct, 97.0, model.attn_contracting_pct >= 97),
                                               (FINAL_MLP, model.final_mlp_gain, 1.0, model.final_mlp_gain > 1)):
            verdict = "passed" if passed else "failed"
            variants = (VariantResult("cutoff 0.95", "cutoff", verdict, value, ""),
                        VariantResult("without layer 0", "layers", None, None, "cannot say")) if sensitivity else ()
            results.append(ClaimResult(info, f"test_{info.id}[{source}-{model.model}]", "t.py", source, model.model, verdict,
                                       verdict, value, threshold, f"{model.model}: {value:.4g}", sensitivity=variants))
    return results


def run_of(sources: dict[str, list[ModelSummary]], fitted=(), claims=(), uncertain=()) -> RunResult:
    """A run whose sources hold these models; a fit for the ``fitted`` sources, bootstrap intervals for the ``uncertain``."""
    fits = tuple(
        ClaimResult(SCALING, f"t[{name}]", "t.py", name, None, "passed", "passed",
                    evidence=(fit_power_law([m.model for m in models], [m.n_params for m in models], [m.final_mlp_gain for m in models]),))
        for name, models in sources.items() if name in fitted
    )
    results = tuple(
        SourceResult(SourceInfo(name, "test"), tuple(models),
                     uncertainty={m.model: uncertainty(m) for m in models if name in uncertain})
        for name, models in sources.items()
    )
    return RunResult({}, fits + tuple(claims), results, declared=(ATTENTION,))


def source_of(name: str, models, uncertain: bool = False) -> SourceResult:
    return run_of({name: models}, uncertain=(name,) if uncertain else ()).sources[0]


def assert_png(path: Path, min_width: int = 400, min_height: int = 300) -> tuple[int, int]:
    """A real PNG that matplotlib reads back, at least the given size in pixels; returns (width, height)."""
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == PNG_SIGNATURE, path
    height, width = imread(path).shape[:2]
    assert width >= min_width and height >= min_height, (path, width, height)
    return width, height


def names(written, directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in written)


def axes():
    """A lone axes on an Agg canvas, for drawing one panel and reading back what was drawn."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 5), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig.subplots()


# -- the scaling figure --------------------------------------------------------------------------------


def test_scaling_figure_of_the_published_table(tmp_path):
    """The paper's eight models, no per-layer gains, with the fit: a 14x11 inch PNG at 120 dpi."""
    models = published()
    fit = fit_power_law([m.model for m in models], [m.n_params for m in models], [m.final_mlp_gain for m in models])
    path = scaling_figure(source_of("published", models), fit, tmp_path / "scaling_published.png", threshold_pct=97)
    assert path == tmp_path / "scaling_published.png"
    assert_png(path, min_width=14 * DPI - 10, min_height=11 * DPI - 10)


def test_scaling_figure_without_a_fit(tmp_path):
    """A source whose fit did not run still gets its points drawn."""
    assert_png(scaling_figure(source_of("published", published()), None, tmp_path / "scaling.png"))


def test_scaling_figure_with_per_layer_gains_and_bootstrap_intervals(tmp_path):
    models = measured()
    fit = fit_power_law([m.model for m in models], [m.n_params for m in models], [m.final_mlp_gain for m in models])
    assert_png(scaling_figure(source_of("measured", models, uncertain=True), fit, tmp_path / "scaling.png", threshold_pct=97))


def test_scaling_figure_of_models_of_one_size(tmp_path):
    """A control beside its model, a sweep's checkpoints: one parameter count, no fit, the bars side by side."""
    assert_png(scaling_figure(source_of("measured", controlled() + sweep()), None, tmp_path / "scaling.png"))


def test_the_bands_match_an_independent_computation():
    """Confidence and prediction bands of the fit: t with n - 2 df, from numpy and scipy.stats, up to 1T."""
    import numpy as np
    from scipy import stats

    models = published()
    fit = fit_power_law([m.model for m in models], [m.n_params for m in models], [m.final_mlp_gain for m in models])
    x = np.log10([m.n_params for m in models])
    y = np.log10([m.final_mlp_gain for m in models])
    slope, intercept = np.polyfit(x, y, 1)
    n = len(x)
    s = np.sqrt(np.sum((y - (intercept + slope * x)) ** 2) / (n - 2))
    t = stats.t.ppf(0.975, n - 2)
    at = np.array([7.5, 9.0, 10.07, 11.0, 12.0])  # inside the models, at the largest, and out to 1T
    leverage = 1 / n + (at - x.mean()) ** 2 / np.sum((x - x.mean()) ** 2)
    fitted = intercept + slope * at

    bands = fit_bands(fit, list(at))
    np.testing.assert_allclose(bands.fitted, fitted, rtol=1e-10)
    np.testing.assert_allclose(bands.confidence_low, fitted - t * s * np.sqrt(leverage), rtol=1e-10)
    np.testing.assert_allclose(bands.confidence_high, fitted + t * s * np.sqrt(leverage), rtol=1e-10)
    np.testing.assert_allclose(bands.prediction_low, fitted - t * s * np.sqrt(1 + leverage), rtol=1e-10)
    np.testing.assert_allclose(bands.prediction_high, fitted + t * s * np.sqrt(1 + leverage), rtol=1e-10)
    # the report's prediction table for 1T: [3.79x, 99.71x]
    assert 10 ** bands.prediction_low[-1] == pytest.approx(3.79, abs=0.005)
    assert 10 ** bands.prediction_high[-1] == pytest.approx(99.71, abs=0.005)


def test_panel_b_draws_those_bands_out_to_1t():
    """What panel (b) fills is the bands' numbers, labelled in the legend, from the smallest model to 10^12."""
    models = published()
    fit = fit_power_law([m.model for m in models], [m.n_params for m in models], [m.final_mlp_gain for m in models])
    ax = axes()
    scaling_module.draw_log_fit(ax, models, dict.fromkeys([m.model for m in models], "k"), [None] * len(models), fit)
    filled = {c.get_label(): c.get_paths()[0].vertices for c in ax.collections if "band" in c.get_label()}
    assert set(filled) == {"95% prediction band (a new model)", "95% confidence band (the line)"}
    bands = fit_bands(fit, [math.log10(models[0].n_params), 12.0])
    for label, (low, high) in (("prediction", (bands.prediction_low, bands.prediction_high)),
                               ("confidence", (bands.confidence_low, bands.confidence_high))):
        vertices = next(v for name, v in filled.items() if name.startswith(f"95% {label}"))
        assert vertices[:, 0].min() == pytest.approx(bands.log_params[0])
        assert vertices[:, 0].max() == pytest.approx(12.0)
        at_end = vertices[abs(vertices[:, 0] - 12.0) < 1e-9, 1]
        assert min(at_end) == pytest.approx(low[-1]) and max(at_end) == pytest.approx(high[-1])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "95% prediction band (a new model)" in legend and "95% confidence band (the line)" in legend


def test_final_gains_carry_their_bootstrap_intervals():
    """Panel (a)'s error bars run from each model's interval's lower to its upper end."""
    models = measured()
    intervals = [uncertainty(m).final_mlp_gain for m in models]
    ax = axes()
    scaling_module.draw_power_law(ax, models, dict.fromkeys([m.model for m in models], "k"), intervals, None)
    from matplotlib.collections import LineCollection

    (bars,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    ends = sorted((seg[0][0], min(seg[0][1], seg[1][1]), max(seg[0][1], seg[1][1])) for seg in bars.get_segments())
    expected = sorted((m.n_params, i.lower, i.upper) for m, i in zip(models, intervals))
    assert [value for end in ends for value in end] == pytest.approx([value for end in expected for value in end])


def test_panel_d_counts_threshold_and_sizes_on_a_log_axis():
    """Each bar says its count, the run's threshold is drawn, bars stand at their models' sizes in distinct colours."""
    models = published()
    colours = dict(zip([m.model for m in models], figures._base.model_colours(len(models))))
    ax = axes()
    scaling_module.draw_contraction(ax, models, colours, threshold_pct=97.0)
    texts = {t.get_text() for t in ax.texts}
    assert {"31/32", "35/36", "2/36", "6/6", "5/6"} <= texts
    assert ax.get_xscale() == "log"
    assert any(list(line.get_ydata()) == [97.0, 97.0] for line in ax.lines)
    attention_bars = [p for p in ax.patches if p.get_hatch() is None]
    # each model's attention bar ends at its parameter count: the axis is the models' sizes
    for model, bar in zip(models, attention_bars):
        assert bar.get_x() + bar.get_width() == pytest.approx(model.n_params, rel=1e-9)
    neighbours = [bar.get_facecolor() for bar in attention_bars]
    assert all(a != b for a, b in zip(neighbours, neighbours[1:]))


def drawn_panel_d(source, tmp_path, monkeypatch) -> dict:
    """Draw the report's scaling figure of ``source`` and read back panel (d) as saved: its texts and bars, in pixels."""
    from matplotlib.text import Text

    seen = {}
    save = figures._base.save

    def save_and_look(fig, path):
        written = save(fig, path)  # the layout is final once the PNG is drawn
        renderer = fig.canvas.get_renderer()
        ax = fig.axes[3]
        seen["axes"] = ax.get_window_extent(renderer)
        seen["texts"] = [(t.get_text(), t.get_fontsize(), t.get_window_extent(renderer))
                         for t in ax.findobj(Text) if t.get_text() and t.get_visible()]
        seen["bars"] = [p.get_window_extent(renderer) for p in ax.patches]
        return written

    monkeypatch.setattr(figures._base, "save", save_and_look)
    scaling_figure(source, None, tmp_path / "scaling.png", threshold_pct=97)
    return seen


def test_the_published_figure_writes_each_bars_count_over_it_readably(tmp_path, monkeypatch):
    """The report's figure of the paper's eight models: every bar's count ("31/32" for pythia-6.9b) over its bar,
    at a readable size, none overlapping another or leaving the panel."""
    models = published()
    panel = drawn_panel_d(source_of("published", models), tmp_path, monkeypatch)
    counts = [(text, size, box) for text, size, box in panel["texts"] if re.fullmatch(r"\d+/\d+", text)]
    expected = [f"{count}/{m.n_layers}" for m in models for count in (m.attn_contracting, m.mlp_contracting)]
    assert sorted(text for text, _, _ in counts) == sorted(expected)
    assert "31/32" in expected  # pythia-6.9b's attention, the paper's one failing model
    assert not any("too narrow" in text for text, _, _ in panel["texts"])
    assert min(size for _, size, _ in counts) >= 6
    boxes = [box for _, _, box in counts]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert all(panel["axes"].contains(box.x0, box.y0) and panel["axes"].contains(box.x1, box.y1) for box in boxes)
    # each count stands over a bar, as wide as it at most, so that it cannot reach its neighbour's
    for box in boxes:
        centre = (box.x0 + box.x1) / 2
        (bar,) = [bar for bar in panel["bars"] if bar.x0 <= centre <= bar.x1]
        assert box.width <= bar.width and box.y0 >= bar.y1 - 1


def test_bars_too_thin_for_any_count_say_where_the_counts_are(tmp_path, monkeypatch):
    """Forty checkpoints of one size: no count can be read on bars a few pixels wide; the panel says so instead."""
    checkpoints = sweep(steps=tuple(range(0, 40_000, 1000)))
    panel = drawn_panel_d(source_of("measured", checkpoints), tmp_path, monkeypatch)
    texts = [text for text, _, _ in panel["texts"]]
    assert "bars too narrow for their counts: see the report's model table" in texts
    assert not any(re.fullmatch(r"\d+/\d+", text) for text in texts)


def test_model_colours_differ_between_neighbours():
    colours = figures._base.model_colours(40)
    assert all(a != b for a, b in zip(colours, colours[1:]))
    assert len(set(colours[:16])) == 16


def test_model_figure_draws_per_layer_gains_and_their_intervals(tmp_path):
    model = measured()[-1]
    assert_png(model_figure("measured", model, tmp_path / "model.png", uncertainty=uncertainty(model)))


def test_model_figure_refuses_a_model_without_per_layer_gains(tmp_path):
    """The published table has no per-layer gains: the error names the model."""
    with pytest.raises(ValueError, match="pythia-70m"):
        model_figure("published", published()[0], tmp_path / "model.png")
    assert not (tmp_path / "model.png").exists()


def test_a_model_that_cannot_go_on_a_log_axis_is_named(tmp_path):
    """A zero final gain fails the scaling figure with the model's name, not "math domain error"."""
    models = published()
    models[3] = replace(models[3], final_mlp_gain=0.0)
    with pytest.raises(ValueError, match=r"pythia-1b: final_mlp_gain must be a positive finite number, not 0\.0"):
        scaling_figure(source_of("published", models), None, tmp_path / "scaling.png")


# -- the threshold line: declared by the claim, never found by its name --------------------------


def thresholds_given(declared) -> dict[str, float | None]:
    """The threshold each contracting-share figure is given, in a run with two sources and a sweep."""
    run = replace(run_of({"published": published(), "measured": sweep()}), declared=tuple(declared))
    jobs, errors = figures.figure_jobs(run)
    assert errors == []
    return {name: draw.keywords["threshold_pct"] for name, draw in jobs if "threshold_pct" in draw.keywords}


def test_a_claim_marking_the_attention_share_gets_its_line_whatever_its_threshold_is_called():
    """A user's claim with its own threshold name, marking the quantity, sets every contracting-share figure's line."""
    mine = Claim(id="mostly_contracting", statement="attention contracts in {share_floor:g}% of layers",
                 thresholds={"share_floor": 90.0}, marks={"attention_contracting_pct": "share_floor"})
    given = thresholds_given([mine.info({"share_floor": 88.5}), FINAL_MLP])  # the run's value, not the default
    assert given == {"scaling_published.png": 88.5, "scaling_measured.png": 88.5, "across_sources.png": 88.5,
                     "measured/sweeps/pythia-70m.png": 88.5}


def test_a_claim_that_marks_nothing_gets_no_line_even_with_claim_1s_threshold_name():
    unmarked = replace(ATTENTION, marks={})
    assert set(thresholds_given([unmarked, FINAL_MLP]).values()) == {None}
    ax = axes()
    scaling_module.draw_contraction(ax, published(), dict.fromkeys([m.model for m in published()], "k"), threshold_pct=None)
    assert len(ax.lines) == 0 and not any("threshold" in t.get_text() for t in ax.get_legend().get_texts())


def test_marks_follow_the_schema_and_older_results_without_them_still_read():
    """results.json carries a claim's marks (schema-valid); a file written before the field reads back with none."""
    import json

    import jsonschema

    schema = json.loads((Path(figures.__file__).parents[1] / "data" / "results.schema.json").read_text())
    run = replace(run_of({"published": published()}), provenance={"gainscale_version": "0", "command": "pytest", "settings": {}})
    data = run.to_json()
    jsonschema.Draft202012Validator(schema).validate(data)
    assert data["declared"][0]["marks"] == {"attention_contracting_pct": "attention_contracting_min_pct"}
    assert figures.attention_threshold(RunResult.from_json(data)) == 97.0
    del data["declared"][0]["marks"]
    jsonschema.Draft202012Validator(schema).validate(data)
    older = RunResult.from_json(data)
    assert older.declared[0].marks == {} and figures.attention_threshold(older) is None
    data["declared"][0]["marks"] = {"attention_contracting_pct": 97}  # a level, not a threshold's name
    with pytest.raises(jsonschema.ValidationError, match="97 is not of type 'string'"):
        jsonschema.Draft202012Validator(schema).validate(data)


# -- the sensitivity heat-map ----------------------------------------------------------------------


def sensitivity_run() -> RunResult:
    """Claims 1 and 2 on the published models with two variants each, and claim 3a with three."""
    models = published()
    fit_claim = ClaimResult(SCALING, "t[published]", "t.py", "published", None, "passed", "passed", 0.0152, 0.05, "p = 0.0152",
                            sensitivity=(VariantResult("cutoff 0.95", "cutoff", "passed", 0.0152, ""),
                                         VariantResult("without pythia-12b", "leave one out", "failed", 0.0721, ""),
                                         VariantResult("exact p-values", "p-value", "passed", 0.0152, "")))
    return RunResult({}, tuple(per_model_claims("published", models, sensitivity=True)) + (fit_claim,),
                     (SourceResult(SourceInfo("published", "test"), tuple(models)),), declared=(ATTENTION, FINAL_MLP, SCALING))


def test_sensitivity_grid_as_tested_first_then_each_variant():
    run = sensitivity_run()
    rows, labels, cells = sensitivity_grid(sensitivity_columns(run.claim_infos(), run.claims_of("published")))
    assert rows[0] == "as tested"
    assert rows[1:3] == ["cutoff 0.95", "without layer 0"] and rows[-1] == "exact p-values"
    assert [label.splitlines()[0] for label in labels] == ["claim 1", "claim 2", "claim 3a"]
    attention, final, fit = zip(*cells)
    assert attention[0] == ("failed", "fails: 7 of 8 pass", False)  # pythia-6.9b: 31 of 32 layers
    assert final[0] == ("passed", "holds: 8 of 8 pass", False)
    assert fit[0] == ("passed", "✓ 0.0152", False)
    by_row = dict(zip(rows, zip(*[column for column in (attention, final, fit)])))
    assert by_row["without layer 0"][0] == (None, "n/a", False)  # no model can say
    assert by_row["without pythia-6.9b"][0] == ("passed", "holds", True)  # flips the verdict: framed
    assert by_row["without pythia-12b"][2] == ("failed", "✗ 0.0721", True)
    assert by_row["exact p-values"][0] == ("absent", "–", False)  # a per-model claim has no p-value


def test_sensitivity_figure(tmp_path):
    run = sensitivity_run()
    columns = sensitivity_columns(run.claim_infos(), run.claims_of("published"))
    assert_png(sensitivity_figure("published", columns, tmp_path / "sensitivity.png"), min_width=8 * DPI, min_height=5 * DPI)


def test_a_heat_map_only_where_claims_carry_variants(tmp_path):
    run = sensitivity_run()
    plain = replace(run, claims=tuple(replace(c, sensitivity=()) for c in run.claims))
    assert "sensitivity_published.png" in names(draw_figures(run, tmp_path / "a")[0], tmp_path / "a")
    assert "sensitivity_published.png" not in names(draw_figures(plain, tmp_path / "b")[0], tmp_path / "b")


# -- across sources --------------------------------------------------------------------------------


def test_one_source_draws_no_figure_across_sources(tmp_path):
    written, errors = draw_figures(run_of({"published": published()}), tmp_path)
    assert errors == [] and "across_sources.png" not in names(written, tmp_path)


def test_two_sources_are_drawn_side_by_side_by_architecture(tmp_path):
    run = run_of({"published": published(), "measured": measured() + controlled()}, fitted=("published",), uncertain=("measured",))
    written, errors = draw_figures(run, tmp_path)
    assert errors == []
    assert "across_sources.png" in names(written, tmp_path)
    assert_png(tmp_path / "across_sources.png", min_width=14 * DPI - 10, min_height=11 * DPI - 10)
    labels = [label for label, _ in model_groups(run.sources)]
    assert labels == ["published · gpt_neox: pythia-70m … pythia-12b (8 models)", "measured · llama: tiny-a … small-random (6 models)"]


def test_a_source_without_architectures_is_still_compared(tmp_path):
    run = run_of({"a": published(), "b": [replace(m, architecture=None) for m in measured()]})
    assert_png(across_sources_figure(tuple(run.sources), {}, tmp_path / "across.png"))
    assert "b · architecture unknown" in model_groups(run.sources)[1][0]


# -- over training, and beside a control -----------------------------------------------------------


def test_no_sweep_no_training_figure_and_no_control_no_control_figure(tmp_path):
    written, _ = draw_figures(run_of({"measured": measured()}, claims=per_model_claims("measured", measured())), tmp_path)
    assert not any("/sweeps/" in name or "/controls/" in name for name in names(written, tmp_path))


def test_a_sweep_gets_a_figure_over_training(tmp_path):
    checkpoints = sweep()
    run = run_of({"measured": checkpoints}, claims=per_model_claims("measured", checkpoints), uncertain=("measured",))
    written, errors = draw_figures(run, tmp_path)
    assert errors == []
    assert "measured/sweeps/pythia-70m.png" in names(written, tmp_path)
    # two panels of numbers and one per per-model claim: two rows
    assert_png(tmp_path / "measured/sweeps/pythia-70m.png", min_width=13 * DPI - 10, min_height=int(9.8 * DPI))


def test_a_sweep_of_one_checkpoint_draws_no_training_figure(tmp_path):
    written, _ = draw_figures(run_of({"measured": sweep(steps=(1000,))}), tmp_path)
    assert not any("/sweeps/" in name for name in names(written, tmp_path))


def test_the_step_axis_shows_step_0_as_the_untrained_control():
    from gainscale.figures.training import _step_axis

    ax = axes()
    _step_axis(ax, [0, 1, 512, 143000])
    assert ax.get_xscale() == "symlog"
    low, high = ax.get_xlim()
    assert low < 0 < 1 < 143000 < high
    assert ax.xaxis.get_major_formatter()(0, 0) == "0\nuntrained\n(control)"
    later = axes()
    _step_axis(later, [1000, 2000])
    assert later.get_xscale() == "log"


def test_training_figure_without_claims(tmp_path):
    assert_png(training_figure("measured", "pythia-70m", sweep(), (), {}, tmp_path / "sweep.png", threshold_pct=97))


def test_a_control_beside_its_trained_model(tmp_path):
    models = controlled()
    run = run_of({"measured": models}, claims=per_model_claims("measured", models), uncertain=("measured",))
    written, errors = draw_figures(run, tmp_path)
    assert errors == []
    assert "measured/controls/small-random.png" in names(written, tmp_path)
    assert_png(tmp_path / "measured/controls/small-random.png", min_width=14 * DPI - 10, min_height=6 * DPI)


def test_a_control_whose_trained_model_did_not_run_draws_no_control_figure(tmp_path):
    written, _ = draw_figures(run_of({"measured": controlled()[1:]}), tmp_path)
    assert not any("/controls/" in name for name in names(written, tmp_path))


def test_control_figure_without_claims(tmp_path):
    trained, control = controlled()
    assert_png(control_figure("measured", trained, control, (), {}, tmp_path / "control.png"))


# -- drawing a run's figures -----------------------------------------------------------------------


def test_draw_figures_writes_one_scaling_figure_per_source_and_one_per_profiled_model(tmp_path):
    """Published models have no gains (no model figures); measured ones each get theirs."""
    run = run_of({"published": published(), "measured": measured()}, fitted=("published",))
    written, errors = draw_figures(run, tmp_path / "figures")
    assert errors == []
    assert names(written, tmp_path / "figures") == sorted(
        ["across_sources.png", "scaling_published.png", "scaling_measured.png"] + [f"measured/tiny-{x}.png" for x in "abcd"])
    for path in written:
        assert_png(path)


def test_figures_of_earlier_runs_are_removed(tmp_path):
    """The folder holds this run's figures only: a model, a sweep or a control no longer in the run loses its PNG."""
    draw_figures(run_of({"measured": measured() + sweep() + controlled()}), tmp_path)
    assert (tmp_path / "measured" / "sweeps").is_dir() and (tmp_path / "measured" / "controls").is_dir()
    draw_figures(run_of({"measured": measured()[:2]}), tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png")) == [
        "measured/tiny-a.png", "measured/tiny-b.png", "scaling_measured.png"]
    assert not (tmp_path / "measured" / "sweeps").exists() and not (tmp_path / "measured" / "controls").exists()


def test_only_figures_whose_inputs_changed_are_drawn_again(tmp_path):
    models = measured()
    draw_figures(run_of({"measured": models}), tmp_path)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.png")}
    models[0] = ModelSummary.from_gains("tiny-a", models[0].n_params, [0.4, 0.6], [0.9, 6.5], architecture="llama")
    written, errors = draw_figures(run_of({"measured": models}), tmp_path)
    assert errors == []
    redrawn = {p.relative_to(tmp_path).as_posix() for p in written if p.stat().st_mtime_ns != before[p]}
    assert redrawn == {"scaling_measured.png", "measured/tiny-a.png"}


def test_a_broken_model_costs_only_its_figures(tmp_path):
    """A model whose mlp_gains is a string: its errors are reported, every other figure is written."""
    models = measured()
    models[1] = replace(models[1], mlp_gains="not a list")
    written, errors = draw_figures(run_of({"published": published(), "measured": models}), tmp_path)
    assert names(written, tmp_path) == ["measured/tiny-a.png", "measured/tiny-c.png", "measured/tiny-d.png", "scaling_published.png"]
    assert [e.split(":")[0] for e in errors] == ["figure scaling_measured.png", "figure measured/tiny-b.png", "figure across_sources.png"]
    assert all("tiny-b: mlp_gains must be a non-empty list of gains" in e for e in errors)


def test_a_figure_that_fails_costs_no_other(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no training today")

    monkeypatch.setattr(figures, "training_figure", broken)
    written, errors = draw_figures(run_of({"measured": sweep() + controlled()}), tmp_path)
    assert errors == ["figure measured/sweeps/pythia-70m.png: RuntimeError: no training today"]
    assert "measured/controls/small-random.png" in names(written, tmp_path)


def test_a_kind_of_figure_whose_inputs_cannot_be_gathered_costs_no_other_kind(tmp_path, monkeypatch):
    def broken(source):
        raise KeyError("step")

    monkeypatch.setattr(figures, "sweeps", broken)
    written, errors = draw_figures(run_of({"measured": sweep() + controlled()}), tmp_path)
    assert errors == ["figures training: KeyError: 'step'"]
    assert {"scaling_measured.png", "measured/controls/small-random.png"} <= set(names(written, tmp_path))


def test_file_names_are_sanitized_and_never_collide(tmp_path):
    """Source, model and sweep names cannot put a figure outside the folder; names that differ stay apart."""
    base = measured()[0]
    models = [replace(base, model=name) for name in ("org/model v2", "org_model_v2", "modèle")]
    models += [replace(m, sweep="../sweep") for m in sweep()[:2]]
    models += [replace(controlled()[0], model="../x"), replace(controlled()[1], control_of="../x")]
    written, errors = draw_figures(run_of({"../up": models, "other": measured()}), tmp_path / "figures")
    assert errors == []
    assert len(set(written)) == len(written)
    assert all((tmp_path / "figures") in p.parents for p in written)
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", part) for p in written for part in p.relative_to(tmp_path).parts)


def test_the_report_links_every_figure_of_a_source(tmp_path):
    models = sweep() + controlled()
    run = run_of({"measured": models, "published": published()}, claims=per_model_claims("measured", models, sensitivity=True))
    written, _ = draw_figures(run, tmp_path / "figures")
    lines = _figure_links(run.source("measured"), [p.relative_to(tmp_path) for p in written])
    text = "\n".join(lines)
    assert "![Final MLP gain scaling and sublayer contraction, measured](figures/scaling_measured.png)" in text
    assert "![Each claim under each variant of the analysis, measured](figures/sensitivity_measured.png)" in text
    assert "![pythia-70m over training, measured](figures/measured/sweeps/pythia-70m.png)" in text
    assert "![small beside its control small-random, measured](figures/measured/controls/small-random.png)" in text
    assert "[small](figures/measured/small.png)" in text  # per-model figures are found in their folder
    assert "[across\\_sources.png](figures/across_sources.png)" in text or "(figures/across_sources.png)" in text


def test_importing_the_module_does_not_import_matplotlib():
    """matplotlib loads when a figure is drawn, not when gainscale is imported."""
    code = "import sys, gainscale.figures, gainscale.sensitivity_table; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
