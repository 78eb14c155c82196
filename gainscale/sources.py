"""Sources of model summaries: the paper's table, live measurements, imported result sets.

Every claim is evaluated per source. ``published`` needs nothing but the shipped data;
``measured`` reads the cache or measures now when the suite's device is here; an imported
set reads what ``gainscale import-notebook`` stored. Listing a source's models is cheap (no
torch), so pytest can parametrize over them at collection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DeviceUnavailable, GainscaleError, UnknownNameError
from .measurement import Measurement
from .notebook import ImportedSet, imported_set_names, read_set
from .published import published_data, published_summaries
from .measurer import Measurer
from .paths import display_path
from .summary import ModelSummary

PUBLISHED, MEASURED = "published", "measured"


class Unavailable(GainscaleError):
    """A source cannot give a model's numbers here and now (the test skips with this reason)."""


class _TableSource:
    """A source whose numbers are all known up front, from a table: no torch, no GPU."""

    def __init__(self, summaries):
        self._summaries = {s.model: s for s in summaries}

    def model_names(self) -> list[str]:
        return list(self._summaries)

    def needs_gpu(self) -> bool:
        return False

    def summary(self, model: str) -> ModelSummary:
        return self._summaries[model]


class PublishedSource(_TableSource):
    """The paper's own table: per model its layers, final MLP gain and contracting counts."""

    name = kind = PUBLISHED

    def __init__(self):
        super().__init__(published_summaries())

    def recorded_fit(self) -> dict[str, float] | None:
        """The fit as the paper printed it."""
        return published_data()["recorded_fit"]

    def provenance(self, model: str | None = None) -> dict[str, Any]:
        return {"origin": published_data()["origin"]}


class ImportedSource(_TableSource):
    """A result set imported from the paper notebook's JSON."""

    kind = "imported"

    def __init__(self, imported: ImportedSet):
        super().__init__(imported.summaries)
        self.name = imported.name
        self.imported = imported

    def recorded_fit(self) -> dict[str, float] | None:
        return self.imported.recorded_fit

    def provenance(self, model: str | None = None) -> dict[str, Any]:
        i = self.imported
        return {"imported_from": i.imported_from, "file_sha256": i.file_sha256, "imported_at": i.imported_at}


@dataclass
class MeasuredSource:
    """The current suite under the current settings: from the cache, or measured now."""

    measurer: Measurer
    name: str = MEASURED
    kind: str = MEASURED
    _measurements: dict[str, tuple[Measurement, bool]] = field(default_factory=dict)

    @property
    def suite(self):
        return self.measurer.suite

    def model_names(self) -> list[str]:
        return self.suite.model_names

    def needs_gpu(self) -> bool:
        """Whether measuring needs CUDA: the user's device, else the suite's (Pythia: cuda)."""
        return (self.measurer.settings.device or self.suite.device or "").startswith("cuda")

    def recorded_fit(self) -> None:
        return None

    def summary(self, model: str) -> ModelSummary:
        measurement, from_cache = self.measurement(model)
        return measurement.summary("cache" if from_cache else "measured")

    def measurement(self, model: str) -> tuple[Measurement, bool]:
        """``(measurement, came_from_cache)``; raises :class:`Unavailable` with what to do."""
        if model not in self._measurements:
            self._measurements[model] = self._get(model)
        return self._measurements[model]

    def _get(self, model: str) -> tuple[Measurement, bool]:
        spec = self.suite.model(model)
        try:
            return self.measurer.get(spec)
        except DeviceUnavailable as missing:
            # the same words for every model, so that pytest folds the skips into one line
            raise Unavailable(
                f"no measurement of this model ({self.measurer.dtype_for(spec)}, prompts "
                f"{self.measurer.prompts.sha256[:12]}) is cached in {display_path(self.measurer.cache.directory)}, and {missing}: "
                f"run `pytest claims -m gpu` (or `gainscale measure MODEL --suite {self.suite.name}`) "
                "on a machine with one, sharing the cache"
            ) from None

    def provenance(self, model: str | None = None) -> dict[str, Any]:
        settings = self.measurer.settings
        record: dict[str, Any] = {
            "suite": self.suite.name,
            "prompts": self.measurer.prompts.name,
            "prompts_sha256": self.measurer.prompts.sha256,
        }
        if model in self._measurements:
            measurement, from_cache = self._measurements[model]
            record.update(
                dtype=measurement.dtype,
                device=measurement.provenance.device,
                torch=measurement.provenance.torch_version,
                transformers=measurement.provenance.transformers_version,
                attn_implementation=measurement.provenance.attn_implementation,
                resolved_revision=measurement.resolved_revision,
                measured_at=measurement.provenance.date,
                from_cache=from_cache,
            )
        else:
            record.update(dtype=settings.dtype, device=settings.device)
        return record


def known_source_names(cache_dir: Path) -> list[str]:
    return [PUBLISHED, MEASURED, *imported_set_names(cache_dir)]


def open_source(name: str, measurer: Measurer):
    """The source called ``name``: ``published``, ``measured`` or an imported set's name."""
    if name == PUBLISHED:
        return PublishedSource()
    if name == MEASURED:
        return MeasuredSource(measurer)
    cache_dir = measurer.settings.cache_dir
    try:
        return ImportedSource(read_set(cache_dir, name))
    except FileNotFoundError:
        raise UnknownNameError(
            "source", name, known_source_names(cache_dir), where=f"(cache {cache_dir})",
            hint="Import a notebook file first: gainscale import-notebook FILE --name NAME.",
        ) from None
