"""The cache keeps every measurement once, whole, checked, and never serves a bad one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import local_spec

from gainscale.cache import CacheWarning, CacheWriteWarning, MeasurementCache, read_entry
from gainscale.errors import CorruptEntryError
from gainscale.prompts import PromptSet

FEW_PROMPTS = "The cat sat on the mat.\nRivers flow to the sea.\n"


@pytest.fixture
def prompt_file(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text(FEW_PROMPTS)
    return str(path)


def test_cache_hit_returns_identical_values_and_loads_no_model(small_model_dir, cpu_measurer, prompt_file, monkeypatch):
    measurer = cpu_measurer(prompts=prompt_file)
    spec = local_spec(small_model_dir)
    first, from_cache = measurer.get(spec)
    assert not from_cache

    def no_loading(*args, **kwargs):
        raise AssertionError("a cache hit must not load the model")

    monkeypatch.setattr("gainscale.measurer.load_model", no_loading)
    second, from_cache = cpu_measurer(prompts=prompt_file).get(spec)
    assert from_cache
    assert second == first
    assert second.attn_gains == first.attn_gains and second.mlp_gains == first.mlp_gains


def test_dtype_prompts_and_method_change_the_key(small_model_dir, cpu_measurer, prompt_file):
    spec = local_spec(small_model_dir)
    base = cpu_measurer(prompts=prompt_file).request(spec)
    other_dtype = cpu_measurer(prompts=prompt_file, dtype="bfloat16").request(spec)
    other_prompts = cpu_measurer().request(spec)
    assert len({base.digest, other_dtype.digest, other_prompts.digest}) == 3
    assert base.dtype == "float32" and other_dtype.dtype == "bfloat16"
    assert base.prompts_sha256 == PromptSet("x", ("The cat sat on the mat.", "Rivers flow to the sea.")).sha256


def test_prompt_hash_ignores_blank_lines_but_not_text():
    a = PromptSet("a", ("one", "two"))
    assert a.sha256 == PromptSet("b", ("one", "two")).sha256
    assert a.sha256 != PromptSet("c", ("one", "two!")).sha256


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda text: text[: len(text) // 2], id="truncated"),
        pytest.param(lambda text: text.replace('"dtype": "float32"', '"dtype": "float33"', 1), id="edited-key"),
        pytest.param(lambda text: _edit_first_gain(text), id="edited-value"),
        pytest.param(lambda text: text[:200] + chr(ord(text[200]) ^ 1) + text[201:], id="bit-flipped"),
    ],
)
def test_corrupt_entry_is_named_quarantined_and_measured_again(small_model_dir, cpu_measurer, prompt_file, damage):
    measurer = cpu_measurer(prompts=prompt_file)
    spec = local_spec(small_model_dir)
    original, _ = measurer.get(spec)
    (entry_path,) = (measurer.cache.directory / "measurements").glob("*.json")
    entry_path.write_text(damage(entry_path.read_text()))

    with pytest.warns(CacheWarning, match=rf"{entry_path.name}.*moved it to .*quarantine"):
        again, from_cache = cpu_measurer(prompts=prompt_file).get(spec)
    assert not from_cache and again.mlp_gains == original.mlp_gains
    quarantined = list((measurer.cache.directory / "quarantine").iterdir())
    assert len(quarantined) == 1 and quarantined[0].name.startswith(entry_path.name)
    assert read_entry(entry_path).measurement.mlp == original.mlp  # the re-measured entry is valid


def _edit_first_gain(text: str) -> str:
    entry = json.loads(text)
    entry["measurement"]["mlp"]["out"][0][0] *= 1.01
    return json.dumps(entry, indent=1, sort_keys=True)


def test_verify_reports_and_quarantines_corrupt_entries(small_model_dir, cpu_measurer, prompt_file):
    measurer = cpu_measurer(prompts=prompt_file)
    measurer.get(local_spec(small_model_dir))
    (entry_path,) = (measurer.cache.directory / "measurements").glob("*.json")
    entry_path.write_text("{}")
    valid, bad = MeasurementCache(measurer.cache.directory).verify()
    assert valid == [] and len(bad) == 1
    assert "malformed" in bad[0][1] and bad[0][0].exists() and not entry_path.exists()


def test_non_finite_values_are_never_stored(small_model_dir, cpu_measurer, prompt_file):
    import dataclasses

    from gainscale.errors import CacheError
    from gainscale.measurement import ModuleNorms

    measurer = cpu_measurer(prompts=prompt_file)
    measurement, _ = measurer.get(local_spec(small_model_dir))
    norms = measurement.mlp
    bad = dataclasses.replace(measurement, mlp=ModuleNorms(norms.inputs, ((float("nan"),) + norms.outputs[0][1:],) + norms.outputs[1:]))
    request = measurer.request(local_spec(small_model_dir))
    with pytest.raises(CacheError, match="refusing to cache a non-finite value"):
        MeasurementCache(measurer.cache.directory / "other").store(request, "x", bad)
    assert not (measurer.cache.directory / "other" / "measurements").exists() or not list((measurer.cache.directory / "other" / "measurements").iterdir())


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_cache_still_returns_the_measurement(small_model_dir, cpu_measurer, prompt_file, tmp_path):
    cache_dir = tmp_path / "readonly"
    cache_dir.mkdir()
    cache_dir.chmod(0o500)
    try:
        with pytest.warns(CacheWarning, match="cannot write to the cache directory"):
            measurement, from_cache = cpu_measurer(prompts=prompt_file, cache=cache_dir).get(local_spec(small_model_dir))
    finally:
        cache_dir.chmod(0o700)
    assert not from_cache and measurement.n_layers == 3


def test_full_cache_disk_still_returns_the_measurement(small_model_dir, cpu_measurer, prompt_file, monkeypatch):
    """ENOSPC at the write: a warning that says so, the measurement still comes back."""
    import errno

    def disk_full(temporary, path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("gainscale.files._publish", disk_full)
    with pytest.warns(CacheWriteWarning, match="No space left on device.*used in this run but not kept"):
        measurement, from_cache = cpu_measurer(prompts=prompt_file).get(local_spec(small_model_dir))
    assert not from_cache and measurement.n_layers == 3
    leftovers = list(cpu_measurer().cache.directory.rglob("*.tmp"))
    assert leftovers == []


RACER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from gainscale.measurer import Measurer
    from gainscale.settings import Settings
    from gainscale.suites import ModelSpec

    model_dir, cache_dir, prompts = sys.argv[1:4]
    measurer = Measurer(None, Settings(cache=Path(cache_dir), device="cpu", prompts=prompts, progress=False))
    original = measurer.measure_each
    def slow_measure(spec, revision, prompt_sets):
        time.sleep(1.0)  # keep the lock long enough for the other process to wait on it
        return original(spec, revision, prompt_sets)
    measurer.measure_each = slow_measure
    Path(cache_dir, "ready-" + sys.argv[4]).touch()
    while len(list(Path(cache_dir).glob("ready-*"))) < 2:
        time.sleep(0.01)
    measurement, from_cache = measurer.get(ModelSpec(name="small", source=model_dir, local=True))
    print("cache" if from_cache else "measured", measurement.mlp_gains[-1])
    """
)


