"""pytest-xdist on a GPU runner: each worker pins a GPU, each model is measured once.

Builds random-weight checkpoints with Pythia configs (saved with save_pretrained, loaded back
through gainscale's loader), writes a suite file for them on ``cuda``, and runs
``pytest claims -m gpu -n N`` on it twice: a cold run, where the workers share out the models
and measure each once, then a warm run with ``-n auto`` (one worker per GPU), served from the
cache. A plugin logs each measurement's worker and device.

Run it where a GPU is:  ``PYTHONPATH=. python benchmarks/gpu_xdist.py``.
"""

from __future__ import annotations

import argparse
import re
import collections
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build_suite(directory: Path, configs: list[str], device: str) -> Path:
    from gainscale.randommodels import build_random_model
    from gainscale.suites import pythia_config

    lines = ['name = "pythia-random"', 'description = "random weights, Pythia configs"', f'device = "{device}"', ""]
    for seed, name in enumerate(configs):
        build_random_model(directory / name, pythia_config(name), seed=seed)
        lines += ["[[models]]", f'name = "{name}-random"', f'path = "{name}"', ""]
    suite = directory / "suite.toml"
    suite.write_text("\n".join(lines))
    return suite


def run_claims(suite: Path, cache: Path, log: Path, workers: str, extra: list[str], marker: str = "gpu") -> subprocess.CompletedProcess:
    env = {**os.environ, "GAINSCALE_PINNING_LOG": str(log), "PYTHONPATH": f"{ROOT}:{ROOT / 'benchmarks'}"}
    command = [sys.executable, "-m", "pytest", "claims", "-m", marker, "-n", workers, "--dist", "loadgroup",
               "--gainscale-suite", str(suite), "--gainscale-source", "measured", "--gainscale-cache", str(cache),
               "--gainscale-report", str(cache / "report"), "-p", "pinning_log", "-p", "no:cacheprovider", *extra]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="pythia-70m,pythia-160m,pythia-410m")
    parser.add_argument("--workers", default="2")
    parser.add_argument("--device", default="cuda", help="cuda; cpu only for a smoke run of this script (drop -m gpu)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        suite = build_suite(scratch / "models", args.configs.split(","), args.device)
        log = scratch / "measurements.jsonl"
        marker = "gpu" if args.device == "cuda" else "not gpu"
        for label, workers in (("cold", args.workers), ("warm, from the cache", "auto")):
            result = run_claims(suite, scratch / "cache", log, workers, [], marker)
            started = next((line for line in result.stdout.splitlines() if re.search(r"\d+ workers? \[", line)), "?")
            print(f"--- {label} run, -n {workers} ({started.strip()}): exit {result.returncode}")
            print("\n".join(result.stdout.splitlines()[-14:]))
        records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        print("--- measurements made (worker, model, device):")
        for r in records:
            print(f"  {r['worker']}  {r['model']:<22} {r['device']:<7} {r['gpu']}  {r['seconds']} s  CUDA_VISIBLE_DEVICES={r['visible']}")
        counts = collections.Counter(r["model"] for r in records)
        print(f"each model measured once: {all(n == 1 for n in counts.values()) and len(counts) == len(args.configs.split(','))} {dict(counts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
