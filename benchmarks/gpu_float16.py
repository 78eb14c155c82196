"""float16 and bfloat16 against float32 at real scale, on a GPU.

The paper measured in float16. This builds a random-weight model with a Pythia config in
float32 on the GPU, measures it, copies the same weights into float16 and bfloat16 models and
measures those, and reports how far each layer's gains move and whether any verdict (gain < 1)
flips. Random weights cannot show the overflow trained 12B weights can cause; gainscale
refuses such a measurement (tests/test_measuring.py plants one).

Run it where a GPU is:  ``PYTHONPATH=. python benchmarks/gpu_float16.py --config pythia-12b``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    import torch

    from gainscale.loading import LoadedModel
    from gainscale.meter import GainMeter
    from gainscale.randommodels import train_tokenizer
    from gainscale.suites import ModelSpec

    sys.path.insert(0, str(Path(__file__).parent))
    from gpu_scale import build_on_device, prompt_set

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="pythia-12b")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--device", default="cuda", help="cuda; cpu only for a smoke run of this script")
    args = parser.parse_args(argv)

    tokenizer, prompts = train_tokenizer(), prompt_set(args.prompts)
    spec = ModelSpec(name=f"{args.config}-random", source="random")
    reference_model = build_on_device(args.config, "float32", args.device)

    def measure(model, dtype):
        return GainMeter(batch_size=64, progress=False).measure(LoadedModel(spec, model, tokenizer, args.device, dtype), prompts, "random")

    reference = measure(reference_model, "float32")
    result = {"config": args.config, "prompts": args.prompts, "float32_final_mlp_gain": reference.mlp_gains[-1], "dtypes": {}}
    for dtype in ("float16", "bfloat16"):
        low = build_on_device(args.config, dtype, args.device)
        low.load_state_dict(reference_model.state_dict())  # the same weights, rounded to dtype
        m = measure(low, dtype)
        del low
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        rows = {}
        for kind, ours, theirs in (("attention", m.attn_gains, reference.attn_gains), ("mlp", m.mlp_gains, reference.mlp_gains)):
            relative = [abs(a - b) / b for a, b in zip(ours, theirs)]
            flips = [layer for layer, (a, b) in enumerate(zip(ours, theirs)) if (a < 1) != (b < 1)]
            rows[kind] = {"max_relative_change": max(relative), "median_relative_change": sorted(relative)[len(relative) // 2], "verdict_flips": flips}
        result["dtypes"][dtype] = {"final_mlp_gain": m.mlp_gains[-1], **rows}
        print(json.dumps({dtype: result["dtypes"][dtype]}), flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    print(f"\n{args.config}, random weights, {args.prompts} prompts: gains in float16 / bfloat16 against float32")
    print(f"{'dtype':<9} {'module':<9} {'max rel. change':>15} {'median':>10} {'flips (gain<1)':>15}")
    for dtype, rows in result["dtypes"].items():
        for kind in ("attention", "mlp"):
            r = rows[kind]
            print(f"{dtype:<9} {kind:<9} {r['max_relative_change']:>15.2e} {r['median_relative_change']:>10.2e} {len(r['verdict_flips']):>15}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
