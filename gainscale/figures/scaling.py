"""The paper's four-panel scaling figure, with its uncertainty, and one model's gains by layer.

Panel (a) is the final MLP gain against model size on log-log axes with the fitted power law;
(b) the regression itself in log space, with the 95% confidence band of the fitted line and the
95% prediction band of a new model's gain, carried out to the sizes the report predicts (1T
parameters); (c) the MLP gain over depth; (d) the share of contracting layers per model, placed
at its parameter count. Final MLP gains carry their 95% bootstrap intervals where the source
resampled its prompts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import _base as base

#: the confidence level of the bands and error bars
LEVEL = 0.95
#: the bands reach this many parameters at least: the largest size the report predicts (1T)
BAND_END = 1e12
#: bars of one model side by side: the width of one, in decades of parameters, at most
_BAR_DECADES = 0.06
#: a model's slot: its two bars and a gap, in bar widths
_SLOT = 2.4
#: the most that models of one size spread over, in decades, when no other size is near
_GROUP_DECADES = 0.6
#: a bar's count (``31/32``, written upright above it): its font size in points, at most and at least;
#: a bar too thin for the smallest leaves its count to the report's model table
_COUNT_POINTS = 7.5
_SMALLEST_COUNT_POINTS = 5.5
#: an upright line of text is about this many of its font sizes wide
_LINE_EMS = 1.2


@dataclass(frozen=True)
class FitBands:
    """The fitted line and its bands at some log10 parameter counts, all in log10 gain."""

    log_params: tuple[float, ...]
    fitted: tuple[float, ...]
    #: where the mean log gain of models of that size lies (the line's own uncertainty)
    confidence_low: tuple[float, ...]
    confidence_high: tuple[float, ...]
    #: where one new model of that size lies (the line's uncertainty and the scatter about it)
    prediction_low: tuple[float, ...]
    prediction_high: tuple[float, ...]
    level: float


def fit_bands(fit, log_params: Sequence[float], level: float = LEVEL) -> FitBands:
    """The confidence and prediction bands of a power-law fit, t with n - 2 degrees of freedom.

    At x = log10(parameters), with s the residual standard deviation and Sxx the sum of squares
    of the fitted models' x about their mean x̄: the fitted line ± t * s * sqrt(1/n + (x - x̄)² / Sxx)
    (confidence of the mean) and ± t * s * sqrt(1 + 1/n + (x - x̄)² / Sxx) (prediction, as
    :meth:`~gainscale.stats.PowerLawFit.predict` gives it).

    Parameters
    ----------
    fit
        A :class:`~gainscale.stats.PowerLawFit`.
    log_params
        Where to evaluate them, in log10 parameters.
    level
        The two-sided confidence level.
    """
    t = fit.sigmas_for_level(level)
    n, xs = fit.n, fit.log_params
    mean_x = sum(xs) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    s = math.sqrt(sum((y - fit.fitted(x)) ** 2 for x, y in zip(xs, fit.log_gains)) / fit.degrees_of_freedom)
    fitted, conf_low, conf_high, pred_low, pred_high = [], [], [], [], []
    for x in log_params:
        y = fit.fitted(x)
        half = t * s * math.sqrt(1 / n + (x - mean_x) ** 2 / sxx)
        prediction = fit.predict(10**x, level)
        fitted.append(y)
        conf_low.append(y - half)
        conf_high.append(y + half)
        pred_low.append(math.log10(prediction.lower))
        pred_high.append(math.log10(prediction.upper))
    return FitBands(tuple(log_params), tuple(fitted), tuple(conf_low), tuple(conf_high), tuple(pred_low), tuple(pred_high), level)


def scaling_figure(source, fit, path: Path, threshold_pct: float | None = None) -> Path:
    """Draw the paper's four-panel figure for one source and save it as a PNG.

    Parameters
    ----------
    source
        The :class:`~gainscale.results.SourceResult`: its models (``n_params``,
        ``final_mlp_gain``, contracting counts, per-layer gains where it has them) and their
        bootstrap intervals (``uncertainty``), drawn as error bars where present.
    fit
        The source's :class:`~gainscale.stats.PowerLawFit`, or None when the fit did not run:
        the points are drawn alone.
    path
        The PNG to write; its directory must exist.
    threshold_pct
        The attention contracting share the run's claim requires, drawn in panel (d); None draws none.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        Naming the model whose parameter count or final gain cannot go on a log axis.

    Example
    -------
    >>> run = gainscale.load_results("reports/results.json")                            # doctest: +SKIP
    >>> scaling_figure(run.source("published"), run.evidence("published", PowerLawFit),  # doctest: +SKIP
    ...                Path("scaling_published.png"), threshold_pct=97)
    """
    if not source.models:
        raise ValueError(f"source {source.name}: no models to draw")
    for model in source.models:
        base.positive(model, "n_params")
        base.positive(model, "final_mlp_gain")
    models = sorted(source.models, key=lambda m: m.n_params)
    colours = dict(zip((m.model for m in models), base.model_colours(len(models))))
    intervals = [_final_interval(source, m.model) for m in models]
    with base.new_figure((14, 11)) as fig:
        (power_law, log_fit), (profiles, contraction) = fig.subplots(2, 2)
        draw_power_law(power_law, models, colours, intervals, fit)
        draw_log_fit(log_fit, models, colours, intervals, fit)
        draw_gain_profiles(profiles, models, colours)
        draw_contraction(contraction, models, colours, threshold_pct)
        fig.suptitle(f"Final-layer MLP gain and sublayer contraction, source: {source.name}", fontsize=14)
        return base.save(fig, path)


def model_figure(source: str, model, path: Path, uncertainty=None) -> Path:
    """Draw one model's attention and MLP gain by layer and save it as a PNG.

    Parameters
    ----------
    source
        The source's name, shown in the title.
    model
        A :class:`~gainscale.summary.ModelSummary` with per-layer ``attn_gains`` and/or ``mlp_gains``.
    path
        The PNG to write; its directory must exist.
    uncertainty
        The model's :class:`~gainscale.results.ModelUncertainty`, where its source resampled the
        prompts: each layer's 95% bootstrap interval is shaded.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        If the model has no per-layer gains, or they are not lists of positive numbers.
    """
    series = per_layer_series(model)
    if not series:
        raise ValueError(f"{model.model}: no per-layer gains (attn_gains and mlp_gains are None); nothing to draw")
    with base.new_figure((9, 5.5)) as fig:
        ax = fig.subplots()
        everything = []
        for module, label, colour, marker, values in series:
            ax.plot(range(len(values)), values, color=colour, marker=marker, label=label)
            # one legend entry for the shading: the colour says which sublayer
            label = "shaded: 95% bootstrap interval" if module == "mlp" else None
            everything += values + base.shade_intervals(ax, uncertainty, module, colour, label)
        base.gain_one_line(ax, "gain = 1 (contracting below)")
        if max(everything) / min(everything) > 10:  # a linear axis would flatten the small gains
            base.log_gain_axis(ax, everything + [1.0])
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set(xlabel="layer", ylabel="gain (output norm / input norm)")
        ax.set_title(f"{model.model} (source: {source}): attention and MLP gain by layer")
        ax.grid(alpha=0.3)
        base.legend_below(ax, ncols=3 + (uncertainty is not None))
        return base.save(fig, path)


def per_layer_series(model) -> list[tuple[str, str, str, str, list[float]]]:
    """(module, label, colour, marker, gains) for each per-layer list the model has."""
    series = []
    for module, label, colour, marker in (("attention", "attention", base.ATTENTION_COLOUR, "o"),
                                          ("mlp", "MLP", base.MLP_COLOUR, "s")):
        if model.gains(module) is not None:
            series.append((module, label, colour, marker, base.gains(model, module)))
    return series


def _final_interval(source, model: str):
    uncertainty = source.uncertainty.get(model)
    return None if uncertainty is None else uncertainty.final_mlp_gain


# -- panels ------------------------------------------------------------------------------------


def draw_power_law(ax, models, colours: dict[str, str], intervals, fit) -> None:
    """(a) final MLP gain against parameter count, log-log, with the fitted power law."""
    params = [m.n_params for m in models]
    values = [m.final_mlp_gain for m in models]
    _points(ax, params, values, models, colours, base.interval_bars(values, intervals))
    base.label_points(ax, [base.short_name(m.model) for m in models], params, values)
    if fit is not None:
        xs = base.log_range(min(params), max(params))
        ax.plot(xs, [10 ** fit.fitted(math.log10(x)) for x in xs], color=base.FIT_COLOUR, label=_fit_label(fit))
    else:
        base.corner_note(ax, "fit not run")
    base.param_axis(ax)
    base.log_gain_axis(ax, values + [i.lower for i in intervals if i] + [i.upper for i in intervals if i])
    ax.margins(x=0.12, y=0.12)  # room on the right for the largest model's label
    ax.set(xlabel="parameters (log scale)", ylabel="final MLP gain (×, log scale)")
    ax.set_title("(a) final MLP gain vs model size")
    ax.grid(alpha=0.3)
    base.legend_below(ax, ncols=2)


def draw_log_fit(ax, models, colours: dict[str, str], intervals, fit) -> None:
    """(b) the regression in log10 units: residuals, the line's 95% confidence and prediction bands."""
    xs = [math.log10(m.n_params) for m in models]
    ys = [math.log10(m.final_mlp_gain) for m in models]
    if fit is not None:
        _draw_bands(ax, fit, xs)
        line = [fit.fitted(x) for x in xs]
        ax.vlines(xs, ys, line, color="0.5", linestyle=":", label="residuals")
        _ring_outliers(ax, fit)
    else:
        base.corner_note(ax, "fit not run")
    _points(ax, xs, ys, models, colours, base.interval_bars(ys, intervals, log=True))
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    # log10 units, and the parameter count they stand for: 12 is 1T
    ax.xaxis.set_major_locator(MultipleLocator(1))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g} ({base.human_count(10**v)})"))
    ax.margins(x=0.04, y=0.06)
    ax.set(xlabel="log₁₀ parameters", ylabel="log₁₀ final MLP gain")
    ax.set_title("(b) linear fit in log space, with its 95% bands")
    ax.grid(alpha=0.3)
    base.legend_below(ax, ncols=2)


