"""Loading a model the way a Hugging Face user would, and only that way.

``AutoModelForCausalLM.from_pretrained`` with a revision, dtype and device; safetensors only
unless the user opts in (pickle files run code when loaded); ``trust_remote_code`` off unless
asked; ``HF_HUB_OFFLINE`` honoured; ``device_map="auto"`` on request. One model is in memory
at a time: :class:`LoadedModel` is a context manager that frees it on exit.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import re
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelLoadError
from .suites import ModelSpec

_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt")
#: local weight files up to this size are fingerprinted by content, larger ones by size and mtime
_CONTENT_HASH_LIMIT = 64 * 2**20


@dataclass(frozen=True)
class LoadOptions:
    """How to load: the same names as the CLI flags and pytest options."""

    #: ``cpu``, ``cuda``, ``cuda:N`` or None for CUDA when present
    device: str | None = None
    #: ``float32``, ``float16``, ``bfloat16`` or None for float16 on CUDA, float32 on CPU
    dtype: str | None = None
    #: permit pickle-based weights (``pytorch_model.bin``); they can run code when loaded
    allow_pickle: bool = False
    #: run model code from the hub; never on unless asked
    trust_remote_code: bool = False
    #: ``"auto"`` to spread a model larger than one device over several (needs accelerate)
    device_map: str | None = None
    #: show transformers' loading progress bar
    progress: bool = True


def offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` forbids the hub (read at call time, as huggingface_hub does)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def default_device() -> str:
    """CUDA when present, else CPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def default_dtype(device: str) -> str:
    """float16 on CUDA, as the paper; float32 elsewhere."""
    return "float16" if device.startswith("cuda") else "float32"


def device_available(device: str) -> bool:
    """Whether ``device`` exists here, importing torch only when asked about CUDA."""
    if device == "cpu":
        return True
    try:
        import torch
    except ImportError:
        return False
    if device.startswith("cuda"):
        index = int(device.partition(":")[2] or 0)
        return torch.cuda.is_available() and index < torch.cuda.device_count()
    return device == "mps" and torch.backends.mps.is_available()


# ---------------------------------------------------------------------------- revisions


def resolve_revision(spec: ModelSpec) -> str:
    """The commit sha a hub revision points at now, or a local directory's fingerprint.

    Uses the network only for a hub branch or tag that the local Hugging Face cache does
    not know, and never when ``HF_HUB_OFFLINE`` is set.
    """
    if spec.local:
        return local_fingerprint(Path(spec.source))
    revision = spec.revision or "main"
    if _COMMIT.match(revision):
        return revision
    sha = _hf_cache_ref(spec.source, revision)
    if sha:
        return sha
    if offline():
        raise ModelLoadError(
            f"{spec.name}: cannot resolve revision {revision!r} of {spec.source}: HF_HUB_OFFLINE is set "
            "and the local Hugging Face cache does not have it; unset HF_HUB_OFFLINE or download the model first"
        )
    return _hub_ref(spec, revision)


def _hf_cache_ref(repo_id: str, revision: str) -> str | None:
    from huggingface_hub.constants import HF_HUB_CACHE

    ref = Path(HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}" / "refs" / revision
    try:
        sha = ref.read_text().strip()
    except OSError:
        return None
    return sha if _COMMIT.match(sha) else None


def _hub_ref(spec: ModelSpec, revision: str) -> str:
    from huggingface_hub import HfApi

    try:
        return HfApi().model_info(spec.source, revision=revision).sha
    except Exception as error:  # the hub client raises many kinds; all mean the same here
        raise ModelLoadError(
            f"{spec.name}: cannot resolve revision {revision!r} of {spec.source} on the hub "
            f"({type(error).__name__}: {_first_line(error)}); check the hub id and the network, "
            "or pass a local directory"
        ) from None


def local_fingerprint(directory: Path) -> str:
    """Identify a local checkpoint by its config and weights without reading large files.

    Small weight files are hashed by content (so a rebuilt random model with the same seed
    keeps its identity); large ones by name, size and modification time.
    """
    check_local_directory(directory, allow_pickle=True)
    digest = hashlib.sha256((directory / "config.json").read_bytes())
    for path in sorted(p for p in directory.iterdir() if p.is_file() and _is_weight_file(p)):
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}".encode())
        if stat.st_size <= _CONTENT_HASH_LIMIT:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        else:
            digest.update(str(stat.st_mtime_ns).encode())
    return "local-" + digest.hexdigest()[:24]


