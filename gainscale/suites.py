"""Suites: named lists of models to measure, built in or read from a TOML file.

Built in are ``pythia`` (the eight models of the paper), ``pythia-deduped`` and ``tiny``
(small random-weight GPT-NeoX models built on first use, for tests and demos). A user's
suite is a TOML file::

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
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import SuiteFileError, UnknownNameError

#: the dtypes gainscale can measure in, by their torch names
DTYPES = ("float32", "float16", "bfloat16")
_DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


@dataclass(frozen=True)
class ModelSpec:
    """One model of a suite: where to load it from and how."""

    #: short name used in test ids and reports, e.g. ``pythia-70m``
    name: str
    #: a hub id (``EleutherAI/pythia-70m``) or an absolute local directory
    source: str
    #: True when ``source`` is a local directory
    local: bool = False
    #: hub revision (branch, tag or commit); None means the hub's default branch
    revision: str | None = None
    #: dtype this model must be measured in, overriding the suite's
    dtype: str | None = None
    #: the model's config.json as a dict when known without loading anything (built-ins)
    config: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    #: seed to build this random-weight model from ``config`` when its directory is missing
    build_seed: int | None = None


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


BUILTIN_SUITES = ("pythia", "pythia-deduped", "tiny")


def builtin_suite(name: str, cache_dir: Path) -> Suite:
    """Return the built-in suite ``name``; ``cache_dir`` is where ``tiny`` builds its models."""
    if name == "pythia":
        return _pythia_suite(deduped=False)
    if name == "pythia-deduped":
        return _pythia_suite(deduped=True)
    if name == "tiny":
        return _tiny_suite(Path(cache_dir))
    raise UnknownNameError("suite", name, BUILTIN_SUITES, hint="Or pass the path of a suite TOML file.")


def load_suite(name_or_file: str | Path, cache_dir: Path) -> Suite:
    """Return a built-in suite by name, or read a suite TOML file.

    Parameters
    ----------
    name_or_file
        ``pythia``, ``pythia-deduped``, ``tiny``, or the path of a TOML file.
    cache_dir
        The measurement cache directory (``tiny`` builds its models under it).
    """
    text = str(name_or_file)
    if text in BUILTIN_SUITES:
        return builtin_suite(text, cache_dir)
    path = Path(text).expanduser()
    if path.suffix == ".toml" or path.is_file():
        return read_suite_file(path)
    return builtin_suite(text, cache_dir)  # raises, suggesting the closest name


# ---------------------------------------------------------------------------- suite files


def read_suite_file(path: Path) -> Suite:
    """Read a suite TOML file; every mistake is a :class:`SuiteFileError` naming file, line and key."""
    raw = _read_toml(path)
    name = _required(raw, "name", str, path, where="the top level")
    lines = _model_header_lines(path.read_text(encoding="utf-8"))
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
        models.append(_read_model_entry(entry, path, index, line))
    _reject_duplicates(models, path)
    return Suite(
        name=name,
        description=str(raw.get("description", f"suite read from {path}")),
        models=tuple(models),
        device=device,
        dtype=dtype,
        origin=str(path),
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


def _read_model_entry(entry: Any, path: Path, index: int, line: int | None) -> ModelSpec:
    where = f"models[{index}]" + (f" (line {line})" if line else "")
    if not isinstance(entry, dict):
        raise SuiteFileError(f"{path}: {where} is not a table")
    name = _required(entry, "name", str, path, where)
    hub, local = entry.get("hub"), entry.get("path")
    if (hub is None) == (local is None):
        raise SuiteFileError(f"{path}: {where} ({name}) needs exactly one of 'hub' (a hub id) or 'path' (a directory)")
    source = _required(entry, "hub" if hub is not None else "path", str, path, where)
    if local is not None:
        source = str((path.parent / Path(local).expanduser()).resolve())
    revision = entry.get("revision")
    if revision is not None and not isinstance(revision, str):
        raise SuiteFileError(f"{path}: {where} ({name}): revision must be a string, not {revision!r}")
    return ModelSpec(
        name=name,
        source=source,
        local=local is not None,
        revision=revision,
        dtype=_optional_dtype(entry, path, where),
    )


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
