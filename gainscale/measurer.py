"""Getting a measurement: from the cache when it is there, else measured now and cached.

:class:`Measurer` ties a suite, the user's settings (the same for the CLI and the pytest
plugin), the cache and the :class:`~gainscale.meter.GainMeter` together. A cache hit imports
neither torch nor transformers and loads no model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from .architectures import layout_for
from .cache import CacheRequest, MeasurementCache
from .devices import pin_gpu
from .errors import DeviceUnavailable
from .loading import (
    LoadOptions,
    cache_source,
    check_source,
    default_device,
    default_dtype,
    device_available,
    load_model,
    read_config,
    resolve_revision,
)
from .measurement import METHOD_VERSION, Measurement
from .prompts import PromptSet, load_prompts
from .randommodels import ensure_random_model
from .settings import Settings
from .suites import ModelSpec, Suite


@dataclass
class Measurer:
    """Measurements of a suite's models under one set of settings.

    Parameters
    ----------
    suite
        The suite whose defaults (device, dtype) apply; None for a model outside any suite.
    settings
        The user's choices; they override the suite's defaults.
    """

    suite: Suite | None
    settings: Settings = field(default_factory=Settings)

    @cached_property
    def cache(self) -> MeasurementCache:
        return MeasurementCache(self.settings.cache_dir)

    @cached_property
    def prompts(self) -> PromptSet:
        return load_prompts(self.settings.prompts)

    def device_for(self, spec: ModelSpec) -> str:
        """The device ``spec`` is measured on; under xdist each worker pins one GPU."""
        device = self.settings.device or (self.suite.device if self.suite else None) or default_device()
        return pin_gpu(device, self.settings.worker)

    def dtype_for(self, spec: ModelSpec) -> str:
        """The dtype ``spec`` is measured in: settings, then model, then suite, then device default."""
        suite_dtype = self.suite.dtype if self.suite else None
        return self.settings.dtype or spec.dtype or suite_dtype or default_dtype(self.device_for(spec))

    def request(self, spec: ModelSpec, prompts: PromptSet | None = None) -> CacheRequest:
        """What identifies ``spec``'s measurement over ``prompts`` (default: the run's) in the
        cache; builds a tiny model first if needed."""
        return self._requests(spec, [prompts or self.prompts])[0]

    def _requests(self, spec: ModelSpec, prompt_sets: Sequence[PromptSet]) -> list[CacheRequest]:
        """One request per prompt set; the model is checked and its revision resolved once for all."""
        hashes = [prompts.sha256 for prompts in prompt_sets]  # a bad prompt file fails before anything is built
        if spec.build_seed is not None:
            ensure_random_model(spec.source, spec.config, spec.build_seed)
        _refuse_unloadable(spec, self.settings.allow_pickle)
        revision = resolve_revision(spec) if spec.local else (spec.revision or "main")
        dtype = self.dtype_for(spec)
        return [CacheRequest(source=cache_source(spec), revision=revision, dtype=dtype, prompts_sha256=sha256,
                             method_version=METHOD_VERSION) for sha256 in hashes]

    def unavailable_reason(self, spec: ModelSpec) -> str | None:
        """Why ``spec`` cannot be measured here (its device is missing), or None if it can."""
        device = self.device_for(spec)
        if device_available(device):
            return None
        return f"{device} is not available here to measure it"

    def get(self, spec: ModelSpec) -> tuple[Measurement, bool]:
        """``(measurement, came_from_cache)``: the cached one, or measured now and cached.

        Across processes sharing the cache, each request is measured once; the others wait
        for it and read it back. A cache hit loads no model; a miss where the device is
        missing raises :class:`DeviceUnavailable` before anything is resolved or locked.
        """
        return self.get_many(spec, [self.prompts])[0]

    def get_many(self, spec: ModelSpec, prompt_sets: Sequence[PromptSet]) -> list[tuple[Measurement, bool]]:
        """:meth:`get` for each of several prompt sets, loading the model once for all that are not cached.

        Loading is most of a cold measurement (seconds to minutes), so a run that needs several
        measurements of one model reads the cached ones and measures the others from one load,
        holding each one's cache lock as :meth:`get` does.

        Returns
        -------
        list
            ``(measurement, came_from_cache)`` for each prompt set, in order.
        """
        requests = self._requests(spec, prompt_sets)
        hits = [self.cache.lookup(request) for request in requests]
        if all(hits):
            return [(_renamed(hit.measurement, spec), True) for hit in hits]
        reason = self.unavailable_reason(spec)
        if reason:
            raise DeviceUnavailable(reason)
        revision = requests[0].revision
        results = self.cache.get_or_measure_many(
            requests, resolve=lambda: revision if spec.local else resolve_revision(spec),
            measure=lambda resolved, wanted: self.measure_each(spec, resolved, [prompt_sets[i] for i in wanted]),
        )
        return [(_renamed(measurement, spec), from_cache) for measurement, from_cache in results]

    def measure_each(self, spec: ModelSpec, resolved_revision: str, prompt_sets: Sequence[PromptSet]) -> Iterator[Measurement]:
        """Load ``spec`` once and measure it over each prompt set in turn, bypassing the cache.

        A generator: the model is loaded at the first measurement and freed after the last (or
        when the generator is closed).
        """
        from .meter import GainMeter

        options = load_options(self.settings, device=self.device_for(spec), dtype=self.dtype_for(spec))
        s = self.settings
        meter = GainMeter(batch_size=s.batch_size, progress=s.progress, token_budget=s.token_budget, threads=s.threads)
        with load_model(spec, resolved_revision, options) as loaded:
            for prompts in prompt_sets:
                yield meter.measure(loaded, prompts, resolved_revision)


def load_options(settings: Settings, **resolved) -> LoadOptions:
    """The load options a setting of the same name gives, with ``resolved`` ones (device, dtype) in place."""
    shared = {f.name: getattr(settings, f.name) for f in dataclasses.fields(LoadOptions) if f.name in Settings.__dataclass_fields__}
    return LoadOptions(**{**shared, **resolved})


def _refuse_unloadable(spec: ModelSpec, allow_pickle: bool) -> None:
    """A directory, file, missing package or architecture that cannot be measured is refused
    before anything is locked."""
    check_source(spec, allow_pickle)
    config = read_config(spec)
    if config is not None:
        layout_for(config.get("model_type", "unknown"))


def _renamed(measurement: Measurement, spec: ModelSpec) -> Measurement:
    """The same numbers under the name this suite gives the model."""
    return measurement if measurement.model == spec.name else dataclasses.replace(measurement, model=spec.name)
