"""gainscale at real scale on a GPU: a random-weight model with a Pythia config, built on the GPU.

Measures, on one CUDA device, with the model built directly there (meta device, then
materialised and initialised in place; no weights are downloaded), under token-budget
batching, for each budget tried (the default CUDA budget is the one the targets judge):

- model FLOPs utilisation: 2 x body parameters x real tokens / seconds / the card's dense
  float16 peak (target >= 60%); also over padded tokens, to tell padding from slow kernels;
- gainscale's measurement against the bare body forward over the very same batches
  (target: ratio <= 1.05);
- peak GPU memory of the measurement against the weights' bytes;
- the attention implementation both sides ran, and the gains' sanity (finite);
- the body's matrix products alone at the default budget's rows: the MFU these shapes allow
  on this card, against which a missed MFU target is read.

Writes the result as JSON (``--out``, else ``benchmarks/results-<gpu>-<config>-<dtype>.json``)
and exits 1 when a target is missed.

Run it where a GPU is:  ``PYTHONPATH=. python benchmarks/gpu_scale.py --config pythia-12b``.
Without one, ``--dry-run`` runs the same steps on the CPU with a tiny config (tests do).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import time
from pathlib import Path

#: dense float16/bfloat16 tensor-core peaks, FLOP/s, by device-name fragment, most specific
#: first (datasheets; the H100 and H200 SXM figures are the targets' reference)
PEAK_FLOPS = (("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H200", 989e12), ("H100", 989e12),
              ("A100", 312e12), ("L40S", 362e12), ("A10", 125e12))
MFU_TARGET = 0.60
RATIO_TARGET = 1.05


def peak_flops(device_name: str) -> float | None:
    """The dense float16 peak of the GPU called ``device_name``, or None where unknown (or a CPU)."""
    return next((flops for key, flops in PEAK_FLOPS if key in device_name), None)


def model_config(config_name: str) -> dict:
    """The config.json dict of a Pythia model (``pythia-12b``) or of a tiny-suite one (``tiny-s``)."""
    from gainscale.suites import pythia_config, tiny_config

    return tiny_config(config_name) if config_name.startswith("tiny-") else pythia_config(config_name)


def build_on_device(config_name: str, dtype_name: str, device: str):
    """The causal-LM of a Pythia config, random weights, built on the meta device and
    materialised on the GPU: no host copy of the weights is ever made."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    settings = {k: v for k, v in model_config(config_name).items() if k not in ("model_type", "architectures")}
    config = AutoConfig.for_model("gpt_neox", **settings)
    dtype = getattr(torch, dtype_name)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.to_empty(device=device)
    torch.manual_seed(0)
    model.init_weights()  # normal(0, 0.02) weights, unit LayerNorms, the rotary inverse frequencies
    return model.eval()


def prompt_set(count: int):
    from gainscale.prompts import PromptSet, load_prompts

    base = load_prompts().prompts
    return PromptSet(f"default x{count}", tuple(f"{base[i % len(base)]} ({i})" for i in range(count)))


def bare_body(loaded, token_ids, batches) -> None:
    """The meter's batches (same order, padding, budget) through the body: no hooks, nothing kept."""
    import torch

    from gainscale.meter import pad_right

    body = loaded.model.base_model
    with torch.inference_mode():
        for batch in batches:
            input_ids, mask = pad_right([token_ids[i] for i in batch], loaded.device)
            body(input_ids=input_ids, attention_mask=mask, use_cache=False)


def _synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _peak_bytes(reset: bool = False) -> int | None:
    """The CUDA allocator's peak since the last reset (None on a CPU run)."""
    import torch

    if not torch.cuda.is_available():
        return None
    if reset:
        torch.cuda.reset_peak_memory_stats()
    return torch.cuda.max_memory_allocated()


