"""A pytest plugin for benchmarks/gpu_xdist.py: logs every measurement a worker makes, and where."""

from __future__ import annotations

import json
import os

import gainscale.measurer

_measure_now = gainscale.measurer.Measurer.measure_now


def _logged(self, spec, resolved_revision):
    import torch

    device = self.device_for(spec)
    measurement = _measure_now(self, spec, resolved_revision)
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
    return measurement


gainscale.measurer.Measurer.measure_now = _logged
