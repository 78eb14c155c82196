"""Imported sources: result sets of the paper's notebook, stored by ``gainscale import-notebook``."""

from __future__ import annotations

from typing import Any

from ..notebook import PAPER_NOTEBOOK, SETTING_KEYS, ImportedSet, imported_set_names, read_set
from ..results import SourceInfo
from . import SourceKind, TableSource

KIND_NAME = "imported"


class ImportedSource(TableSource):
    """A result set imported from the paper notebook's JSON."""

    kind = KIND_NAME

    def __init__(self, imported: ImportedSet):
        super().__init__(imported.summaries)
        self.name = imported.name
        self.imported = imported

    def provenance(self, model: str) -> dict[str, Any]:
        """Where the numbers came from, and what made them: the file's settings, never this run's."""
        i = self.imported
        made_by = {key: i.settings.get(key, "the notebook's (not in the file)") for key in SETTING_KEYS}
        return {"obtained": "imported", **made_by, "file": i.imported_from, "file_sha256": i.file_sha256[:12],
                "imported_at": i.imported_at}

    def info(self) -> SourceInfo:
        i = self.imported
        return SourceInfo(
            name=self.name,
            kind=self.kind,
            description=f"Imported result set `{i.name}`, from `{i.imported_from}`; "
            + ("the settings its file records" if i.settings else
               "the notebook's own settings (the file records none; the paper's notebook used "
               + ", ".join(PAPER_NOTEBOOK.values()) + ")")
            + ", not this run's, made its numbers.",
            recorded_fit=i.recorded_fit,
            identity={"file_sha256": i.file_sha256},
        )


KIND = SourceKind(
    KIND_NAME,
    names=lambda measurer: imported_set_names(measurer.settings.cache_dir),
    open=lambda name, measurer: ImportedSource(read_set(measurer.settings.cache_dir, name)),
    hint="Import a notebook file first: gainscale import-notebook FILE --name NAME.",
)
