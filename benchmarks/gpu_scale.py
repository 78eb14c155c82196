"""gainscale at real scale on a GPU: a random-weight model with a Pythia config, built on the GPU.

Measures, on one CUDA device and with the model built directly there (meta device, then
materialised and initialised in place; no weights are downloaded):

- gainscale's measurement of N prompts against the bare body forward over the same batches
  (target: ratio <= 1.10), for a few batch sizes;
- peak GPU memory of the measurement against the weights' bytes;
- tokens per second and model FLOPs utilisation (2 x body parameters x tokens, over the
  card's dense float16 peak).

Run it where a GPU is:  ``PYTHONPATH=. python benchmarks/gpu_scale.py --config pythia-12b``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

#: dense float16/bfloat16 tensor-core peaks, FLOP/s, by device-name fragment (datasheets, SXM)
PEAK_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}


def build_on_device(config_name: str, dtype_name: str, device: str):
    """The causal-LM of a Pythia config, random weights, built on the meta device and
    materialised on the GPU: no host copy of the weights is ever made."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from gainscale.suites import pythia_config

    settings = {k: v for k, v in pythia_config(config_name).items() if k not in ("model_type", "architectures")}
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


def bare_body(loaded, prompts, batch_size: int) -> None:
    """The same batches gainscale runs (same order, padding, batch size), no hooks, nothing kept."""
    import torch

    from gainscale.meter import length_order, pad_right

    token_ids = [loaded.tokenizer(p)["input_ids"] for p in prompts.prompts]
    order = length_order(token_ids)
    body = loaded.model.base_model
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            input_ids, mask = pad_right([token_ids[i] for i in order[start : start + batch_size]], loaded.device)
            body(input_ids=input_ids, attention_mask=mask, use_cache=False)


def _synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _peak_bytes(reset: bool = False) -> int | None:
    """The CUDA allocator's peak since the last reset (None on a CPU smoke run)."""
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


def run(config_name: str, dtype: str, n_prompts: int, batch_sizes: list[int], repeats: int, device: str = "cuda") -> dict:
    import torch

    from gainscale.loading import LoadedModel
    from gainscale.meter import GainMeter
    from gainscale.randommodels import train_tokenizer
    from gainscale.suites import ModelSpec

    device_name = torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu"
    peak = next((flops for key, flops in PEAK_FLOPS.items() if key in device_name), None)
    started = time.perf_counter()
    model = build_on_device(config_name, dtype, device)
    build_seconds = time.perf_counter() - started
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    body_params = sum(p.numel() for p in model.base_model.parameters()) - model.base_model.get_input_embeddings().weight.numel()
    loaded = LoadedModel(ModelSpec(name=f"{config_name}-random", source="random"), model, train_tokenizer(), device, dtype)
    prompts = prompt_set(n_prompts)
    tokens = sum(len(loaded.tokenizer(p)["input_ids"]) for p in prompts.prompts)
    result = {
        "device": device_name, "torch": torch.__version__, "config": config_name, "dtype": dtype,
        "n_params": sum(p.numel() for p in model.parameters()), "weight_bytes": weight_bytes,
        "build_seconds": round(build_seconds, 2), "prompts": n_prompts, "tokens": tokens, "runs": [],
    }
    for batch_size in batch_sizes:
        meter = GainMeter(batch_size=batch_size, progress=False)
        meter.measure(loaded, prompt_set(min(16, n_prompts)), "random")  # warm-up: kernels, allocator
        bare_body(loaded, prompts, batch_size)
        _peak_bytes(reset=True)
        ours = timed(lambda: meter.measure(loaded, prompts, "random"), repeats)
        peak_measure = _peak_bytes()
        _peak_bytes(reset=True)
        bare = timed(lambda: bare_body(loaded, prompts, batch_size), repeats)
        peak_bare = _peak_bytes()
        seconds = statistics.median(ours)
        measurement = meter.measure(loaded, prompts, "random")
        run = {
            "batch_size": batch_size,
            "measure_s": [round(t, 4) for t in ours], "bare_s": [round(t, 4) for t in bare],
            "ratio": round(seconds / statistics.median(bare), 4),
            "tokens_per_s": round(tokens / seconds),
            "mfu": round(2 * body_params * tokens / seconds / peak, 4) if peak else None,
            "peak_gib_measure": round(peak_measure / 2**30, 3) if peak_measure else None,
            "peak_gib_bare": round(peak_bare / 2**30, 3) if peak_bare else None,
            "peak_over_weights": round(peak_measure / weight_bytes, 4) if peak_measure else None,
            "final_mlp_gain": measurement.mlp_gains[-1], "attn_gain_layer0": measurement.attn_gains[0],
        }
        result["runs"].append(run)
        print(json.dumps(run), flush=True)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="pythia-12b")
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--batch-sizes", default="64,256")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda", help="cuda; cpu only for a smoke run of this script")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    result = run(args.config, args.dtype, args.prompts, [int(b) for b in args.batch_sizes.split(",")], args.repeats, args.device)
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text)
    gib = result["weight_bytes"] / 2**30
    print(f"\n{result['config']} ({result['n_params']:,} parameters, {gib:.1f} GiB of {result['dtype']} weights) on {result['device']}, "
          f"built in {result['build_seconds']} s; {result['prompts']} prompts, {result['tokens']:,} tokens")
    print(f"{'batch':>6} {'measure s':>10} {'bare s':>8} {'ratio':>6} {'tokens/s':>9} {'MFU':>6} {'peak GiB':>9} {'peak/weights':>12}")
    for r in result["runs"]:
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "?"
        peak = f"{r['peak_gib_measure']:>9.2f} {r['peak_over_weights']:>12.3f}" if r["peak_gib_measure"] else f"{'?':>9} {'?':>12}"
        print(f"{r['batch_size']:>6} {statistics.median(r['measure_s']):>10.3f} {statistics.median(r['bare_s']):>8.3f} {r['ratio']:>6.3f} "
              f"{r['tokens_per_s']:>9,} {mfu:>6} {peak}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
