"""The attention kernel a measurement runs: the fastest transformers offers for the model here.

flash_attention_2 where the ``flash_attn`` package is installed, on CUDA, in float16 or
bfloat16 (transformers would otherwise fetch a kernel from the hub, which gainscale never
does); else PyTorch's scaled-dot-product attention (``sdpa``); else ``eager``. A model that
refuses one falls back to the next. The kernel changes no gain beyond rounding: right padding
keeps every real token's attention the same under each of them.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .errors import MeasurementError

#: what gainscale may request, fastest first
IMPLEMENTATIONS = ("flash_attention_2", "sdpa", "eager")


def attention_candidates(device: str, dtype: str) -> list[str]:
    """The implementations worth trying for ``device`` and ``dtype``, fastest first."""
    flash = (
        device.startswith("cuda")
        and dtype in ("float16", "bfloat16")
        and importlib.util.find_spec("flash_attn") is not None
    )
    return [name for name in IMPLEMENTATIONS if name != "flash_attention_2" or flash]


def current_implementation(model: Any) -> str:
    """The attention implementation ``model`` runs now, e.g. ``sdpa``."""
    return str(getattr(model.config, "_attn_implementation", None) or "unknown")


@contextmanager
def attention_implementation(model: Any, candidates: list[str], name: str = "model") -> Iterator[str]:
    """Run the block with the first of ``candidates`` that ``model`` accepts; restore it after.

    Yields the implementation in force. A model whose transformers cannot switch kernels
    after loading keeps its own, and that is what is yielded.

    Raises
    ------
    MeasurementError
        When the model accepts none of ``candidates`` (only possible for a single one asked for).
    """
    before = current_implementation(model)
    chosen = _switch(model, candidates, name)
    try:
        yield chosen
    finally:
        if chosen != before:
            _restore(model, before)


def _switch(model: Any, candidates: list[str], name: str) -> str:
    setter = getattr(model, "set_attn_implementation", None)
    if setter is None:  # transformers before set_attn_implementation: keep what it loaded with
        return current_implementation(model)
    refusals = []
    for candidate in candidates:
        if candidate == current_implementation(model):
            return candidate
        try:
            with _quiet_transformers_logger():
                setter(candidate)
        except (ValueError, ImportError, RuntimeError) as error:
            refusals.append(f"{candidate}: {str(error).splitlines()[0] if str(error) else type(error).__name__}")
            continue
        if current_implementation(model) == candidate:
            return candidate
        refusals.append(f"{candidate}: not switched to")
    if len(candidates) > 1:  # eager is always last and always accepted; this is defensive
        return current_implementation(model)
    raise MeasurementError(
        f"{name}: attention implementation {candidates[0]!r} is not available for this model here "
        f"({'; '.join(refusals)}); ask for one of {', '.join(IMPLEMENTATIONS)} or leave it to gainscale"
    )


def _restore(model: Any, implementation: str) -> None:
    """Put the model's own kernel back; where transformers refuses, the faster one stays (same gains)."""
    try:
        with _quiet_transformers_logger():
            model.set_attn_implementation(implementation)
    except (ValueError, ImportError, RuntimeError):
        pass


@contextmanager
def _quiet_transformers_logger() -> Iterator[None]:
    """transformers logs a warning where a model cannot switch; gainscale reports the outcome itself."""
    logger = logging.getLogger("transformers.modeling_utils")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