def _is_weight_file(path: Path) -> bool:
    return path.suffix in {".safetensors", ".bin", ".pt", ".pth", ".ckpt"} or path.name.endswith(".index.json")


def check_local_directory(directory: Path, allow_pickle: bool) -> None:
    """Refuse a local directory that has no config, no weights, or only pickle weights."""
    if not directory.is_dir():
        raise ModelLoadError(f"{directory}: no such model directory")
    if not (directory / "config.json").is_file():
        raise ModelLoadError(
            f"{directory}: no config.json; point at a directory written by save_pretrained"
        )
    if any(directory.glob("*.safetensors")):
        return
    pickles = sorted(p.name for pattern in _PICKLE_WEIGHTS for p in directory.glob(pattern))
    if not pickles:
        raise ModelLoadError(f"{directory}: no weights (*.safetensors); point at a directory written by save_pretrained")
    if not allow_pickle:
        raise ModelLoadError(_pickle_refusal(str(directory), pickles))


def _pickle_refusal(where: str, files: list[str]) -> str:
    return (
        f"{where}: has only pickle weights ({', '.join(files)}), which can run arbitrary code when "
        "loaded; convert them to safetensors, or pass --allow-pickle if you trust their origin"
    )


# ---------------------------------------------------------------------------- loading


class LoadedModel:
    """A loaded causal-LM and its tokenizer; leaving the ``with`` block frees the memory."""

    def __init__(self, spec: ModelSpec, model: Any, tokenizer: Any, device: str, dtype: str):
        self.spec = spec
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.dtype = dtype

    def __enter__(self) -> LoadedModel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Drop the model and return its memory before the next one is loaded."""
        self.model = self.tokenizer = None
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def load_model(spec: ModelSpec, resolved_revision: str, options: LoadOptions) -> LoadedModel:
    """Load ``spec`` at ``resolved_revision`` as ``options`` say.

    Raises
    ------
    ModelLoadError
        Naming the model and what to do: a missing directory, config, weights or tokenizer,
        pickle-only weights without ``allow_pickle``, a hub that cannot be reached, ...
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = options.device or default_device()
    dtype = options.dtype or default_dtype(device)
    if spec.local:
        check_local_directory(Path(spec.source), options.allow_pickle)
    revision = None if spec.local else resolved_revision
    common = dict(revision=revision, trust_remote_code=options.trust_remote_code)
    placement = _placement(options, device)
    try:
        with nullcontext() if options.progress else quiet_transformers():
            model = AutoModelForCausalLM.from_pretrained(
                spec.source,
                dtype=getattr(torch, dtype),
                use_safetensors=None if options.allow_pickle else True,
                **placement,
                **common,
            )
        tokenizer = AutoTokenizer.from_pretrained(spec.source, **common)
    except (OSError, ValueError) as error:
        raise ModelLoadError(_load_failure(spec, error, options)) from None
    model.eval()
    return LoadedModel(spec, model, tokenizer, device, dtype)


def _placement(options: LoadOptions, device: str) -> dict[str, Any]:
    if options.device_map is None:
        return {"device_map": device}
    if options.device_map != "auto":
        raise ModelLoadError(f"device_map {options.device_map!r} is not supported; use 'auto' or none")
    return {"device_map": "auto"}


def _load_failure(spec: ModelSpec, error: Exception, options: LoadOptions) -> str:
    text = _first_line(error)
    if "safetensors" in text.lower() and not options.allow_pickle:
        return _pickle_refusal(f"{spec.name} ({spec.source})", ["no *.safetensors"])
    where = spec.source if spec.local else f"{spec.source} (revision {spec.revision or 'main'})"
    hint = "" if spec.local else " Check the hub id and network; HF_HUB_OFFLINE=1 loads only what is cached."
    return f"{spec.name}: cannot load {where}: {text}.{hint}"


@contextmanager
def quiet_transformers():
    """Silence transformers' progress bars (loading, saving) for the duration."""
    from transformers.utils import logging

    enabled = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            logging.enable_progress_bar()


def _first_line(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0].rstrip(".")


def read_config(spec: ModelSpec) -> dict[str, Any] | None:
    """The model's config.json as a dict, without weights: built-in, local, or None if unknown here."""
    if spec.config is not None:
        return dict(spec.config)
    path = Path(spec.source) / "config.json" if spec.local else None
    if path is not None and path.is_file():
        return json.loads(path.read_text())
    return None