def _draw_bands(ax, fit, xs: Sequence[float]) -> None:
    """The line, its confidence band and prediction band, from the smallest model to 1T parameters."""
    end = max(math.log10(BAND_END), max(xs) + 0.3)
    bands = fit_bands(fit, base.linear_range(min(xs), end, 80))
    grid = bands.log_params
    ax.fill_between(grid, bands.prediction_low, bands.prediction_high, color=base.FIT_COLOUR, alpha=0.10, linewidth=0,
                    label=f"{bands.level:.0%} prediction band (a new model)")
    ax.fill_between(grid, bands.confidence_low, bands.confidence_high, color=base.FIT_COLOUR, alpha=0.25, linewidth=0,
                    label=f"{bands.level:.0%} confidence band (the line)")
    ax.plot(grid, bands.fitted, color=base.FIT_COLOUR, label=_fit_label(fit))
    # beyond the largest model the line is extrapolated: say where that starts
    ax.axvline(max(fit.log_params), color="0.5", linewidth=0.8, linestyle="-.")
    ax.annotate("extrapolated →", (max(fit.log_params), 1), xycoords=("data", "axes fraction"), xytext=(4, -4),
                textcoords="offset points", ha="left", va="top", fontsize=9, color="0.35")


def _ring_outliers(ax, fit) -> None:
    """Circle the models whose externally studentized residual is beyond the t cutoff (the report's outliers)."""
    flagged = [(x, y, r) for x, y, r in zip(fit.log_params, fit.log_gains, fit.residuals()) if r.external_outlier]
    if flagged:
        cutoff = flagged[0][2].outlier_cutoff
        ax.scatter([x for x, _, _ in flagged], [y for _, y, _ in flagged], s=260, facecolors="none", edgecolors=base.FIT_COLOUR,
                   linewidths=1.5, zorder=4, label=f"outlier (|external t| > {cutoff:.2f})")


