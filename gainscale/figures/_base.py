"""What every figure shares: the Agg canvas, the colours, the axes' formats and the checks of inputs.

matplotlib is imported inside the functions, so importing gainscale stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# one colour per sublayer everywhere, so a reader learns them once
ATTENTION_COLOUR = "tab:blue"
MLP_COLOUR = "tab:orange"
FIT_COLOUR = "tab:red"
POINT_COLOUR = "0.15"
DPI = 120

#: a colour per model where models sit side by side: neighbours in the list differ in hue, and
#: red (the fit) and grey (notes, reference lines) are left out; after the eight strong colours
#: come their light twins, in the same order
MODEL_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5",
)

#: a colour per source and architecture in the figure across sources: none of the sublayers' colours
GROUP_COLOURS = ("#6a3d9a", "#33a02c", "#e6550d", "#1f78b4", "#b15928", "#e7298a", "#666600", "#17becf")

#: a verdict's cell colour: a diverging pair that colour-blind readers tell apart, grey where none
VERDICT_COLOURS = {"passed": "#92c5de", "failed": "#f4a582", None: "#e0e0e0", "absent": "#ffffff"}
#: a verdict's marker colour on a line (stronger than the cell's)
VERDICT_MARKERS = {"passed": "#2166ac", "failed": "#b2182b", None: "0.55"}
VERDICT_WORDS = {"passed": "holds", "failed": "fails", None: "n/a", "absent": "–"}


@contextmanager
def new_figure(size: tuple[float, float]) -> Iterator[Any]:
    """A pyplot-free figure on an Agg canvas, emptied afterwards so nothing outlives the call."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    try:
        yield fig
    finally:
        fig.clear()


def save(fig, path: Path) -> Path:
    fig.savefig(path, format="png", dpi=DPI)
    return path


# -- checks: a value that cannot be drawn is named, not met as "math domain error" -----------------


def gains(model, module: str) -> list[float]:
    """A model's per-layer gains of ``attention`` or ``mlp``, checked: positive finite numbers (log axes)."""
    key = {"attention": "attn_gains", "mlp": "mlp_gains"}[module]
    values = model.gains(module)
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise ValueError(f"{model.model}: {key} must be a non-empty list of gains, not {values!r:.60}")
    for layer, value in enumerate(values):
        if not is_positive_number(value):
            raise ValueError(f"{model.model} layer {layer}: {key} must be a positive finite number, not {value!r}")
    return [float(v) for v in values]


def positive(model, name: str) -> float:
    """``model.<name>``, checked to be a positive finite number."""
    value = getattr(model, name)
    if not is_positive_number(value):
        raise ValueError(f"{model.model}: {name} must be a positive finite number, not {value!r}")
    return float(value)


def is_positive_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def depth(count: int) -> list[float]:
    """Relative depth of each layer, layer / (n_layers - 1): models of any depth on one axis."""
    last = max(count - 1, 1)  # a one-layer model sits at position 0
    return [layer / last for layer in range(count)]


# -- names and colours -------------------------------------------------------------------------


def short_name(model: str) -> str:
    """``pythia-1.4b`` -> ``1.4b``: the family is in the title, the size is what tells points apart."""
    return model.removeprefix("pythia-")


def model_colours(count: int) -> list[str]:
    """``count`` colours whose neighbours differ: models next to each other in size stay apart."""
    return [MODEL_COLOURS[i % len(MODEL_COLOURS)] for i in range(count)]


def human_count(value: float) -> str:
    """1e9 -> ``1B``: parameter counts and steps the way they are spoken of."""
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


# -- axes ----------------------------------------------------------------------------------------


