"""Measuring gains: one forward pass of the transformer body over batches of prompts.

Beyond the paper's loop (one prompt per forward through the full causal-LM), and with the
same numbers: the LM head is skipped (its logits play no part in any gain), prompts are
grouped by length and right-padded with an attention mask (padded positions are excluded
from every norm), and forward hooks reduce each sublayer's input and output to per-prompt
mean norms on the device at once, so no activation is ever kept.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .architectures import find_sublayers
from .errors import MeasurementError, PromptError
from .loading import LoadedModel
from .measurement import METHOD_VERSION, Measurement, ModuleNorms, Provenance
from .progress import progress_bar
from .prompts import PromptSet


def default_batch_size(device: str) -> int:
    """Prompts per forward pass: small on CPU, where large batches stop paying; larger on GPU."""
    return 64 if device.startswith("cuda") else 8


def length_order(token_ids: Sequence[Sequence[int]]) -> list[int]:
    """Prompt indices shortest first, so that each batch holds prompts of similar length."""
    return sorted(range(len(token_ids)), key=lambda i: (len(token_ids[i]), i))


def pad_right(batch: Sequence[Sequence[int]], device="cpu"):
    """Right-pad token ids into ``(input_ids, attention_mask)``, both (B, T) on ``device``.

    Right padding keeps every real token's position id and, under the causal mask, its
    attention: a padded prompt's real tokens compute exactly what they compute alone.
    """
    import torch

    width = max(map(len, batch))
    input_ids = torch.zeros((len(batch), width), dtype=torch.long)  # (B, T); the pad id is masked out
    mask = torch.zeros((len(batch), width), dtype=torch.long)  # (B, T)
    for row, ids in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        mask[row, : len(ids)] = 1
    return input_ids.to(device), mask.to(device)


class MeasurementWarning(UserWarning):
    """Something about a measurement worth saying that does not stop it (a halved batch)."""


class _NormRecorder:
    """Forward hooks that reduce every sublayer's input and output to per-prompt mean norms.

    Registered ``with_kwargs=True`` so the input is found whether transformers passes it
    positionally or as ``hidden_states=``. Handles are removed on exit, whatever happens.
    """

    def __init__(self, sublayers: Sequence[tuple[int, str, Any]]):
        self.sublayers = list(sublayers)
        self._handles: list[Any] = []
        self._masks: dict[Any, Any] = {}

    def __enter__(self) -> _NormRecorder:
        try:
            for slot, (_, _, module) in enumerate(self.sublayers):
                self._handles.append(module.register_forward_hook(self._hook(slot), with_kwargs=True))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def start_batch(self, mask):
        """Prepare for a batch whose real tokens are where ``mask`` (B, T) is 1."""
        import torch

        self._mask = mask.bool()  # (B, T)
        self._lengths = self._mask.sum(dim=1).to(torch.float32)  # (B,)
        self._masks = {mask.device: (self._mask, self._lengths)}
        self.sums = torch.full((len(self.sublayers), 2, mask.shape[0]), float("nan"), device=mask.device)

    def _hook(self, slot: int):
        def hook(module, args, kwargs, output):
            hidden_in = args[0] if args else kwargs["hidden_states"]  # (B, T, C)
            hidden_out = output[0] if isinstance(output, tuple) else output  # (B, T, C)
            self.sums[slot, 0] = self._mean_norm(hidden_in)
            self.sums[slot, 1] = self._mean_norm(hidden_out)

        return hook

    def _mean_norm(self, hidden):
        """Mean over each prompt's real tokens of the float32 L2 norm over the hidden dimension."""
        import torch

        if hidden.device not in self._masks:  # a model spread over devices by device_map
            self._masks[hidden.device] = (self._mask.to(hidden.device), self._lengths.to(hidden.device))
        mask, lengths = self._masks[hidden.device]
        norms = torch.linalg.vector_norm(hidden, dim=-1, dtype=torch.float32)  # (B, T)
        # masked_fill, not a product: a padded position's inf * 0 would be NaN
        return (norms.masked_fill(~mask, 0.0).sum(dim=1) / lengths).to(self.sums.device)  # (B,)


