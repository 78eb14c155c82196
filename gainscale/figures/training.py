"""The claims over training, and a trained model beside its untrained control.

A revision sweep measures one model at many training checkpoints (``pythia-70m@step0``,
``@step1000``, ...). Its figure plots against the training step the final MLP gain, the
contracting shares and the value of every per-model claim, each point marked by its verdict;
step 0, the untrained network, is called out as the control it is. A control proper (the same
network with re-drawn weights) gets a figure beside its trained model: both gain profiles, and
their claims' verdicts.
"""

from __future__ import annotations

import math
from pathlib import Path

from . import _base as base

#: claims' verdicts on a line: the marker's shape says it too, for readers who cannot tell the colours
_VERDICT_SHAPES = {"passed": "o", "failed": "X", None: "o"}


def training_figure(source: str, sweep: str, models, claims, uncertainty: dict, path: Path, threshold_pct: float | None = None) -> Path:
    """Draw one sweep's numbers and per-model claims against the training step and save it as a PNG.

    Parameters
    ----------
    source
        The source's name, shown in the title.
    sweep
        The sweep's name (its base model).
    models
        The sweep's :class:`~gainscale.summary.ModelSummary` s, each with its ``step``.
    claims
        The per-model :class:`~gainscale.results.ClaimResult` s of those models.
    uncertainty
        Their :class:`~gainscale.results.ModelUncertainty` by model, where the source resampled
        the prompts: the final MLP gain gets error bars.
    path
        The PNG to write; its directory must exist.
    threshold_pct
        The attention contracting share the run's claim requires; None draws none.

    Returns
    -------
    Path
        ``path``.
    """
    models = sorted(models, key=lambda m: m.step)
    if len(models) < 2 or any(m.step is None for m in models):
        raise ValueError(f"sweep {sweep}: needs two or more checkpoints with a training step")
    for model in models:
        base.positive(model, "final_mlp_gain")
    by_claim = _claims_by_id(claims)
    panels = 2 + len(by_claim)
    rows = math.ceil(panels / 2)
    with base.new_figure((13, 4.3 * rows + 1.2)) as fig:
        axes = list(fig.subplots(rows, 2, squeeze=False).flat)
        for ax in axes[:panels]:  # first: each panel's legend goes under its step axis
            _step_axis(ax, [m.step for m in models])
        for ax in axes[panels:]:
            ax.set_axis_off()
        _draw_final_gain(axes[0], models, uncertainty)
        _draw_shares(axes[1], models, threshold_pct)
        for ax, (info, results) in zip(axes[2:], by_claim):
            _draw_claim(ax, info, results, {m.model: m.step for m in models})
        fig.suptitle(f"{sweep} over training ({len(models)} checkpoints), source: {source}", fontsize=14)
        return base.save(fig, path)


def control_figure(source: str, trained, control, claims, uncertainty: dict, path: Path) -> Path:
    """Draw a trained model beside its control (re-drawn weights): gain profiles and claim verdicts.

    Parameters
    ----------
    source
        The source's name, shown in the title.
    trained, control
        The two :class:`~gainscale.summary.ModelSummary` s; ``control.control_of`` names ``trained``.
    claims
        The per-model :class:`~gainscale.results.ClaimResult` s of the two.
    uncertainty
        Their :class:`~gainscale.results.ModelUncertainty` by model, where the source has them:
        each layer's 95% bootstrap interval is shaded.
    path
        The PNG to write; its directory must exist.

    Returns
    -------
    Path
        ``path``.
    """
    if not (trained.has_layers or control.has_layers):
        raise ValueError(f"{trained.model} and {control.model}: no per-layer gains; nothing to draw")
    with base.new_figure((14, 6.5)) as fig:
        profiles, verdicts = fig.subplots(1, 2, width_ratios=[2.2, 1])
        _draw_pair_profiles(profiles, trained, control, uncertainty)
        _draw_pair_verdicts(verdicts, trained, control, claims)
        fig.suptitle(f"{trained.model} (trained) beside {control.model} (its control: the same network with re-drawn weights), "
                     f"source: {source}", fontsize=12)
        base.verdict_legend(fig, absent="not run on this model")
        return base.save(fig, path)


