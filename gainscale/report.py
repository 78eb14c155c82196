"""REPORT.md, results.json and the figures, written from a run's :class:`RunResult`.

The Markdown follows the layout of the paper's analysis, one section per source: executive
summary, model comparison, then a section for each kind of evidence the verdicts carried (a
power-law fit, a trend test), figures; then provenance. Everything in it comes from the typed
result, so a report needs neither torch nor the models, and nothing here knows any claim.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .files import ordered_json, write_if_changed
from .results import AlphaBootstrap, ClaimInfo, ClaimResult, ClaimSensitivity, RunResult, SourceResult
from .stats import AlphaTest, PowerLawFit, TrendTest

#: parameter counts the paper predicts final MLP gains for (§2 "Revised Predictions")
PREDICTION_POINTS = {"7B (LLaMA-7B)": 7e9, "13B (LLaMA-13B)": 13e9, "70B (LLaMA-70B)": 70e9, "175B (GPT-3)": 175e9, "1T": 1e12}

BADGES = {
    "passed": "✅ passed",
    "failed": "❌ FAILED",
    "skipped": "⏭ skipped",
    "xfailed": "☑️ known failing (xfail)",
    "regression": "🚨 REGRESSION",
    "improvement": "📈 IMPROVEMENT (accept it)",
}


@dataclass
class WrittenReport:
    """Where a report went and what could not be drawn."""

    directory: Path
    files: list[Path] = field(default_factory=list)
    figure_errors: list[str] = field(default_factory=list)

    @property
    def markdown(self) -> Path:
        return self.directory / "REPORT.md"

    @property
    def figures(self) -> list[Path]:
        return [p for p in self.files if p.suffix == ".png"]


def write_report(run: RunResult, directory: str | Path) -> WrittenReport:
    """Write ``results.json``, ``figures/*.png`` and ``REPORT.md`` into ``directory``.

    A figure that fails to draw is named in the report and the rest is still written;
    figures of earlier runs that this run did not draw are removed.

    Raises
    ------
    WriteError
        When ``directory`` (or a file in it) cannot be written, naming the path.
    """
    directory = Path(directory)
    written = WrittenReport(directory)
    # in the typed result's order: its format and whether the run finished come first
    write_if_changed(directory / "results.json", ordered_json(run.to_json()))  # unchanged: no write, no fsync
    written.files.append(directory / "results.json")
    figures, written.figure_errors = _draw_figures(run, directory / "figures")
    written.files += figures
    write_if_changed(written.markdown, render_markdown(run, [p.relative_to(directory) for p in figures], written.figure_errors))
    written.files.append(written.markdown)
    return written


def _draw_figures(run: RunResult, directory: Path) -> tuple[list[Path], list[str]]:
    try:
        from .figures import draw_figures

        return draw_figures(run, directory)
    except Exception as error:  # no figure must cost the report (matplotlib missing, a backend error...)
        return [], [f"figures: {type(error).__name__}: {error}"]


# ---------------------------------------------------------------------------- Markdown


def render_markdown(run: RunResult, figures: list[Path], figure_errors: list[str]) -> str:
    """The whole REPORT.md as text."""
    provenance = run.provenance
    parts = ["# gainscale claims report", ""]
    parts += _interruption_banner(run)
    dated = f"Generated {provenance['date']}" if provenance.get("date") else "Generated"
    parts += [
        f"{dated} by gainscale {provenance.get('gainscale_version', '?')} from "
        f"`{escape_code(provenance.get('command', 'pytest'))}`. Claims evaluated on: "
        + ", ".join(f"**{escape(s.name)}**" for s in run.sources) + ".",
        "",
    ]
    for number, source in enumerate(run.sources, 1):
        parts += _source_section(number, source, run, figures)
    parts += _across_sources(run) + _over_training(run) + _controls(run)
    parts += _provenance_section(run, figure_errors)
    return "\n".join(parts).rstrip() + "\n"


def _interruption_banner(run: RunResult) -> list[str]:
    if run.interruption is None:
        return []
    stopped = run.interruption
    lines = [f"> **This run was {stopped.reason}**: the report shows only what ran."]
    if stopped.not_run:
        lines += [f"> Did not run ({len(stopped.not_run)}): " + ", ".join(f"`{escape_code(t)}`" for t in stopped.not_run)]
    return lines + [""]


def _source_section(number: int, source: SourceResult, run: RunResult, figures: list[Path]) -> list[str]:
    claims = run.claims_of(source.name)
    lines = [f"## {number}. Source: {escape(source.name)}", "", f"*{escape(source.info.description)}*", ""]
    if source.info.notes:
        lines += ["> Notes:", ">"] + [f"> - {escape(note)}" for note in source.info.notes] + [""]
    lines += ["### Executive summary", ""] + _summary_table(run.claim_infos(), claims) + [""]
    lines += ["### How sure is each verdict", ""] + _how_sure(source, claims) + [""]
    lines += ["### Model comparison", ""] + _model_table(source) + [""] + _uncertainty_table(source)
    for kind, (title, render) in EVIDENCE_SECTIONS.items():
        evidence = run.evidence(source.name, kind)
        if evidence is not None:
            lines += [f"### {title}", ""] + render(evidence, source, run) + [""]
    lines += ["### Figures", ""] + _figure_links(source, figures) + [""]
    return lines


def _summary_table(infos: list[ClaimInfo], claims: list[ClaimResult]) -> list[str]:
    rows = ["| Claim | Verdict | Value | Threshold | Details |", "|---|---|---|---|---|"]
    for info in infos:
        results = [c for c in claims if c.claim.id == info.id]
        title = escape(info.title)
        if not results:
            rows.append(f"| {title} | not run | | | not selected in this session (e.g. `-k`) |")
        elif info.scope == "model":
            rows.append(_per_model_row(results[0].claim, results))
        else:
            (result,) = results
            value, threshold = result.claim.describe_value(result.value), result.claim.describe_threshold(result.threshold)
            rows.append(f"| {escape(result.claim.title)} | {BADGES[result.outcome]} | {escape(value)} | {escape(threshold)} | {_detail(result)} |")
    return rows


def _per_model_row(info: ClaimInfo, tests: list[ClaimResult]) -> str:
    """The claim over the source's models; a control is named beside them and counts in nothing."""
    results = [r for r in tests if not r.is_control]
    passed = [r for r in results if r.outcome == "passed"]
    bad = [r for r in results if r.failing]
    skipped = [r for r in results if r.outcome == "skipped"]
    evaluated = len(results) - len(skipped)
    worst = next((o for o in ("regression", "improvement", "failed", "xfailed") if any(r.outcome == o for r in results)), None)
    verdict = BADGES[worst] if worst else BADGES["passed" if passed else "skipped"]
    value = f"{len(passed)} of {evaluated} models pass" if evaluated else ""
    details = "; ".join(f"{r.outcome}: {escape(r.message)}{_baseline_note(r)}" for r in bad)
    if skipped:
        details += ("; " if details else "") + f"{len(skipped)} skipped: {escape(_shorten(skipped[0].message))}"
    controls = [r for r in tests if r.is_control]
    if controls:
        details += ("; " if details else "") + _controls_note(info, controls)
    if not results:
        verdict = "no model but controls"
    threshold = escape(info.describe_threshold(tests[0].threshold))
    return f"| {escape(info.title)} | {verdict} | {value} | {threshold} | {details} |"


def _controls_note(info: ClaimInfo, controls: list[ClaimResult]) -> str:
    listed = ", ".join(f"{escape(r.model)} ({BADGES[r.outcome].split()[0]} {escape(info.describe_value(r.value))})" for r in controls)
    return f"not counted: control {listed}, see Trained and untrained"


def _detail(result: ClaimResult) -> str:
    return escape(_shorten(result.message, 300)) + _baseline_note(result)


def _baseline_note(result: ClaimResult) -> str:
    """The baseline's verdict and value beside the current ones, when a baseline was compared."""
    baseline = result.baseline
    if baseline is None or baseline.outcome is None:
        return ""
    return f" (baseline: {baseline.outcome}, {_number(baseline.value)})"


def _model_table(source: SourceResult) -> list[str]:
    if not source.models:
        return ["No model of this source ran in this session."]
    rows = ["| Model | Parameters | Layers | Final MLP gain | Attention contracting | MLP contracting |", "|---|---:|---:|---:|---:|---:|"]
    for m in source.models:
        rows.append(
            f"| {escape(m.model)} | {m.n_params:,} | {m.n_layers} | **{m.final_mlp_gain:.3g}x** | "
            f"{_share(m.attn_contracting, m.n_layers)} | {_share(m.mlp_contracting, m.n_layers)} |"
        )
    return rows


def _share(count: int | None, layers: int) -> str:
    return "n/a" if count is None else f"{count}/{layers} = {100 * count / layers:.1f}%"


# ---------------------------------------------------------------------------- how sure a verdict is


def _how_sure(source: SourceResult, claims: list[ClaimResult]) -> list[str]:
    """Per claim one sentence (robust, or which variants flip it) and its stability; then the table.

    Both come from the source's stored sensitivity table; controls are in neither.
    """
    if not source.sensitivity:
        return ["No claim of this source declares a check to evaluate again, or none reached a verdict."]
    lines = []
    for column in source.sensitivity:
        tests = [c for c in claims if c.claim.id == column.claim and not c.is_control]
        lines.append(f"- **{escape(column.claim)}**: {escape(column.robustness)}.{_stability_note(tests)}")
    return lines + [""] + _sensitivity_table(source.sensitivity)


def _stability_note(results: list[ClaimResult]) -> str:
    shares = [(r.model, r.stability) for r in results if r.stability is not None and r.stability.share is not None]
    if not shares:
        reason = next((r.stability.reason for r in results if r.stability is not None), "")
        return f" Over resampled prompts: not available ({escape(reason)})." if reason else ""
    resamples = shares[0][1].resamples
    if len(shares) == 1:
        return f" Its verdict passes in {shares[0][1].share:.0%} of {resamples} resamples of the prompts."
    listed = ", ".join(f"{escape(model)} {s.share:.0%}" for model, s in shares)
    return f" Share of {resamples} resamples of the prompts in which it passes, per model: {listed}."


def _sensitivity_table(columns: tuple[ClaimSensitivity, ...]) -> list[str]:
    """Variants down, claims across; each cell the verdict under that variant, with its value."""
    rows = ["| Variant | " + " | ".join(escape(c.claim) for c in columns) + " |", "|---|" + "---|" * len(columns)]
    rows.append("| **as tested** | " + " | ".join(_cell_text(c.verdict, c.value) for c in columns) + " |")
    for name in dict.fromkeys(cell.variant for c in columns for cell in c.cells):
        cells = [c.cell(name) for c in columns]
        rows.append(f"| {escape(name)} | " + " | ".join("–" if c is None else _cell_text(c.verdict, c.value) for c in cells) + " |")
    return rows + ["", "✅ holds, ❌ fails, n/a: the numbers cannot say (e.g. a table without per-layer gains), – does not "
                   "apply. The value is the claim's own (a p-value, alpha, a share); per-model claims hold only if every "
                   "model does (controls left out)."]


def _cell_text(verdict: str | None, value: float | None) -> str:
    mark = {"passed": "✅", "failed": "❌", None: "n/a"}[verdict]
    return mark if value is None or verdict is None else f"{mark} {value:.3g}"


def _uncertainty_table(source: SourceResult) -> list[str]:
    if not source.uncertainty:
        return []
    rows = ["Over resampled prompts (95% bootstrap intervals):", "",
            "| Model | Final MLP gain | Attention contracting | MLP contracting |", "|---|---|---|---|"]
    for model in (m.model for m in source.models if m.model in source.uncertainty):
        u = source.uncertainty[model]
        rows.append(f"| {escape(model)} | {_interval(u.final_mlp_gain)} | {_interval(u.attn_contracting, 0)} | "
                    f"{_interval(u.mlp_contracting, 0)} |")
    first = next(iter(source.uncertainty.values()))
    return rows + ["", f"{first.resamples} resamples of each model's prompts, from the run's bootstrap seed and the model's name.", ""]


def _interval(interval, digits: int = 3) -> str:
    fmt = f"{{:.{digits}f}}" if digits else "{:.0f}"
    return f"{fmt.format(interval.estimate)} [{fmt.format(interval.lower)}, {fmt.format(interval.upper)}]"


# ---------------------------------------------------------------------------- evidence sections


def _scaling_section(fit: PowerLawFit, source: SourceResult, run: RunResult) -> list[str]:
    low, high = fit.confidence_interval(0.95)
    lines = [
        "```",
        "log10(final MLP gain) = alpha * log10(parameters) + beta",
        f"alpha = {fit.alpha:.4f} ± {fit.alpha_stderr:.4f}   (95% CI [{low:.3f}, {high:.3f}], t with {fit.degrees_of_freedom} df)",
        f"beta  = {fit.intercept:.4f} ± {fit.intercept_stderr:.4f}",
        f"R²    = {fit.r_squared:.4f}",
        f"p     = {fit.p_value:.4g}   (slope != 0, n = {fit.n})",
        "```",
        "",
    ]
    lines += _fit_diagnostics(fit, run.evidence(source.name, AlphaBootstrap)) + [""]
    lines += _recorded_fit_table(fit, source.info.recorded_fit)
    lines += _alpha_test_table(run.evidence(source.name, AlphaTest), fit)
    return lines + _residual_table(fit) + [""] + _prediction_table(fit)


def _fit_diagnostics(fit: PowerLawFit, bootstrap: AlphaBootstrap | None) -> list[str]:
    """What else says how far the fit's alpha and p can be trusted."""
    theil = fit.theil_sen(0.95)
    n80 = fit.n_for_power(0.8)
    lines = [
        f"- Theil-Sen slope (robust to one outlying model): {theil.slope:.4f}, 95% interval [{theil.low:.3f}, {theil.high:.3f}].",
        f"- Power of the slope's t-test at the observed effect: {fit.power():.0%}"
        + (f"; {n80} models would give 80% (new models spread and scattered like these)." if n80 else "."),
    ]
    if bootstrap is not None:
        a = bootstrap.alpha
        lines.append(f"- alpha over resampled prompts ({bootstrap.resamples} resamples, seed {bootstrap.seed}): "
                     f"95% interval [{a.lower:.3f}, {a.upper:.3f}], beside the t interval [{bootstrap.ols[0]:.3f}, {bootstrap.ols[1]:.3f}].")
    return lines


def _recorded_fit_table(fit: PowerLawFit, recorded: dict | None) -> list[str]:
    if not recorded:
        return []
    pairs = [("alpha", fit.alpha, "exponent_alpha"), ("stderr", fit.alpha_stderr, "exponent_std_err"),
             ("intercept", fit.intercept, "intercept"), ("R²", fit.r_squared, "r_squared"), ("p", fit.p_value, "p_value")]
    rows = ["Refit beside the fit the source recorded:", "", "| Quantity | Refit here | Recorded |", "|---|---:|---:|"]
    rows += [f"| {name} | {value:.4g} | {_number(recorded.get(key))} |" for name, value, key in pairs]
    return rows + [""]


def _alpha_test_table(test: AlphaTest | None, fit: PowerLawFit) -> list[str]:
    if test is None:
        return []
    band = test.sigmas * fit.alpha_stderr
    low, high = fit.equivalence_range(test.sigmas)
    return [
        f"Hypothesis alpha = {test.alpha0:g}:", "",
        f"| Difference | {test.sigmas:g}σ check | t | df | two-sided p |", "|---:|---|---:|---:|---:|",
        f"| {test.difference:+.4f} | {'within' if test.within_sigmas else 'outside'} ({abs(test.difference):.3f} vs {band:.3f}) "
        f"| {test.t:.3f} | {test.degrees_of_freedom} | {test.p_value:.4f} |",
        "",
        f"The {test.sigmas:g}σ check cannot reject any hypothesised alpha from {low:.3f} to {high:.3f}: a pass confirms "
        f"{test.alpha0:g} no more than any other value in that range. {test.sigmas:g}σ at {fit.degrees_of_freedom} degrees "
        f"of freedom is a {fit.sigma_level(test.sigmas):.1%} interval; 95% takes {fit.sigmas_for_level(0.95):.3f}σ.",
        "",
    ]


def _residual_table(fit: PowerLawFit) -> list[str]:
    loo = {f.model: f for f in fit.leave_one_out_fits()}
    rows = ["| Model | Residual (log10) | Studentized (internal / external) | Cook's D | Status | alpha without it | p without it |",
            "|---|---:|---:|---:|---|---:|---:|"]
    for r in fit.residuals():
        status = f"**outlier** (\\|t\\| > {r.outlier_cutoff:.2f})" if r.external_outlier else "normal"
        without = loo[r.model]
        rows.append(f"| {escape(r.model)} | {r.residual:+.3f} | {r.studentized:+.2f} / {r.externally_studentized:+.2f} | "
                    f"{r.cooks_distance:.2f} | {status} | {without.alpha:.4f} | {without.p_value:.4f} |")
    return rows + ["", "An outlier's externally studentized residual (the residual over the scatter of the fit without "
                   "it) lies beyond the two-sided 95% t quantile with n - 3 degrees of freedom; the internally studentized "
                   "one cannot exceed sqrt(n - 2) and hides a single outlier at these n."]


def _prediction_table(fit: PowerLawFit) -> list[str]:
    rows = ["| Parameters | Predicted final MLP gain | 95% prediction interval |", "|---|---:|---|"]
    for label, n_params in PREDICTION_POINTS.items():
        p = fit.predict(n_params)
        rows.append(f"| {label} | {p.gain:.2f}x | [{p.lower:.2f}x, {p.upper:.2f}x] |")
    return rows


def _trend_section(trend: TrendTest, source: SourceResult, run: RunResult) -> list[str]:
    (small, small_value), (large, large_value) = trend.smallest, trend.largest
    n80 = trend.n_for_power(0.8)
    return [
        "| Test (one-sided: falls with size) | Statistic | p (asymptotic) | p (permutation) |", "|---|---:|---:|---:|",
        f"| Spearman | rho = {trend.spearman_rho:.3f} | {trend.spearman_p:.4f} | {_number(trend.spearman_exact_p)} |",
        f"| Kendall | tau = {trend.kendall_tau:.3f} | {trend.kendall_p:.4f} | {_number(trend.kendall_exact_p)} |",
        f"| Pearson on log10 parameters | r = {trend.pearson_r:.3f} | {trend.pearson_p:.4f} | |",
        "",
        f"Permutation p-values: {escape(trend.permutation_method)}. End points: {escape(small)} {small_value:.4g} → "
        f"{escape(large)} {large_value:.4g}, over {len(trend.models)} models.",
        f"Power of the one-sided Spearman test at the observed rho and n = {len(trend.models)}: {trend.power():.0%}"
        + (f"; about {n80} models would give 80%." if n80 else "."),
    ]


#: how the report lays out each kind of evidence a verdict can carry: (section title, renderer)
EVIDENCE_SECTIONS: dict[type, tuple[str, Callable[[Any, SourceResult, RunResult], list[str]]]] = {
    PowerLawFit: ("Scaling law", _scaling_section),
    TrendTest: ("Trend with model size", _trend_section),
}


# ---------------------------------------------------------------------------- across sources, training, controls


def _across_sources(run: RunResult) -> list[str]:
    """Every source's models side by side, where the run evaluated more than one."""
    sources = [s for s in run.sources if s.models]
    if len(sources) < 2:
        return []
    rows = ["## Across sources and architectures", "",
            "| Source | Model | Architecture | Parameters | Layers | Attention contracting | MLP contracting | Final MLP gain |",
            "|---|---|---|---:|---:|---:|---:|---:|"]
    for source in sources:
        for m in source.models:
            rows.append(f"| {escape(source.name)} | {escape(m.model)} | {escape(m.architecture or '?')} | {m.n_params:,} | "
                        f"{m.n_layers} | {_share(m.attn_contracting, m.n_layers)} | {_share(m.mlp_contracting, m.n_layers)} | "
                        f"{_number(m.final_mlp_gain)} |")
    return rows + [""]


def _over_training(run: RunResult) -> list[str]:
    """Each per-model claim along a revision sweep: its value and verdict at each training step."""
    lines = []
    for source in run.sources:
        sweeps = sorted({m.sweep for m in source.models if m.sweep is not None})
        for sweep in sweeps:
            models = sorted((m for m in source.models if m.sweep == sweep), key=lambda m: (m.step is None, m.step or 0))
            lines += [f"## Claims over training: {escape(sweep)} ({escape(source.name)})", ""]
            lines += _per_model_claims_table(run, source.name, models, "Step", lambda m: "?" if m.step is None else f"{m.step:,}")
            lines += ["", "Step 0 is the untrained network: a claim that holds there holds by architecture, not by training.", ""]
    return lines


def _controls(run: RunResult) -> list[str]:
    """Each trained model beside its control, the same network with its weights drawn again."""
    lines = []
    for source in run.sources:
        for control in (m for m in source.models if m.control_of is not None):
            trained = source.model(control.control_of)
            pair = [m for m in (trained, control) if m is not None]
            lines += [f"## Trained and untrained: {escape(control.control_of)} ({escape(source.name)})", ""]
            lines += _per_model_claims_table(run, source.name, pair, "Model", lambda m: m.model)
            lines += ["", f"{escape(control.model)} is {escape(control.control_of)}'s network with its weights drawn again: "
                      "the step-0 control. A claim that holds for both holds by architecture.", ""]
    return lines


def _per_model_claims_table(run: RunResult, source: str, models: list, label: str, name) -> list[str]:
    infos = [i for i in run.claim_infos() if i.scope == "model"]
    results = {(c.claim.id, c.model): c for c in run.claims_of(source)}
    header = f"| {label} | Final MLP gain | Attention contracting | MLP contracting | " + " | ".join(escape(i.id) for i in infos) + " |"
    rows = [header, "|---|---:|---:|---:|" + "---|" * len(infos)]
    for m in models:
        cells = []
        for info in infos:
            result = results.get((info.id, m.model))
            cells.append("" if result is None else f"{BADGES[result.outcome].split()[0]} {escape(info.describe_value(result.value))}")
        rows.append(f"| {escape(name(m))} | {_number(m.final_mlp_gain)} | {_share(m.attn_contracting, m.n_layers)} | "
                    f"{_share(m.mlp_contracting, m.n_layers)} | " + " | ".join(cells) + " |")
    return rows


# ---------------------------------------------------------------------------- figures and provenance


def _figure_links(source: SourceResult, figures: list[Path]) -> list[str]:
    from .figures import (ACROSS_SOURCES, control_figure_name, model_figure_name, scaling_figure_name,
                          sensitivity_figure_name, training_figure_name)

    drawn = _by_figure_name(figures)
    name = escape(source.name)
    shown = [(scaling_figure_name(source.name), f"Final MLP gain scaling and sublayer contraction, {name}"),
             (sensitivity_figure_name(source.name), f"Each claim under each variant of the analysis, {name}")]
    shown += [(training_figure_name(source.name, sweep), f"{escape(sweep)} over training, {name}")
              for sweep in dict.fromkeys(m.sweep for m in source.models if m.sweep is not None)]
    shown += [(control_figure_name(source.name, m.model), f"{escape(m.control_of)} beside its control {escape(m.model)}, {name}")
              for m in source.models if m.control_of is not None]
    lines = [line for figure, alt in shown if figure in drawn for line in (f"![{alt}]({drawn[figure].as_posix()})", "")]
    per_model = [(m.model, drawn[n]) for m in source.models if (n := model_figure_name(source.name, m.model)) in drawn]
    if per_model:
        lines += ["Per model: " + ", ".join(f"[{escape(model)}]({p.as_posix()})" for model, p in per_model), ""]
    if ACROSS_SOURCES in drawn:
        lines.append(f"Every source side by side, by architecture: [{ACROSS_SOURCES}]({drawn[ACROSS_SOURCES].as_posix()})")
    return lines[:-1] if lines and not lines[-1] else lines or ["No figure for this source."]


def _by_figure_name(figures: list[Path]) -> dict[str, Path]:
    """The drawn figures (paths within the report) by their names within the figures folder."""
    return {Path(*p.parts[1:]).as_posix(): p for p in figures if len(p.parts) > 1}


def _provenance_section(run: RunResult, figure_errors: list[str]) -> list[str]:
    p = run.provenance
    settings = p.get("settings", {})
    lines = ["## Provenance", ""]
    if p.get("date"):
        lines.append(f"- date: {p['date']}, git commit {p.get('git_commit') or 'unknown'}")
    lines += [
        f"- gainscale {p.get('gainscale_version')}; torch {p.get('torch_version') or 'not installed'}, "
        f"transformers {p.get('transformers_version') or 'not installed'}, python {p.get('python_version')}",
        f"- command: `{escape_code(p.get('command', ''))}`",
        "- settings: " + ", ".join(f"{escape(k)} {escape(_setting(v))}" for k, v in settings.items()),
    ]
    for source in run.sources:
        lines += ["", f"**{escape(source.name)}**:", ""] + _provenance_table(source.provenance)
    if figure_errors:
        lines += ["", "Figures that could not be drawn:", ""] + [f"- {escape(e)}" for e in figure_errors]
    return lines


def _provenance_table(models: dict[str, dict[str, Any]]) -> list[str]:
    """One row per model, one column per thing its source says about how it was obtained."""
    if not models:
        return ["- (nothing recorded)"]
    columns = list(dict.fromkeys(key for record in models.values() for key in record))
    rows = ["| Model | " + " | ".join(escape(c) for c in columns) + " |", "|---|" + "---|" * len(columns)]
    for model, record in models.items():
        rows.append(f"| {escape(model)} | " + " | ".join(escape(_setting(record.get(c))) for c in columns) + " |")
    return rows


def _setting(value: Any) -> str:
    return "default" if value is None else str(value)


# ---------------------------------------------------------------------------- text helpers

# what could start a link, an image, emphasis, code, HTML or a table cell; "(" alone cannot
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~])")


def escape(text: Any) -> str:
    """Make any text (a model name, a prompt, a message) inert inside Markdown and table cells."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text)).replace("\r", " ").replace("\n", " ")


def escape_code(text: Any) -> str:
    """Text for inside a single-backtick code span: no backticks, one line."""
    return str(text).replace("`", "'").replace("\r", " ").replace("\n", " ")


def _number(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.4g}"


def _shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
