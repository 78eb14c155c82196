"""Helpers for tests that run pytest on the claims (pytester) and read what a run left behind."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ElementTree
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
SCHEMA = PROJECT / "gainscale" / "data" / "results.schema.json"


def claims_project(pytester, ini_extra: str = "") -> Path:
    """Lay out the project's claims, fixtures, conftest and pytest.ini in the pytester dir."""
    for name in ("claims", "fixtures"):
        shutil.copytree(PROJECT / name, pytester.path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT / "conftest.py", pytester.path)
    ini = (PROJECT / "pytest.ini").read_text()
    (pytester.path / "pytest.ini").write_text(ini + ini_extra)
    return pytester.path


def validate(results: Path) -> dict:
    """results.json against the published JSON Schema; returns its data."""
    import jsonschema

    data = json.loads(results.read_text())
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(data)
    return data


def junit_cases(path: Path) -> dict[str, dict]:
    """``{test name with params: {"outcome": ..., "properties": {...}}}`` from a JUnit XML file."""
    cases = {}
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            if case.find(tag) is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        cases[case.get("name")] = {"outcome": outcome, "properties": properties}
    return cases


def notebook_file(path: Path, rows: list[dict], scaling_law: dict | None = None) -> Path:
    """Write a results file shaped like the paper notebook's."""
    data = {"models": rows}
    if scaling_law is not None:
        data["scaling_law"] = scaling_law
    path.write_text(json.dumps(data, indent=1))
    return path


def notebook_row(model: str, n_params: int, attn: list[float], mlp: list[float], hidden: int = 64) -> dict:
    """One full row: the percentages follow from the gains as the notebook computed them."""
    layers = len(mlp)
    return {
        "model": model,
        "n_params": n_params,
        "n_layers": layers,
        "hidden_dim": hidden,
        "attn_gains": attn,
        "mlp_gains": mlp,
        "last_layer_mlp_gain": mlp[-1],
        "attn_contracting_pct": 100 * sum(g < 1 for g in attn) / layers,
        "mlp_contracting_pct": 100 * sum(g < 1 for g in mlp) / layers,
    }


def synthetic_rows() -> list[dict]:
    """Four models: one full row whose attention is 75% contracting, two full, one reference row."""
    return [
        notebook_row("m-small", 1_000_000, [0.5, 0.6, 0.7, 1.2], [0.9, 0.8, 0.95, 1.4]),
        notebook_row("m-medium", 10_000_000, [0.5, 0.6, 0.7, 0.8], [0.9, 1.2, 0.95, 2.1]),
        notebook_row("m-large", 100_000_000, [0.5, 0.4, 0.3, 0.2], [1.1, 1.2, 1.3, 3.9]),
        {"model": "m-huge", "n_params": 1_000_000_000, "n_layers": 8, "last_layer_mlp_gain": 7.5, "source": "reference"},
    ]


SYNTHETIC_FIT = {"exponent_alpha": 0.3, "exponent_std_err": 0.05, "intercept": -1.9, "r_squared": 0.9, "p_value": 0.04}
