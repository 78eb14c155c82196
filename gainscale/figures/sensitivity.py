"""The sensitivity heat-map: each claim's verdict under each variant of the analysis.

Claims across, variants down, the verdict as tested in the first row. A cell is coloured by its
verdict (holds, fails, not evaluable on these numbers, does not apply) and shows the claim's
value under the variant where it has one; a cell whose verdict differs from the verdict as
tested is framed, so that what flips a claim is seen at a glance. The cells are those of the
report's table (:mod:`gainscale.sensitivity_table`).
"""

from __future__ import annotations

from pathlib import Path

from . import _base as base

#: written before a value: the verdict, legible without its colour (a grey print, colour blindness)
_MARKS = {"passed": "✓", "failed": "✗"}


def sensitivity_figure(source: str, columns, path: Path) -> Path:
    """Draw the claims of one source under every variant as a heat-map and save it as a PNG.

    Parameters
    ----------
    source
        The source's name, shown in the title.
    columns
        The source's :class:`~gainscale.sensitivity_table.SensitivityColumn` s, one per claim.
    path
        The PNG to write; its directory must exist.

    Returns
    -------
    Path
        ``path``.
    """
    if not columns:
        raise ValueError(f"source {source}: no claim was evaluated under a variant; nothing to draw")
    rows, labels, cells = sensitivity_grid(columns)
    width = 2.8 + 1.6 * len(columns)
    with base.new_figure((max(width, 8.5), 2.2 + 0.36 * len(rows))) as fig:
        ax = fig.subplots()
        base.verdict_grid(ax, rows, labels, cells)
        ax.get_yticklabels()[0].set_fontweight("bold")
        _separate_groups(ax, columns, rows[1:], len(columns))
        ax.set_title(f"How sure is each verdict, source: {source}\nper-model claims hold under a variant only if every model does",
                     fontsize=12)
        # one row when it fits across the figure, else two
        base.verdict_legend(fig, framed="framed: differs from the verdict as tested", ncols=5 if width >= 11 else 3)
        return base.save(fig, path)


def sensitivity_grid(columns) -> tuple[list[str], list[str], list[list[tuple[str | None, str, bool]]]]:
    """The heat-map's rows (``as tested``, then every variant), column labels and cells.

    A cell is (state, text, framed): the state ``passed``, ``failed``, None (not evaluable) or
    ``absent`` (the variant does not apply to the claim); framed where the verdict differs from
    the claim's verdict as tested.
    """
    from ..sensitivity_table import variant_names

    variants = variant_names(columns)
    cells = [[_tested_cell(column) for column in columns]]
    cells += [[_variant_cell(column, name) for column in columns] for name in variants]
    return ["as tested"] + variants, [_claim_label(column) for column in columns], cells


def _tested_cell(column) -> tuple[str | None, str, bool]:
    """The verdict as tested: the value of a cross-model claim, how many models pass a per-model one."""
    if column.info.scope == "model" and column.verdict is not None:
        reached = [r.verdict for r in column.results if r.verdict is not None]
        passing = sum(v == "passed" for v in reached)
        return column.verdict, f"{base.VERDICT_WORDS[column.verdict]}: {passing} of {len(reached)} pass", False
    return column.verdict, _text(column.verdict, column.value), False


def _variant_cell(column, name: str) -> tuple[str | None, str, bool]:
    cell = column.cells.get(name)
    if cell is None:
        return "absent", base.VERDICT_WORDS["absent"], False
    flipped = cell.verdict is not None and column.verdict is not None and cell.verdict != column.verdict
    return cell.verdict, _text(cell.verdict, cell.value), flipped


def _text(verdict: str | None, value: float | None) -> str:
    """The value with its verdict's mark; the verdict in words where there is no value."""
    if verdict is None:
        return base.VERDICT_WORDS[None]
    if value is None:
        return base.VERDICT_WORDS[verdict]
    return f"{_MARKS[verdict]} {value:.3g}"


def _claim_label(column) -> str:
    """The claim's number and id, and what its values are (``p = …``) where cells show them."""
    info = column.info
    label = f"claim {info.number}\n{base.wrap(info.id, 15)}" if info.number else base.wrap(info.id, 15)
    if column.value is not None or any(c.value is not None for c in column.cells.values()):
        label += f"\n({info.value_format.format('…')})"
    return label


def _separate_groups(ax, columns, variants: list[str], width: int) -> None:
    """A line under the verdict as tested, and a thin one wherever the kind of variant changes."""
    ax.axhline(1, color="0.2", linewidth=1.5)
    groups = [next(c.cells[name].group for c in columns if name in c.cells) for name in variants]
    for row, (before, after) in enumerate(zip(groups, groups[1:]), start=2):
        if before != after:
            ax.plot([0, width], [row, row], color="0.45", linewidth=0.8)