def timed(function, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        _synchronize()
        started = time.perf_counter()
        function()
        _synchronize()
        times.append(time.perf_counter() - started)
    return times


def gemm_ceiling(model, tokens: int, repeats: int, peak: float | None) -> dict:
    """The body's matrix products alone, at ``tokens`` rows: every linear layer of the model's
    blocks applied once to random activations, no norms, attention or elementwise work.

    What the tensor cores give these shapes here: the MFU the forward could reach if all else
    were free, so that a missed MFU target says how much is the kernels' and how much ours.
    """
    import torch

    linears = [m for m in model.base_model.modules() if isinstance(m, torch.nn.Linear)]
    weight = linears[0].weight
    inputs = {m.in_features: torch.randn(tokens, m.in_features, device=weight.device, dtype=weight.dtype) for m in linears}

    def products() -> None:
        with torch.inference_mode():
            for m in linears:
                torch.nn.functional.linear(inputs[m.in_features], m.weight, m.bias)

    products()  # warm-up: cuBLAS picks its kernels
    seconds = statistics.median(timed(products, repeats))
    flops = 2 * tokens * sum(m.in_features * m.out_features for m in linears)
    return {"tokens": tokens, "seconds": round(seconds, 6), "tflops": round(flops / seconds / 1e12, 1),
            "mfu": round(flops / seconds / peak, 4) if peak else None}


def run_budget(loaded, prompts, token_ids, budget: int, repeats: int, sizes: dict) -> dict:
    """Time the measurement and the bare body at one token budget; the figures of one row."""
    from gainscale.meter import GainMeter, plan_batches

    meter = GainMeter(progress=False, token_budget=budget)
    batches = plan_batches(token_ids, budget)
    padded = sum(len(b) * max(len(token_ids[i]) for i in b) for b in batches)
    meter.measure(loaded, prompts, "random")  # warm-up: kernels, allocator, at this budget's shapes
    bare_body(loaded, token_ids, batches)
    _peak_bytes(reset=True)
    ours = timed(lambda: meter.measure(loaded, prompts, "random"), repeats)
    peak_measure = _peak_bytes()
    bare = timed(lambda: bare_body(loaded, token_ids, batches), repeats)
    measurement = meter.measure(loaded, prompts, "random")
    seconds = statistics.median(ours)
    flops = 2 * sizes["body_params"]
    peak = sizes["peak_flops"]
    return {
        "token_budget": budget,
        "batches": len(batches),
        "padded_tokens": padded,
        "measure_s": [round(t, 4) for t in ours],
        "bare_s": [round(t, 4) for t in bare],
        "ratio": round(seconds / statistics.median(bare), 4),
        "tokens_per_s": round(sizes["tokens"] / seconds),
        "mfu": round(flops * sizes["tokens"] / seconds / peak, 4) if peak else None,
        "mfu_padded": round(flops * padded / seconds / peak, 4) if peak else None,
        "peak_gib_measure": round(peak_measure / 2**30, 3) if peak_measure else None,
        "peak_over_weights": round(peak_measure / sizes["weight_bytes"], 4) if peak_measure else None,
        "attn_implementation": measurement.provenance.attn_implementation,
        "budget_halvings": measurement.provenance.budget_halvings,
        "gains_finite": all(map(math.isfinite, measurement.attn_gains + measurement.mlp_gains)),
        "final_mlp_gain": measurement.mlp_gains[-1],
    }


def run(config_name: str, dtype: str, n_prompts: int, budgets: list[int], repeats: int, device: str = "cuda") -> dict:
    import torch

    from gainscale.attention import attention_candidates, attention_implementation
    from gainscale.loading import LoadedModel
    from gainscale.meter import default_token_budget
    from gainscale.randommodels import train_tokenizer
    from gainscale.suites import ModelSpec

    device_name = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else "cpu"
    started = time.perf_counter()
    model = build_on_device(config_name, dtype, device)
    build_seconds = time.perf_counter() - started
    loaded = LoadedModel(ModelSpec(name=f"{config_name}-random", source="random"), model, train_tokenizer(), device, dtype)
    prompts = prompt_set(n_prompts)
    token_ids = [loaded.tokenizer(p)["input_ids"] for p in prompts.prompts]
    body = model.base_model
    sizes = {
        "weight_bytes": sum(p.numel() * p.element_size() for p in model.parameters()),
        "body_params": sum(p.numel() for p in body.parameters()) - body.get_input_embeddings().weight.numel(),
        "tokens": sum(map(len, token_ids)),
        "peak_flops": peak_flops(device_name),
    }
    chosen = default_token_budget(device)
    result = {
        "device": device_name, "torch": torch.__version__, "config": config_name, "dtype": dtype,
        "n_params": sum(p.numel() for p in model.parameters()), **sizes,
        "build_seconds": round(build_seconds, 2), "prompts": n_prompts, "chosen_budget": chosen, "runs": [],
    }
    # both sides under the kernel the meter picks, so that the ratio compares hooks and nothing else
    with attention_implementation(model, attention_candidates(device, dtype), loaded.spec.name) as attn:
        result["attn_implementation"] = attn
        for budget in sorted(set(budgets) | {chosen}):
            row = run_budget(loaded, prompts, token_ids, budget, repeats, sizes)
            result["runs"].append(row)
            print(json.dumps(row), flush=True)
    result["gemm_ceiling"] = gemm_ceiling(model, chosen, repeats, sizes["peak_flops"])
    print(json.dumps({"gemm_ceiling": result["gemm_ceiling"]}), flush=True)
    result["targets"] = judge(result)
    return result


def judge(result: dict) -> dict:
    """The targets at the chosen budget: MFU >= 60% and measurement / bare <= 1.05."""
    row = next(r for r in result["runs"] if r["token_budget"] == result["chosen_budget"])
    mfu_met = None if row["mfu"] is None else row["mfu"] >= MFU_TARGET
    return {
        "budget": row["token_budget"],
        "mfu": row["mfu"], "mfu_target": MFU_TARGET, "mfu_met": mfu_met,
        "ratio": row["ratio"], "ratio_target": RATIO_TARGET, "ratio_met": row["ratio"] <= RATIO_TARGET,
        "gains_finite": row["gains_finite"],
    }


def default_out(result: dict) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", result["device"].lower().replace("nvidia", "")).strip("-")
    return Path(__file__).parent / f"results-{slug}-{result['config']}-{result['dtype']}-scale.json"


def print_table(result: dict) -> None:
    gib = result["weight_bytes"] / 2**30
    print(f"\n{result['config']} ({result['n_params']:,} parameters, {gib:.1f} GiB of {result['dtype']} weights) on "
          f"{result['device']}, {result['attn_implementation']} attention, built in {result['build_seconds']} s; "
          f"{result['prompts']} prompts, {result['tokens']:,} tokens")
    print(f"{'budget':>7} {'batches':>7} {'padding':>7} {'measure s':>10} {'bare s':>8} {'ratio':>6} {'tokens/s':>9} "
          f"{'MFU':>6} {'MFU pad':>7} {'peak/weights':>12}")
    for r in result["runs"]:
        mark = "*" if r["token_budget"] == result["chosen_budget"] else " "
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "?"
        mfu_padded = f"{r['mfu_padded']:.1%}" if r["mfu_padded"] is not None else "?"
        peak = f"{r['peak_over_weights']:.3f}" if r["peak_over_weights"] else "?"
        print(f"{r['token_budget']:>6}{mark} {r['batches']:>7} {r['padded_tokens'] / result['tokens'] - 1:>7.1%} "
              f"{statistics.median(r['measure_s']):>10.3f} {statistics.median(r['bare_s']):>8.3f} {r['ratio']:>6.3f} "
              f"{r['tokens_per_s']:>9,} {mfu:>6} {mfu_padded:>7} {peak:>12}")
    g = result["gemm_ceiling"]
    gemm_mfu = f"{g['mfu']:.1%}" if g["mfu"] is not None else "?"
    print(f"the body's matrix products alone at {g['tokens']} tokens: {g['tflops']} TFLOP/s, MFU {gemm_mfu}")
    t = result["targets"]
    print(f"targets at budget {t['budget']} (*): MFU {t['mfu']} >= {t['mfu_target']}: {t['mfu_met']}; "
          f"ratio {t['ratio']} <= {t['ratio_target']}: {t['ratio_met']}; gains finite: {t['gains_finite']}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="pythia-12b", help="a Pythia model (pythia-12b) or a tiny-suite one (tiny-s)")
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--prompts", type=int, default=1024, help="variants of the shipped prompts (about 45 tokens each)")
    parser.add_argument("--budgets", default="4096,8192,16384,32768", help="token budgets to try; the default one is always added")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, help="where the JSON result goes (default: benchmarks/results-<gpu>-<config>-<dtype>.json)")
    parser.add_argument("--dry-run", action="store_true", help="the same steps on the CPU with tiny-s in float32 and few prompts")
    args = parser.parse_args(argv)
    if args.dry_run:
        args.config, args.dtype, args.device, args.prompts, args.repeats, args.budgets = "tiny-s", "float32", "cpu", 24, 1, "128,256"
    result = run(args.config, args.dtype, args.prompts, [int(b) for b in args.budgets.split(",")], args.repeats, args.device)
    out = args.out or (None if args.dry_run else default_out(result))
    if out:
        out.write_text(json.dumps(result, indent=1))
        print(f"wrote {out}")
    print_table(result)
    targets = result["targets"]
    missed = targets["mfu_met"] is False or not targets["ratio_met"] or not targets["gains_finite"]
    return 1 if missed and not args.dry_run else 0


if __name__ == "__main__":
    sys.exit(main())
