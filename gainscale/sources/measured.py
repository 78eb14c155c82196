"""The ``measured`` source: the run's suite under the run's settings, from the cache or measured now."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

from ..architectures import describe_input
from ..errors import CacheError, DeviceUnavailable, ModelUnavailable
from ..loading import read_config
from ..measurement import METHOD_VERSION, GainDefinitionUnavailable, Measurement
from ..measurer import Measurer
from ..params import count_embedding_parameters
from ..paths import display_path
from ..results import SourceInfo
from ..summary import ModelSummary
from . import SourceKind, Unavailable

NAME = "measured"


class MeasuredSource:
    """The current suite under the current settings: from the cache, or measured now."""

    name = kind = NAME

    def __init__(self, measurer: Measurer):
        self.measurer = measurer
        self._measurements: dict[str, tuple[Measurement, bool]] = {}
        # mistakes every test would meet are refused once, before any test runs
        measurer.prompts  # noqa: B018  (a missing or unreadable prompt file)
        cache = measurer.settings.cache_dir
        if cache.exists() and not cache.is_dir():
            raise CacheError(f"the cache path {display_path(cache)} is a file, not a directory; "
                             "pass another with --gainscale-cache or GAINSCALE_CACHE")

    @property
    def suite(self):
        return self.measurer.suite

    def model_names(self) -> list[str]:
        return self.suite.model_names

    def needs_gpu(self) -> bool:
        """Whether measuring needs CUDA: the user's device, else the suite's (Pythia: cuda)."""
        return (self.measurer.settings.device or self.suite.device or "").startswith("cuda")

    def summary(self, model: str, gain: str = "paper") -> ModelSummary:
        measurement, _ = self.measurement(model)
        try:
            summary = measurement.summary(gain)
        except GainDefinitionUnavailable as error:
            raise Unavailable(str(error)) from None
        spec = self.suite.model(model)
        summary = replace(summary, step=spec.step, sweep=spec.sweep, control_of=spec.control_of)
        config = read_config(spec, measurement.resolved_revision)
        if config is None:
            return summary
        return replace(summary, architecture=config.get("model_type"), n_embedding_params=count_embedding_parameters(config))

    def measurement(self, model: str) -> tuple[Measurement, bool]:
        """``(measurement, came_from_cache)``; raises :class:`Unavailable` with what to do."""
        if model not in self._measurements:
            self._measurements[model] = self._get(model)
        return self._measurements[model]

    def _get(self, model: str) -> tuple[Measurement, bool]:
        spec = self.suite.model(model)
        try:
            return self.measurer.get(spec)
        except ModelUnavailable as missing:
            raise Unavailable(str(missing)) from None  # names the package to install
        except DeviceUnavailable as missing:
            # the same words for every model, so that pytest folds the skips into one line
            raise Unavailable(
                f"no measurement of this model ({self.measurer.dtype_for(spec)}, prompts "
                f"{self.measurer.prompts.sha256[:12]}) is cached in {display_path(self.measurer.cache.directory)}, "
                f"and {missing}: measure the suite where it is (`gainscale measure --suite {self.suite.name}`) "
                "and share the cache, or import its bundle (`gainscale cache import FILE`)"
            ) from None

    def provenance(self, model: str) -> dict[str, Any]:
        if model not in self._measurements:
            return {"obtained": "not measured"}
        measurement, from_cache = self._measurements[model]
        p = measurement.provenance
        return {
            "obtained": "from cache" if from_cache else "measured in this run",
            "dtype": measurement.dtype,
            "device": p.device,
            "prompts": f"{measurement.n_prompts} ({measurement.prompts_name}, sha256 {measurement.prompts_sha256[:12]})",
            "torch": p.torch_version,
            "transformers": p.transformers_version,
            "attention": p.attn_implementation,
            "revision": measurement.resolved_revision[:12],
            "measured_at": p.date,
            **({"weights": str(display_path(self.suite.model(model).source))} if model in self.suite.local_copies else {}),
        }

    def info(self) -> SourceInfo:
        return SourceInfo(
            name=self.name,
            kind=self.kind,
            description=f"Live measurements of the suite `{self.suite.name}` under this run's settings, "
            "from the cache or measured in this run; see Provenance.",
            notes=(*(("FOR TESTS AND DEMOS ONLY: random-weight models; their gains mean nothing.",) if self.suite.demo else ()),
                   *self._weights_note(), *map(describe_input, self._architectures())),
            identity=self.identity(),
        )

    def _weights_note(self) -> tuple[str, ...]:
        copies = self.suite.local_copies
        if not copies:
            return ()
        directory = display_path(self.suite.weights_dir)
        return (f"Weights of {', '.join(copies)} loaded from local copies in {directory} (--gainscale-weights-dir), "
                "not from their own sources.",)

    def _architectures(self) -> list[str]:
        """The suite's model types, where its configs are known without loading anything (built in,
        a local directory, or a hub model in the local Hugging Face cache)."""
        return sorted({config["model_type"] for config in map(read_config, self.suite.models) if config})

    def identity(self) -> dict[str, Any]:
        """What the numbers depend on: a baseline made under other settings does not hold for them."""
        specs = self.suite.models
        models = [[s.name, s.source if not s.local else s.name, s.revision] for s in specs]
        return {
            "suite": self.suite.name,
            "suite_models_sha256": hashlib.sha256(json.dumps(models).encode()).hexdigest()[:16],
            "dtype": ",".join(sorted({self.measurer.dtype_for(s) for s in specs})),
            "device": ",".join(sorted({self.measurer.device_for(s).partition(":")[0] for s in specs})),
            "prompts": self.measurer.prompts.sha256,
            "method_version": METHOD_VERSION,
        }


KIND = SourceKind(NAME, names=lambda measurer: [NAME], open=lambda name, measurer: MeasuredSource(measurer), default=True)
