"""The report's PNG figures, drawn from the plain dicts of ``results.json``.

``scaling_figure`` re-creates the paper's four-panel visualization (SCALING_LAW_ANALYSIS.md)
for one source; ``model_figure`` shows one model's gains layer by layer; ``draw_figures``
writes all of them for a report and collects failures instead of stopping at the first.

Figures are ``matplotlib.figure.Figure`` objects rendered by the Agg canvas: no pyplot, so no
global figure registry, no display and no shared state between threads. matplotlib is
imported inside the functions, so importing gainscale stays cheap.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache, partial
from pathlib import Path
from typing import Any

from .files import pretty_json, slug, write_atomic

#: the threshold panel (d) draws, when a claim of the run has it: the paper's attention claim's
ATTENTION_THRESHOLD = "attention_contracting_min_pct"

# one colour per sublayer everywhere, so a reader learns them once
_ATTENTION_COLOUR = "tab:blue"
_MLP_COLOUR = "tab:orange"
_FIT_COLOUR = "tab:red"
_POINT_COLOUR = "0.15"
# models are coloured by size along this map (small: dark, large: light)
_SIZE_COLOURMAP = "viridis"
_DPI = 120


def scaling_figure(source: str, models: list[dict], fit: dict | None, path: Path, threshold_pct: float | None = None) -> Path:
    """Draw the paper's four-panel figure for one source and save it as a PNG.

    Parameters
    ----------
    source
        The source's name (``published``, ``measured``, ...), shown in the title.
    models
        One ``results.json`` model dict per model: ``model``, ``n_params``, ``n_layers``,
        ``final_mlp_gain``, ``attn_contracting_pct``, ``mlp_contracting_pct``, and
        ``attn_gains`` / ``mlp_gains`` (per-layer lists, or None where the source has none).
    fit
        The source's power-law fit (``alpha``, ``alpha_stderr``, ``intercept``,
        ``r_squared``, ...), or None when the fit did not run: the points are drawn alone.
    path
        The PNG to write; its directory must exist.
    threshold_pct
        The attention contracting share the run's claim requires, drawn in panel (d); None draws none.

    Returns
    -------
    Path
        ``path``.

    Example
    -------
    >>> scaling_figure("published", results["models"]["published"],
    ...                results["fits"].get("published"), Path("scaling_published.png"))
    """
    if not models:
        raise ValueError(f"source {source}: no models to draw")
    for model in models:  # both go on log axes: say which model breaks them, not "math domain error"
        _positive(model, "n_params")
        _positive(model, "final_mlp_gain")
    models = sorted(models, key=lambda m: m["n_params"])
    with _figure((13, 10)) as fig:
        (power_law, log_fit), (profiles, contraction) = fig.subplots(2, 2)
        _draw_power_law(power_law, models, fit)
        _draw_log_fit(log_fit, models, fit)
        _draw_gain_profiles(profiles, models)
        _draw_contraction(contraction, models, threshold_pct)
        fig.suptitle(f"Final-layer MLP gain and sublayer contraction, source: {source}", fontsize=14)
        return _save(fig, path)


def model_figure(source: str, model: dict, path: Path) -> Path:
    """Draw one model's attention and MLP gain by layer and save it as a PNG.

    Parameters
    ----------
    source
        The source's name, shown in the title.
    model
        A ``results.json`` model dict with per-layer ``attn_gains`` and/or ``mlp_gains``.
    path
        The PNG to write; its directory must exist.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        If the model has no per-layer gains, or they are not lists of positive numbers.
    """
    series = _per_layer_series(model)
    if not series:
        raise ValueError(f"{model['model']}: no per-layer gains (attn_gains and mlp_gains are None); nothing to draw")
    with _figure((9, 5.5)) as fig:
        ax = fig.subplots()
        for label, colour, marker, gains in series:
            ax.plot(range(len(gains)), gains, color=colour, marker=marker, label=label)
        _gain_one_line(ax, "gain = 1 (contracting below)")
        all_gains = [g for *_, gains in series for g in gains]
        if max(all_gains) / min(all_gains) > 10:  # a linear axis would flatten the small gains
            _log_gain_axis(ax, all_gains + [1.0])
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set(xlabel="layer", ylabel="gain (output norm / input norm)")
        ax.set_title(f"{model['model']} (source: {source}): attention and MLP gain by layer")
        ax.grid(alpha=0.3)
        _legend_below(ax, ncols=3)
        return _save(fig, path)


def draw_figures(run, directory: Path) -> tuple[list[Path], list[str]]:
    """Write every figure of a run's report: one scaling figure per source, one per model with gains.

    Parameters
    ----------
    run
        The run's :class:`~gainscale.results.RunResult`.
    directory
        Where the PNGs go (created): ``scaling_<source>.png`` and ``<source>/<model>.png``, names
        made file-safe by :func:`gainscale.files.slug`. PNGs of earlier runs that this run does
        not draw are removed, so the folder holds this run's figures only.

    Returns
    -------
    tuple[list[Path], list[str]]
        The PNGs written, and one message per figure that failed, e.g.
        ``"figure scaling_published.png: ValueError: ..."``. A failure does not stop the others.
    """
    directory.mkdir(parents=True, exist_ok=True)
    drawn = _DrawnFigures(directory)
    written: list[Path] = []
    errors: list[str] = []
    jobs = list(_figure_jobs(run))
    for name, draw in jobs:
        path = directory / name
        inputs = _fingerprint(draw)
        if drawn.up_to_date(path, inputs):  # the same numbers and code: the PNG on disk is this figure
            written.append(path)
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            written.append(draw(path))
            drawn.record(path, inputs)
        except Exception as error:  # one bad model must not cost the report its other figures
            errors.append(f"figure {name}: {type(error).__name__}: {error}")
    drawn.forget_all_but({name for name, _ in jobs})
    drawn.save()
    return written, errors


def scaling_figure_name(source: str) -> str:
    """The scaling figure's path within the figures folder."""
    return f"scaling_{slug(source)}.png"


