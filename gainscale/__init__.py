"""gainscale: claims about the insides of language models as executable, cached, reported tests.

The library measures how much each attention and MLP sublayer amplifies or shrinks the
hidden state ("gain"), caches the measurements, evaluates claims declared in pytest tests,
and writes the report; the pytest plugin (:mod:`gainscale.plugin`, registered by the
``pytest11`` entry point) and the CLI (:mod:`gainscale.cli`) are thin layers over it.

Names are imported on first use: ``import gainscale`` loads neither torch nor transformers,
nor the measuring code when only the report is needed.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gainscale")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

#: public name -> module that defines it
_EXPORTS = {
    "CacheRequest": "cache",
    "Claim": "claims",
    "Conditions": "claims",
    "GainscaleError": "errors",
    "Measurement": "measurement",
    "MeasurementCache": "cache",
    "Measurer": "measurer",
    "ModelSpec": "suites",
    "ModelSummary": "summary",
    "ModuleNorms": "measurement",
    "PromptSet": "prompts",
    "Provenance": "measurement",
    "RunResult": "results",
    "Settings": "settings",
    "Suite": "suites",
    "Tracked": "results",
    "Verdict": "results",
    "load_measurements": "cache",
    "load_prompts": "prompts",
    "load_results": "results",
    "load_suite": "suites",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'gainscale' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
