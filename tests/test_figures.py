"""The report's figures: valid PNGs for every kind of source, and failures that stay contained."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from gainscale.figures import draw_figures, model_figure, scaling_figure
from gainscale.results import ClaimInfo, ClaimResult, RunResult, SourceInfo, SourceResult
from gainscale.stats import fit_power_law
from gainscale.summary import ModelSummary

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: SCALING_LAW_ANALYSIS.md §1 and §3: name, parameters, layers, final MLP gain, attention %, MLP %
PUBLISHED_ROWS = [
    ("pythia-70m", 70426624, 6, 1.50, 100.0, 83.333),
    ("pythia-160m", 162322944, 12, 2.82, 100.0, 75.0),
    ("pythia-410m", 405334016, 24, 1.78, 100.0, 87.5),
    ("pythia-1b", 1011781632, 16, 3.72, 100.0, 68.75),
    ("pythia-1.4b", 1414647808, 24, 3.52, 100.0, 91.667),
    ("pythia-2.8b", 2775208960, 32, 2.10, 100.0, 75.0),
    ("pythia-6.9b", 6857302016, 32, 6.30, 96.875, 56.25),
    ("pythia-12b", 11846072320, 36, 7.71, 97.222, 5.556),
]

#: the paper's refit (tests/test_statistics.py checks these numbers)
PUBLISHED_FIT = {
    "alpha": 0.2648, "alpha_stderr": 0.0788, "intercept": -1.8885, "r_squared": 0.6532, "p_value": 0.0152,
    "n_models": 8, "alpha_ci95": [0.072, 0.458], "loo_alpha": {},
}


def published_models() -> list[dict]:
    return [
        {"model": name, "n_params": params, "n_layers": layers, "final_mlp_gain": gain,
         "attn_contracting_pct": attn, "mlp_contracting_pct": mlp, "attn_gains": None, "mlp_gains": None}
        for name, params, layers, gain, attn, mlp in PUBLISHED_ROWS
    ]


def measured_models() -> list[dict]:
    """Four small models with per-layer gains, 2 to 6 layers, the last MLP expanding."""
    profiles = {
        "tiny-a": ([0.4, 0.6], [0.9, 6.0]),
        "tiny-b": ([0.6, 0.25, 0.2], [1.4, 0.8, 3.7]),
        "tiny-c": ([0.9, 0.55, 0.8, 0.55], [1.2, 0.7, 1.2, 7.8]),
        "tiny-d": ([0.55, 0.7, 0.65, 0.25, 0.7, 0.6], [0.8, 0.55, 1.45, 1.02, 1.3, 8.0]),
    }
    models = []
    for index, (name, (attn, mlp)) in enumerate(profiles.items()):
        models.append({
            "model": name, "n_params": 2_000_000 * 4**index, "n_layers": len(mlp), "final_mlp_gain": mlp[-1],
            "attn_contracting_pct": 100.0 * sum(g < 1 for g in attn) / len(attn),
            "mlp_contracting_pct": 100.0 * sum(g < 1 for g in mlp) / len(mlp),
            "attn_gains": attn, "mlp_gains": mlp,
        })
    return models


def assert_png(path, min_width=400, min_height=300):
    """A real PNG that matplotlib reads back, at least the given size in pixels."""
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == PNG_SIGNATURE, path
    height, width = imread(path).shape[:2]
    assert width >= min_width and height >= min_height, (path, width, height)


def test_scaling_figure_of_the_published_table(tmp_path):
    """The paper's eight models, no per-layer gains, with the fit: a 13x10 inch PNG at 120 dpi."""
    path = scaling_figure("published", published_models(), PUBLISHED_FIT, tmp_path / "scaling_published.png")
    assert path == tmp_path / "scaling_published.png"
    assert_png(path, min_width=13 * 120 - 10, min_height=10 * 120 - 10)


def test_scaling_figure_without_a_fit(tmp_path):
    """A source whose fit did not run still gets its points drawn."""
    path = scaling_figure("published", published_models(), None, tmp_path / "scaling.png")
    assert_png(path)


def test_scaling_figure_with_per_layer_gains(tmp_path):
    """Panel (c) draws the profiles when the source has per-layer gains."""
    assert_png(scaling_figure("measured", measured_models(), PUBLISHED_FIT, tmp_path / "scaling.png"))