# -- over training -------------------------------------------------------------------------------


def _claims_by_id(claims) -> list[tuple]:
    """``[(claim info, results)]`` per claim, in the report's order."""
    found: dict[str, list] = {}
    infos = {}
    for claim in claims:
        found.setdefault(claim.claim.id, []).append(claim)
        infos[claim.claim.id] = claim.claim
    return [(infos[i], found[i]) for i in sorted(found, key=lambda i: infos[i].order())]


def _draw_final_gain(ax, models, uncertainty: dict) -> None:
    steps = [m.step for m in models]
    values = [m.final_mlp_gain for m in models]
    intervals = [uncertainty[m.model].final_mlp_gain if m.model in uncertainty else None for m in models]
    error = base.interval_bars(values, intervals)
    ax.errorbar(steps, values, yerr=error, color=base.MLP_COLOUR, marker="s", capsize=3,
                label="final MLP gain" + (" (95% bootstrap interval)" if error else ""))
    _hollow_untrained(ax, models, values, base.MLP_COLOUR, "s")
    base.gain_one_line(ax)
    base.log_gain_axis(ax, values + [1.0] + [i.lower for i in intervals if i] + [i.upper for i in intervals if i])
    ax.set(ylabel="final MLP gain (×, log scale)")
    ax.set_title("final MLP gain")
    ax.grid(alpha=0.3)
    base.legend_below(ax, ncols=2)


def _draw_shares(ax, models, threshold_pct: float | None) -> None:
    steps = [m.step for m in models]
    for pct, label, colour, marker in (("attn_contracting_pct", "attention", base.ATTENTION_COLOUR, "o"),
                                       ("mlp_contracting_pct", "MLP", base.MLP_COLOUR, "s")):
        shares = [getattr(m, pct) for m in models]
        known = [(s, v) for s, v in zip(steps, shares) if v is not None]
        if known:
            ax.plot([s for s, _ in known], [v for _, v in known], color=colour, marker=marker, label=label)
    if threshold_pct is not None:
        ax.axhline(threshold_pct, color="black", linestyle="--", linewidth=1, label=f"attention threshold ({threshold_pct:g}%)")
    base.share_axis(ax)
    ax.set(ylabel="contracting layers (%)")
    ax.set_title("layers with gain < 1")
    ax.grid(alpha=0.3)
    base.legend_below(ax, ncols=3)


def _draw_claim(ax, info, results, steps: dict[str, int]) -> None:
    """A per-model claim's value at each checkpoint, marked by its verdict, with its threshold."""
    points = sorted((steps[r.model], r.value, r.verdict) for r in results if r.value is not None and r.model in steps)
    if not points:
        base.centred_note(ax, "no value at any checkpoint")
    else:
        ax.plot([s for s, _, _ in points], [v for _, v, _ in points], color="0.6", linewidth=1, zorder=1)
        for verdict, label in (("passed", "holds"), ("failed", "fails"), (None, "no verdict")):
            chosen = [(s, v) for s, v, d in points if d == verdict]
            if chosen:
                ax.scatter([s for s, _ in chosen], [v for _, v in chosen], marker=_VERDICT_SHAPES[verdict], s=55, zorder=3,
                           color=base.VERDICT_MARKERS[verdict], facecolors="none" if verdict is None else None, label=label)
        values = [v for _, v, _ in points]
        threshold = next((r.threshold for r in results if r.threshold is not None), None)
        if threshold is not None:
            ax.axhline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold: {info.describe_threshold(threshold)}")
            values.append(threshold)
        if min(values) > 0 and max(values) / min(values) > 20:  # a gain that grows by orders of magnitude
            base.log_gain_axis(ax, values)
        base.legend_below(ax, ncols=4)
    ax.set(ylabel=info.value_format.replace("{}", "").strip() or "value")
    ax.set_title(base.wrap(f"claim {info.number}: {info.statement}" if info.number else info.statement, 70), fontsize=10)
    ax.grid(alpha=0.3)


