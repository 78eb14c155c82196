"""The gainscale command: tables on the tiny suite, cache hits, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gainscale.cli import main


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.delenv("GAINSCALE_CACHE", raising=False)
    return tmp_path / "cache"


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_measure_tiny_prints_tables_then_hits_the_cache(cache, capsys):
    status, out, _ = run(capsys, "measure", "tiny-s", "--cache", str(cache), "-q")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == ["layer", "attention", "gain", "MLP", "gain"]
    assert [line.split()[0] for line in lines[1:4]] == ["0", "1", "2"]
    assert "final MLP gain" in out and "measured in" in out and "float32 on cpu, 40 prompts (default" in out
    status, again, _ = run(capsys, "measure", "tiny-s", "--cache", str(cache), "-q")
    assert status == 0 and "from cache" in again
    assert again.splitlines()[:4] == lines[:4]


def test_measure_json_uses_the_notebook_names(cache, capsys):
    status, out, _ = run(capsys, "measure", "tiny-xs", "--cache", str(cache), "--json")
    record = json.loads(out)
    assert status == 0
    assert len(record["attn_gains"]) == len(record["mlp_gains"]) == record["n_layers"] == 2
    assert record["last_layer_mlp_gain"] == record["mlp_gains"][-1]
    assert len(record["mlp"]["in"][0]) == 40 and record["dtype"] == "float32"
    assert record["provenance"]["torch_version"] and record["provenance"]["attn_implementation"]


def test_unknown_model_is_one_line_with_a_suggestion(cache, capsys):
    status, out, err = run(capsys, "measure", "pythia-70n", "--cache", str(cache))
    assert status == 2 and out == ""
    assert err.count("\n") == 1
    assert "unknown model 'pythia-70n'; did you mean 'pythia-70m'?" in err and "hub id" in err


def test_pythia_without_cuda_says_how_to_measure_on_cpu(cache, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    status, _, err = run(capsys, "measure", "pythia-70m", "--cache", str(cache))
    assert status == 2
    assert "pythia-70m: cuda is not available here to measure it; pass --device cpu" in err


def test_suites_lists_parameter_counts(cache, capsys):
    status, out, _ = run(capsys, "suites", "--cache", str(cache))
    assert status == 0
    assert "pythia-12b              11,846,072,320 parameters  EleutherAI/pythia-12b" in out
    assert "tiny: FOR TESTS AND DEMOS ONLY" in out


def test_cache_list_verify_clear(cache, capsys):
    run(capsys, "measure", "tiny-xs", "--cache", str(cache), "-q")
    status, out, _ = run(capsys, "cache", "list", "--cache", str(cache))
    assert status == 0 and "1 measurements in" in out and "tiny-xs" in out
    entry = next((cache / "measurements").glob("*.json"))
    entry.write_text(entry.read_text().replace('"float32"', '"float16"', 1))
    status, out, _ = run(capsys, "cache", "verify", "--cache", str(cache))
    assert status == 1 and f"CORRUPT cache entry {entry} fails its checksum" in out
    status, out, _ = run(capsys, "cache", "clear", "--cache", str(cache))
    assert status == 0 and "removed 0 entries" in out


def test_console_script_runs_without_traceback_on_a_mistake(tmp_path):
    """The installed `gainscale` entry point: a bad prompt file is one line and exit 2."""
    bad = tmp_path / "prompts.txt"
    bad.write_bytes(b"\xff\xfe")
    result = subprocess.run(
        [sys.executable, "-m", "gainscale.cli", "measure", "tiny-xs", "--prompts", str(bad), "--cache", str(tmp_path / "c")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().endswith("not UTF-8 text (byte 0, line 1); save the file as UTF-8")
