"""benchmarks/gpu_scale.py and gpu_hooks.py run their CPU-side logic end to end (``--dry-run``): no GPU needed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gpu_scale():
    return load_script("gpu_scale")


def test_dry_run_measures_every_budget_and_writes_the_json(gpu_scale, tmp_path, capsys):
    out = tmp_path / "result.json"
    assert gpu_scale.main(["--dry-run", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["device"] == "cpu" and result["config"] == "tiny-s" and result["chosen_budget"] == 512
    assert [r["token_budget"] for r in result["runs"]] == [128, 256, 512]
    for row in result["runs"]:
        assert row["attn_implementation"] == result["attn_implementation"] == "sdpa"
        assert row["gains_finite"] and row["ratio"] > 0 and row["padded_tokens"] >= result["tokens"]
        assert row["mfu"] is None  # no peak FLOP/s for a CPU
    assert result["targets"]["budget"] == 512 and result["targets"]["mfu_met"] is None
    assert result["gemm_ceiling"]["tokens"] == 512 and result["gemm_ceiling"]["seconds"] > 0  # tflops can round to 0 on a busy CPU
    assert "targets at budget 512" in capsys.readouterr().out


def test_hooks_dry_run_profiles_both_sides_and_every_norm_variant_agrees(tmp_path):
    out = tmp_path / "hooks.json"
    assert load_script("gpu_hooks").main(["--dry-run", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["kernels_bare"][-1]["kernel"] == result["kernels_measure"][-1]["kernel"] == "(all)"
    assert result["kernels_measure"][-1]["calls"] > result["kernels_bare"][-1]["calls"]  # the hooks' own ops
    usable = {name: row for name, row in result["norms"].items() if "error" not in row}
    assert "current" in usable and all(row["max_rel_error"] < 1e-5 for row in usable.values())
    gains = {row["final_mlp_gain"] for row in result["runs"].values()}
    assert set(result["runs"]) == set(usable) and max(gains) - min(gains) < 1e-5 * max(gains)


def test_the_model_built_on_the_meta_device_matches_one_built_normally(gpu_scale):
    """to_empty + init_weights must initialise every buffer (the rotary frequencies) as a normal build does."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    built = gpu_scale.build_on_device("tiny-s", "float32", "cpu")
    settings = {k: v for k, v in gpu_scale.model_config("tiny-s").items() if k not in ("model_type", "architectures")}
    normal = AutoModelForCausalLM.from_config(AutoConfig.for_model("gpt_neox", **settings), dtype=torch.float32)
    buffers = dict(normal.named_buffers())
    for name, buffer in built.named_buffers():
        assert torch.equal(buffer, buffers[name]), name
    layer_norm = built.gpt_neox.layers[0].input_layernorm
    assert torch.equal(layer_norm.weight, torch.ones_like(layer_norm.weight))


@pytest.mark.parametrize(
    "name, flops",
    [("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA H200", 989e12), ("NVIDIA H100 PCIe", 756e12), ("cpu", None)],
)
def test_peak_flops_by_device_name(gpu_scale, name, flops):
    assert gpu_scale.peak_flops(name) == flops


def test_targets_are_judged_at_the_chosen_budget(gpu_scale):
    runs = [{"token_budget": 8192, "mfu": 0.7, "ratio": 1.01, "gains_finite": True},
            {"token_budget": 16384, "mfu": 0.55, "ratio": 1.04, "gains_finite": True}]
    targets = gpu_scale.judge({"chosen_budget": 16384, "runs": runs})
    assert (targets["mfu_met"], targets["ratio_met"], targets["budget"]) == (False, True, 16384)