def test_model_figure_draws_per_layer_gains(tmp_path):
    assert_png(model_figure("measured", measured_models()[-1], tmp_path / "model.png"))


def test_model_figure_refuses_a_model_without_per_layer_gains(tmp_path):
    """The published table has no per-layer gains: the error names the model."""
    with pytest.raises(ValueError, match="pythia-70m"):
        model_figure("published", published_models()[0], tmp_path / "model.png")
    assert not (tmp_path / "model.png").exists()


def run_of(sources: dict[str, list[dict]], fitted: tuple[str, ...] = ()):
    """A run whose sources hold these models; a fit (as a verdict's evidence) for the ``fitted`` ones."""
    claim = ClaimInfo("fit", "a power law", "suite")
    claims = tuple(
        ClaimResult(claim, f"t[{name}]", "t.py", name, None, "passed",
                    evidence=(fit_power_law([m["model"] for m in models], [m["n_params"] for m in models],
                                            [m["final_mlp_gain"] for m in models]),))
        for name, models in sources.items() if name in fitted
    )
    return RunResult({}, claims, tuple(
        SourceResult(SourceInfo(name, "test"), tuple(map(_summary, models))) for name, models in sources.items()
    ))


def _summary(model: dict) -> ModelSummary:
    counts = {f"{kind}_contracting": round(model[f"{kind}_contracting_pct"] * model["n_layers"] / 100) for kind in ("attn", "mlp")}
    return ModelSummary.from_json({**model, **counts})


def test_draw_figures_writes_one_scaling_figure_per_source_and_one_per_profiled_model(tmp_path):
    """Published models have no gains (no model figures); measured ones each get theirs."""
    run = run_of({"published": published_models(), "measured": measured_models()}, fitted=("published",))
    written, errors = draw_figures(run, tmp_path / "figures")
    assert errors == []
    assert sorted(p.relative_to(tmp_path / "figures").as_posix() for p in written) == sorted(
        ["scaling_published.png", "scaling_measured.png"] + [f"measured/tiny-{x}.png" for x in "abcd"]
    )
    for path in written:
        assert_png(path)


def test_figures_of_earlier_runs_are_removed(tmp_path):
    """The folder holds this run's figures only: a model no longer in the run loses its PNG."""
    draw_figures(run_of({"measured": measured_models()}), tmp_path)
    written, _ = draw_figures(run_of({"measured": measured_models()[:2]}), tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png")) == [
        "measured/tiny-a.png", "measured/tiny-b.png", "scaling_measured.png"]


def test_a_broken_model_costs_only_its_figures(tmp_path):
    """A model whose mlp_gains is a string: its errors are reported, every other figure is written."""
    models = measured_models()
    models[1]["mlp_gains"] = "not a list"
    written, errors = draw_figures(run_of({"published": published_models(), "measured": models}), tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == [
        "measured/tiny-a.png", "measured/tiny-c.png", "measured/tiny-d.png", "scaling_published.png"]
    assert len(errors) == 2
    assert errors[0].startswith("figure scaling_measured.png: ValueError: tiny-b: mlp_gains")
    assert errors[1].startswith("figure measured/tiny-b.png: ValueError: tiny-b: mlp_gains")


def test_a_model_that_cannot_go_on_a_log_axis_is_named(tmp_path):
    """A zero final gain fails the scaling figure with the model's name, not "math domain error"."""
    models = published_models()
    models[3]["final_mlp_gain"] = 0.0
    with pytest.raises(ValueError, match=r"pythia-1b: final_mlp_gain must be a positive finite number, not 0\.0"):
        scaling_figure("published", models, PUBLISHED_FIT, tmp_path / "scaling.png")


def test_file_names_are_sanitized_and_never_collide(tmp_path):
    """Source and model names cannot put a figure outside the folder; names that differ stay apart."""
    first, second, third = ({**measured_models()[0], "model": name} for name in ("org/model v2", "org_model_v2", "modèle"))
    run = run_of({"../up": [first, second, third]})
    written, errors = draw_figures(run, tmp_path / "figures")
    assert errors == []
    assert len({p.name for p in written}) == 4
    assert all((tmp_path / "figures") in p.parents for p in written)
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", part) for p in written for part in p.relative_to(tmp_path).parts)


def test_importing_the_module_does_not_import_matplotlib():
    """matplotlib loads when a figure is drawn, not when gainscale is imported."""
    code = "import sys, gainscale.figures; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
