"""Target 3: measuring 1,000 prompts takes no more memory than 32, beyond the numbers it keeps.

The hooks reduce every sublayer's input and output to per-prompt norms at once and keep no
activation, so peak memory must not grow with the number of prompts by more than what the
measurement keeps: ``n_layers * 2 * N_FIELDS`` floats per prompt (attention and MLP, the six
per-prompt numbers every gain definition needs), held as Python floats in tuples, counted
generously at 100 bytes each, plus 50 MB of slack for the allocator and the tokenizer. Each prompt count is measured in a fresh process
(``memory_probe.py``) on a small random GPT-NeoX; figures: the peak RSS of the measuring call
(the kernel's high-water mark, reset after loading), tracemalloc's peak during it, and the
peak of torch's CPU allocations during it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gainscale.meter import N_FIELDS

PROBE = Path(__file__).with_name("memory_probe.py")
FEW, MANY = 32, 1000
#: bytes per kept number: a Python float (24) and its tuple slot (8), rounded up generously
BYTES_PER_KEPT_NUMBER = 100
SLACK = 50 * 2**20


def probe(model_dir: Path, count: int) -> dict:
    """Run the memory probe for ``count`` prompts in a fresh process."""
    done = subprocess.run([sys.executable, str(PROBE), str(model_dir), str(count)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.1f} MB"


def test_peak_memory_is_flat_in_the_number_of_prompts(benchmark, small_model_dir):
    """Peak RSS for 1,000 prompts exceeds that for 32 by no more than the kept numbers plus 50 MB."""
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux's /proc/self/clear_refs to reset the peak RSS after loading")
    few = probe(small_model_dir, FEW)
    many = benchmark.pedantic(probe, args=(small_model_dir, MANY), rounds=1, warmup_rounds=0)
    # the bound: what 968 more prompts add to the measurement, n_layers * 2 * 6 * (1000 - 32)
    # numbers at 100 bytes each (3.5 MB for 3 layers), plus 50 MB of slack
    kept = many["n_layers"] * 2 * N_FIELDS * (MANY - FEW) * BYTES_PER_KEPT_NUMBER
    bound = kept + SLACK
    growth = many["peak_rss"] - few["peak_rss"]
    benchmark.extra_info.update({"few": few, "many": many, "rss_growth": growth, "bound": bound})
    summary = (
        f"peak RSS {_mb(many['peak_rss'])} ({MANY} prompts) - {_mb(few['peak_rss'])} ({FEW}) = {_mb(growth)}, "
        f"bound {_mb(bound)} ({_mb(kept)} kept + {_mb(SLACK)}); above the RSS before measuring "
        f"+{_mb(many['peak_rss'] - many['rss_before'])} vs +{_mb(few['peak_rss'] - few['rss_before'])}; "
        f"tracemalloc peak {_mb(many['python_peak'])} vs {_mb(few['python_peak'])}; "
        f"torch CPU peak {_mb(many['torch_peak'])} vs {_mb(few['torch_peak'])}"
    )
    print(f"\n[target 3: flat memory, {many['n_layers']}-layer random GPT-NeoX, batch {many['batch_size']}] {summary}")
    assert growth <= bound, summary
