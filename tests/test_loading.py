"""Loading: safe by default, offline-capable, and precise about what is wrong with a checkpoint."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from conftest import local_spec
from hubcache import add_snapshot

from gainscale.errors import ModelLoadError
from gainscale.loading import LoadOptions, check_local_directory, load_model, read_config, resolve_revision
from gainscale.suites import ModelSpec

SHA = "0123456789abcdef0123456789abcdef01234567"


def test_directory_without_config_is_refused(model_copy):
    (model_copy / "config.json").unlink()
    with pytest.raises(ModelLoadError, match=r"model: no config\.json; point at a directory written by save_pretrained"):
        load_model(local_spec(model_copy), "x", LoadOptions(device="cpu"))


def test_directory_without_weights_is_refused(model_copy):
    (model_copy / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match=r"no weights \(\*\.safetensors\)"):
        load_model(local_spec(model_copy), "x", LoadOptions(device="cpu"))


def test_missing_directory_is_refused(tmp_path):
    with pytest.raises(ModelLoadError, match=r"nowhere: no such model directory"):
        load_model(local_spec(tmp_path / "nowhere"), "x", LoadOptions(device="cpu"))


def _to_pickle(directory):
    import torch
    from safetensors.torch import load_file

    torch.save(load_file(directory / "model.safetensors"), directory / "pytorch_model.bin")
    (directory / "model.safetensors").unlink()


def test_pickle_weights_need_an_explicit_opt_in(model_copy):
    """Pickle can run code when loaded: refused unless the user says --allow-pickle."""
    _to_pickle(model_copy)
    with pytest.raises(ModelLoadError, match=r"only pickle weights \(pytorch_model\.bin\), which can run arbitrary code.*--allow-pickle"):
        load_model(local_spec(model_copy), "x", LoadOptions(device="cpu"))
    with load_model(local_spec(model_copy), "x", LoadOptions(device="cpu", allow_pickle=True)) as loaded:
        assert loaded.model.config.model_type == "gpt_neox"


def test_remote_code_is_off_and_safetensors_on_unless_asked(small_model_dir, monkeypatch):
    from transformers import AutoModelForCausalLM

    seen = {}
    original = AutoModelForCausalLM.from_pretrained

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", spy)
    with load_model(local_spec(small_model_dir), "x", LoadOptions(device="cpu")):
        pass
    assert seen["trust_remote_code"] is False and seen["use_safetensors"] is True
    with load_model(local_spec(small_model_dir), "x", LoadOptions(device="cpu", trust_remote_code=True, allow_pickle=True)):
        pass
    assert seen["trust_remote_code"] is True and seen["use_safetensors"] is None


def test_default_dtype_on_cpu_is_float32(small_model_dir):
    import torch

    with load_model(local_spec(small_model_dir), "x", LoadOptions(device="cpu")) as loaded:
        assert loaded.dtype == "float32" and loaded.model.dtype == torch.float32
    with load_model(local_spec(small_model_dir), "x", LoadOptions(device="cpu", dtype="bfloat16")) as loaded:
        assert loaded.model.dtype == torch.bfloat16


def test_a_commit_revision_is_used_as_is():
    spec = ModelSpec(name="p", source="EleutherAI/pythia-70m", revision=SHA)
    assert resolve_revision(spec) == SHA


def test_branch_resolves_through_the_local_hf_cache_when_offline(tmp_path, monkeypatch):
    refs = tmp_path / "models--EleutherAI--pythia-70m" / "refs"
    refs.mkdir(parents=True)
    (refs / "step1000").write_text(SHA)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_revision(ModelSpec(name="p", source="EleutherAI/pythia-70m", revision="step1000")) == SHA
    with pytest.raises(ModelLoadError, match=r"p: cannot resolve revision 'main' of EleutherAI/pythia-70m: HF_HUB_OFFLINE is set"):
        resolve_revision(ModelSpec(name="p", source="EleutherAI/pythia-70m"))


def test_a_hub_models_config_is_read_from_the_local_hf_cache_without_the_network(tmp_path, monkeypatch):
    """A hub sweep's architecture is known once downloaded: the config of the commit measured, else the ref's."""
    def no_network(*args, **kwargs):
        raise AssertionError("read_config must not ask the hub")

    shas = {}
    for revision, layers in (("step0", 2), ("step1000", 3)):
        checkpoint = tmp_path / "checkpoints" / revision
        checkpoint.mkdir(parents=True)
        (checkpoint / "config.json").write_text(json.dumps({"model_type": "gpt_neox", "num_hidden_layers": layers}))
        shas[revision] = add_snapshot(tmp_path / "hub", "EleutherAI/pythia-sweep", revision, checkpoint)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.HfApi.model_info", no_network)
    spec = ModelSpec(name="p", source="EleutherAI/pythia-sweep", revision="step1000")
    assert read_config(spec) == {"model_type": "gpt_neox", "num_hidden_layers": 3}
    assert read_config(spec, resolved_revision=shas["step0"])["num_hidden_layers"] == 2  # the commit measured wins
    assert read_config(ModelSpec(name="p", source="EleutherAI/pythia-sweep", revision=shas["step0"]))["num_hidden_layers"] == 2
    assert read_config(ModelSpec(name="p", source="EleutherAI/pythia-sweep", revision="step5")) is None
    assert read_config(ModelSpec(name="p", source="EleutherAI/pythia-sweep")) is None  # no main in this cache
    assert read_config(spec, resolved_revision=SHA) is None  # a commit the cache does not have


def test_hub_failure_is_wrapped_with_model_and_advice(tmp_path, monkeypatch):
    def unreachable(self, repo_id, revision=None):
        raise ConnectionError("Failed to resolve 'huggingface.co'")

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr("huggingface_hub.HfApi.model_info", unreachable)
    with pytest.raises(ModelLoadError, match=r"p: cannot resolve revision 'main' of EleutherAI/pythia-70m on the hub \(ConnectionError: Failed"):
        resolve_revision(ModelSpec(name="p", source="EleutherAI/pythia-70m"))


def test_hub_id_loads_offline_from_the_hf_cache_through_the_real_path(pythia_70m_dir, tmp_path):
    """`gainscale measure pythia-70m` with the checkpoint laid out as the hub cache keeps it:
    the hub id resolves to the cached commit and loads with HF_HUB_OFFLINE=1, no network."""
    add_snapshot(tmp_path / "hub", "EleutherAI/pythia-70m", "main", pythia_70m_dir, SHA)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1", "GAINSCALE_CACHE": str(tmp_path / "gs")}
    command = [sys.executable, "-m", "gainscale.cli", "measure", "pythia-70m", "--device", "cpu", "--dtype", "float32", "--json", "--prompts", str(_two_prompts(tmp_path))]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["source"] == "EleutherAI/pythia-70m" and record["revision"] is None
    assert record["resolved_revision"] == SHA and record["n_params"] == 70_426_624
    assert len(record["attn_gains"]) == len(record["mlp_gains"]) == 6


def _two_prompts(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("The cat sat on the mat.\nA river flows to the sea.\n")
    return path


def test_check_local_directory_accepts_a_saved_checkpoint(small_model_dir):
    check_local_directory(small_model_dir, allow_pickle=False)


# ---------------------------------------------------------------------------- incomplete checkpoints


def _without_tokenizer(directory):
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (directory / name).unlink(missing_ok=True)


def _truncated(directory):
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


@pytest.mark.parametrize(
    "damage, message",
    [
        (_without_tokenizer, r"^gainscale: error: model: .*/model: no tokenizer \(tokenizer\.json, tokenizer\.model, vocab\.json, \.\.\.\); save the model's tokenizer into the directory too"),
        (_truncated, r"^gainscale: error: model: .*/model/model\.safetensors is truncated or corrupt \([\d,]+ bytes; its header says [\d,]+\); copy or download it again$"),
    ],
    ids=["no-tokenizer", "truncated-weights"],
)
def test_an_incomplete_checkpoint_is_one_line_naming_model_and_file_and_writes_nothing(model_copy, tmp_path, capsys, damage, message):
    from gainscale.cli import main

    damage(model_copy)
    cache = tmp_path / "cache"
    status = main(["measure", str(model_copy), "--cache", str(cache), "--device", "cpu", "-q"])
    out, err = capsys.readouterr()
    assert status == 2 and out == "" and err.count("\n") == 1, err
    assert re.search(message, err.strip()), err
    assert not cache.exists()


def test_a_corrupt_weights_file_that_passes_the_size_check_is_still_one_line(model_copy, monkeypatch):
    """What the header check cannot see (a header that lies) is caught where safetensors reads it."""
    weights = model_copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    length = int.from_bytes(data[:8], "little")
    header = data[8 : 8 + length].decode()
    data[8 : 8 + length] = header.replace('"F32"', '"F16"', 1).encode()  # same size, wrong dtype
    weights.write_bytes(bytes(data))
    check_local_directory(model_copy, allow_pickle=False)  # the size still adds up
    with pytest.raises(ModelLoadError, match=r"^small: a weights file of .*/model is truncated or corrupt \(.*\); copy or download it again$"):
        load_model(local_spec(model_copy), "x", LoadOptions(device="cpu", progress=False))


def test_safetensors_header_check_reads_the_header_alone(model_copy):
    from gainscale.loading import check_safetensors_file

    check_safetensors_file(model_copy / "model.safetensors")
    (model_copy / "model.safetensors").write_bytes(b"\xff" * 8 + b"{}")
    with pytest.raises(ModelLoadError, match=r"model\.safetensors is truncated or corrupt \(10 bytes; its header is unreadable\)"):
        check_safetensors_file(model_copy / "model.safetensors")
