"""A pytest plugin for benchmarks/gpu_xdist.py: logs every measurement a worker makes, and where."""

from __future__ import annotations

import json
import os

import gainscale.measurer

_measure_each = gainscale.measurer.Measurer.measure_each


def _logged(self, spec, resolved_revision, prompt_sets):
    for measurement in _measure_each(self, spec, resolved_revision, prompt_sets):
        _log(self, spec, measurement)
        yield measurement


def _log(measurer, spec, measurement) -> None:
    import torch

    device = measurer.device_for(spec)
    record = {
        "worker": os.environ.get("PYTEST_XDIST_WORKER"),
        "model": spec.name,
        "device": device,
        "gpu": torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else "cpu",
        "visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "seconds": measurement.provenance.wall_seconds,
    }
    with open(os.environ["GAINSCALE_PINNING_LOG"], "a") as log:
        log.write(json.dumps(record) + "\n")


gainscale.measurer.Measurer.measure_each = _logged
