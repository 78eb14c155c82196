"""One GPU per pytest-xdist worker, within the GPUs the user made visible (device count faked)."""

from __future__ import annotations

import pytest

from gainscale.devices import pin_gpu, worker_index
from gainscale.measurer import Measurer
from gainscale.settings import Settings
from gainscale.suites import load_suite


@pytest.mark.parametrize(
    "worker, count, expected",
    [("gw0", 4, "cuda:0"), ("gw3", 4, "cuda:3"), ("gw5", 4, "cuda:1"), ("gw1", 2, "cuda:1"), ("gw2", 1, "cuda:0"), (None, 4, "cuda")],
)
def test_workers_are_spread_over_the_visible_gpus(worker, count, expected):
    assert pin_gpu("cuda", worker, gpu_count=count) == expected


@pytest.mark.parametrize("device", ["cpu", "cuda:2", "mps"])
def test_an_explicit_device_is_never_repinned(device):
    assert pin_gpu(device, "gw3", gpu_count=4) == device


def test_no_visible_gpu_leaves_cuda_alone():
    assert pin_gpu("cuda", "gw1", gpu_count=0) == "cuda"


def test_worker_index():
    assert worker_index("gw12") == 12 and worker_index(None) is None and worker_index("master") is None


def test_visible_count_follows_cuda_visible_devices(monkeypatch):
    """Indices count what CUDA_VISIBLE_DEVICES leaves visible: torch's device_count does."""
    monkeypatch.setattr("torch.cuda.device_count", lambda: 2)  # e.g. CUDA_VISIBLE_DEVICES=4,6
    assert pin_gpu("cuda", "gw3") == "cuda:1"


def test_the_pythia_suite_pins_each_worker(tmp_path, monkeypatch):
    monkeypatch.setattr("gainscale.devices.visible_gpu_count", lambda: 8)
    suite = load_suite("pythia", tmp_path)
    devices = {Measurer(suite, Settings(cache=tmp_path, worker=f"gw{k}")).device_for(suite.models[0]) for k in range(8)}
    assert devices == {f"cuda:{k}" for k in range(8)}


def test_n_auto_starts_one_worker_per_gpu(pytester, monkeypatch):
    """The hook xdist asks for ``-n auto``: the GPU count for a suite that needs GPUs."""
    from gainscale.plugin import pytest_xdist_auto_num_workers

    monkeypatch.setattr("gainscale.plugin.visible_gpu_count", lambda: 3)
    pytester.makeini("[pytest]\n")
    pythia = pytester.parseconfig("--gainscale-cache", str(pytester.path / "c"))
    assert pytest_xdist_auto_num_workers(pythia) == 3  # asked before pytest_configure, as xdist does
    tiny = pytester.parseconfig("--gainscale-suite", "tiny", "--gainscale-cache", str(pytester.path / "c"))
    assert pytest_xdist_auto_num_workers(tiny) is None


def test_n_auto_on_the_command_line_starts_one_worker_per_gpu(pytester, monkeypatch, tmp_path):
    """End to end through xdist: with 1 GPU visible, -n auto starts 1 worker, not one per core."""
    from helpers import claims_project

    monkeypatch.setattr("gainscale.plugin.visible_gpu_count", lambda: 1)
    claims_project(pytester)
    result = pytester.runpytest("claims", "-n", "auto", "--gainscale-source", "measured", "--gainscale-cache", str(tmp_path), "-k", "12b")
    result.stdout.fnmatch_lines(["*1 worker [[]2 items]*"])


@pytest.mark.parametrize(
    "affinity, workers, expected",
    [(2, "2", 1), (2, None, 2), (16, "3", 5), (16, "4", 4), (1, "4", 1), (3, "2", 1), (64, "bad", 64), (8, "0", 8)],
)
def test_default_threads_share_the_usable_cpus_among_xdist_workers(monkeypatch, affinity, workers, expected):
    """The CPUs this process may use (its affinity, not the machine's count), one share per worker, at least 1."""
    from gainscale import devices

    monkeypatch.setattr(devices.os, "sched_getaffinity", lambda pid: set(range(affinity)), raising=False)
    monkeypatch.setattr(devices.os, "cpu_count", lambda: 128)
    if workers is None:
        monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    else:
        monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", workers)
    assert devices.default_threads() == expected


def test_default_threads_fall_back_to_the_cpu_count_without_affinity(monkeypatch):
    from gainscale import devices

    monkeypatch.delattr(devices.os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(devices.os, "cpu_count", lambda: 6)
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    assert devices.usable_cpus() == 6 and devices.default_threads() == 3
    monkeypatch.setattr(devices.os, "cpu_count", lambda: None)
    assert devices.default_threads() == 1


def test_torch_threads_restores_the_previous_setting():
    import torch

    from gainscale.devices import torch_threads
    from gainscale.errors import OptionError

    before = torch.get_num_threads()
    with torch_threads(1) as count:
        assert count == torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(OptionError, match="at least 1, not 0"):
        with torch_threads(0):
            pass
