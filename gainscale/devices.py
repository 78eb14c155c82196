"""Which GPU a process uses (one per pytest-xdist worker, within what the user made visible),
and how many CPU threads torch may use (the CPUs this process may run on, shared among workers).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import OptionError


def worker_index(worker: str | None) -> int | None:
    """``gw3`` -> 3; None outside pytest-xdist."""
    match = re.fullmatch(r"gw(\d+)", worker or "")
    return int(match.group(1)) if match else None


def pin_gpu(device: str, worker: str | None, gpu_count: int | None = None) -> str:
    """Give each xdist worker its own GPU: worker k gets ``cuda:(k mod count)``.

    Only a bare ``cuda`` is pinned; ``cuda:N`` and ``cpu`` are the user's choice and stay.
    Indices count the GPUs that ``CUDA_VISIBLE_DEVICES`` leaves visible, so a user's
    selection is respected.

    Examples
    --------
    >>> pin_gpu("cuda", "gw5", gpu_count=4)
    'cuda:1'
    >>> pin_gpu("cuda", None, gpu_count=4)
    'cuda'
    """
    index = worker_index(worker)
    if device != "cuda" or index is None:
        return device
    count = visible_gpu_count() if gpu_count is None else gpu_count
    return f"cuda:{index % count}" if count > 0 else device


def visible_gpu_count() -> int:
    """GPUs this process may use (``CUDA_VISIBLE_DEVICES`` respected); 0 without torch or CUDA."""
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count()


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask (taskset, cpusets), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no sched_getaffinity on macOS and Windows
        return os.cpu_count() or 1


def xdist_worker_count() -> int:
    """pytest-xdist workers sharing the machine (``PYTEST_XDIST_WORKER_COUNT``); 1 outside xdist."""
    try:
        return max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    except ValueError:
        return 1


def default_threads(cpus: int | None = None, workers: int | None = None) -> int:
    """torch intra-op threads for measuring: the usable CPUs divided among the xdist workers.

    torch's own default is every core of the machine in every process, so ``-n 2`` on two
    cores would run four threads on two cores, and a parallel kernel stalls whenever one of
    its threads waits for a core. One share each, at least one thread.

    Examples
    --------
    >>> default_threads(cpus=2, workers=2)
    1
    >>> default_threads(cpus=16, workers=3)
    5
    >>> default_threads(cpus=1, workers=4)
    1
    """
    cpus = usable_cpus() if cpus is None else cpus
    workers = xdist_worker_count() if workers is None else workers
    return max(1, cpus // max(1, workers))


@contextmanager
def torch_threads(count: int) -> Iterator[int]:
    """Run the block with ``count`` torch intra-op threads; torch's previous setting comes back after."""
    import torch

    if count < 1:
        raise OptionError(f"torch threads must be at least 1, not {count}")
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
