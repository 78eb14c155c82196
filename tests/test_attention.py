"""The attention kernel: the fastest one the model accepts here, a clean fallback, restored after."""

from __future__ import annotations

import pytest

from gainscale.attention import attention_candidates, attention_implementation
from gainscale.errors import MeasurementError


class FakeConfig:
    def __init__(self, implementation):
        self._attn_implementation = implementation


class FakeModel:
    """Refuses the kernels in ``refused`` the way transformers does (ValueError / ImportError)."""

    def __init__(self, implementation="eager", refused=()):
        self.config = FakeConfig(implementation)
        self.refused = dict(refused)
        self.asked = []

    def set_attn_implementation(self, name):
        self.asked.append(name)
        if name in self.refused:
            raise self.refused[name](f"{name} is not supported here\nsecond line")
        self.config._attn_implementation = name


def test_flash_attention_only_where_installed_on_cuda_in_half_precision(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: object() if name == "flash_attn" else None)
    assert attention_candidates("cuda:1", "bfloat16") == ["flash_attention_2", "sdpa", "eager"]
    assert attention_candidates("cuda", "float32") == ["sdpa", "eager"]
    assert attention_candidates("cpu", "float16") == ["sdpa", "eager"]
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert attention_candidates("cuda", "float16") == ["sdpa", "eager"]


def test_falls_back_past_refused_kernels_and_restores_the_models_own():
    model = FakeModel("eager", refused={"flash_attention_2": ImportError, "sdpa": ValueError})
    with attention_implementation(model, ["flash_attention_2", "sdpa", "eager"]) as chosen:
        assert chosen == "eager" == model.config._attn_implementation
    assert model.asked == ["flash_attention_2", "sdpa"]  # eager was already in force


def test_the_first_accepted_kernel_is_used_and_the_old_one_comes_back():
    model = FakeModel("eager", refused={"flash_attention_2": ImportError})
    with attention_implementation(model, ["flash_attention_2", "sdpa", "eager"]) as chosen:
        assert chosen == "sdpa" == model.config._attn_implementation
    assert model.config._attn_implementation == "eager"


def test_restored_even_when_the_block_fails():
    model = FakeModel("eager")
    with pytest.raises(RuntimeError), attention_implementation(model, ["sdpa", "eager"]):
        raise RuntimeError("measuring failed")
    assert model.config._attn_implementation == "eager"


def test_a_single_kernel_asked_for_and_refused_is_an_error_naming_it():
    model = FakeModel("sdpa", refused={"flash_attention_2": ValueError})
    with pytest.raises(MeasurementError, match=r"pythia-1b: attention implementation 'flash_attention_2' is not available .*flash_attention_2 is not supported here\)"):
        with attention_implementation(model, ["flash_attention_2"], "pythia-1b"):
            pass
    assert model.config._attn_implementation == "sdpa"


def test_a_model_that_cannot_switch_keeps_its_own():
    class Fixed:
        config = FakeConfig("eager")

    with attention_implementation(Fixed(), ["sdpa", "eager"]) as chosen:
        assert chosen == "eager"
