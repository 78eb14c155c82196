"""Reliability: a user's mistake is one clear line and writes nothing; faults lose nothing."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from helpers import claims_project, notebook_file, synthetic_rows

from gainscale.randommodels import build_random_model

BAD_TOML = 'name = "x"\n[[models]]\nname = "a"\nhub = \n'


def _gainscale(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "gainscale.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def neo_dir(tmp_path_factory):
    config = {"model_type": "gpt_neo", "hidden_size": 32, "num_layers": 2, "num_heads": 4, "vocab_size": 512,
              "attention_types": [[["global"], 2]], "max_position_embeddings": 64}
    return build_random_model(tmp_path_factory.mktemp("neo") / "neo", config, seed=1)


def _pickle_only(tmp_path, small_model_dir):
    import shutil

    import torch
    from safetensors.torch import load_file

    directory = shutil.copytree(small_model_dir, tmp_path / "pickled")
    torch.save(load_file(directory / "model.safetensors"), directory / "pytorch_model.bin")
    (directory / "model.safetensors").unlink()
    return directory


@pytest.mark.parametrize(
    "case, expected",
    [
        ("unknown-model", "unknown model 'pythia-70n'; did you mean 'pythia-70m'?"),
        ("unknown-suite", "unknown suite 'tinyy'; did you mean 'tiny'?"),
        ("toml-syntax", "suite.toml: TOML syntax error"),
        ("toml-missing-key", "suite.toml: models[0] (line 2) has no key 'name'"),
        ("no-config", "empty: no config.json; point at a directory written by save_pretrained"),
        ("pickle-only", "pickled: has only pickle weights (pytorch_model.bin), which can run arbitrary code"),
        ("unsupported-architecture", "model_type 'gpt_neo' is not supported"),
        ("empty-prompts", "prompts.txt: no prompts; write one prompt per line"),
        ("binary-prompts", "prompts.txt: not UTF-8 text (byte 0, line 1)"),
        ("bad-notebook", "models[1] (m-medium): missing field 'mlp_gains'"),
        ("bad-dtype", "argument --dtype: 'float8' is not one of float32, float16, bfloat16"),
    ],
)
def test_a_mistake_is_one_line_exit_2_and_writes_nothing(tmp_path, case, expected, small_model_dir, neo_dir):
    cache = tmp_path / "cache"
    (tmp_path / "empty").mkdir()
    (tmp_path / "suite.toml").write_text({"toml-syntax": BAD_TOML}.get(case, '[[models]]\nhub = "o/a"\nname = 3\n'))
    if case == "toml-missing-key":
        (tmp_path / "suite.toml").write_text('name = "x"\n[[models]]\nhub = "o/a"\n')
    (tmp_path / "prompts.txt").write_bytes(b"\xff\xfe" if case == "binary-prompts" else b"\n\n")
    bad_rows = synthetic_rows()
    bad_rows[1].pop("mlp_gains")
    notebook = notebook_file(tmp_path / "nb.json", bad_rows)
    argv = {
        "unknown-model": ["measure", "pythia-70n"],
        "unknown-suite": ["measure", "tiny-s", "--suite", "tinyy"],
        "toml-syntax": ["measure", "a", "--suite", tmp_path / "suite.toml"],
        "toml-missing-key": ["measure", "a", "--suite", tmp_path / "suite.toml"],
        "no-config": ["measure", tmp_path / "empty"],
        "pickle-only": ["measure", _pickle_only(tmp_path, small_model_dir) if case == "pickle-only" else "x"],
        "unsupported-architecture": ["measure", neo_dir],
        "empty-prompts": ["measure", small_model_dir, "--prompts", tmp_path / "prompts.txt"],
        "binary-prompts": ["measure", small_model_dir, "--prompts", tmp_path / "prompts.txt"],
        "bad-notebook": ["import-notebook", notebook, "--name", "nb"],
        "bad-dtype": ["measure", "tiny-s", "--dtype", "float8"],
    }[case]
    result = _gainscale(*argv, "--cache", cache)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert expected in lines[-1] and lines[-1].startswith(("gainscale: error:", "usage:", "gainscale measure: error:"))
    assert not cache.exists(), f"{case} wrote into the cache: {sorted(p.name for p in cache.rglob('*'))}"


def test_a_prompt_longer_than_the_context_stores_nothing(tmp_path, small_model_dir):
    prompts = tmp_path / "long.txt"
    prompts.write_text("short\n" + "word " * 400 + "\n")
    result = _gainscale("measure", small_model_dir, "--prompts", prompts, "--cache", tmp_path / "cache")
    assert result.returncode == 2 and "prompt 2 of" in result.stderr and "the model's context is 256" in result.stderr
    assert not list((tmp_path / "cache").rglob("*.json"))


KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import gainscale.files
    from gainscale.cli import main

    ready = Path(sys.argv[1])
    def pause_at_the_write(temporary, path):
        ready.write_text(temporary)   # the temporary file is complete, the entry not yet published
        time.sleep(600)
    gainscale.files._publish = pause_at_the_write
    sys.exit(main(sys.argv[2:]))
    """
)