@dataclass
class GainMeter:
    """Measures the gain of every attention and MLP sublayer of a loaded model.

    Parameters
    ----------
    batch_size
        Prompts per forward pass; None picks :func:`default_batch_size` for the device.
        On CUDA out-of-memory the batch is halved (with a warning) and measuring goes on.
    progress
        Show a progress bar (over prompts, with an ETA) when measuring takes more than a moment.

    Examples
    --------
    >>> with load_model(spec, revision, LoadOptions()) as loaded:   # doctest: +SKIP
    ...     measurement = GainMeter().measure(loaded, load_prompts(), revision)
    """

    batch_size: int | None = None
    progress: bool = True

    def measure(self, loaded: LoadedModel, prompts: PromptSet, resolved_revision: str) -> Measurement:
        """Measure ``loaded`` over ``prompts``; raises :class:`MeasurementError` on a non-finite norm."""
        import torch

        started = time.perf_counter()
        model = loaded.model
        token_ids = self._tokenize(loaded, prompts)
        sublayers = find_sublayers(model)
        batch_size = self.batch_size or default_batch_size(loaded.device)
        with torch.inference_mode(), _NormRecorder(sublayers) as recorder:
            norms = self._run_batches(loaded, recorder, token_ids, batch_size)  # (S, 2, P)
        self._refuse_bad_norms(loaded, sublayers, norms)
        n_layers = len(sublayers) // 2
        per_kind = norms.reshape(n_layers, 2, 2, len(prompts))  # (L, attention|mlp, in|out, P)
        return Measurement(
            model=loaded.spec.name,
            source=loaded.spec.source,
            revision=loaded.spec.revision,
            resolved_revision=resolved_revision,
            dtype=loaded.dtype,
            prompts_name=prompts.name,
            prompts_sha256=prompts.sha256,
            method_version=METHOD_VERSION,
            n_params=sum(p.numel() for p in model.parameters()),
            n_layers=n_layers,
            hidden_size=model.config.hidden_size,
            attention=_module_norms(per_kind[:, 0]),
            mlp=_module_norms(per_kind[:, 1]),
            provenance=_provenance(loaded, batch_size, time.perf_counter() - started),
        )

    # ------------------------------------------------------------------ steps

    def _tokenize(self, loaded: LoadedModel, prompts: PromptSet) -> list[list[int]]:
        context = getattr(loaded.model.config, "max_position_embeddings", None)
        token_ids = []
        for number, prompt in enumerate(prompts.prompts, 1):
            ids = loaded.tokenizer(prompt)["input_ids"]
            if not ids:
                raise PromptError(f"{loaded.spec.name}: prompt {number} of {prompts.name} has no tokens")
            if context and len(ids) > context:
                raise PromptError(
                    f"{loaded.spec.name}: prompt {number} of {prompts.name} has {len(ids):,} tokens; "
                    f"the model's context is {context:,}; shorten or split it"
                )
            token_ids.append(ids)
        return token_ids

    def _run_batches(self, loaded: LoadedModel, recorder: _NormRecorder, token_ids, batch_size: int):
        import torch

        body = loaded.model.base_model  # the transformer without its LM head
        device = body.get_input_embeddings().weight.device
        order = length_order(token_ids)
        norms = torch.empty((len(recorder.sublayers), 2, len(token_ids)), dtype=torch.float32)
        bar = progress_bar(len(token_ids), f"measuring {loaded.spec.name}", "prompt", self.progress, position=1)
        position = 0
        while position < len(order):
            batch = order[position : position + batch_size]
            try:
                norms[:, :, batch] = self._forward(body, recorder, [token_ids[i] for i in batch], device)
            except torch.cuda.OutOfMemoryError:
                if batch_size == 1:
                    raise
                batch_size //= 2
                warnings.warn(f"{loaded.spec.name}: CUDA out of memory; batch size halved to {batch_size}", MeasurementWarning, stacklevel=2)
                torch.cuda.empty_cache()
                continue
            position += len(batch)
            bar.update(len(batch))
        bar.close()
        return norms

    @staticmethod
    def _forward(body, recorder: _NormRecorder, batch: list[list[int]], device):
        """One right-padded forward pass; returns the (S, 2, B) per-prompt mean norms on CPU."""
        input_ids, mask = pad_right(batch, device)
        recorder.start_batch(mask)
        body(input_ids=input_ids, attention_mask=mask, use_cache=False)
        return recorder.sums.cpu()  # one device sync per batch

    @staticmethod
    def _refuse_bad_norms(loaded: LoadedModel, sublayers, norms) -> None:
        """Name the first layer and module whose norm is non-finite, or whose input norm is zero."""
        import torch

        for slot, (layer, kind, _) in enumerate(sublayers):
            for side, values in (("input", norms[slot, 0]), ("output", norms[slot, 1])):
                bad = ~torch.isfinite(values) | ((values == 0) if side == "input" else False)
                if bad.any():
                    prompt = int(bad.nonzero()[0]) + 1
                    raise MeasurementError(
                        f"{loaded.spec.name}: layer {layer} {kind}: {side} norm is {float(values[prompt - 1])} "
                        f"for prompt {prompt} in {loaded.dtype}; "
                        + ("float16 overflows at this scale: " if loaded.dtype == "float16" else "")
                        + "measure in bfloat16 or float32 (--dtype); nothing was stored"
                    )


def _module_norms(per_layer) -> ModuleNorms:
    """(L, in|out, P) tensor -> ModuleNorms."""
    return ModuleNorms(
        inputs=tuple(tuple(row) for row in per_layer[:, 0].tolist()),
        outputs=tuple(tuple(row) for row in per_layer[:, 1].tolist()),
    )


def _provenance(loaded: LoadedModel, batch_size: int, seconds: float) -> Provenance:
    import torch
    import transformers

    from . import __version__

    device = loaded.device
    if device.startswith("cuda") and torch.cuda.is_available():
        device = torch.cuda.get_device_name(torch.device(device))
    return Provenance(
        gainscale_version=__version__,
        torch_version=torch.__version__,
        transformers_version=transformers.__version__,
        device=device,
        attn_implementation=str(getattr(loaded.model.config, "_attn_implementation", "unknown")),
        batch_size=batch_size,
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        wall_seconds=round(seconds, 3),
    )