def test_two_processes_racing_on_one_key_measure_once(small_model_dir, tmp_path, prompt_file):
    cache_dir = tmp_path / "shared"
    cache_dir.mkdir()
    racers = [
        subprocess.Popen([sys.executable, "-c", RACER, str(small_model_dir), str(cache_dir), prompt_file, str(n)],
                         stdout=subprocess.PIPE, text=True)
        for n in range(2)
    ]
    outputs = sorted(racer.communicate(timeout=300)[0].split() for racer in racers)
    assert [o[0] for o in outputs] == ["cache", "measured"]
    assert outputs[0][1] == outputs[1][1]
    assert len(list((cache_dir / "measurements").glob("*.json"))) == 1


def test_read_entry_names_the_file_of_a_non_json_entry(tmp_path):
    path = tmp_path / "x.json"
    path.write_bytes(b"\xff\xfe not json")
    with pytest.raises(CorruptEntryError, match=r"x\.json is unreadable"):
        read_entry(path)


@pytest.mark.parametrize("gain, denominator", [("paper", "in"), ("residual", "residual_in")])
def test_a_cache_is_one_line_away_from_a_data_frame(small_model_dir, cpu_measurer, prompt_file, tmp_path, gain, denominator):
    """load_measurements: every entry's per-layer gains, as the entries' own per-prompt norms give them."""
    import gainscale
    from statistics import fmean

    spec = local_spec(small_model_dir)
    for dtype in ("float32", "bfloat16"):
        cpu_measurer(prompts=prompt_file, dtype=dtype).get(spec)
    frame = gainscale.load_measurements(tmp_path / "cache", gain=gain)

    expected = {}
    for path in (tmp_path / "cache" / "measurements").glob("*.json"):
        measurement = json.loads(path.read_text())["measurement"]
        for module, key in (("attention", "attention"), ("mlp", "mlp")):
            norms = measurement[key]
            for layer, (outs, ins) in enumerate(zip(norms["out"], norms[denominator])):
                expected[(measurement["dtype"], module, layer)] = fmean(o / i for o, i in zip(outs, ins))
    assert len(expected) == 2 * 2 * 3  # two entries, two modules, three layers
    got = {(row.dtype, row.module, row.layer): row.gain for row in frame.itertuples()}
    assert got.keys() == expected.keys()
    assert list(got.values()) == pytest.approx([expected[key] for key in got], rel=1e-12)
    assert set(frame["gain_definition"]) == {gain} and set(frame["model"]) == {"small"} and set(frame["n_prompts"]) == {2}
    assert list(frame.columns[:6]) == ["model", "n_params", "layer", "depth", "module", "gain"]  # as RunResult.to_frame("layers")


def test_load_measurements_names_a_missing_cache_and_an_unknown_gain(tmp_path):
    import gainscale
    from gainscale.errors import CacheError, UnknownNameError

    with pytest.raises(CacheError, match=r"no cache directory at .*nowhere: pass the directory gainscale measured into"):
        gainscale.load_measurements(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    assert gainscale.load_measurements(tmp_path / "empty").empty
    assert list(gainscale.load_measurements(tmp_path / "empty").columns[:6]) == ["model", "n_params", "layer", "depth", "module", "gain"]
    with pytest.raises(UnknownNameError, match=r"unknown gain definition 'resid'"):
        gainscale.load_measurements(tmp_path / "empty", gain="resid")