def _hollow_untrained(ax, models, values, colour: str, marker: str) -> None:
    """Step 0's point hollow: the untrained network, not a point of training."""
    for model, value in zip(models, values):
        if model.step == 0:
            ax.plot([0], [value], marker=marker, markersize=10, markerfacecolor="white", markeredgecolor=colour, zorder=4)


def _step_axis(ax, steps) -> None:
    """Training steps on a log axis; with step 0 a symlog one, its linear stretch holding step 0 alone."""
    from matplotlib.ticker import FuncFormatter

    positive = [s for s in steps if s > 0]
    first = min(positive) if positive else 1
    if 0 in steps:
        ax.set_xscale("symlog", linthresh=first, linscale=0.5)
        ax.set_xlim(-0.6 * first, max(steps) * 1.6)
        ax.axvspan(-0.4 * first, 0.4 * first, color="0.85", zorder=0)
    else:
        ax.set_xscale("log")
        ax.set_xlim(first / 1.6, max(steps) * 1.6)
    if 0 in steps:  # ticks at 0 and at the decades from the first step on: a decade below it would crowd 0
        decades = [10**k for k in range(len(str(first)) - 1, len(str(max(steps))))]
        ax.set_xticks([0, *(d for d in decades if d >= first)])
    # step 0 is called out under the axis, where no point can hide it
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: "0\nuntrained\n(control)" if v == 0 else base.human_count(v)))
    ax.set_xlabel("training step" + (" (symlog: 0, then log)" if 0 in steps else " (log scale)"))


# -- beside its control ------------------------------------------------------------------------


def _draw_pair_profiles(ax, trained, control, uncertainty: dict) -> None:
    """Both models' attention and MLP gain by layer: the trained solid, the control dashed and hollow."""
    everything = [1.0]
    for model, style in ((trained, {"linestyle": "-"}), (control, {"linestyle": "--", "markerfacecolor": "white"})):
        for module, label, colour, marker in (("attention", "attention", base.ATTENTION_COLOUR, "o"),
                                              ("mlp", "MLP", base.MLP_COLOUR, "s")):
            if model.gains(module) is None:
                continue
            values = base.gains(model, module)
            ax.plot(range(len(values)), values, color=colour, marker=marker, markersize=5, label=f"{label}, {model.model}", **style)
            label = "shaded: 95% bootstrap interval" if model is control and module == "mlp" else None  # once
            everything += values + base.shade_intervals(ax, uncertainty.get(model.model), module, colour, label)
    base.gain_one_line(ax, "gain = 1 (contracting below)")
    base.log_gain_axis(ax, everything)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set(xlabel="layer", ylabel="gain (×, log scale)")
    ax.set_title("gain by layer")
    ax.grid(alpha=0.3)
    base.legend_below(ax, ncols=3)


def _draw_pair_verdicts(ax, trained, control, claims) -> None:
    """Each per-model claim's verdict and value for the two models, as a grid."""
    found = {(c.claim.id, c.model): c for c in claims}
    infos = sorted({c.claim.id: c.claim for c in claims}.values(), key=lambda i: i.order())
    if not infos:
        base.centred_note(ax, "no per-model claim ran on these models")
        ax.set_axis_off()
        return
    cells = [[_pair_cell(found.get((info.id, model.model)), info) for model in (trained, control)] for info in infos]
    rows = [base.wrap(f"{info.number}: {info.statement}" if info.number else info.statement, 30) for info in infos]
    base.verdict_grid(ax, rows, [base.wrap(trained.model, 16) + "\n(trained)", base.wrap(control.model, 16) + "\n(control)"], cells)
    ax.set_box_aspect(0.5 * len(rows) / 2)  # wide cells, not a tower: two columns, a few claims
    ax.tick_params(axis="y", labelsize=9)
    ax.set_title("per-model claims")


def _pair_cell(result, info) -> tuple[str | None, str, bool]:
    if result is None:
        return "absent", "not run", False
    if result.verdict is None:
        return None, base.VERDICT_WORDS[None], False
    return result.verdict, f"{base.VERDICT_WORDS[result.verdict]}\n{info.describe_value(result.value)}", False