def _points(ax, xs, ys, models, colours: dict[str, str], error) -> None:
    """Each model's point in its colour, with its bootstrap interval as an error bar where it has one."""
    if error is not None:
        ax.errorbar(xs, ys, yerr=error, fmt="none", ecolor="0.25", elinewidth=1.2, capsize=3, zorder=3,
                    label="95% bootstrap interval")
    ax.scatter(xs, ys, c=[colours[m.model] for m in models], edgecolors=base.POINT_COLOUR, s=42, zorder=5)
    # the legend's marker in no model's colour: each model has its own, named beside it or in (d)
    ax.scatter([], [], c="0.75", edgecolors=base.POINT_COLOUR, s=42, label="models (a colour each)")


def draw_gain_profiles(ax, models, colours: dict[str, str]) -> None:
    """(c) MLP gain over relative depth, one line per model in its colour."""
    ax.set_title("(c) MLP gain profile over depth")
    profiled = [m for m in models if m.mlp_gains is not None]
    if not profiled:
        base.centred_note(ax, "no per-layer gains in this source")
        ax.set_axis_off()
        return
    everything = []
    for model in profiled:
        values = base.gains(model, "mlp")
        ax.plot(base.depth(len(values)), values, color=colours[model.model], marker=".", label=base.short_name(model.model))
        everything += values
    base.gain_one_line(ax)
    base.log_gain_axis(ax, everything + [1.0])
    ax.set_xlim(-0.02, 1.02)
    ax.set(xlabel="layer position (layer / (n_layers − 1))", ylabel="MLP gain (×, log scale)")
    ax.grid(alpha=0.3)
    base.legend_below(ax, ncols=min(len(profiled) + 1, 5))


