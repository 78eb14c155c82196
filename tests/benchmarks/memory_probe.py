"""Measure N prompts on a model in this (fresh) process and print its peak memory as JSON.

    python tests/benchmarks/memory_probe.py MODEL_DIR N

Run by ``test_bench_memory.py``, once per prompt count, each in its own process so that
the peak resident set belongs to that prompt count alone. The model is loaded first; then
three measurements of the same prompts, each giving one figure:

1. peak RSS of the measuring call: the kernel's high-water mark of resident memory
   (``VmHWM``), reset just before the first measurement (nothing traced, nothing profiled)
   and read just after it. Not ``ru_maxrss``: Linux carries that across ``exec`` from the
   parent, so a probe started by a pytest holding a 650 MB model would report the parent's peak;
2. Python allocations: ``tracemalloc``'s peak during the second;
3. torch's CPU allocations: the peak of the bytes torch's allocator held during the third,
   read from the profiler's allocation events (``total_allocated``, which counts only what
   was allocated after profiling began, i.e. not the weights).
"""

from __future__ import annotations

import json
import re
import sys
import tracemalloc
from pathlib import Path

from gainscale.loading import LoadOptions, load_model
from gainscale.meter import GainMeter
from gainscale.prompts import PromptSet, load_prompts
from gainscale.suites import ModelSpec


def varied_prompts(count: int) -> PromptSet:
    """``count`` distinct prompts: the shipped ones in turn, each with its number appended."""
    default = load_prompts().prompts
    return PromptSet(f"varied-{count}", tuple(f"{default[i % len(default)]} ({i})" for i in range(count)))


def _status_bytes(field: str) -> int:
    """A memory figure of this process from ``/proc/self/status`` (Linux reports kB)."""
    return int(re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)[1]) * 1024


def reset_peak_rss() -> None:
    """Start the resident-memory high-water mark again from the current RSS (Linux >= 4.0)."""
    Path("/proc/self/clear_refs").write_text("5")


def torch_peak_bytes(run) -> int | None:
    """Peak bytes held by torch's CPU allocator while ``run()`` runs, or None if unreadable."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        run()
    try:  # a private corner of the profiler: no public API gives the CPU allocator's peak
        from torch._C._profiler import _EventType

        events = list(profiler.profiler.kineto_results.experimental_event_tree())
        peak = 0
        while events:
            event = events.pop()
            events.extend(event.children)
            if event.tag == _EventType.Allocation:
                peak = max(peak, event.extra_fields.total_allocated)
        return peak
    except (AttributeError, ImportError):
        return None


def main(model_dir: str, count: int) -> dict:
    import torch

    # one thread: memory is the point here, and two threads on a busy two-core machine can
    # slow a thousand prompts' small kernels tenfold in barrier waits
    torch.set_num_threads(1)
    prompts = varied_prompts(count)
    spec = ModelSpec(name="memory-probe", source=model_dir, local=True)
    meter = GainMeter(progress=False, threads=1)
    with load_model(spec, "probe", LoadOptions(device="cpu", dtype="float32", progress=False)) as loaded:
        lifetime_peak_loaded = _status_bytes("VmHWM")
        rss_before = _status_bytes("VmRSS")
        reset_peak_rss()
        measurement = meter.measure(loaded, prompts, "probe")
        peak_rss = _status_bytes("VmHWM")
        tracemalloc.start()
        meter.measure(loaded, prompts, "probe")
        python_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        torch_peak = torch_peak_bytes(lambda: meter.measure(loaded, prompts, "probe"))
    return {
        "prompts": count,
        "n_layers": measurement.n_layers,
        "batch_size": measurement.provenance.batch_size,
        "lifetime_peak_rss_loaded": lifetime_peak_loaded,
        "rss_before": rss_before,
        "peak_rss": peak_rss,
        "python_peak": python_peak,
        "torch_peak": torch_peak,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]))))
