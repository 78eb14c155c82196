"""Importing the results JSON that the paper's notebook writes, as a named set of summaries.

The file is an object whose ``models`` is a list of rows::

    {"model": "pythia-70m", "n_params": 70426624, "n_layers": 6, "hidden_dim": 512,
     "attn_gains": [...], "mlp_gains": [...], "last_layer_mlp_gain": 1.5,
     "attn_contracting_pct": 100.0, "mlp_contracting_pct": 83.3}

or, for a row marked ``"source": "reference"``, only ``model``, ``n_params``, ``n_layers`` and
``last_layer_mlp_gain``. The top-level ``scaling_law`` holds the fit the notebook computed
(``exponent_alpha``, ``exponent_std_err``, ``intercept``, ``r_squared``, ``p_value``); it is
kept so the report can set the refit beside it. The optional top-level ``settings`` says what
made the numbers (:data:`SETTING_KEYS`, each a short text); where it is absent the report says
the notebook's own settings made them, which for the paper were :data:`PAPER_NOTEBOOK`. A
malformed row is refused with an error naming the row and field, and nothing is imported.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .files import canonical_json, write_atomic
from .errors import NotebookImportError, WriteError
from .summary import ModelSummary

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_FIT_KEYS = ("exponent_alpha", "exponent_std_err", "intercept", "r_squared", "p_value")
#: what a notebook file may say made its numbers, under its top-level ``settings``
SETTING_KEYS = ("prompts", "dtype", "device")
#: the paper notebook's settings (its section on method): what made an imported set that records none
PAPER_NOTEBOOK = {"prompts": "4 short English prompts", "dtype": "float16", "device": "GPU"}


@dataclass(frozen=True)
class ImportedSet:
    """A named set of model summaries imported from a notebook file."""

    name: str
    summaries: tuple[ModelSummary, ...]
    #: the fit as the notebook recorded it, keyed as in its file; None if it had none
    recorded_fit: dict[str, float] | None
    #: path of the imported file and the SHA-256 of its bytes
    imported_from: str
    file_sha256: str
    imported_at: str
    #: what the file says made its numbers (:data:`SETTING_KEYS`); empty if it says nothing
    settings: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "models": [s.to_json() for s in self.summaries],
            "recorded_fit": self.recorded_fit,
            "imported_from": self.imported_from,
            "file_sha256": self.file_sha256,
            "imported_at": self.imported_at,
            "settings": dict(self.settings),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImportedSet:
        return cls(
            name=data["name"],
            summaries=tuple(ModelSummary.from_json(m) for m in data["models"]),
            recorded_fit=data["recorded_fit"],
            imported_from=data["imported_from"],
            file_sha256=data["file_sha256"],
            imported_at=data["imported_at"],
            settings=dict(data.get("settings", {})),  # sets imported before the field recorded none
        )


def import_notebook(file: str | Path, name: str, cache_dir: str | Path, reserved: tuple[str, ...] = ()) -> ImportedSet:
    """Validate a notebook results file and store it as set ``name`` in the cache.

    ``reserved`` are names other sources go by (``published``, ``measured``): a set may not take one.

    Raises
    ------
    NotebookImportError
        For a bad name or any malformed row or field; nothing is written then.
    """
    file = Path(file)
    check_set_name(name, reserved)
    try:
        data = file.read_bytes()
    except OSError as error:
        raise NotebookImportError(f"{file}: cannot read it ({error.strerror})") from None
    imported = parse_notebook(data, name, str(file))
    body = imported.to_json()
    entry = {"gainscale_set": 1, "set": body, "sha256": _checksum(body)}
    try:
        write_atomic(set_path(cache_dir, name), json.dumps(entry, indent=1, sort_keys=True) + "\n")
    except WriteError as error:
        raise NotebookImportError(str(error)) from None
    return imported


def set_path(cache_dir: str | Path, name: str) -> Path:
    return Path(cache_dir) / "sets" / f"{name}.json"


def check_set_name(name: str, reserved: tuple[str, ...] = ()) -> None:
    if name in reserved or not _NAME.match(name):
        taken = f", and not {' or '.join(reserved)}" if reserved else ""
        raise NotebookImportError(f"set name {name!r} is not usable: use letters, digits, '.', '_' or '-' (up to 64){taken}")


def parse_notebook(data: bytes, name: str, where: str) -> ImportedSet:
    """Validate the notebook file's bytes into an :class:`ImportedSet` (nothing is written)."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise NotebookImportError(f"{where}: not a JSON file ({error})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("models"), list) or not raw["models"]:
        raise NotebookImportError(f"{where}: expected an object with a non-empty list 'models'")
    summaries = [_row(row, index, where) for index, row in enumerate(raw["models"])]
    names = [s.model for s in summaries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise NotebookImportError(f"{where}: model {duplicates[0]!r} appears more than once")
    return ImportedSet(
        name=name,
        summaries=tuple(sorted(summaries, key=lambda s: s.n_params)),
        recorded_fit=_recorded_fit(raw.get("scaling_law"), where),
        imported_from=where,
        file_sha256=hashlib.sha256(data).hexdigest(),
        imported_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        settings=_settings(raw.get("settings"), where),
    )


def _row(row: Any, index: int, where: str) -> ModelSummary:
    label = f"{where}: models[{index}]"
    if not isinstance(row, dict):
        raise NotebookImportError(f"{label} is not an object")
    model = row.get("model")
    if not isinstance(model, str) or not model.strip():
        raise NotebookImportError(f"{label}: field 'model' must be a non-empty string")
    label += f" ({model})"
    n_params = _integer(row, "n_params", label)
    n_layers = _integer(row, "n_layers", label)
    final = _gain(row, "last_layer_mlp_gain", label, positive=True)
    if row.get("source") == "reference":
        return ModelSummary(model, n_params, n_layers, final, None, None)
    _integer(row, "hidden_dim", label)
    attn = _gains(row, "attn_gains", n_layers, label)
    mlp = _gains(row, "mlp_gains", n_layers, label)
    if abs(final - mlp[-1]) > 0.005 * max(1.0, abs(mlp[-1])):
        raise NotebookImportError(f"{label}: field 'last_layer_mlp_gain' is {final}, but mlp_gains ends with {mlp[-1]}")
    summary = ModelSummary.from_gains(model, n_params, attn, mlp)
    _check_percentage(row, "attn_contracting_pct", summary.attn_contracting, n_layers, label)
    _check_percentage(row, "mlp_contracting_pct", summary.mlp_contracting, n_layers, label)
    return summary


def _field(row: dict, key: str, label: str) -> Any:
    if key not in row:
        raise NotebookImportError(f"{label}: missing field {key!r}")
    return row[key]


def _integer(row: dict, key: str, label: str) -> int:
    value = _field(row, key, label)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise NotebookImportError(f"{label}: field {key!r} must be a positive integer, not {value!r}")
    return value


def _number(value: Any, key: str, label: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise NotebookImportError(f"{label}: field {key!r} must be a finite number, not {value!r}")
    return float(value)


def _gain(row: dict, key: str, label: str, positive: bool = False) -> float:
    value = _number(_field(row, key, label), key, label)
    if value < 0 or (positive and value == 0):
        raise NotebookImportError(f"{label}: field {key!r} is {value}; a gain is a ratio of norms and must be {'> 0' if positive else '>= 0'}; nothing was imported")
    return value


def _gains(row: dict, key: str, n_layers: int, label: str) -> tuple[float, ...]:
    values = _field(row, key, label)
    if not isinstance(values, list) or len(values) != n_layers:
        count = len(values) if isinstance(values, list) else type(values).__name__
        raise NotebookImportError(f"{label}: field {key!r} has {count} values; n_layers is {n_layers}")
    # positive: a zero norm ratio means a dead module or a broken export, and has no log
    return tuple(_gain({key: v}, key, f"{label} layer {layer}", positive=True) for layer, v in enumerate(values))


def _check_percentage(row: dict, key: str, count: int, n_layers: int, label: str) -> None:
    """The notebook's percentage must agree with its own gains (to the layer)."""
    pct = _number(_field(row, key, label), key, label)
    if not 0 <= pct <= 100 or round(pct * n_layers / 100) != count:
        raise NotebookImportError(
            f"{label}: field {key!r} is {pct}, but its gains give {count} of {n_layers} layers ({100 * count / n_layers:.1f}%)"
        )


def _recorded_fit(fit: Any, where: str) -> dict[str, float] | None:
    if fit is None:
        return None
    if not isinstance(fit, dict):
        raise NotebookImportError(f"{where}: 'scaling_law' must be an object")
    return {key: _number(fit[key], key, f"{where}: scaling_law") for key in _FIT_KEYS if key in fit}


def _settings(settings: Any, where: str) -> dict[str, str]:
    if settings is None:
        return {}
    if not isinstance(settings, dict):
        raise NotebookImportError(f"{where}: 'settings' must be an object with some of {', '.join(SETTING_KEYS)}")
    for key, value in settings.items():
        if key not in SETTING_KEYS:
            raise NotebookImportError(f"{where}: settings: unknown key {key!r}; known: {', '.join(SETTING_KEYS)}")
        if not isinstance(value, str) or not value.strip():
            raise NotebookImportError(f"{where}: settings: {key!r} must be a short text, not {value!r}")
    return {key: settings[key].strip() for key in SETTING_KEYS if key in settings}


def read_set(cache_dir: str | Path, name: str) -> ImportedSet:
    """Read an imported set back, checking its checksum."""
    path = set_path(cache_dir, name)
    try:
        entry = json.loads(path.read_bytes())
        body = entry["set"]
        if _checksum(body) != entry["sha256"]:
            raise NotebookImportError(f"imported set {path} fails its checksum: import the notebook file again")
        return ImportedSet.from_json(body)
    except NotebookImportError:
        raise
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise NotebookImportError(f"imported set {path} is unreadable ({type(error).__name__}: {error}); import it again") from None


def imported_set_names(cache_dir: str | Path) -> list[str]:
    return sorted(p.stem for p in (Path(cache_dir) / "sets").glob("*.json"))


def _checksum(body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()
