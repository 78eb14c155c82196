"""The report's PNG figures, drawn from a run's typed results (:class:`~gainscale.results.RunResult`).

Which figures a run calls for, and where each goes in the figures folder:

- ``scaling_<source>.png``, every source with models: the paper's four panels with the fit's
  95% confidence and prediction bands (:func:`scaling_figure`);
- ``<source>/<model>.png``, every model with per-layer gains: its attention and MLP gain by
  layer (:func:`model_figure`);
- ``sensitivity_<source>.png``, every source whose claims were evaluated under variants of the
  analysis: a heat-map of the verdicts (:func:`sensitivity_figure`);
- ``across_sources.png``, a run with two or more sources: every model's gain profiles, final
  MLP gain and contracting shares side by side, by source and architecture (:func:`across_sources_figure`);
- ``<source>/sweeps/<sweep>.png``, every revision sweep with two or more checkpoints: the
  numbers and the per-model claims over training (:func:`training_figure`);
- ``<source>/controls/<control>.png``, every control whose trained model is in the run:
  the two side by side (:func:`control_figure`).

Names are made file-safe by :func:`gainscale.files.slug`. :func:`draw_figures` writes them
all, redraws only those whose inputs changed, and collects failures instead of stopping at
the first.

Figures are ``matplotlib.figure.Figure`` objects rendered by the Agg canvas: no pyplot, so no
global figure registry, no display and no shared state between threads. matplotlib is
imported inside the functions, so importing gainscale stays cheap.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, is_dataclass
from functools import cache, partial
from pathlib import Path
from typing import Any

from ..files import pretty_json, slug, write_atomic
from .across import across_sources_figure
from .scaling import fit_bands, model_figure, scaling_figure
from .sensitivity import sensitivity_figure
from .training import control_figure, training_figure

__all__ = [
    "across_sources_figure", "control_figure", "draw_figures", "fit_bands", "model_figure", "scaling_figure",
    "sensitivity_figure", "training_figure",
]

#: the quantity of the contracting-share panels whose threshold they draw, where a claim marks it
ATTENTION_CONTRACTING = "attention_contracting_pct"
#: the figure across sources, in the figures folder
ACROSS_SOURCES = "across_sources.png"


def draw_figures(run, directory: Path) -> tuple[list[Path], list[str]]:
    """Write every figure the run calls for (see the module's list); redraw only what changed.

    Parameters
    ----------
    run
        The run's :class:`~gainscale.results.RunResult`.
    directory
        Where the PNGs go (created). PNGs of earlier runs that this run does not draw are
        removed, so the folder holds this run's figures only.

    Returns
    -------
    tuple[list[Path], list[str]]
        The PNGs written, and one message per figure that failed, e.g.
        ``"figure scaling_published.png: ValueError: ..."``. A failure does not stop the others.
    """
    directory.mkdir(parents=True, exist_ok=True)
    drawn = _DrawnFigures(directory)
    written: list[Path] = []
    jobs, errors = figure_jobs(run)
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


# -- file names ----------------------------------------------------------------------------------


def scaling_figure_name(source: str) -> str:
    """The scaling figure's path within the figures folder."""
    return f"scaling_{slug(source)}.png"


def sensitivity_figure_name(source: str) -> str:
    """The sensitivity heat-map's path within the figures folder."""
    return f"sensitivity_{slug(source)}.png"


def model_figure_name(source: str, model: str) -> str:
    """A model's figure's path within the figures folder: one folder per source, so names never collide."""
    return f"{slug(source)}/{slug(model)}.png"


def training_figure_name(source: str, sweep: str) -> str:
    """A sweep's figure: in a folder of the source's (a model's figure is a file there, never a folder)."""
    return f"{slug(source)}/sweeps/{slug(sweep)}.png"


def control_figure_name(source: str, control: str) -> str:
    """A control's figure beside its trained model, named after the control."""
    return f"{slug(source)}/controls/{slug(control)}.png"


# -- which figures a run calls for -------------------------------------------------------------

Job = tuple[str, Callable[[Path], Path]]


def figure_jobs(run) -> tuple[list[Job], list[str]]:
    """(file name, drawing function of the path) for every figure the run calls for, and errors.

    A kind of figure whose inputs cannot even be gathered is one error; the other kinds still come.
    """
    jobs: list[Job] = []
    errors: list[str] = []
    for kind, gather in _JOB_KINDS.items():
        try:
            jobs += list(gather(run))
        except Exception as error:
            errors.append(f"figures {kind}: {type(error).__name__}: {error}")
    return jobs, errors


def _scaling_jobs(run) -> Iterator[Job]:
    """The four panels per source, and a figure per model with per-layer gains."""
    from ..stats import PowerLawFit

    threshold = attention_threshold(run)
    for source in run.sources:
        if not source.models:
            continue
        fit = run.evidence(source.name, PowerLawFit)
        yield scaling_figure_name(source.name), partial(scaling_figure, source, fit, threshold_pct=threshold)
        for model in source.models:
            if model.has_layers:
                yield model_figure_name(source.name, model.model), partial(
                    model_figure, source.name, model, uncertainty=source.uncertainty.get(model.model))


def _sensitivity_jobs(run) -> Iterator[Job]:
    """A heat-map per source whose claims carry variants."""
    from ..sensitivity_table import sensitivity_columns

    for source in run.sources:
        columns = sensitivity_columns(run.claim_infos(), run.claims_of(source.name))
        if columns:
            yield sensitivity_figure_name(source.name), partial(sensitivity_figure, source.name, tuple(columns))


def _across_sources_jobs(run) -> Iterator[Job]:
    """One figure when two or more sources have models: they are compared in it."""
    from ..stats import PowerLawFit

    sources = [s for s in run.sources if s.models]
    if len(sources) >= 2:
        fits = {s.name: run.evidence(s.name, PowerLawFit) for s in sources}
        yield ACROSS_SOURCES, partial(across_sources_figure, tuple(sources), fits, threshold_pct=attention_threshold(run))


def _training_jobs(run) -> Iterator[Job]:
    """A figure per revision sweep of two or more checkpoints with a training step."""
    threshold = attention_threshold(run)
    for source in run.sources:
        for sweep, models in sweeps(source).items():
            names = {m.model for m in models}
            claims = tuple(c for c in run.claims_of(source.name) if c.claim.scope == "model" and c.model in names)
            uncertainty = {name: u for name, u in source.uncertainty.items() if name in names}
            yield training_figure_name(source.name, sweep), partial(
                training_figure, source.name, sweep, models, claims, uncertainty, threshold_pct=threshold)


def _control_jobs(run) -> Iterator[Job]:
    """A figure per control whose trained model ran in the same source."""
    for source in run.sources:
        for control, trained in controls(source):
            pair = {control.model, trained.model}
            claims = tuple(c for c in run.claims_of(source.name) if c.claim.scope == "model" and c.model in pair)
            uncertainty = {name: u for name, u in source.uncertainty.items() if name in pair}
            yield control_figure_name(source.name, control.model), partial(
                control_figure, source.name, trained, control, claims, uncertainty)


_JOB_KINDS: dict[str, Callable[[Any], Iterator[Job]]] = {
    "scaling": _scaling_jobs, "sensitivity": _sensitivity_jobs, "across sources": _across_sources_jobs,
    "training": _training_jobs, "controls": _control_jobs,
}


def attention_threshold(run) -> float | None:
    """The attention contracting share that a claim of the run marks as its threshold (the paper's claim 1), if any.

    A claim declares it (``Claim(marks={"attention_contracting_pct": <its threshold's name>})``);
    of several, the first in report order.
    """
    return next((level for c in run.claim_infos() if (level := c.level(ATTENTION_CONTRACTING)) is not None), None)


def sweeps(source) -> dict[str, tuple]:
    """The source's revision sweeps of two or more checkpoints with a step: ``{sweep: models by step}``."""
    found: dict[str, list] = {}
    for model in source.models:
        if model.sweep is not None and model.step is not None:
            found.setdefault(model.sweep, []).append(model)
    return {sweep: tuple(sorted(models, key=lambda m: m.step)) for sweep, models in found.items() if len(models) >= 2}


def controls(source) -> list[tuple]:
    """``(control, trained model)`` for each control of the source whose trained model it also has."""
    pairs = []
    for model in source.models:
        trained = source.model(model.control_of) if model.control_of else None
        if trained is not None:
            pairs.append((model, trained))
    return pairs


# -- drawing only what changed -----------------------------------------------------------------


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
        """Remove the PNGs (and their records) of figures this run does not draw, and folders left empty."""
        for png in sorted(self.directory.rglob("*.png")):
            if self._key(png) not in names:
                png.unlink()
                self.inputs.pop(self._key(png), None)
                self.changed = True
        # deepest first, so that a source's folder empties once its sweeps/ and controls/ have gone
        for folder in sorted((p for p in self.directory.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            if not any(folder.iterdir()):
                folder.rmdir()

    def _key(self, png: Path) -> str:
        return png.relative_to(self.directory).as_posix()

    def save(self) -> None:
        if self.changed:
            write_atomic(self.path, pretty_json(self.inputs))


def _fingerprint(draw: partial) -> str:
    """A hash of a figure's drawing function, its arguments (every field of them) and the figures' code."""
    arguments = [draw.func.__name__, list(draw.args), draw.keywords, _code_hash()]
    return hashlib.sha256(json.dumps(arguments, sort_keys=True, default=_plain).encode()).hexdigest()


def _plain(value: Any) -> Any:
    """JSON for the fingerprint: a result's every field (a repr may leave numbers out), else its text."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return str(value)


@cache
def _code_hash() -> str:
    """The figures' source, every module of the package: a change to any of them redraws."""
    digest = hashlib.sha256()
    for module in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(module.read_bytes())
    return digest.hexdigest()