def legend_below(ax, ncols: int, handles=None) -> None:
    """The legend under the axes, below its tick labels and x label: inside, it would hide data.

    Fixed tick labels (model names, perhaps rotated) are measured; others are taken as one line.
    """
    from matplotlib.transforms import ScaledTranslation

    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    one_line = 1.25 * ax.xaxis.get_ticklabels()[0].get_fontsize() * fig.dpi / 72 if ax.xaxis.get_ticklabels() else 14
    ticks = max((t.get_window_extent(renderer).height for t in ax.get_xticklabels() if t.get_text()), default=one_line)
    label = ax.xaxis.label.get_window_extent(renderer).height if ax.get_xlabel() else 0.0
    drop = (ticks + label + 16) / fig.dpi  # inches below the axes: ticks, label and a gap
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0), ncols=ncols, frameon=False, fontsize=9,
              bbox_transform=ax.transAxes + ScaledTranslation(0, -drop, fig.dpi_scale_trans))


def gain_one_line(ax, label: str | None = "gain = 1") -> None:
    ax.axhline(1.0, color="0.3", linestyle="--", linewidth=1, label=label)


def log_gain_axis(ax, values: Sequence[float]) -> None:
    """Log y axis with plain numbers (1.5, 2, 3) instead of powers of ten: gains span ~1 decade."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    decades = math.log10(max(values) / min(values))
    # enough ticks to read a value off a narrow range, few enough not to crowd a wide one
    subs = (1.0, 1.5, 2.0, 3.0, 5.0, 7.0) if decades < 1.2 else (1.0, 2.0, 5.0) if decades < 3 else (1.0,)
    ax.yaxis.set_major_locator(LogLocator(subs=subs, numticks=30))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def param_axis(ax) -> None:
    """Parameter counts as 100M, 1B, 10B on a log x axis (and 200M, 500M where the range is narrow)."""
    ax.set_xscale("log")
    human_log_axis(ax.xaxis)


def human_log_axis(axis) -> None:
    """Label a log axis's ticks as counts are spoken of: its decades, and its minor ticks where matplotlib would."""
    from matplotlib.ticker import LogFormatterSciNotation

    class Human(LogFormatterSciNotation):
        """matplotlib's choice of which ticks to label, in words: ``2e8`` is ``200M``."""

        def __call__(self, x, pos=None):
            return human_count(x) if super().__call__(x, pos) else ""

    axis.set_major_formatter(Human())
    axis.set_minor_formatter(Human(labelOnlyBase=False))


def share_axis(ax) -> None:
    """0-100% with room above 100 for the labels of bars or points that reach it."""
    ax.set_ylim(0, 118)
    ax.set_yticks(range(0, 101, 20))


def centred_note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=12, color="0.4", wrap=True)


def corner_note(ax, text: str) -> None:
    ax.text(0.98, 0.03, text, transform=ax.transAxes, ha="right", va="bottom", fontsize=10, color="0.4",
            bbox=dict(facecolor="white", edgecolor="0.7", boxstyle="round"))


def log_range(low: float, high: float, points: int = 60) -> list[float]:
    """``points`` values from ``low`` to ``high``, evenly spaced in log."""
    a, b = math.log10(low), math.log10(high)
    return [10 ** (a + (b - a) * i / (points - 1)) for i in range(points)]


def linear_range(low: float, high: float, points: int = 60) -> list[float]:
    return [low + (high - low) * i / (points - 1) for i in range(points)]


def label_points(ax, names: Sequence[str], xs: Sequence[float], ys: Sequence[float], fontsize: float = 9, colour="black") -> None:
    """Each point's name on log-log axes, where it does not fall on another's (a sweep's checkpoints share a size).

    An unnamed point is still told by its colour, which the figure names elsewhere.
    """
    placed: list[tuple[float, float]] = []
    for index, (name, x, y) in enumerate(zip(names, xs, ys)):
        if any(abs(math.log10(x / px)) < 0.05 and abs(math.log10(y / py)) < 0.1 for px, py in placed):
            continue
        shared = sum(abs(math.log10(x / other)) < 0.05 for other in xs) > 1
        # beside a point that shares its size; else alternately above and below (1b, 1.4b sit close together)
        dy = -4 if shared else 8 if index % 2 == 0 else -14
        ax.annotate(name, (x, y), xytext=(7, dy), textcoords="offset points", fontsize=fontsize, color=colour)
        placed.append((x, y))


