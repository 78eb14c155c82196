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


# ---------------------------------------------------------------------------- a suite, or a shard of it


def test_measure_a_shard_of_a_suite_as_json(cache, capsys):
    status, out, err = run(capsys, "measure", "--suite", "tiny", "--shard", "2/2", "--cache", str(cache), "--json")
    assert status == 0
    assert [record["model"] for record in json.loads(out)] == ["tiny-s", "tiny-l"]
    assert "shard 2/2 of suite tiny: 2 of 2 models measured or found in the cache" in err
    status, out, _ = run(capsys, "measure", "--suite", "tiny", "--shard", "2/2", "--cache", str(cache), "-q")
    assert status == 0 and out.count("from cache") == 2 and "== tiny-l (2 of 2, shard 2/2 of suite tiny)" in out


def test_a_model_that_fails_is_named_and_the_others_are_measured(cache, capsys, tmp_path, small_model_dir):
    (tmp_path / "empty").mkdir()
    suite = tmp_path / "suite.toml"
    suite.write_text(f'name = "two"\n[[models]]\nname = "broken"\npath = "{tmp_path / "empty"}"\n'
                     f'[[models]]\nname = "fine"\npath = "{small_model_dir}"\n')
    status, out, err = run(capsys, "measure", "--suite", str(suite), "--cache", str(cache), "--device", "cpu", "-q")
    assert status == 1
    assert "gainscale: error: broken: " in err and "no config.json" in err
    assert "== fine (2 of 2, suite two)" in out and "final MLP gain" in out
    assert err.splitlines()[-1] == "gainscale: suite two: 1 of 2 models measured or found in the cache; failed: broken"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["measure"], "name a MODEL to measure, or pass --suite S to measure every model of a suite"),
        (["measure", "tiny-s", "--shard", "1/2"], "--shard 1/2 picks models of a suite: pass --suite and no MODEL"),
        (["measure", "--suite", "tiny", "--shard", "3/2"], "--shard 3/2: K counts from 1, so it is one of 1/2 ... 2/2"),
        (["measure", "--suite", "tiny", "--shard", "two"], "--shard 'two' is not K/N"),
        (["measure", "--suite", "tiny", "--revision", "step1"], "--revision applies to one MODEL"),
        (["cache", "list", "x.zip"], "cache list takes no FILE or --model (got x.zip)"),
        (["cache", "verify", "--model", "tiny-s"], "cache verify takes no FILE or --model (got --model tiny-s)"),
        (["cache", "export"], "cache export writes one bundle: pass one FILE (e.g. measurements.zip), not 0"),
        (["cache", "export", "a.zip", "b.zip"], "cache export writes one bundle: pass one FILE"),
        (["cache", "import"], "cache import needs the bundle FILEs to read"),
        (["cache", "import", "a.zip", "--model", "tiny-s"], "cache import reads the bundles named: pass one FILE or more, and no --model"),
        (["cache", "import", "nope.zip"], "nope.zip: no such bundle file"),
        (["cache", "export", "out.zip"], "no measurements in the cache"),
    ],
)
def test_a_mistake_with_suites_shards_or_bundles_is_one_line(cache, capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    status, out, err = run(capsys, *argv, "--cache", str(cache))
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and message in err
    assert not cache.exists() and not (tmp_path / "out.zip").exists()


# ---------------------------------------------------------------------------- reliability


def test_version_names_what_the_numbers_depend_on_without_importing_torch():
    probe = ("import sys\nfrom gainscale.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit as e:\n"
             "    print('exit', e.code, 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    first, second = result.stdout.splitlines()
    from gainscale import __version__

    assert first.startswith(f"gainscale {__version__} (torch ") and "transformers " in first and "Python 3." in first
    assert second == "exit 0 False"


def test_output_cut_short_by_its_reader_ends_quietly(cache, capsys):
    """`gainscale suites | head -1`: the reader is gone before gainscale writes; no traceback."""
    reader_gone = subprocess.Popen([sys.executable, "-m", "gainscale.cli", "suites", "--cache", str(cache)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader_gone.stdout.close()  # before the child has written anything: its first write fails
    _, err = reader_gone.communicate(timeout=120)
    assert err == b"" and reader_gone.returncode == 141


def test_a_byte_order_mark_does_not_change_the_prompts(cache, capsys, tmp_path):
    from gainscale.prompts import load_prompts

    plain, marked = tmp_path / "plain.txt", tmp_path / "marked.txt"
    plain.write_text("The cat sat on the mat.\nRivers flow to the sea.\n", encoding="utf-8")
    marked.write_text("The cat sat on the mat.\nRivers flow to the sea.\n", encoding="utf-8-sig")
    assert marked.read_bytes().startswith(b"\xef\xbb\xbf")
    assert load_prompts(marked).prompts == load_prompts(plain).prompts
    assert load_prompts(marked).sha256 == load_prompts(plain).sha256
    assert run(capsys, "measure", "tiny-xs", "--prompts", str(plain), "--cache", str(cache), "-q")[0] == 0
    status, out, _ = run(capsys, "measure", "tiny-xs", "--prompts", str(marked), "--cache", str(cache), "-q")
    assert status == 0 and "from cache" in out  # the same prompt set: the same cache entry


@pytest.mark.parametrize("device", ["gpu", "cpu:0"])
def test_an_invalid_device_is_one_line_listing_the_valid_forms(cache, capsys, device):
    with pytest.raises(SystemExit) as exited:
        main(["measure", "tiny-xs", "--device", device, "--cache", str(cache)])
    out, err = capsys.readouterr()
    assert exited.value.code == 2 and out == ""
    assert err == (f"gainscale measure: error: argument --device: invalid device {device!r}; use cpu, cuda, cuda:N "
                   "(N = 0, 1, ...), mps or auto; see gainscale measure --help\n")
    assert not cache.exists()
