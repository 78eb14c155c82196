"""Every source of a run side by side: do the paper's patterns hold across architectures?

Models are coloured by source and architecture (the published Pythia numbers, a measured
Llama-layout SmolLM2, ...). The top panels are the per-layer MLP and attention gain profiles
over relative depth of every model that has them; the bottom ones every model's final MLP
gain against its size, with each source's fitted power law, and its contracting shares.
A control (the same network with re-drawn weights) is drawn dashed, or hollow.
"""

from __future__ import annotations

import math
from pathlib import Path

from . import _base as base
from .scaling import bar_layout

_CONTROL_NOTE = "control (re-drawn weights): dashed line, hollow marker"
#: how far apart a model's attention and MLP markers stand, in decades of parameters
_SUBLAYER_DECADES = 0.03


def across_sources_figure(sources, fits: dict, path: Path, threshold_pct: float | None = None) -> Path:
    """Draw every model of every source in one figure and save it as a PNG.

    Parameters
    ----------
    sources
        The run's :class:`~gainscale.results.SourceResult` s with models, two or more.
    fits
        Each source's :class:`~gainscale.stats.PowerLawFit` by name, or None where it has none.
    path
        The PNG to write; its directory must exist.
    threshold_pct
        The attention contracting share the run's claim requires; None draws none.

    Returns
    -------
    Path
        ``path``.
    """
    groups = model_groups(sources)
    if not groups:
        raise ValueError("no source has models; nothing to compare")
    for _, models in groups:
        for _, model in models:
            base.positive(model, "n_params")
            base.positive(model, "final_mlp_gain")
    colours = [base.GROUP_COLOURS[i % len(base.GROUP_COLOURS)] for i in range(len(groups))]
    with base.new_figure((14, 11)) as fig:
        (mlp, attention), (final, shares) = fig.subplots(2, 2)
        _draw_profiles(mlp, groups, colours, "mlp", "(a) MLP gain over depth")
        _draw_profiles(attention, groups, colours, "attention", "(b) attention gain over depth")
        _draw_final_gains(final, groups, colours, sources, fits)
        _draw_shares(shares, groups, colours, threshold_pct)
        _group_legend(fig, groups, colours)
        fig.suptitle("Across sources and architectures: " + ", ".join(s.name for s in sources), fontsize=14)
        return base.save(fig, path)


def model_groups(sources) -> list[tuple[str, list[tuple[str, object]]]]:
    """``[(label, [(source, model), ...])]``: one group per source and architecture, smallest model first."""
    found: dict[tuple[str, str | None], list] = {}
    for source in sources:
        for model in source.models:
            found.setdefault((source.name, model.architecture), []).append((source.name, model))
    groups = []
    for (source, architecture), members in found.items():
        members.sort(key=lambda pair: pair[1].n_params)
        groups.append((f"{source} · {architecture or 'architecture unknown'}: {_span(members)}", members))
    return groups


def _span(members) -> str:
    """The group's models: all of a few, else the smallest and the largest."""
    names = [model.model for _, model in members]
    return ", ".join(names) if len(names) <= 3 else f"{names[0]} … {names[-1]} ({len(names)} models)"


def _style(model) -> dict:
    return {"linestyle": "--", "alpha": 0.8} if model.control_of else {"linestyle": "-"}


def _draw_profiles(ax, groups, colours, module: str, title: str) -> None:
    """Each model's per-layer gains over relative depth, in its group's colour; log gain axis."""
    without = sorted({source for _, members in groups for source, model in members if not model.has_layers})
    # say why a source is missing here, rather than let it seem forgotten
    ax.set_title(title + (f"\n(no per-layer gains in: {', '.join(without)})" if without else ""))
    everything = []
    for (_, members), colour in zip(groups, colours):
        for _, model in members:
            if model.gains(module) is None:
                continue
            values = base.gains(model, module)
            ax.plot(base.depth(len(values)), values, color=colour, marker=".", markersize=4, linewidth=1.2, **_style(model))
            everything += values
    if not everything:
        base.centred_note(ax, "no source has per-layer gains")
        ax.set_axis_off()
        return
    base.gain_one_line(ax, None)
    ax.annotate("gain = 1", (0, 1), xycoords=("axes fraction", "data"), xytext=(4, 3), textcoords="offset points", fontsize=8, color="0.3")
    base.log_gain_axis(ax, everything + [1.0])
    ax.set_xlim(-0.02, 1.02)
    ax.set(xlabel="layer position (layer / (n_layers − 1))", ylabel=f"{'MLP' if module == 'mlp' else 'attention'} gain (×, log scale)")
    ax.grid(alpha=0.3)