def test_kill_9_in_the_middle_of_a_write_leaves_no_partial_entry(tmp_path):
    cache = tmp_path / "cache"
    assert _gainscale("measure", "tiny-xs", "--cache", cache, "-q").returncode == 0  # another entry, to stay intact
    (kept,) = (cache / "measurements").glob("*.json")
    before = kept.read_bytes()
    ready = tmp_path / "ready"
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, ready, "measure", "tiny-s", "--cache", cache, "-q"])
    deadline = time.monotonic() + 300
    while not ready.exists() and time.monotonic() < deadline and writer.poll() is None:
        time.sleep(0.05)
    assert ready.exists(), "the writer never reached the write"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()

    assert [p.name for p in (cache / "measurements").glob("*.json")] == [kept.name]
    assert kept.read_bytes() == before
    again = _gainscale("measure", "tiny-s", "--cache", cache, "-q")
    assert again.returncode == 0 and "measured in" in again.stdout  # measured again, not half-read
    assert _gainscale("cache", "verify", "--cache", cache).returncode == 0


RACE_COUNTER = textwrap.dedent(
    """
    import os
    import gainscale.measurer

    _measure_each = gainscale.measurer.Measurer.measure_each


    def counted(self, spec, resolved, prompt_sets):
        for measurement in _measure_each(self, spec, resolved, prompt_sets):
            with open(os.environ["MEASURE_LOG"], "a") as log:
                log.write(spec.name + "\\n")
            yield measurement


    def pytest_configure(config):
        gainscale.measurer.Measurer.measure_each = counted


    def pytest_unconfigure(config):  # an in-process run must not leave it behind
        gainscale.measurer.Measurer.measure_each = _measure_each
    """
)


def test_four_xdist_workers_racing_measure_each_model_once(pytester, tmp_path, monkeypatch, tiny_cache):
    """All tests of the tiny suite spread over four workers: each model is measured exactly once."""
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(tiny_cache / "tiny-models", cache / "tiny-models")  # built, not measured
    claims_project(pytester)
    with open(pytester.path / "conftest.py", "a") as conftest:
        conftest.write(RACE_COUNTER)
    monkeypatch.setenv("MEASURE_LOG", str(tmp_path / "measured.log"))
    pytester.runpytest("claims", "--gainscale-suite", "tiny", "--gainscale-source", "measured",
                       "--gainscale-cache", str(cache), "-n", "4", "-p", "no:randomly")
    measured = sorted((tmp_path / "measured.log").read_text().split())
    assert measured == ["tiny-l", "tiny-m", "tiny-s", "tiny-xs"]
    assert _gainscale("cache", "verify", "--cache", cache).stdout.startswith("4 valid entries, 0 corrupt")


def test_an_unwritable_cache_still_reports_the_measurements(pytester, tmp_path, monkeypatch, tiny_cache):
    """A read-only (or full) cache: a warning says why nothing was kept; the claims still run."""
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(tiny_cache / "tiny-models", cache / "tiny-models")  # built, not measured
    monkeypatch.setattr("gainscale.files.tempfile.mkstemp", read_only)
    claims_project(pytester)
    result = pytester.runpytest("claims", "--gainscale-suite", "tiny", "--gainscale-source", "measured",
                                "--gainscale-cache", str(cache), "-k", "final_mlp", "-W", "default")
    result.stdout.fnmatch_lines(["*cannot write to the cache directory * (Read-only file system)*used in this run but not kept*"])
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 4
    assert not list((cache / "measurements").glob("*"))  # no entry, no temporary file


def test_cache_entries_are_json_never_pickle(tmp_path):
    assert _gainscale("measure", "tiny-xs", "--cache", tmp_path, "-q").returncode == 0
    for entry in (tmp_path / "measurements").glob("*.json"):
        assert json.loads(entry.read_text())["gainscale_cache_entry"] == 1