def draw_contraction(ax, models, colours: dict[str, str], threshold_pct: float | None) -> None:
    """(d) share of contracting attention (solid) and MLP (hatched) layers, bars at each model's size.

    Each bar is labelled with its count (``31/32``), as large as the bar's width allows; bars too
    thin for a readable count (a sweep of dozens of checkpoints) say so instead. Models of one
    size (a sweep's checkpoints, a control beside its model) stand side by side around it.
    """
    from matplotlib.patches import Patch

    centres, width = bar_layout([m.n_params for m in models])
    low, high = _size_limits(ax, centres, width)
    base.share_axis(ax)
    ax.set(ylabel="contracting layers (%)")  # before measuring: it takes room from the bars
    count_points = _count_font_size(width * _pixels_per_decade(ax, high - low), ax.figure.dpi)
    for model, centre in zip(models, centres):
        colour = colours[model.model]
        for side, count, hatch, fill in ((-1, model.attn_contracting, None, colour), (1, model.mlp_contracting, "////", "white")):
            _bar(ax, centre, side, width, count, model.n_layers, colour, fill, hatch, count_points)
    handles = [Patch(facecolor="0.4", label="attention (solid)"), Patch(facecolor="white", edgecolor="0.4", hatch="////", label="MLP (hatched)")]
    if threshold_pct is not None:
        handles.append(ax.axhline(threshold_pct, color="black", linestyle="--", linewidth=1, label=f"attention threshold ({threshold_pct:g}%)"))
    if count_points is None:
        # at the top, in the room the axis leaves above 100%: the bars fill the bottom
        ax.text(0.98, 0.98, "bars too narrow for their counts: see the report's model table", transform=ax.transAxes,
                ha="right", va="top", fontsize=9, color="0.35")
    _size_ticks(ax, models, centres, high - low)
    ax.set_title("(d) layers with gain < 1, at each model's size")
    ax.grid(alpha=0.3, axis="y")
    base.legend_below(ax, ncols=3, handles=handles)


def bar_layout(params: Sequence[float]) -> tuple[list[float], float]:
    """Where each model's pair of bars stands, in log10 parameters, and one bar's width in decades.

    A model stands at its size. Models of one size (a sweep's checkpoints, a control beside its
    model) stand side by side around it, their group no wider than most of the way to the next
    size, so that no bar strays to another size; narrower bars make the room.
    """
    logs = [math.log10(p) for p in params]
    groups: dict[float, list[int]] = {}
    for index, x in enumerate(logs):
        groups.setdefault(round(x, 3), []).append(index)
    sizes = sorted(groups)
    width = _BAR_DECADES
    for position, size in enumerate(sizes):
        gaps = [abs(size - sizes[n]) for n in (position - 1, position + 1) if 0 <= n < len(sizes)]
        room = min([_GROUP_DECADES] + [0.8 * gap for gap in gaps])  # a group reaches 40% of the way to its neighbour
        # n pairs of bars and the n - 1 gaps between them: a lone model's pair needs no gap
        pairs = len(groups[size])
        width = min(width, room / (_SLOT * pairs - (_SLOT - 2)))
    centres = list(logs)
    for members in groups.values():
        for offset, index in enumerate(members):
            centres[index] = logs[members[0]] + (offset - (len(members) - 1) / 2) * _SLOT * width
    return centres, width