def model_figure_name(source: str, model: str) -> str:
    """A model's figure's path within the figures folder: one folder per source, so names never collide."""
    return f"{slug(source)}/{slug(model)}.png"


class _DrawnFigures:
    """What each PNG in a directory was drawn from, so that a replay draws nothing twice.

    Drawing is most of a replayed report's time (matplotlib's import and ``savefig``); a
    figure whose inputs and drawing code are unchanged is left as it is.
    """

    FILE = ".figure-inputs.json"

    def __init__(self, directory: Path):
        self.directory = directory
        self.path = directory / self.FILE
        try:
            self.inputs: dict[str, str] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.inputs = {}
        self.changed = False

    def up_to_date(self, png: Path, inputs: str) -> bool:
        return self.inputs.get(self._key(png)) == inputs and png.is_file()

    def record(self, png: Path, inputs: str) -> None:
        self.inputs[self._key(png)] = inputs
        self.changed = True

    def forget_all_but(self, names: set[str]) -> None:
        """Remove the PNGs (and their records) of figures this run does not draw."""
        for png in sorted(self.directory.rglob("*.png")):
            if self._key(png) not in names:
                png.unlink()
                self.inputs.pop(self._key(png), None)
                self.changed = True
        for folder in sorted((p for p in self.directory.iterdir() if p.is_dir()), reverse=True):
            if not any(folder.iterdir()):
                folder.rmdir()

    def _key(self, png: Path) -> str:
        return png.relative_to(self.directory).as_posix()

    def save(self) -> None:
        if self.changed:
            write_atomic(self.path, pretty_json(self.inputs))


def _fingerprint(draw: partial) -> str:
    """A hash of a figure's drawing function, its arguments and this module's source."""
    arguments = [draw.func.__name__, list(draw.args), draw.keywords, _code_hash()]
    return hashlib.sha256(json.dumps(arguments, sort_keys=True, default=str).encode()).hexdigest()


@cache
def _code_hash() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def _figure_jobs(run) -> Iterator[tuple[str, Callable[[Path], Path]]]:
    """(file name, drawing function of the path) for every figure the run calls for."""
    from .stats import PowerLawFit

    threshold = next((c.thresholds[ATTENTION_THRESHOLD] for c in run.claim_infos() if ATTENTION_THRESHOLD in c.thresholds), None)
    for source in run.sources:
        if not source.models:
            continue
        models = [m.to_json() for m in source.models]
        fit = run.evidence(source.name, PowerLawFit)
        yield scaling_figure_name(source.name), partial(scaling_figure, source.name, models, fit and fit.to_json(), threshold_pct=threshold)
        for model in models:
            if _has_per_layer_gains(model):
                yield model_figure_name(source.name, model["model"]), partial(model_figure, source.name, model)


# -- panels of the scaling figure ------------------------------------------------------------


