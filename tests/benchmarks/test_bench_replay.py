"""Target 4: replaying the claims from cache is instant.

With all eight models of the ``pythia`` suite in the cache as an imported notebook set
(synthetic rows with the models' real layer counts and parameter counts), ``pytest claims
--gainscale-source nb`` run in a fresh process on a copy of the project must

(a) import neither torch nor transformers (``import_probe.py`` lists what the run imported);
(b) take at most 1.5x the wall time of ``pytest claims --gainscale-source nb --collect-only``
    over the same tests: medians of subprocess runs taken in turns.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from helpers import claims_project, notebook_file, notebook_row

from gainscale.cli import main as gainscale_cli
from gainscale.params import count_parameters
from gainscale.published import published_data
from gainscale.suites import pythia_config

from .pairing import time_in_turns

TARGET = 1.5
ROUNDS = 5
IMPORT_PROBE = Path(__file__).with_name("import_probe.py")
#: share of contracting MLP layers per model, smallest first: falling, as the paper finds
MLP_CONTRACTING_SHARE = (0.83, 0.75, 0.70, 0.62, 0.55, 0.45, 0.30, 0.06)


def pythia_rows() -> list[dict]:
    """One notebook row per Pythia model: real layer and parameter counts, paper-like gains."""
    rows = []
    for row, share in zip(published_data()["models"], MLP_CONTRACTING_SHARE):
        config = pythia_config(row["model"])
        layers = config["num_hidden_layers"]
        contracting = round(share * layers)
        attn = [0.25 + 0.6 * layer / layers for layer in range(layers)]  # all contract, growing with depth
        mlp = [0.55 + 0.4 * layer / layers for layer in range(contracting)]
        mlp += [1.05 + 0.3 * layer / layers for layer in range(layers - contracting - 1)] + [row["final_mlp_gain"]]
        rows.append(notebook_row(row["model"], count_parameters(config), attn, mlp, hidden=config["hidden_size"]))
    return rows


def run_pytest(project: Path, env: dict, *extra: str) -> subprocess.CompletedProcess:
    """``pytest claims --gainscale-source nb`` in a fresh process, with the import probe loaded."""
    command = [sys.executable, "-m", "pytest", "claims", "--gainscale-source", "nb", "-p", "import_probe", *extra]
    return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=300)


def test_replay_imports_no_torch_and_costs_little_more_than_collecting(benchmark, pytester, tmp_path):
    """Replaying the suite from cache imports no torch and takes at most 1.5x the collection time."""
    project = claims_project(pytester)
    cache, probe_file, probe_dir = tmp_path / "cache", tmp_path / "imported.json", tmp_path / "probe"
    probe_dir.mkdir()
    shutil.copy(IMPORT_PROBE, probe_dir)  # on PYTHONPATH alone, so nothing else of ours shadows the project's modules
    assert gainscale_cli(["import-notebook", str(notebook_file(tmp_path / "nb.json", pythia_rows())), "--name", "nb", "--cache", str(cache)]) == 0
    env = {
        **os.environ,
        "GAINSCALE_CACHE": str(cache),
        "GAINSCALE_IMPORT_PROBE": str(probe_file),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(probe_dir), os.environ.get("PYTHONPATH")])),
    }
    runs = []
    times = time_in_turns(
        benchmark,
        ours=lambda: runs.append(run_pytest(project, env)),
        theirs=lambda: run_pytest(project, env, "--collect-only"),
        rounds=ROUNDS,
    )
    last = runs[-1]  # each round's replay runs after its collection, so the probe file is the replay's
    assert last.returncode == 0, last.stdout[-3000:] + last.stderr[-3000:]
    imported = json.loads(probe_file.read_text())
    summary = times.record(benchmark, "replay", "collect_only", f"<= {TARGET}")
    print(f"\n[target 4: replay of the pythia suite from an imported set] {summary}; "
          f"{last.stdout.strip().splitlines()[-1].strip('= ')}; torch/transformers modules imported: {len(imported)}")
    assert imported == [], f"the replay imported {len(imported)} torch/transformers modules: {imported[:10]}"
    assert times.ratio() <= TARGET, summary
