"""Sources of model summaries: a protocol, and a registry of the kinds of source.

Every claim is evaluated once per source. A source kind is one module of this package (or a
third-party module named by a ``gainscale.sources`` entry point) that exposes ``KIND``, a
:class:`SourceKind`: which source names it provides here, and how to open one. The built-in
kinds: ``published`` (the paper's table), ``measured`` (the suite, from the cache or measured
now) and ``imported`` (result sets imported from the paper's notebook). Listing a source's
models is cheap (no torch), so pytest can parametrize over them at collection.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import GainscaleError, UnknownNameError
from ..results import SourceInfo
from ..summary import ModelSummary

if TYPE_CHECKING:
    from ..measurer import Measurer

#: the built-in kinds, in the order their names are looked up; a new kind is a module plus a line here
BUILTIN_KINDS = ("published", "measured", "imported")
ENTRY_POINT_GROUP = "gainscale.sources"


class Unavailable(GainscaleError):
    """A source cannot give a model's numbers here and now (the test skips with this reason)."""


class Source(Protocol):
    """What the claims read a source through."""

    #: the name tests and reports give it (``published``, ``measured``, an imported set's name)
    name: str
    #: the kind it is, as its :class:`SourceKind` names it
    kind: str

    def model_names(self) -> list[str]:
        """Its models, without loading anything heavy (pytest parametrizes over them)."""

    def needs_gpu(self) -> bool:
        """Whether getting its numbers may need a CUDA device (its tests carry the ``gpu`` marker)."""

    def summary(self, model: str, gain: str = "paper") -> ModelSummary:
        """One model's numbers under the gain definition ``gain``; raises :class:`Unavailable`
        saying why and what to do (no numbers here, or none under that definition)."""

    def provenance(self, model: str) -> dict[str, Any]:
        """How ``model``'s numbers were obtained, as label -> value for the report."""

    def info(self) -> SourceInfo:
        """What the report says of it: description, notes, recorded fit, identity."""


class TableSource:
    """A source whose numbers are all known up front, from a table: no torch, no GPU."""

    def __init__(self, summaries: Iterable[ModelSummary]):
        self._summaries = {s.model: s for s in summaries}

    def model_names(self) -> list[str]:
        return list(self._summaries)

    def needs_gpu(self) -> bool:
        return False

    def summary(self, model: str, gain: str = "paper") -> ModelSummary:
        if gain != "paper":
            raise Unavailable(f"{self.name} has the paper's gain alone (a table of numbers, not norms to recompute): "
                              f"it cannot give {gain!r} gains; evaluate it with --gainscale-gain paper")
        return self._summaries[model]


@dataclass(frozen=True)
class SourceKind:
    """One kind of source: the names it provides in a run, and how to open one."""

    kind: str
    #: the source names this kind provides, given the run's measurer (settings, cache)
    names: Callable[[Measurer], Iterable[str]]
    #: the source called ``name``
    open: Callable[[str, Measurer], Source]
    #: evaluated when a run names no source
    default: bool = False
    #: what to do when a name is unknown, for the error message
    hint: str = ""


_EXTRA_KINDS: list[SourceKind] = []


def register_source_kind(kind: SourceKind) -> None:
    """Add a kind of source for this process (a plugin may also use the entry point group)."""
    _EXTRA_KINDS.append(kind)


def source_kinds() -> list[SourceKind]:
    """The built-in kinds, then entry points', then registered ones."""
    return [*_builtin_kinds(), *_entry_point_kinds(), *_EXTRA_KINDS]


@cache
def _builtin_kinds() -> tuple[SourceKind, ...]:
    return tuple(importlib.import_module(f"{__name__}.{name}").KIND for name in BUILTIN_KINDS)


@cache
def _entry_point_kinds() -> tuple[SourceKind, ...]:
    from importlib.metadata import entry_points

    return tuple(entry.load().KIND for entry in entry_points(group=ENTRY_POINT_GROUP))


def known_source_names(measurer: Measurer) -> list[str]:
    return [name for kind in source_kinds() for name in kind.names(measurer)]


def default_source_names(measurer: Measurer) -> list[str]:
    return [name for kind in source_kinds() if kind.default for name in kind.names(measurer)]


def reserved_source_names(measurer: Measurer, but: SourceKind) -> list[str]:
    """Names that kinds other than ``but`` provide: a source of kind ``but`` may not take them."""
    return [name for kind in source_kinds() if kind.kind != but.kind for name in kind.names(measurer)]


def open_source(name: str, measurer: Measurer) -> Source:
    """The source called ``name``, from the first kind that provides it; refuses unknown names."""
    kinds = source_kinds()
    for kind in kinds:
        if name in kind.names(measurer):
            return kind.open(name, measurer)
    hints = " ".join(k.hint for k in kinds if k.hint)
    raise UnknownNameError("source", name, known_source_names(measurer), where=f"(cache {measurer.settings.cache_dir})", hint=hints)