def _draw_final_gains(ax, groups, colours, sources, fits: dict) -> None:
    """(c) final MLP gain against size, every model, with each source's fitted power law over its models."""
    uncertainty = {(s.name, m): u for s in sources for m, u in s.uncertainty.items()}
    everything = []
    for (_, members), colour in zip(groups, colours):
        for source, model in members:
            interval = uncertainty.get((source, model.model))
            interval = interval.final_mlp_gain if interval else None
            error = base.interval_bars([model.final_mlp_gain], [interval])
            ax.errorbar([model.n_params], [model.final_mlp_gain], yerr=error, fmt="o", color=colour, markersize=7, capsize=3,
                        markerfacecolor="white" if model.control_of else colour, markeredgecolor=colour, zorder=3)
            everything += [model.final_mlp_gain] + ([interval.lower, interval.upper] if interval else [])
    pairs = [model for _, members in groups for _, model in members]
    base.label_points(ax, [base.short_name(m.model) for m in pairs], [m.n_params for m in pairs], [m.final_mlp_gain for m in pairs],
                      fontsize=8, colour="0.25")
    _draw_fits(ax, groups, colours, sources, fits)
    base.param_axis(ax)
    base.log_gain_axis(ax, everything)
    ax.margins(x=0.15, y=0.1)
    ax.set(xlabel="parameters (log scale)", ylabel="final MLP gain (×, log scale)")
    ax.set_title("(c) final MLP gain vs model size")
    ax.grid(alpha=0.3)


def _draw_fits(ax, groups, colours, sources, fits: dict) -> None:
    """Each source's fitted line over the range of the models it was fitted to, in its first group's colour."""
    drawn = False
    for source in sources:
        fit = fits.get(source.name)
        if fit is None:
            continue
        colour = next(c for (_, members), c in zip(groups, colours) if members[0][0] == source.name)
        low, high = min(fit.log_params), max(fit.log_params)
        xs = base.log_range(10**low, 10**high)
        ax.plot(xs, [10 ** fit.fitted(math.log10(x)) for x in xs], color=colour, linestyle=":", linewidth=1.5,
                label=f"{source.name} fit: α = {fit.alpha:.3f} ± {fit.alpha_stderr:.3f}")
        drawn = True
    if drawn:
        ax.legend(loc="lower right", fontsize=8, frameon=True, framealpha=0.9)


def _draw_shares(ax, groups, colours, threshold_pct: float | None) -> None:
    """(d) every model's contracting shares at its size: attention circles, MLP squares."""
    from matplotlib.lines import Line2D

    pairs = [(source, model, colour) for (_, members), colour in zip(groups, colours) for source, model in members]
    # models of one size (a control beside its model) stand side by side, as in the scaling figure
    centres, width = bar_layout([model.n_params for _, model, _ in pairs])
    for (_, model, colour), centre in zip(pairs, centres):
        # attention a little left of the model's size, MLP a little right: equal shares stay two markers
        for share, marker, side in ((model.attn_contracting_pct, "o", -1), (model.mlp_contracting_pct, "s", 1)):
            if share is not None:
                ax.plot([10 ** (centre + side * min(_SUBLAYER_DECADES, width / 2))], [share], marker=marker, markersize=8, color=colour, linestyle="none", alpha=0.85,
                        markerfacecolor="white" if model.control_of else colour)
    handles = [Line2D([], [], marker="o", color="0.3", linestyle="none", label="attention"),
               Line2D([], [], marker="s", color="0.3", linestyle="none", label="MLP")]
    if threshold_pct is not None:
        handles.append(ax.axhline(threshold_pct, color="black", linestyle="--", linewidth=1, label=f"attention threshold ({threshold_pct:g}%)"))
    base.param_axis(ax)
    ax.margins(x=0.1)
    base.share_axis(ax)
    ax.set_ylim(-4, 118)  # a share of 0 is a marker, not hidden in the axis
    ax.set(xlabel="parameters (log scale)", ylabel="contracting layers (%)")
    ax.set_title("(d) layers with gain < 1")
    ax.grid(alpha=0.3)
    ax.legend(handles=handles, loc="upper right", fontsize=8, ncols=len(handles), frameon=True, framealpha=0.9)


def _group_legend(fig, groups, colours) -> None:
    """Which colour is which source and architecture, under the panels."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colour, marker="o", label=label) for (label, _), colour in zip(groups, colours)]
    if any(model.control_of for _, members in groups for _, model in members):
        handles.append(Line2D([], [], color="0.3", marker="o", markerfacecolor="white", linestyle="--", label=_CONTROL_NOTE))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 2), frameon=False, fontsize=10)