def _draw_power_law(ax, models: list[dict], fit: dict | None) -> None:
    """(a) final MLP gain against parameter count, log-log, with the fitted power law."""
    params = [m["n_params"] for m in models]
    gains = [m["final_mlp_gain"] for m in models]
    ax.scatter(params, gains, color=_POINT_COLOUR, zorder=3, label="models")
    for index, (model, x, y) in enumerate(zip(models, params, gains)):
        # alternate above and below: neighbours in size (1b, 1.4b) sit close together
        dy = 8 if index % 2 == 0 else -14
        ax.annotate(_short_name(model["model"]), (x, y), xytext=(6, dy), textcoords="offset points", fontsize=9)
    if fit is not None:
        xs = _log_range(params)
        ax.plot(xs, [10 ** fit["intercept"] * x ** fit["alpha"] for x in xs], color=_FIT_COLOUR, label=_fit_label(fit))
    else:
        _corner_note(ax, "fit not run")
    ax.set_xscale("log")
    _log_gain_axis(ax, gains)
    _param_axis(ax)
    ax.margins(x=0.12, y=0.12)  # room on the right for the largest model's label
    ax.set(xlabel="parameters (log scale)", ylabel="final MLP gain (×, log scale)")
    ax.set_title("(a) final MLP gain vs model size")
    ax.grid(alpha=0.3)
    _legend_below(ax, ncols=2)


def _draw_log_fit(ax, models: list[dict], fit: dict | None) -> None:
    """(b) the regression itself: log10 gain against log10 params, residuals, ±1 s.e. of alpha."""
    xs = [math.log10(m["n_params"]) for m in models]
    ys = [math.log10(m["final_mlp_gain"]) for m in models]
    ax.scatter(xs, ys, color=_POINT_COLOUR, zorder=3, label="models")
    if fit is not None:
        line = [fit["intercept"] + fit["alpha"] * x for x in xs]
        ax.vlines(xs, ys, line, color="0.6", linestyle=":", label="residuals")
        grid = _linear_range(xs)
        fitted = [fit["intercept"] + fit["alpha"] * x for x in grid]
        # least squares passes through the mean point, so the slope's uncertainty pivots there
        pivot = sum(xs) / len(xs)
        spread = [fit["alpha_stderr"] * abs(x - pivot) for x in grid]
        ax.fill_between(grid, [f - s for f, s in zip(fitted, spread)], [f + s for f, s in zip(fitted, spread)],
                        color=_FIT_COLOUR, alpha=0.15, label="slope ± 1 s.e. of α")
        ax.plot(grid, fitted, color=_FIT_COLOUR, label=_fit_label(fit))
    else:
        _corner_note(ax, "fit not run")
    ax.margins(x=0.08, y=0.12)
    ax.set(xlabel="log₁₀ parameters", ylabel="log₁₀ final MLP gain")
    ax.set_title("(b) linear fit in log space")
    ax.grid(alpha=0.3)
    _legend_below(ax, ncols=2)


def _draw_gain_profiles(ax, models: list[dict]) -> None:
    """(c) MLP gain over normalised depth, one line per model, coloured by size."""
    ax.set_title("(c) MLP gain profile over depth")
    profiled = [m for m in models if m.get("mlp_gains") is not None]
    if not profiled:
        _centred_note(ax, "no per-layer gains in this source")
        ax.set_axis_off()
        return
    all_gains = []
    for model, colour in zip(profiled, _size_colours(len(profiled))):
        gains = _gains(model, "mlp_gains")
        last = max(len(gains) - 1, 1)  # a one-layer model sits at position 0
        ax.plot([layer / last for layer in range(len(gains))], gains, color=colour, marker=".",
                label=_short_name(model["model"]))
        all_gains += gains
    _gain_one_line(ax, "gain = 1")
    _log_gain_axis(ax, all_gains + [1.0])
    ax.set_xlim(-0.02, 1.02)
    ax.set(xlabel="layer position (layer / (n_layers − 1))", ylabel="MLP gain (×, log scale)")
    ax.grid(alpha=0.3)
    _legend_below(ax, ncols=min(len(profiled) + 1, 5))


def _draw_contraction(ax, models: list[dict], threshold_pct: float | None) -> None:
    """(d) share of contracting attention and MLP layers per model, as grouped bars."""
    positions = range(len(models))
    width = 0.38
    for shift, key, label, colour in ((-width / 2, "attn_contracting_pct", "attention", _ATTENTION_COLOUR),
                                      (width / 2, "mlp_contracting_pct", "MLP", _MLP_COLOUR)):
        # a source that does not say leaves a gap, not a zero bar
        heights = [math.nan if m.get(key) is None else m[key] for m in models]
        ax.bar([p + shift for p in positions], heights, width, color=colour, label=label)
    if threshold_pct is not None:
        ax.axhline(threshold_pct, color="black", linestyle="--", linewidth=1, label=f"attention threshold ({threshold_pct:g}%)")
    names = [_short_name(m["model"]) for m in models]
    ax.set_xticks(list(positions), names, rotation=30 if len(models) > 10 else 0)
    ax.set_ylim(0, 105)
    ax.set(xlabel="model", ylabel="contracting layers (%)")
    ax.set_title("(d) layers with gain < 1")
    ax.grid(alpha=0.3, axis="y")
    _legend_below(ax, ncols=3)


