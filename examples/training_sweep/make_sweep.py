"""A revision sweep to try claims over training on a CPU: random-weight checkpoints of a small
GPT-NeoX laid out as hub revisions ``step0`` ... in a local Hugging Face hub cache, and a suite
file that sweeps them.

Pythia's 154 training checkpoints are hub revisions of each model (``step0`` ... ``step143000``);
none can be downloaded where gainscale is built, so this stands in for them with the same
loading path. FOR DEMOS ONLY: every checkpoint's weights are random (a seed per step), so the
figure shows how gainscale reports claims over training, not how training changes gains.

    python examples/training_sweep/make_sweep.py /tmp/sweep
    HF_HUB_CACHE=/tmp/sweep/hub HF_HUB_OFFLINE=1 pytest claims --gainscale-suite /tmp/sweep/suite.toml \\
        --gainscale-source measured --gainscale-report /tmp/sweep/report
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gainscale.randommodels import add_hub_snapshot, build_random_model
from gainscale.suites import tiny_config

REPO = "demo/gpt-neox-sweep"
STEPS = (0, 1000, 2000, 4000, 8000, 16000, 32000)


def make_sweep(directory: Path) -> Path:
    """Write the checkpoints, the hub cache and ``suite.toml`` under ``directory``; return the suite file."""
    config = {**tiny_config("tiny-l"), "initializer_range": 0.1}
    for step in STEPS:
        checkpoint = build_random_model(directory / "checkpoints" / f"step{step}", config, seed=1000 + step)
        add_hub_snapshot(directory / "hub", REPO, f"step{step}", checkpoint)
    suite = directory / "suite.toml"
    suite.write_text(
        'name = "training-demo"\n'
        'description = "FOR DEMOS ONLY: random-weight checkpoints of a small GPT-NeoX as revisions step0 ... step32000"\n'
        'device = "cpu"\ndtype = "float32"\n\n'
        "[[models]]\n"
        'name = "demo"\n'
        f'hub = "{REPO}"\n'
        f"revisions = [{', '.join(repr(f'step{step}').replace(chr(39), chr(34)) for step in STEPS)}]\n"
    )
    return suite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="where to write the checkpoints, hub cache and suite.toml (must not exist)")
    args = parser.parse_args()
    if args.directory.exists():
        parser.error(f"{args.directory} exists; name a new directory")
    print(make_sweep(args.directory))


if __name__ == "__main__":
    main()
