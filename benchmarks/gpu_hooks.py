"""Where the GPU time of a measurement goes beyond the bare body, and what the hooks' token
norms cost under other implementations.

On one CUDA device, a random-weight model of a Pythia config (built as gpu_scale.py builds it):

1. the CUDA kernels of one measurement and of one bare body forward over the same batches,
   by total time (torch.profiler), and the difference: what the hooks add;
2. :func:`gainscale.meter.token_norms` against alternatives on one batch-sized activation:
   time, and the largest relative difference from a float64 reference;
3. the measurement against the bare body (gpu_scale.py's row) under each alternative.

Run it where a GPU is: ``PYTHONPATH=. python benchmarks/gpu_hooks.py --config pythia-12b``.
Without one, ``--dry-run`` runs the same steps on the CPU with a tiny config (tests do).

What it found on an H200 (pythia-12b, float16, 1024 prompts, budget 16384; kept in
``results-h200-pythia-12b-float16-hooks.json``): the hooks add 1.3% of CUDA kernel time
(2079 ms against 2053), and :func:`~gainscale.meter.token_norms` as it is (one reduction
reading float16 and summing in float32) is the fastest of the variants (0.066 ms against
0.15-0.32 ms). The rest of the gap was host work before and after the forward passes
(tokenizing one prompt at a time, building the result), since trimmed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location("gpu_scale", Path(__file__).with_name("gpu_scale.py"))
gpu_scale = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_scale)


def norm_variants() -> dict:
    """Implementations of token_norms to compare: name -> function of (B, T, C) -> (B, T) float32."""
    import torch

    from gainscale import meter

    def upcast_first(hidden):
        return torch.linalg.vector_norm(hidden.float(), dim=-1)

    def chunked(hidden, rows: int = 1024):
        flat = hidden.reshape(-1, hidden.shape[-1])
        parts = [torch.linalg.vector_norm(flat[i : i + rows], dim=-1, dtype=torch.float32) for i in range(0, flat.shape[0], rows)]
        return torch.cat(parts).reshape(hidden.shape[:-1])

    def squares_matmul(hidden):
        flat = hidden.reshape(-1, 1, hidden.shape[-1])
        return torch.bmm(flat, flat.transpose(1, 2), out_dtype=torch.float32).reshape(hidden.shape[:-1]).sqrt()

    variants = {"current": meter.token_norms, "upcast_first": upcast_first, "chunked_1024": chunked,
                "bmm_out_float32": squares_matmul}
    if torch.cuda.is_available():  # on a CPU, Inductor would need a C++ compiler; the GPU is what matters
        variants["compiled"] = torch.compile(lambda hidden: torch.linalg.vector_norm(hidden.float(), dim=-1), dynamic=True)
    return variants


def compare_norms(hidden, variants: dict, repeats: int) -> dict:
    import torch

    reference = torch.linalg.vector_norm(hidden.double(), dim=-1)
    rows = {}
    for name, function in variants.items():
        try:
            function(hidden)  # warm-up (and compilation)
            seconds = statistics.median(gpu_scale.timed(lambda: function(hidden), repeats))
            error = ((function(hidden).double() - reference).abs() / reference).max().item()
            rows[name] = {"ms": round(seconds * 1e3, 4), "max_rel_error": error}
        except Exception as failure:  # a variant this torch lacks is a finding, not a crash
            rows[name] = {"error": f"{type(failure).__name__}: {str(failure).splitlines()[0][:200]}"}
        print(json.dumps({"norm": name, **rows[name]}), flush=True)
    return rows


def kernel_table(function, top: int = 12) -> list[dict]:
    """The CUDA kernels ``function`` ran, by total device time."""
    from torch.profiler import ProfilerActivity, profile

    import torch

    activity = ProfilerActivity.CUDA if torch.cuda.is_available() else ProfilerActivity.CPU  # CPU: a dry run
    gpu_scale._synchronize()
    with profile(activities=[activity]) as prof:
        function()
        gpu_scale._synchronize()
    rows = []
    for event in prof.key_averages():
        total = event.device_time_total if activity == ProfilerActivity.CUDA else event.self_cpu_time_total
        if total:
            rows.append({"kernel": event.key[:90], "calls": event.count, "ms": round(total / 1e3, 3)})
    rows.sort(key=lambda r: -r["ms"])
    return rows[:top] + [{"kernel": "(all)", "calls": sum(r["calls"] for r in rows), "ms": round(sum(r["ms"] for r in rows), 3)}]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="pythia-12b")
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--prompts", type=int, default=1024)
    parser.add_argument("--budget", type=int, default=16384)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--dry-run", action="store_true", help="the same steps on the CPU with tiny-s in float32 and few prompts")
    args = parser.parse_args(argv)
    if args.dry_run:
        args.config, args.dtype, args.device, args.prompts, args.repeats, args.budget = "tiny-s", "float32", "cpu", 12, 1, 256

    import torch

    from gainscale import meter
    from gainscale.attention import attention_candidates, attention_implementation
    from gainscale.loading import LoadedModel
    from gainscale.randommodels import train_tokenizer
    from gainscale.suites import ModelSpec

    model = gpu_scale.build_on_device(args.config, args.dtype, args.device)
    loaded = LoadedModel(ModelSpec(name=f"{args.config}-random", source="random"), model, train_tokenizer(), args.device, args.dtype)
    prompts = gpu_scale.prompt_set(args.prompts)
    token_ids = [loaded.tokenizer(p)["input_ids"] for p in prompts.prompts]
    body = model.base_model
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    sizes = {
        "weight_bytes": sum(p.numel() * p.element_size() for p in model.parameters()),
        "body_params": sum(p.numel() for p in body.parameters()) - body.get_input_embeddings().weight.numel(),
        "tokens": sum(map(len, token_ids)),
        "peak_flops": gpu_scale.peak_flops(device_name),
    }
    result = {"device": device_name, "torch": torch.__version__, "config": args.config, "dtype": args.dtype}
    batches = meter.plan_batches(token_ids, args.budget)
    one = batches[len(batches) // 2]
    measuring = meter.GainMeter(progress=False, token_budget=args.budget)
    hidden = torch.randn(sum(len(token_ids[i]) for i in one), model.config.hidden_size, device=args.device,
                         dtype=getattr(torch, args.dtype)) * 8
    original = meter.token_norms
    with attention_implementation(model, attention_candidates(args.device, args.dtype), loaded.spec.name) as attn:
        result["attn_implementation"] = attn
        measuring.measure(loaded, prompts, "random")
        result["kernels_bare"] = kernel_table(lambda: gpu_scale.bare_body(loaded, token_ids, batches))
        result["kernels_measure"] = kernel_table(lambda: measuring.measure(loaded, prompts, "random"))
        for side in ("kernels_bare", "kernels_measure"):
            print(side, *(f"  {r['ms']:>10.3f} ms {r['calls']:>6} x {r['kernel']}" for r in result[side]), sep="\n", flush=True)
        result["norms"] = compare_norms(hidden, norm_variants(), 20)
        result["runs"] = {}
        for name, function in norm_variants().items():
            if "error" in result["norms"][name]:
                continue
            meter.token_norms = function
            try:
                row = gpu_scale.run_budget(loaded, prompts, token_ids, args.budget, args.repeats, sizes)
            finally:
                meter.token_norms = original
            result["runs"][name] = row
            print(json.dumps({"variant": name, "ratio": row["ratio"], "mfu": row["mfu"], "final_mlp_gain": row["final_mlp_gain"]}), flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
