"""Which GPU a process uses: one per pytest-xdist worker, within what the user made visible."""

from __future__ import annotations

import re


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