# -- helpers -----------------------------------------------------------------------------------


@contextmanager
def _figure(size: tuple[float, float]) -> Iterator[Any]:
    """A pyplot-free figure on an Agg canvas, emptied afterwards so nothing outlives the call."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    try:
        yield fig
    finally:
        fig.clear()


def _save(fig, path: Path) -> Path:
    fig.savefig(path, format="png", dpi=_DPI)
    return path


def _per_layer_series(model: dict) -> list[tuple[str, str, str, list[float]]]:
    """(label, colour, marker, gains) for each per-layer list the model has."""
    series = []
    for key, label, colour, marker in (("attn_gains", "attention", _ATTENTION_COLOUR, "o"),
                                       ("mlp_gains", "MLP", _MLP_COLOUR, "s")):
        if model.get(key) is not None:
            series.append((label, colour, marker, _gains(model, key)))
    return series


def _gains(model: dict, key: str) -> list[float]:
    """A per-layer list, checked: a gain is a positive finite number (it goes on a log axis)."""
    values = model[key]
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise ValueError(f"{model.get('model')}: {key} must be a non-empty list of gains, not {values!r:.60}")
    for layer, value in enumerate(values):
        if not _is_positive_number(value):
            raise ValueError(f"{model.get('model')} layer {layer}: {key} must be a positive finite number, not {value!r}")
    return [float(v) for v in values]


def _positive(model: dict, key: str) -> float:
    value = model[key]
    if not _is_positive_number(value):
        raise ValueError(f"{model.get('model')}: {key} must be a positive finite number, not {value!r}")
    return value


def _is_positive_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def _has_per_layer_gains(model: dict) -> bool:
    return model.get("attn_gains") is not None or model.get("mlp_gains") is not None


def _short_name(model: str) -> str:
    """``pythia-1.4b`` -> ``1.4b``: the family is in the title, the size is what tells points apart."""
    return model.removeprefix("pythia-")


def _fit_label(fit: dict) -> str:
    return f"fit: α = {fit['alpha']:.3f} ± {fit['alpha_stderr']:.3f}, R² = {fit['r_squared']:.3f}"


def _centred_note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=12, color="0.4")


def _corner_note(ax, text: str) -> None:
    ax.text(0.98, 0.03, text, transform=ax.transAxes, ha="right", va="bottom", fontsize=11, color="0.4",
            bbox=dict(facecolor="white", edgecolor="0.7", boxstyle="round"))


def _legend_below(ax, ncols: int) -> None:
    """The legend under the axes: inside, it would hide points, labels or bars near 100%."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=ncols, frameon=False, fontsize=9)


def _gain_one_line(ax, label: str) -> None:
    ax.axhline(1.0, color="0.3", linestyle="--", linewidth=1, label=label)


def _log_gain_axis(ax, gains: Sequence[float]) -> None:
    """Log y axis with plain numbers (1.5, 2, 3) instead of powers of ten: gains span ~1 decade."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    decades = math.log10(max(gains) / min(gains))
    # enough ticks to read a value off a narrow range, few enough not to crowd a wide one
    subs = (1.0, 1.5, 2.0, 3.0, 5.0, 7.0) if decades < 1.2 else (1.0, 2.0, 5.0) if decades < 3 else (1.0,)
    ax.yaxis.set_major_locator(LogLocator(subs=subs, numticks=30))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _param_axis(ax) -> None:
    """Parameter counts as 100M, 1B, 10B: the way model sizes are spoken of."""
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: _human_count(value)))


def _human_count(value: float) -> str:
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


def _size_colours(count: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps[_SIZE_COLOURMAP]
    # stop short of viridis' pale yellow end, which vanishes on white
    return [cmap(0.85 * i / max(count - 1, 1)) for i in range(count)]


def _log_range(values: Sequence[float], points: int = 50) -> list[float]:
    low, high = math.log10(min(values)), math.log10(max(values))
    return [10 ** (low + (high - low) * i / (points - 1)) for i in range(points)]


def _linear_range(values: Sequence[float], points: int = 50) -> list[float]:
    low, high = min(values), max(values)
    return [low + (high - low) * i / (points - 1) for i in range(points)]