def shade_intervals(ax, uncertainty, module: str, colour: str, label: str | None = None) -> list[float]:
    """Shade each layer's 95% bootstrap interval of ``attention`` or ``mlp`` gain, where there is one.

    Returns the intervals' positive ends, for the axis' range; nothing without ``uncertainty``.
    """
    if uncertainty is None:
        return []
    intervals = uncertainty.attn_gains if module == "attention" else uncertainty.mlp_gains
    lower, upper = [i.lower for i in intervals], [i.upper for i in intervals]
    ax.fill_between(range(len(intervals)), lower, upper, color=colour, alpha=0.2, linewidth=0, label=label)
    return [v for v in lower + upper if v > 0]


def interval_bars(values: Sequence[float], intervals: Sequence[Any | None], log: bool = False) -> list[list[float]] | None:
    """Error bar lengths ``[below, above]`` of each value from its bootstrap interval (0 where it has none).

    None where no value has an interval, so that nothing is drawn; in log10 units where ``log``.
    """
    if all(i is None for i in intervals):
        return None
    below, above = [], []
    for value, interval in zip(values, intervals):
        if interval is None:
            below.append(0.0)
            above.append(0.0)
        elif log:
            below.append(value - math.log10(interval.lower))
            above.append(math.log10(interval.upper) - value)
        else:
            below.append(value - interval.lower)
            above.append(interval.upper - value)
    # an estimate outside its percentile interval (a skewed bootstrap) would give a negative length
    return [[max(b, 0.0) for b in below], [max(a, 0.0) for a in above]]


# -- verdict grids (the sensitivity heat-map, the control's claims) ------------------------------


def verdict_grid(ax, rows: Sequence[str], columns: Sequence[str], cells: Sequence[Sequence[tuple[str | None, str, bool]]]) -> None:
    """A grid of verdict cells: ``cells[row][column]`` is (state, text, framed).

    The state is ``passed``, ``failed``, None (not evaluable) or ``absent`` (does not apply);
    it sets the colour, the text is written in the cell, and a framed cell gets a heavy border.
    """
    from matplotlib.patches import Rectangle

    for r, row in enumerate(cells):
        for c, (state, text, framed) in enumerate(row):
            ax.add_patch(Rectangle((c, r), 1, 1, facecolor=VERDICT_COLOURS[state], edgecolor="white", linewidth=1.5))
            if framed:  # inset, so that neighbouring frames do not merge
                ax.add_patch(Rectangle((c + 0.04, r + 0.08), 0.92, 0.84, fill=False, edgecolor="black", linewidth=2))
            ax.text(c + 0.5, r + 0.5, text, ha="center", va="center", fontsize=9, color="0.1" if state != "absent" else "0.5")
    ax.set_xlim(0, len(columns))
    ax.set_ylim(len(rows), 0)  # the first row on top
    ax.set_xticks([c + 0.5 for c in range(len(columns))], columns)
    ax.set_yticks([r + 0.5 for r in range(len(rows))], rows)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)


def verdict_legend(fig, absent: str = "does not apply (–)", framed: str | None = None, ncols: int | None = None) -> None:
    """The colours of a verdict grid (and what a framed cell means, if any is), under the figure."""
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=VERDICT_COLOURS[state], edgecolor="0.7", label=label)
               for state, label in (("passed", "holds"), ("failed", "fails"), (None, "not evaluable on these numbers"),
                                    ("absent", absent))]
    if framed:
        handles.append(Patch(facecolor="white", edgecolor="black", linewidth=2, label=framed))
    fig.legend(handles=handles, loc="outside lower center", ncols=ncols or len(handles), frameon=False, fontsize=9)


def wrap(text: str, width: int) -> str:
    """``text`` broken into lines of about ``width`` characters: at spaces, or after the underscores of an identifier."""
    import textwrap

    if " " in text or "_" not in text:
        return "\n".join(textwrap.wrap(text, width)) or text
    lines = [""]
    for part in text.split("_"):
        piece = part if not lines[-1] else "_" + part
        if lines[-1] and len(lines[-1]) + len(piece) > width:
            lines[-1] += "_"  # the identifier goes on: the underscore ends the line, not starts the next
            lines.append(part)
        else:
            lines[-1] += piece
    return "\n".join(lines)
