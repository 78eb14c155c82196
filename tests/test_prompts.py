"""Prompt sets: the shipped one fits the spec; bad files are refused with the reason."""

from __future__ import annotations

import pytest

from gainscale.errors import PromptError
from gainscale.prompts import load_prompts


def test_default_set_has_at_least_32_prompts_of_10_to_40_tokens():
    """Counted with GPT-NeoX's byte-level pre-tokenizer: each piece is at least one token, and
    plain English words are one token each in its 50k vocabulary, so 10-30 pieces keeps every
    prompt within 10-40 tokens with room for rare words split in two."""
    from tokenizers.pre_tokenizers import ByteLevel

    prompts = load_prompts()
    assert len(prompts) >= 32 and len(set(prompts.prompts)) == len(prompts)
    pieces = [len(ByteLevel(add_prefix_space=False).pre_tokenize_str(p)) for p in prompts.prompts]
    assert min(pieces) >= 10 and max(pieces) <= 30, pieces


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("\n  \n")
    with pytest.raises(PromptError, match=r"p\.txt: no prompts; write one prompt per line"):
        load_prompts(path)


def test_non_utf8_file_is_refused_with_position(tmp_path):
    path = tmp_path / "p.txt"
    path.write_bytes("first prompt\nsecond \xe9t\xe9\n".encode("latin-1"))
    with pytest.raises(PromptError, match=r"not UTF-8 text \(byte 20, line 2\)"):
        load_prompts(path)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(PromptError, match=r"nope\.txt: cannot read the prompt file \(No such file"):
        load_prompts(tmp_path / "nope.txt")


def test_prompt_longer_than_context_is_named(small_model_dir, tmp_path):
    from conftest import local_spec

    from gainscale.loading import LoadOptions, load_model
    from gainscale.meter import GainMeter

    path = tmp_path / "p.txt"
    path.write_text("short prompt\n" + "word " * 400 + "\n")
    with load_model(local_spec(small_model_dir), "x", LoadOptions(device="cpu")) as loaded:
        with pytest.raises(PromptError, match=r"small: prompt 2 of .*p\.txt has [\d,]+ tokens; the model's context is 256"):
            GainMeter(progress=False).measure(loaded, load_prompts(path), "x")