def _count_font_size(bar_pixels: float, dpi: float) -> float | None:
    """The font size in points of the counts over bars this many pixels wide; None where too small to read.

    A count stands upright over its bar, beside its neighbour's: its line, about
    1.2 font sizes, must fit in the bar's width.
    """
    fits = bar_pixels * 72 / dpi / _LINE_EMS
    return None if fits < _SMALLEST_COUNT_POINTS else min(_COUNT_POINTS, math.floor(fits * 2) / 2)


def _bar(ax, centre: float, side: int, width: float, count: int | None, layers: int, colour, fill, hatch,
         count_points: float | None) -> None:
    """One bar, from centre to one side in log10 parameters, its count written above it at ``count_points`` if any."""
    left = centre if side > 0 else centre - width
    if count is None:  # a source that does not say leaves a gap, not a zero bar
        ax.text(10 ** (left + width / 2), 2, "n/a", rotation=90, ha="center", va="bottom", fontsize=8, color="0.4")
        return
    share = 100 * count / layers
    ax.bar(10**left, share, width=10 ** (left + width) - 10**left, align="edge", color=fill, edgecolor=colour, hatch=hatch, linewidth=1.2)
    if count_points is None:
        return
    # on white, so that the threshold line does not run through the count
    ax.text(10 ** (left + width / 2), share + 1.5, f"{count}/{layers}", rotation=90, ha="center", va="bottom",
            fontsize=count_points, bbox=dict(facecolor="white", edgecolor="none", pad=0.3, alpha=0.85))


def _size_limits(ax, centres: Sequence[float], width: float) -> tuple[float, float]:
    """Set the log x axis to the bars and a margin; returns its ends in log10 parameters."""
    ax.set_xscale("log")
    low, high = min(centres) - 1.5 * width, max(centres) + 1.5 * width
    pad = max(0.1, 0.06 * (high - low))
    ax.set_xlim(10 ** (low - pad), 10 ** (high + pad))
    return low - pad, high + pad


def _pixels_per_decade(ax, decades: float) -> float:
    """About how many pixels a decade of the x axis takes, once the figure's layout has placed the axes.

    Before that, the axes have matplotlib's default margins: a fifth narrower than the
    constrained layout makes them, which would leave counts and names out that fit.
    """
    fig = ax.figure
    if fig.get_layout_engine() is not None:
        fig.get_layout_engine().execute(fig)
    return ax.get_position().width * fig.get_figwidth() * fig.dpi / decades


def _size_ticks(ax, models, centres: Sequence[float], decades: float) -> None:
    """The model names under their bars, and the parameter scale on top (the bars stand at their sizes)."""
    from matplotlib.ticker import NullLocator

    names, rotation = _tick_names(ax, [base.short_name(m.model) for m in models], centres, decades)
    ax.set_xticks([10**c for c in centres], names, rotation=rotation, fontsize=9)
    ax.xaxis.set_minor_locator(NullLocator())
    top = ax.secondary_xaxis("top")
    base.human_log_axis(top.xaxis)
    top.set_xlabel("parameters (log scale)", fontsize=9)


def _tick_names(ax, names: list[str], centres: Sequence[float], decades: float) -> tuple[list[str], int]:
    """The names as they fit under their bars: level (long ones broken after a hyphen) if they do, else upright."""
    fig = ax.figure
    per_decade = _pixels_per_decade(ax, decades)
    broken = [_break_name(name) for name in names]
    # a level name is about 0.62 em a character; neighbours need half of each one's width between them
    widths = [max(map(len, name.split("\n"))) * 9 * 0.62 * fig.dpi / 72 for name in broken]
    placed = sorted(zip(centres, widths))
    fits = all((b - a) * per_decade > (wa + wb) / 2 + 4 for (a, wa), (b, wb) in zip(placed, placed[1:]))
    return (broken, 0) if fits else (names, 90)


def _break_name(name: str, width: int = 9) -> str:
    """``smollm2-135m-random`` -> ``smollm2-\\n135m-\\nrandom``: lines of about ``width`` characters."""
    lines = [""]
    for part in re.split(r"(?<=-)", name):  # split after each hyphen, keeping it
        if lines[-1] and len(lines[-1]) + len(part) > width:
            lines.append(part)
        else:
            lines[-1] += part
    return "\n".join(lines)


def _fit_label(fit) -> str:
    return f"fit: α = {fit.alpha:.3f} ± {fit.alpha_stderr:.3f}, R² = {fit.r_squared:.3f}"
