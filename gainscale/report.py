"""REPORT.md, results.json and the figures, written from what the claims tests recorded.

The Markdown follows the layout of SCALING_LAW_ANALYSIS.md, in English, one section per
source: executive summary, model comparison, scaling law (fit, hypothesis test, residuals,
leave-one-out, predictions), MLP contraction trend, figures; then provenance. Everything in
it comes from the results dict (:meth:`gainscale.results.ResultsCollector.results`), so a
report needs neither torch nor the models.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .files import write_atomic
from .claims import CLAIMS
from .results import source_order
from .stats import PowerLawFit

#: parameter counts the paper predicts final MLP gains for (§2 "Revised Predictions")
PREDICTION_POINTS = {"7B (LLaMA-7B)": 7e9, "13B (LLaMA-13B)": 13e9, "70B (LLaMA-70B)": 70e9, "175B (GPT-3)": 175e9, "1T": 1e12}

_VERDICT = {"passed": "✅ passed", "failed": "❌ FAILED", "skipped": "⏭ skipped", "xfailed": "☑️ known failing (xfail)", "regression": "🚨 REGRESSION"}


@dataclass
class WrittenReport:
    """Where a report went and what could not be drawn."""

    directory: Path
    files: list[Path] = field(default_factory=list)
    figure_errors: list[str] = field(default_factory=list)

    @property
    def markdown(self) -> Path:
        return self.directory / "REPORT.md"


def write_report(results: dict[str, Any], directory: str | Path) -> WrittenReport:
    """Write ``results.json``, ``figures/*.png`` and ``REPORT.md`` into ``directory``.

    A figure that fails to draw is named in the report and the rest is still written.
    """
    directory = Path(directory)
    written = WrittenReport(directory)
    write_atomic(directory / "results.json", json.dumps(results, indent=1, sort_keys=True) + "\n")
    written.files.append(directory / "results.json")
    figures, written.figure_errors = _draw_figures(results, directory / "figures")
    written.files += figures
    text = render_markdown(results, [p.relative_to(directory) for p in figures], written.figure_errors)
    write_atomic(written.markdown, text)
    written.files.append(written.markdown)
    return written


def _draw_figures(results: dict[str, Any], directory: Path) -> tuple[list[Path], list[str]]:
    try:
        from .figures import draw_figures

        return draw_figures(results, directory)
    except Exception as error:  # no figure must cost the report (matplotlib missing, a backend error...)
        return [], [f"figures: {type(error).__name__}: {error}"]


# ---------------------------------------------------------------------------- Markdown


def render_markdown(results: dict[str, Any], figures: list[Path], figure_errors: list[str]) -> str:
    """The whole REPORT.md as text."""
    provenance = results["provenance"]
    sources = sorted({c["source"] for c in results["claims"]}, key=source_order)
    parts = [
        "# gainscale claims report",
        "",
        f"Generated {provenance.get('date', '?')} by gainscale {provenance.get('gainscale_version', '?')} from "
        f"`{escape_code(provenance.get('command', 'pytest'))}`. Claims of `SCALING_LAW_ANALYSIS.md`, evaluated on: "
        + ", ".join(f"**{escape(s)}**" for s in sources) + ".",
        "",
    ]
    for number, source in enumerate(sources, 1):
        parts += _source_section(number, source, results, figures)
    parts += _provenance_section(results, figure_errors)
    return "\n".join(parts).rstrip() + "\n"


def _source_section(number: int, source: str, results: dict[str, Any], figures: list[Path]) -> list[str]:
    claims = [c for c in results["claims"] if c["source"] == source]
    models = results["models"].get(source, [])
    lines = [f"## {number}. Source: {escape(source)}", "", _source_blurb(source, results), ""]
    lines += ["### Executive summary", ""] + _summary_table(claims) + [""]
    lines += ["### Model comparison", ""] + _model_table(models) + [""]
    lines += ["### Scaling law", ""] + _scaling_section(source, results) + [""]
    lines += ["### MLP contraction trend", ""] + _trend_section(results["trends"].get(source)) + [""]
    lines += ["### Figures", ""] + _figure_links(source, figures) + [""]
    return lines


def _source_blurb(source: str, results: dict[str, Any]) -> str:
    if source == "published":
        return "*The paper's own table (`published`): final MLP gains as printed (two decimals), contracting layers as counts derived from the printed percentages, parameter counts from the configs.*"
    if source == "measured":
        return "*Live measurements of the suite under this run's settings (`measured`), from the cache or measured in this run; see Provenance.*"
    origin = next(iter(results["provenance"]["sources"].get(source, {}).values()), {})
    return f"*Imported result set `{escape(source)}`, from `{escape_code(origin.get('imported_from', '?'))}`.*"


def _summary_table(claims: list[dict]) -> list[str]:
    rows = ["| Claim | Verdict | Value | Threshold | Details |", "|---|---|---|---|---|"]
    for claim_id, claim in CLAIMS.items():
        results = [c for c in claims if c["claim"] == claim_id]
        title = f"{escape(claim.statement)} ({claim.where})"
        if not results:
            rows.append(f"| {title} | not run | | | not selected in this session (e.g. `-k`) |")
        elif claim.scope == "model":
            rows.append(_per_model_row(title, claim, results))
        else:
            (result,) = results
            value, threshold = claim.describe_value(result["value"]), claim.describe_threshold(result["threshold"])
            rows.append(f"| {title} | {_VERDICT[result['outcome']]} | {escape(value)} | {escape(threshold)} | {_detail(result)} |")
    return rows


def _per_model_row(title: str, claim, results: list[dict]) -> str:
    passed = [r for r in results if r["outcome"] == "passed"]
    bad = [r for r in results if r["outcome"] in ("failed", "regression", "xfailed")]
    skipped = [r for r in results if r["outcome"] == "skipped"]
    evaluated = len(results) - len(skipped)
    if any(r["outcome"] == "regression" for r in results):
        verdict = _VERDICT["regression"]
    elif any(r["outcome"] == "failed" for r in results):
        verdict = _VERDICT["failed"]
    elif bad:
        verdict = _VERDICT["xfailed"]
    else:
        verdict = _VERDICT["passed"] if passed else _VERDICT["skipped"]
    value = f"{len(passed)} of {evaluated} models pass" if evaluated else ""
    details = "; ".join(f"{r['outcome']}: {escape(r['message'])}{_baseline_note(r)}" for r in bad)
    if skipped:
        details += ("; " if details else "") + f"{len(skipped)} skipped: {escape(_shorten(skipped[0]['message']))}"
    threshold = escape(claim.describe_threshold(results[0]["threshold"]))
    return f"| {title} | {verdict} | {value} | {threshold} | {details} |"


def _detail(result: dict) -> str:
    return escape(_shorten(result["message"], 300)) + _baseline_note(result)


def _baseline_note(result: dict) -> str:
    """The baseline's verdict and value beside the current ones, when a baseline was compared."""
    baseline = result.get("baseline")
    if not baseline or baseline.get("outcome") is None:
        return ""
    return f" (baseline: {baseline['outcome']}, {_number(baseline.get('value'))})"


def _model_table(models: list[dict]) -> list[str]:
    if not models:
        return ["No model of this source ran in this session."]
    rows = ["| Model | Parameters | Layers | Final MLP gain | Attention contracting | MLP contracting |", "|---|---:|---:|---:|---:|---:|"]
    for m in models:
        rows.append(
            f"| {escape(m['model'])} | {m['n_params']:,} | {m['n_layers']} | **{m['final_mlp_gain']:.3g}x** | "
            f"{_share(m['attn_contracting'], m['n_layers'])} | {_share(m['mlp_contracting'], m['n_layers'])} |"
        )
    return rows


def _share(count: int | None, layers: int) -> str:
    return "n/a" if count is None else f"{count}/{layers} = {100 * count / layers:.1f}%"


def _scaling_section(source: str, results: dict[str, Any]) -> list[str]:
    fit_data = results["fits"].get(source)
    if fit_data is None:
        return ["The cross-model claims were not run for this source in this session (deselected, or skipped: see the summary)."]
    fit = PowerLawFit.from_json(fit_data)
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
    lines += _recorded_fit_table(fit, results["recorded_fits"].get(source))
    lines += _alpha_test_table(results["alpha_tests"].get(source))
    lines += _residual_table(fit) + [""] + _prediction_table(fit)
    return lines


def _recorded_fit_table(fit: PowerLawFit, recorded: dict | None) -> list[str]:
    if not recorded:
        return []
    pairs = [("alpha", fit.alpha, "exponent_alpha"), ("stderr", fit.alpha_stderr, "exponent_std_err"),
             ("intercept", fit.intercept, "intercept"), ("R²", fit.r_squared, "r_squared"), ("p", fit.p_value, "p_value")]
    rows = ["Refit beside the fit the source recorded:", "", "| Quantity | Refit here | Recorded |", "|---|---:|---:|"]
    rows += [f"| {name} | {value:.4g} | {_number(recorded.get(key))} |" for name, value, key in pairs]
    return rows + [""]


def _alpha_test_table(test: dict | None) -> list[str]:
    if not test:
        return []
    band = abs(test["difference"]) / abs(test["t"]) * test["sigmas"] if test["t"] else 0.0
    return [
        f"Hypothesis alpha = {test['alpha0']:g}:", "",
        "| Difference | 2σ check | t | df | two-sided p |", "|---:|---|---:|---:|---:|",
        f"| {test['difference']:+.4f} | {'within' if test['within_sigmas'] else 'outside'} ({abs(test['difference']):.3f} vs {band:.3f}) "
        f"| {test['t']:.3f} | {test['degrees_of_freedom']} | {test['p_value']:.4f} |",
        "",
    ]


def _residual_table(fit: PowerLawFit) -> list[str]:
    loo = fit.leave_one_out()
    rows = ["| Model | Residual (log10) | Studentized | Status | alpha without it |", "|---|---:|---:|---|---:|"]
    for r in fit.residuals():
        status = "**outlier** (\\|r\\| > 2)" if r.outlier else "normal"
        rows.append(f"| {escape(r.model)} | {r.residual:+.3f} | {r.studentized:+.2f} | {status} | {loo[r.model]:.4f} |")
    return rows


def _prediction_table(fit: PowerLawFit) -> list[str]:
    rows = ["| Parameters | Predicted final MLP gain | 95% prediction interval |", "|---|---:|---|"]
    for label, n_params in PREDICTION_POINTS.items():
        p = fit.predict(n_params)
        rows.append(f"| {label} | {p.gain:.2f}x | [{p.lower:.2f}x, {p.upper:.2f}x] |")
    return rows


def _trend_section(trend: dict | None) -> list[str]:
    if not trend:
        return ["Not run for this source in this session (deselected, or skipped: see the summary)."]
    (small, small_pct), (large, large_pct) = trend["smallest"], trend["largest"]
    return [
        "| Test (one-sided: falls with size) | Statistic | p |", "|---|---:|---:|",
        f"| Spearman | rho = {trend['spearman_rho']:.3f} | {trend['spearman_p']:.4f} |",
        f"| Kendall | tau = {trend['kendall_tau']:.3f} | {trend['kendall_p']:.4f} |",
        "",
        f"End points: {escape(small)} {small_pct:.1f}% → {escape(large)} {large_pct:.1f}% of MLP layers contracting.",
    ]


def _figure_links(source: str, figures: list[Path]) -> list[str]:
    slug = _slug(source)
    main = [p for p in figures if p.name == f"scaling_{slug}.png"]
    per_model = [p for p in figures if p.name.startswith(f"{slug}_")]
    lines = [f"![Final MLP gain scaling and sublayer contraction, {escape(source)}]({p.as_posix()})" for p in main]
    if per_model:
        lines += ["", "Per model: " + ", ".join(f"[{escape(p.stem[len(slug) + 1:])}]({p.as_posix()})" for p in per_model)]
    return lines or ["No figure for this source."]


def _provenance_section(results: dict[str, Any], figure_errors: list[str]) -> list[str]:
    p = results["provenance"]
    lines = [
        "## Provenance", "",
        f"- date: {p.get('date')}",
        f"- gainscale {p.get('gainscale_version')}, git commit {p.get('git_commit') or 'unknown'}",
        f"- torch {p.get('torch_version') or 'not installed'}, transformers {p.get('transformers_version') or 'not installed'}, python {p.get('python_version')}",
        f"- command: `{escape_code(p.get('command', ''))}`",
        f"- settings: suite {escape(str(p.get('suite')))}, device {p.get('device') or 'suite default'}, dtype {p.get('dtype') or 'suite default'}, "
        f"prompts {escape(str(p.get('prompts')))} (sha256 {p.get('prompts_sha256', '')[:16]}), batch size {p.get('batch_size') or 'device default'}",
    ]
    for source, models in p.get("sources", {}).items():
        lines += ["", f"**{escape(source)}**:", ""] + _source_provenance(source, models)
    if figure_errors:
        lines += ["", "Figures that could not be drawn:", ""] + [f"- {escape(e)}" for e in figure_errors]
    return lines


def _source_provenance(source: str, models: dict[str, dict]) -> list[str]:
    if source == "published" or not models:
        origin = next(iter(models.values()), {}).get("origin", "")
        return [f"- {escape(origin)}"] if origin else ["- (nothing recorded)"]
    rows = ["| Model | Obtained | dtype | Device | torch | transformers | Revision | Measured at |", "|---|---|---|---|---|---|---|---|"]
    for model, m in models.items():
        if "imported_from" in m:
            rows.append(f"| {escape(model)} | imported from `{escape_code(m['imported_from'])}` (sha256 {m['file_sha256'][:12]}) | | | | | | {m['imported_at']} |")
            continue
        obtained = "from cache" if m.get("from_cache") else "measured in this run"
        rows.append(
            f"| {escape(model)} | {obtained} | {m.get('dtype')} | {escape(str(m.get('device')))} | {m.get('torch')} | "
            f"{m.get('transformers')} | {str(m.get('resolved_revision'))[:12]} | {m.get('measured_at')} |"
        )
    return rows


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


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


