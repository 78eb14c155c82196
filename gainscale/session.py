"""One run of the claims: the settings, the sources chosen and the thresholds, evaluated lazily.

The pytest plugin creates one :class:`ClaimSession` per test session and asks it which cases
to parametrize and for each case's numbers; nothing here knows pytest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from .baseline import Baseline, Comparison, Tolerances
from .claims import Thresholds, Verdict
from .errors import UnknownNameError
from .progress import progress_bar
from .measurer import Measurer
from .settings import Settings
from .sources import MEASURED, PUBLISHED, Unavailable, known_source_names, open_source
from .suites import Suite, load_suite
from .summary import ModelSummary

DEFAULT_SOURCES = (PUBLISHED, MEASURED)


@dataclass(frozen=True)
class ModelCase:
    """A per-model claim's parameter: which source, which model, and whether it needs a GPU."""

    source: str
    model: str
    needs_gpu: bool

    @property
    def id(self) -> str:
        return f"{self.source}-{self.model}"


@dataclass
class ClaimSession:
    """The sources a run evaluates the claims on, under one set of settings and thresholds."""

    settings: Settings = field(default_factory=Settings)
    source_names: tuple[str, ...] = DEFAULT_SOURCES
    thresholds: Thresholds = field(default_factory=Thresholds)
    #: the baseline verdicts are compared with; None for none
    baseline: Baseline | None = None
    tolerances: Tolerances = field(default_factory=Tolerances)
    #: record this run as the new baseline instead of comparing with it
    update_baseline: bool = False

    def compare(self, test: str, verdict: Verdict) -> Comparison | None:
        """The verdict of ``test`` beside the baseline, or None when there is nothing to compare."""
        if self.baseline is None or self.update_baseline or verdict.passed is None:
            return None
        return self.baseline.compare(test, verdict, self.tolerances)

    @cached_property
    def suite(self) -> Suite:
        return load_suite(self.settings.suite, self.settings.cache_dir)

    @cached_property
    def measurer(self) -> Measurer:
        return Measurer(self.suite, self.settings)

    @cached_property
    def sources(self) -> dict:
        """Each chosen source by name; an unknown name raises, listing the known ones."""
        known = known_source_names(self.settings.cache_dir)
        for name in self.source_names:
            if name not in known:
                raise UnknownNameError(
                    "source", name, known, where=f"(cache {self.settings.cache_dir})",
                    hint="Import a notebook file first: gainscale import-notebook FILE --name NAME.",
                )
        return {name: open_source(name, self.measurer) for name in dict.fromkeys(self.source_names)}

    def model_cases(self) -> list[ModelCase]:
        """Every (source, model) a per-model claim is tested on."""
        return [
            ModelCase(name, model, source.needs_gpu())
            for name, source in self.sources.items()
            for model in source.model_names()
        ]

    def suite_cases(self) -> list[tuple[str, bool]]:
        """Every (source, needs GPU) a cross-model claim is tested on."""
        return [(name, source.needs_gpu()) for name, source in self.sources.items()]

    def summary(self, source: str, model: str) -> ModelSummary:
        """One model's numbers; raises :class:`Unavailable` saying why and what to do."""
        return self.sources[source].summary(model)

    def summaries(self, source: str) -> list[ModelSummary]:
        """Every model of ``source``, smallest first; raises :class:`Unavailable` naming the missing."""
        found, missing = [], []
        models = self.sources[source].model_names()
        with progress_bar(len(models), f"{source} models", "model", self.settings.progress and source == MEASURED) as bar:
            for model in models:
                try:
                    found.append(self.summary(source, model))
                except Unavailable as unavailable:
                    missing.append((model, str(unavailable)))
                bar.update()
        if missing:
            names = ", ".join(model for model, _ in missing)
            raise Unavailable(f"needs all {len(found) + len(missing)} models of {source}; {len(missing)} missing ({names}): {missing[0][1]}")
        return sorted(found, key=lambda s: s.n_params)

    def provenance(self, source: str, model: str | None = None) -> dict:
        return self.sources[source].provenance(model)

    def recorded_fit(self, source: str):
        return self.sources[source].recorded_fit()
