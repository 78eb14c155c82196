"""Replaying cached results needs no model: pytest claims on an imported set imports no torch,
and once its statistics are in the memo, neither numpy nor scipy."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from helpers import claims_project, notebook_file, synthetic_rows

from gainscale.cli import main as gainscale_cli

PROBE = Path(__file__).parent / "benchmarks" / "import_probe.py"


def test_replay_of_an_imported_set_imports_neither_torch_nor_transformers(pytester, tmp_path, monkeypatch):
    project = claims_project(pytester)
    cache = tmp_path / "cache"
    assert gainscale_cli(["import-notebook", str(notebook_file(tmp_path / "nb.json", synthetic_rows())), "--name", "nb", "--cache", str(cache)]) == 0
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir()
    shutil.copy(PROBE, probe_dir)
    monkeypatch.setenv("GAINSCALE_CACHE", str(cache))
    monkeypatch.setenv("GAINSCALE_IMPORT_PROBE", str(tmp_path / "imported.json"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(probe_dir), os.environ.get("PYTHONPATH")])))
    arguments = ("claims", "--gainscale-source", "nb", "--gainscale-source", "published", "-p", "import_probe")
    result = pytester.runpytest_subprocess(*arguments)
    result.assert_outcomes(passed=24, failed=4, skipped=2)
    imported = json.loads((tmp_path / "imported.json").read_text())
    assert [name for name in imported if name.split(".")[0] in ("torch", "transformers")] == []
    assert (project / "reports" / "REPORT.md").exists()
    report = (project / "reports" / "results.json").read_text()

    again = pytester.runpytest_subprocess(*arguments)  # the same numbers: their statistics come from the memo
    again.assert_outcomes(passed=24, failed=4, skipped=2)
    assert json.loads((tmp_path / "imported.json").read_text()) == []
    # the same bits: only the command differs (pytester names each subprocess run)
    assert (project / "reports" / "results.json").read_text() == report.replace("runpytest-0", "runpytest-1")
