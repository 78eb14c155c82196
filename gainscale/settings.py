"""Every option gainscale has, declared once: the pytest flags and ini keys, the CLI flags and
the measuring settings are all derived from :data:`OPTIONS`.

An option ``batch_size`` is ``--gainscale-batch-size`` and ini key ``gainscale_batch_size`` under
pytest, ``--batch-size`` on ``gainscale measure``, and ``Settings.batch_size`` in the library.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .errors import OptionError
from .measurement import GAIN_DEFINITIONS
from .paths import default_cache_dir
from .suites import DTYPES

#: the device forms gainscale accepts
DEVICE_FORMS = "cpu, cuda, cuda:N (N = 0, 1, ...), mps or auto"
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")

#: where an option is offered: a ``--gainscale-*`` pytest flag, an ini key, a ``gainscale measure`` flag
PYTEST, INI, MEASURE = "pytest", "ini", "measure"
_EVERYWHERE = frozenset({PYTEST, INI, MEASURE})
_PYTEST_AND_INI = frozenset({PYTEST, INI})


@dataclass(frozen=True)
class Option:
    """One option, as every front end offers it."""

    #: the library's name (``batch_size``): pytest ``--gainscale-batch-size``, ini ``gainscale_batch_size``, CLI ``--batch-size``
    name: str
    #: one sentence for ``--help``
    help: str
    #: ``str``, ``path``, ``int``, ``float``, ``bool``, ``list`` (repeatable), ``lines`` (repeatable, one per ini line)
    kind: str = "str"
    default: Any = None
    #: the values it accepts, when they are few
    choices: tuple[str, ...] = ()
    #: the front ends that offer it (:data:`PYTEST`, :data:`INI`, :data:`MEASURE`)
    where: frozenset = _EVERYWHERE
    metavar: str | None = None
    #: the help on ``gainscale measure``, where the option means more there than ``help`` says
    cli_help: str | None = None

    @property
    def flag(self) -> str:
        return "--gainscale-" + self.name.replace("_", "-")

    @property
    def ini_key(self) -> str:
        return "gainscale_" + self.name

    @property
    def cli_flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, value: Any, given_as: str | None = None) -> Any:
        """``value`` (text from a flag or an ini file, or already typed) as this option's type.

        Raises :class:`OptionError` naming the flag (or ``given_as``) and what it accepts.
        """
        if value is None or self.kind in ("list", "lines", "bool", "path"):
            return _parse_simple(self, value)
        name = given_as or self.flag
        try:
            parsed = {"int": int, "float": float}.get(self.kind, str)(value)
        except (TypeError, ValueError):
            raise OptionError(f"{name}: {value!r} is not {'an integer' if self.kind == 'int' else 'a number'}") from None
        if self.choices and parsed not in self.choices:
            raise OptionError(f"{name}: {parsed!r} is not one of {', '.join(self.choices)}")
        _VALIDATORS.get(self.name, _accept)(name, parsed)
        return parsed


def _parse_simple(option: Option, value: Any) -> Any:
    if option.kind == "bool" and isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    if option.kind == "path" and value is not None:
        return Path(value).expanduser()
    return value


def _accept(name: str, value: Any) -> None:
    return None


def _device(name: str, value: str) -> None:
    if not _DEVICE.match(value):
        raise OptionError(f"{name}: invalid device {value!r}; use {DEVICE_FORMS}")


def _at_least_one(name: str, value: int) -> None:
    if value < 1:
        raise OptionError(f"{name}: must be at least 1, not {value}")


_VALIDATORS = {"device": _device, "batch_size": _at_least_one, "token_budget": _at_least_one, "threads": _at_least_one}


OPTIONS: tuple[Option, ...] = (
    # -- what is measured, and how (the library's Settings)
    Option("suite", "built-in suite (pythia, pythia-deduped, smollm2, tiny) or a suite TOML file; default: pythia",
           default="pythia", metavar="NAME|FILE",
           cli_help="the suite MODEL belongs to, or whose every model to measure when MODEL is left out (built-in "
           "name or TOML file); default: MODEL is looked up in the built-in suites"),
    Option("weights_dir", "load each model of the suite whose DIR/<model name> exists from there (a save_pretrained "
           "directory: weights copied onto an offline machine); the others keep their source", kind="path", metavar="DIR"),
    Option("cache", "measurement cache directory; default: $GAINSCALE_CACHE, else .gainscale/ in the project root", kind="path", metavar="DIR"),
    Option("device", f"device to measure on: {DEVICE_FORMS}; default: the suite's (Pythia: cuda)"),
    Option("dtype", "dtype to measure in; default: the suite's (Pythia: float16, as the paper)", choices=DTYPES),
    Option("prompts", "prompt file, one prompt per line (UTF-8); default: the shipped set", kind="path", metavar="FILE"),
    Option("batch_size", "at most this many prompts per forward pass (batches are filled by --token-budget); default: no cap",
           kind="int", metavar="N"),
    Option("token_budget", "padded tokens per forward pass (prompts x longest prompt); default: 512 on CPU, 16384 on "
           "CUDA; halved on CUDA out-of-memory", kind="int", metavar="TOKENS"),
    Option("threads", "torch threads while measuring; default: the CPUs this process may use, shared among "
           "pytest-xdist workers", kind="int", metavar="N"),
    Option("gain", "which gain the claims are evaluated on: paper (the module's output over its input, the "
           "norm's output), residual (over the residual stream it reads), token_mean, skip_first; "
           "default: paper", default="paper", choices=tuple(GAIN_DEFINITIONS)),
    Option("allow_pickle", "load pickle weights (*.bin), which can run code when loaded", kind="bool", default=False),
    Option("trust_remote_code", "run model code from the hub", kind="bool", default=False),
    Option("device_map", "'auto' spreads a model larger than one GPU over several (accelerate)", choices=("auto",)),
    # -- what the claims run does (pytest only)
    Option("source", "evaluate the claims on this source: published, measured, or an imported set's name; "
           "repeatable; default: measured", kind="list", where=_PYTEST_AND_INI, metavar="NAME"),
    Option("threshold", "change a claim's threshold, NAME=VALUE; repeatable (ini: one per line; a flag wins over "
           "the ini line of the same name)", kind="lines",
           where=_PYTEST_AND_INI, metavar="NAME=VALUE"),
    Option("bootstrap_resamples", "resamples of the prompts for the bootstrap intervals and each claim's stability "
           "(sources that kept per-prompt gains); 0 for none; default: 1000", kind="int", default=1000,
           where=_PYTEST_AND_INI, metavar="N"),
    Option("bootstrap_seed", "the bootstrap's seed (each model's resamples follow from it and the model's name); "
           "default: 0", kind="int", default=0, where=_PYTEST_AND_INI, metavar="SEED"),
    Option("report", "directory for REPORT.md, results.json and figures/; 'none' for no report; default: reports",
           default="reports", where=_PYTEST_AND_INI, metavar="DIR"),
    Option("report_dates", "write the date and git commit into the report (off: a rerun on unchanged inputs "
           "leaves the report byte-identical)", kind="bool", default=True, where=frozenset({INI})),
    Option("baseline", "hold every claim to this baseline file: a flipped verdict or a value drifting beyond "
           "tolerance fails, a known failing claim is an xfail", kind="path", where=_PYTEST_AND_INI, metavar="FILE"),
    Option("update_baseline", "write the baseline (--gainscale-baseline, default reports/baseline.json) from this "
           "run instead of comparing with it", kind="bool", default=False, where=_PYTEST_AND_INI),
    Option("require_measured", "a test whose numbers cannot be had (nothing cached and no device, a load error) "
           "fails instead of skipping: a CI run never passes on nothing", kind="bool", default=False, where=_PYTEST_AND_INI),
    *(
        Option(f"tolerance_{kind}", f"baseline drift tolerance for {what} (default {default})", kind="float",
               default=default, where=frozenset({INI}))
        for kind, what, default in (
            ("gain", "gains, relative", 0.05), ("alpha", "the scaling exponent, relative", 0.05),
            ("count", "contracting counts, in layers", 0.0), ("p_value", "p-values, relative", 0.05),
            ("statistic", "rank statistics, relative", 0.05), ("default", "other kinds of tracked numbers, relative", 0.05),
        )
    ),
)


def option(name: str) -> Option:
    """The option called ``name``."""
    for candidate in OPTIONS:
        if candidate.name == name:
            return candidate
    raise KeyError(name)


def options_for(front_end: str) -> Iterator[Option]:
    """The options a front end (:data:`PYTEST`, :data:`INI`, :data:`MEASURE`) offers."""
    return (o for o in OPTIONS if front_end in o.where)


@dataclass(frozen=True)
class Settings:
    """What a user chose for measuring, by CLI flag, pytest option or ini key (see :data:`OPTIONS`)."""

    #: built-in suite name or suite TOML file
    suite: str = "pythia"
    #: cache directory; None for :func:`default_cache_dir`
    cache: Path | None = None
    #: a directory of ``save_pretrained`` directories named after the suite's models, to load
    #: them from (:meth:`Suite.with_local_weights`); None to load each from its own source
    weights_dir: Path | None = None
    #: ``cpu``, ``cuda``, ``cuda:N``; None for the suite's device, else CUDA when present
    device: str | None = None
    #: None for the model's, else the suite's, else float16 on CUDA / float32 on CPU
    dtype: str | None = None
    #: prompt file; None for the shipped default set
    prompts: str | None = None
    #: at most this many prompts per forward pass; None for no cap
    batch_size: int | None = None
    #: padded tokens per forward pass; None for a per-device default
    token_budget: int | None = None
    #: torch threads while measuring; None for the usable CPUs shared among xdist workers
    threads: int | None = None
    #: the gain definition claims are evaluated on (``gainscale.measurement.GAIN_DEFINITIONS``)
    gain: str = "paper"
    allow_pickle: bool = False
    trust_remote_code: bool = False
    device_map: str | None = None
    #: show progress bars (off under ``-q`` and on xdist workers)
    progress: bool = True
    #: pytest-xdist worker id (``gw3``) to pin one GPU per worker; None outside xdist
    worker: str | None = None

    def __post_init__(self):
        for name in ("suite", "device", "dtype", "batch_size", "token_budget", "threads", "gain", "device_map"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, option(name).parse(value, given_as=name.replace("_", " ")))

    @classmethod
    def from_options(cls, values: dict[str, Any], **extra: Any) -> Settings:
        """Settings from option values by name (others are ignored), plus ``extra`` fields."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names and v is not None}, **extra)

    @property
    def cache_dir(self) -> Path:
        return Path(self.cache) if self.cache is not None else default_cache_dir()


#: the options that are :class:`Settings` fields
SETTING_OPTIONS = tuple(o for o in OPTIONS if o.name in Settings.__dataclass_fields__)
