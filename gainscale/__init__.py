"""gainscale: claims about the insides of language models as executable, cached, reported tests.

The library measures how much each attention and MLP sublayer amplifies or shrinks the
hidden state ("gain"), caches the measurements, fits and tests the paper's claims, and
writes the report; the pytest plugin (:mod:`gainscale.plugin`) and the CLI
(:mod:`gainscale.cli`) are thin layers over it. Importing gainscale imports neither torch
nor transformers: they load only when a model is measured.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gainscale")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

from .cache import CacheRequest, MeasurementCache
from .errors import GainscaleError
from .measurement import Measurement, ModuleNorms, Provenance
from .prompts import PromptSet, load_prompts
from .measurer import Measurer
from .settings import Settings
from .suites import ModelSpec, Suite, load_suite
from .summary import ModelSummary

__all__ = [
    "CacheRequest",
    "GainscaleError",
    "Measurement",
    "MeasurementCache",
    "Measurer",
    "ModelSpec",
    "ModelSummary",
    "ModuleNorms",
    "PromptSet",
    "Provenance",
    "Settings",
    "Suite",
    "__version__",
    "load_prompts",
    "load_suite",
]
