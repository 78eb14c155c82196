"""Several measurements of one model from one load: Measurer.get_many and measure --prompts A --prompts B."""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import local_spec

import gainscale.measurer
from gainscale.cli import main
from gainscale.errors import DeviceUnavailable, MeasurementError
from gainscale.prompts import PromptSet, load_prompts

PROMPTS = load_prompts().prompts
FIRST, SECOND, THIRD = PromptSet("first", PROMPTS[:3]), PromptSet("second", PROMPTS[3:7]), PromptSet("third", PROMPTS[7:9])


@pytest.fixture
def loads(monkeypatch):
    """The models loaded, by name, as the measurer loads them."""
    loaded = []
    original = gainscale.measurer.load_model

    def counted(spec, revision, options):
        loaded.append(spec.name)
        return original(spec, revision, options)

    monkeypatch.setattr(gainscale.measurer, "load_model", counted)
    return loaded


def _numbers(measurement):
    """A measurement without its provenance (the date and the seconds differ between runs)."""
    return dataclasses.replace(measurement, provenance=None)


def test_prompt_sets_not_cached_are_measured_from_one_load(small_model_dir, cpu_measurer, loads):
    measurer = cpu_measurer()
    results = measurer.get_many(local_spec(small_model_dir), [FIRST, SECOND])
    assert loads == ["small"]
    assert [from_cache for _, from_cache in results] == [False, False]
    assert [m.prompts_name for m, _ in results] == ["first", "second"]
    alone = cpu_measurer(cache=measurer.settings.cache_dir.parent / "other").get_many(local_spec(small_model_dir), [SECOND])
    assert _numbers(alone[0][0]) == _numbers(results[1][0])  # the same numbers as a load of its own
    again = measurer.get_many(local_spec(small_model_dir), [SECOND, FIRST])
    assert [from_cache for _, from_cache in again] == [True, True] and loads == ["small", "small"]
    assert [_numbers(m) for m, _ in again] == [_numbers(results[1][0]), _numbers(results[0][0])]


def test_only_the_missing_are_measured(small_model_dir, cpu_measurer, loads):
    measurer = cpu_measurer()
    spec = local_spec(small_model_dir)
    measurer.get_many(spec, [SECOND])
    results = measurer.get_many(spec, [FIRST, SECOND, THIRD, FIRST])
    assert [from_cache for _, from_cache in results] == [False, True, False, False]
    assert loads == ["small", "small"]
    assert results[0][0] is results[3][0]  # the same set twice is measured once
    assert len(list((measurer.cache.directory / "measurements").glob("*.json"))) == 3


def test_all_cached_needs_no_device_and_no_model(small_model_dir, cpu_measurer, loads):
    spec = local_spec(small_model_dir)
    cpu_measurer().get_many(spec, [FIRST, SECOND])
    on_a_missing_gpu = cpu_measurer(device="cuda:7")
    with pytest.raises(DeviceUnavailable):
        on_a_missing_gpu.get_many(spec, [FIRST, THIRD])  # THIRD would need the GPU
    cached = cpu_measurer().get_many(spec, [FIRST, SECOND])
    assert [from_cache for _, from_cache in cached] == [True, True] and loads == ["small"]


def test_a_failure_keeps_what_was_measured_and_frees_every_lock(small_model_dir, cpu_measurer, monkeypatch):
    measurer = cpu_measurer()
    spec = local_spec(small_model_dir)
    original = gainscale.measurer.Measurer.measure_each

    def second_fails(self, spec, resolved, prompt_sets):
        for prompts in prompt_sets:
            if prompts.name == "second":
                raise MeasurementError("second: a non-finite norm")
            yield from original(self, spec, resolved, [prompts])

    monkeypatch.setattr(gainscale.measurer.Measurer, "measure_each", second_fails)
    with pytest.raises(MeasurementError):
        measurer.get_many(spec, [FIRST, SECOND, THIRD])
    monkeypatch.setattr(gainscale.measurer.Measurer, "measure_each", original)
    for lock in (measurer.cache.directory / "locks").glob("*.lock"):
        from filelock import FileLock

        FileLock(str(lock), timeout=0).acquire().lock.release()  # none is still held
    results = measurer.get_many(spec, [FIRST, SECOND, THIRD])
    assert [from_cache for _, from_cache in results] == [True, False, False]


def test_measure_takes_several_prompt_files(small_model_dir, tmp_path, capsys, loads):
    files = []
    for prompts in (FIRST, SECOND):
        files += ["--prompts", str(tmp_path / f"{prompts.name}.txt")]
        (tmp_path / f"{prompts.name}.txt").write_text("\n".join(prompts.prompts))
    arguments = ["measure", str(small_model_dir), "--device", "cpu", "--dtype", "float32", "--cache", str(tmp_path / "c"), "-q"]
    assert main([*arguments, *files, "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["prompts_name"] for r in records] == [str(tmp_path / "first.txt"), str(tmp_path / "second.txt")]
    assert loads == [small_model_dir.name]
    assert main([*arguments, *files]) == 0  # tables, one per prompt set, both from the cache
    assert capsys.readouterr().out.count("), from cache") == 2 and loads == [small_model_dir.name]
