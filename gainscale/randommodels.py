"""Random-weight models saved like real checkpoints, for the ``tiny`` suite, tests and benchmarks.

No Pythia weights can be had here, so everything that loads a model is exercised on
GPT-NeoX models built from a config with random weights, saved with ``save_pretrained``
(safetensors) plus a byte-level BPE tokenizer trained locally on a few sentences, and loaded
back through the same loader a real checkpoint takes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from filelock import FileLock

from .loading import quiet_transformers
from .prompts import load_prompts


def build_random_model(
    directory: str | Path,
    config: Mapping[str, Any],
    seed: int,
    tokenizer_vocab: int = 512,
) -> Path:
    """Save a randomly initialised causal-LM and a tokenizer into ``directory``.

    The same ``config`` and ``seed`` give bit-identical weights. The directory appears
    complete or not at all: it is built beside and renamed into place.

    Parameters
    ----------
    directory
        Where the checkpoint goes; must not exist yet.
    config
        A config.json dict (``model_type`` included).
    seed
        Seed of the weight initialisation.
    tokenizer_vocab
        Vocabulary of the tokenizer trained for it (at most the model's ``vocab_size``).
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    directory = Path(directory)
    settings = {k: v for k, v in config.items() if k != "model_type"}
    hf_config = AutoConfig.for_model(config["model_type"], **settings)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(hf_config, dtype=torch.float32)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        with quiet_transformers():
            model.save_pretrained(staging)
        train_tokenizer(min(tokenizer_vocab, hf_config.vocab_size)).save_pretrained(staging)
        os.replace(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


def ensure_random_model(directory: str | Path, config: Mapping[str, Any], seed: int) -> Path:
    """Build the model at ``directory`` unless it is there; safe when processes race."""
    directory = Path(directory)
    if (directory / "config.json").exists():
        return directory
    directory.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(directory) + ".lock"):
        if not (directory / "config.json").exists():
            build_random_model(directory, config, seed)
    return directory


def add_hub_snapshot(hub: str | Path, repo_id: str, revision: str, checkpoint: str | Path, sha: str | None = None) -> str:
    """Lay ``checkpoint`` out as revision ``revision`` of ``repo_id`` in a Hugging Face hub cache.

    ``hub/models--ORG--NAME/refs/REVISION`` holds a commit sha and ``snapshots/SHA/`` the
    files (links to the checkpoint), as ``huggingface_hub`` keeps a download: a model loaded
    with ``HF_HUB_CACHE=hub HF_HUB_OFFLINE=1`` and that revision finds it with no network.
    Returns the sha (derived from the repo and revision unless given).
    """
    import hashlib

    sha = sha or hashlib.sha1(f"{repo_id}@{revision}".encode()).hexdigest()
    repo = Path(hub) / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / sha
    snapshot.mkdir(parents=True)
    for file in Path(checkpoint).iterdir():
        (snapshot / file.name).symlink_to(file.resolve())
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / revision).write_text(sha)
    return sha


def train_tokenizer(vocab_size: int = 512):
    """A byte-level BPE tokenizer (GPT-NeoX's kind) trained on the default prompts."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(load_prompts().prompts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<|endoftext|>", eos_token="<|endoftext|>"
    )
