"""Measuring gains: one forward pass of the transformer body over batches of prompts.

Beyond the paper's loop (one prompt per forward through the full causal-LM), and with the
same numbers: the LM head is skipped (its logits play no part in any gain), prompts are
sorted by length and grouped into right-padded batches of at most a token budget (padded
positions are excluded from every norm), and forward hooks reduce each sublayer's input and
output, and the residual stream entering its norm, to per-prompt numbers on the device at
once, so no activation is ever kept. Every definition of
:data:`~gainscale.measurement.GAIN_DEFINITIONS` comes from that one pass.
"""

from __future__ import annotations

import time
import warnings
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .architectures import Sublayer, find_sublayers
from .attention import attention_candidates, attention_implementation
from .devices import default_threads, torch_threads
from .errors import MeasurementError, OptionError, PromptError
from .loading import LoadedModel
from .measurement import METHOD_VERSION, Measurement, ModuleNorms, Provenance
from .progress import progress_bar
from .prompts import PromptSet

#: padded tokens per forward pass on CPU. Measured on pythia-160m's config (random weights,
#: float32, one thread, the 40 shipped prompts of 21 to 59 tokens; every budget in turns, six
#: rounds in one run on a shared two-core machine, as tests/benchmarks/test_bench_token_budget.py
#: does), median CPU time relative to the fastest: 128 tokens 1.09, 256 1.00, 512 1.005,
#: 1024 1.09, 2048 1.11, 4096 1.12 (wall time, noisier there: 512 fastest, 256 1.11).
#: Small batches pay per-op overhead; wide ones leave the CPU caches and pad more.
CPU_TOKEN_BUDGET = 512

#: padded tokens per forward pass on CUDA, chosen for an 80 GB GPU. GEMMs of a 5120-wide model
#: (pythia-12b) reach their best throughput from a few thousand rows on an H100, so 16k tokens
#: keep the tensor cores busy while batches stay short enough that sorting by length leaves
#: little padding. Memory at pythia-12b in float16: ~22 GiB of weights plus ~150 kB of live
#: activations per token in the widest layer (MLP 4x expansion, QKV, the float32 norms of the
#: hooks), ~2.5 GiB at 16k tokens; with eager attention's (B, heads, T, T) scores at T = 2048
#: it is ~10 GiB more. Either fits 80 GB with room; an out-of-memory halves it anyway.
#: Measured on an H200 (pythia-12b config, float16, 1,024 prompts): MFU 49.3% at 4,096 tokens,
#: 48.5% at 16,384, 45.1% at 32,768 (padding grows faster than the GEMMs gain).
CUDA_TOKEN_BUDGET = 16384

# the fields the hooks fill for every sublayer and prompt, in this order
IN, OUT, RATIO, IN_AFTER_FIRST, OUT_AFTER_FIRST, RESIDUAL = range(6)
N_FIELDS = 6


def default_token_budget(device: str) -> int:
    """Padded tokens per forward pass: :data:`CUDA_TOKEN_BUDGET` on CUDA, else :data:`CPU_TOKEN_BUDGET`."""
    return CUDA_TOKEN_BUDGET if device.startswith("cuda") else CPU_TOKEN_BUDGET


def length_order(token_ids: Sequence[Sequence[int]]) -> list[int]:
    """Prompt indices shortest first, so that each batch holds prompts of similar length."""
    return sorted(range(len(token_ids)), key=lambda i: (len(token_ids[i]), i))


def plan_batches(token_ids: Sequence[Sequence[int]], token_budget: int, max_prompts: int | None = None) -> list[list[int]]:
    """Every batch the meter runs for ``token_ids`` under ``token_budget``, as prompt indices.

    See :func:`plan_sorted` for how the prompts are split.

    Examples
    --------
    >>> plan_batches([[1] * 2, [1] * 9, [1] * 2, [1] * 2], token_budget=12)
    [[0, 2, 3], [1]]
    """
    return plan_sorted(length_order(token_ids), [len(ids) for ids in token_ids], token_budget, max_prompts)


def plan_sorted(order: Sequence[int], lengths: Sequence[int], token_budget: int, max_prompts: int | None = None) -> list[list[int]]:
    """Split prompts sorted shortest first into consecutive batches, each within the budget.

    A batch's padded size is (prompts x its longest); it stays within ``token_budget`` (a
    prompt longer than the budget goes alone) and, if given, a batch holds at most
    ``max_prompts``. Among such splits this one has the least padded tokens plus a fixed
    cost per forward pass of an eighth of the budget: filling every batch to the budget
    greedily can pad a lot (256 prompts of 25 to 65 tokens under 16,384 make a batch of 252
    prompts padded to 65, 44% padding), while splitting pays only where it saves more padding
    than a forward pass costs. Exact, by dynamic programming over the sorted prompts.
    """
    import numpy as np

    sorted_lengths = np.array([lengths[i] for i in order], dtype=np.int64)  # (P,) ascending
    overhead = token_budget / 8
    best = np.zeros(len(order) + 1)  # best[j]: least cost of batching the first j prompts
    cut = np.zeros(len(order) + 1, dtype=np.int64)  # where the last batch of that split begins
    for end in range(1, len(order) + 1):
        longest = int(sorted_lengths[end - 1])
        rows = max(1, min(token_budget // longest, max_prompts or end, end))
        starts = np.arange(end - rows, end)  # (rows,) first prompt of a last batch ending here
        costs = best[end - rows : end] + (end - starts) * longest + overhead  # (rows,)
        pick = int(np.argmin(costs))
        best[end], cut[end] = costs[pick], starts[pick]
    batches, end = [], len(order)
    while end > 0:
        batches.append(list(order[cut[end] : end]))
        end = int(cut[end])
    return batches[::-1]


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
    if str(device).startswith("cuda"):
        # pinned and non-blocking: a pageable copy would wait for every kernel queued before it
        return input_ids.pin_memory().to(device, non_blocking=True), mask.pin_memory().to(device, non_blocking=True)
    return input_ids.to(device), mask.to(device)


def token_norms(hidden):
    """(B, T) float32: the Euclidean norm of every token's vector in ``hidden`` (B, T, C),
    accumulated in float32 whatever the model's dtype."""
    import torch

    return torch.linalg.vector_norm(hidden, dim=-1, dtype=torch.float32)


class MeasurementWarning(UserWarning):
    """Something about a measurement worth saying that does not stop it (a halved token budget)."""


class _NormRecorder:
    """Forward hooks that reduce every sublayer's input and output to per-prompt numbers.

    On each attention and MLP module (registered ``with_kwargs=True``, so the input is found
    whether transformers passes it positionally or as ``hidden_states=``): the per-prompt means
    of the input and output token norms, over all tokens and over the tokens after the first,
    and the mean of the per-token ratio. On the norm in front of it (a pre-hook): the mean
    token norm of the residual stream it reads. Handles are removed on exit, whatever happens.
    """

    def __init__(self, sublayers: Sequence[Sublayer]):
        self.sublayers = list(sublayers)
        self._handles: list[Any] = []
        self._masks: dict[Any, Any] = {}

    def __enter__(self) -> _NormRecorder:
        try:
            for slot, sublayer in enumerate(self.sublayers):
                self._handles.append(sublayer.module.register_forward_hook(self._module_hook(slot), with_kwargs=True))
                self._handles.append(sublayer.norm.register_forward_pre_hook(self._norm_hook(slot), with_kwargs=True))
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

        lengths = mask.sum(dim=1).to(torch.float32)  # (B,)
        self._mask = mask.bool()  # (B, T)
        self._divisors = torch.stack((lengths, lengths, lengths, lengths - 1, lengths - 1))  # (5, B), as IN..OUT_AFTER_FIRST
        self._masks = {mask.device: (self._mask, self._divisors)}
        self._last_residual: tuple[Any, Any] | None = None  # (weakref to the tensor, its means)
        self.sums = torch.full((len(self.sublayers), N_FIELDS, mask.shape[0]), float("nan"), device=mask.device)

    def end_batch(self) -> None:
        """Drop what refers to the batch's tensors."""
        self._masks.clear()
        self._last_residual = None

    def _on(self, device):
        """The mask and divisors on ``device`` (a model spread by device_map has several)."""
        if device not in self._masks:
            self._masks[device] = (self._mask.to(device), self._divisors.to(device))
        return self._masks[device]

    def _module_hook(self, slot: int):
        def hook(module, args, kwargs, output):
            hidden_in = args[0] if args else kwargs["hidden_states"]  # (B, T, C)
            hidden_out = output[0] if isinstance(output, tuple) else output  # (B, T, C)
            self.sums[slot, :RESIDUAL] = self._module_means(hidden_in, hidden_out)

        return hook

    def _norm_hook(self, slot: int):
        def hook(module, args, kwargs):
            hidden = args[0] if args else kwargs.get("hidden_states", kwargs.get("input"))  # (B, T, C)
            self.sums[slot, RESIDUAL] = self._residual_means(hidden)

        return hook

    def _module_means(self, hidden_in, hidden_out):
        """(5, B): per prompt, as IN, OUT, RATIO, IN_AFTER_FIRST, OUT_AFTER_FIRST."""
        import torch

        mask, divisors = self._on(hidden_in.device)
        norm_in = token_norms(hidden_in)  # (B, T)
        norm_out = token_norms(hidden_out)  # (B, T)
        # masked_fill, not a product: a padded position's inf * 0 (or 0 / 0 ratio) would be NaN
        per_token = torch.stack((norm_in, norm_out, norm_out / norm_in)).masked_fill(~mask, 0.0)  # (3, B, T)
        # the first token is column 0 (right padding): summing from column 1 leaves it out
        # exactly, with no subtraction to lose the rest's digits to a huge first norm
        sums = torch.cat((per_token.sum(dim=-1), per_token[:2, :, 1:].sum(dim=-1)))  # (5, B)
        return (sums / divisors).to(self.sums.device)  # (5, B); 0 / 0 = NaN after the first of a one-token prompt

    def _residual_means(self, hidden):
        """(B,): per prompt, the mean token norm of ``hidden``, once per tensor.

        Under GPT-NeoX's parallel residual both norms of a layer read the same tensor.
        """
        last = self._last_residual
        if last is not None and last[0]() is hidden:
            return last[1]
        mask, divisors = self._on(hidden.device)
        norms = token_norms(hidden)  # (B, T)
        means = (norms.masked_fill(~mask, 0.0).sum(dim=-1) / divisors[IN]).to(self.sums.device)  # (B,)
        self._last_residual = (weakref.ref(hidden), means)
        return means


@dataclass(frozen=True)
class _Run:
    """What running the batches gave."""

    #: (S, fields, P) per-prompt numbers on the CPU, prompts in the prompt set's order
    norms: Any
    #: the most prompts one forward pass held
    largest_batch: int
    #: how often an out-of-memory halved the token budget
    halvings: int


@dataclass
class GainMeter:
    """Measures the gain of every attention and MLP sublayer of a loaded model.

    Parameters
    ----------
    batch_size
        At most this many prompts per forward pass; None for no cap beyond the token budget.
    progress
        Show a progress bar (over prompts, with an ETA) when measuring takes more than a moment.
    token_budget
        At most this many padded tokens (prompts x longest prompt) per forward pass; a prompt
        longer than the budget goes alone. None picks :func:`default_token_budget` for the
        device. On CUDA out-of-memory the budget is halved (with a warning) and measuring goes on.
    threads
        torch intra-op threads while measuring (torch's setting is restored after); None picks
        :func:`~gainscale.devices.default_threads`.
    attn_implementation
        transformers' attention kernel to measure with; None picks the fastest available
        (:func:`~gainscale.attention.attention_candidates`). The model's own comes back after.

    Examples
    --------
    >>> with load_model(spec, revision, LoadOptions()) as loaded:   # doctest: +SKIP
    ...     measurement = GainMeter().measure(loaded, load_prompts(), revision)
    """

    batch_size: int | None = None
    progress: bool = True
    token_budget: int | None = None
    threads: int | None = None
    attn_implementation: str | None = None

    def __post_init__(self) -> None:
        for name in ("batch_size", "token_budget", "threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise OptionError(f"{name.replace('_', ' ')} must be at least 1, not {value}")

    def measure(self, loaded: LoadedModel, prompts: PromptSet, resolved_revision: str) -> Measurement:
        """Measure ``loaded`` over ``prompts``; raises :class:`MeasurementError` on a non-finite norm."""
        import torch

        started = time.perf_counter()
        model = loaded.model
        token_ids = self._tokenize(loaded, prompts)
        sublayers = find_sublayers(model)
        budget = self.token_budget or default_token_budget(loaded.device)
        candidates = [self.attn_implementation] if self.attn_implementation else attention_candidates(loaded.device, loaded.dtype)
        with (
            torch.inference_mode(),
            torch_threads(self.threads or default_threads()) as threads,
            attention_implementation(model, candidates, loaded.spec.name) as attn,
            _NormRecorder(sublayers) as recorder,
        ):
            run = self._run_batches(loaded, recorder, token_ids, budget)
        lengths = [len(ids) for ids in token_ids]
        self._refuse_bad_norms(loaded, sublayers, run.norms, lengths)
        n_layers = len(sublayers) // 2
        per_kind = run.norms.reshape(n_layers, 2, N_FIELDS, len(prompts))  # (L, attention|mlp, fields, P)
        setup = dict(batch_size=run.largest_batch, token_budget=budget, budget_halvings=run.halvings, threads=threads, attn_implementation=attn)
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
            attention=_module_norms(per_kind[:, 0], lengths),
            mlp=_module_norms(per_kind[:, 1], lengths),
            provenance=_provenance(loaded, setup, time.perf_counter() - started),
        )

    # ------------------------------------------------------------------ steps

    def _tokenize(self, loaded: LoadedModel, prompts: PromptSet) -> list[list[int]]:
        context = getattr(loaded.model.config, "max_position_embeddings", None)
        # one call for the whole set: a fast tokenizer encodes it in parallel, to the same ids
        token_ids = [list(ids) for ids in loaded.tokenizer(list(prompts.prompts), return_attention_mask=False)["input_ids"]]
        for number, ids in enumerate(token_ids, 1):
            if not ids:
                raise PromptError(f"{loaded.spec.name}: prompt {number} of {prompts.name} has no tokens")
            if context and len(ids) > context:
                raise PromptError(
                    f"{loaded.spec.name}: prompt {number} of {prompts.name} has {len(ids):,} tokens; "
                    f"the model's context is {context:,}; shorten or split it"
                )
        return token_ids

    def _run_batches(self, loaded: LoadedModel, recorder: _NormRecorder, token_ids, budget: int) -> _Run:
        import torch

        body = loaded.model.base_model  # the transformer without its LM head
        device = body.get_input_embeddings().weight.device
        order, lengths = length_order(token_ids), [len(ids) for ids in token_ids]
        plan = plan_sorted(order, lengths, budget, self.batch_size)
        parts, done = [], []  # per batch (S, fields, B) on the device; the prompts in that order
        bar = progress_bar(len(token_ids), f"measuring {loaded.spec.name}", "prompt", self.progress, position=1)
        halvings = 0
        while plan:
            batch = plan.pop(0)
            try:
                parts.append(self._forward(body, recorder, [token_ids[i] for i in batch], device))
            except torch.cuda.OutOfMemoryError:
                budget = _lowered_budget(loaded, batch, lengths, budget)
                halvings += 1
                torch.cuda.empty_cache()
                plan = plan_sorted(order[len(done) :], lengths, budget, self.batch_size)  # the rest, under the new budget
                continue
            done.extend(batch)
            bar.update(len(batch))
        bar.close()
        gathered = torch.cat(parts, dim=2).cpu()  # (S, fields, P) in batch order; the only device sync
        norms = torch.empty_like(gathered)
        norms[:, :, torch.tensor(done)] = gathered
        return _Run(norms=norms, largest_batch=max(p.shape[2] for p in parts), halvings=halvings)

    @staticmethod
    def _forward(body, recorder: _NormRecorder, batch: list[list[int]], device):
        """One right-padded forward pass; returns the (S, fields, B) per-prompt numbers, on the device."""
        input_ids, mask = pad_right(batch, device)
        recorder.start_batch(mask)
        try:
            body(input_ids=input_ids, attention_mask=mask, use_cache=False)
        finally:
            recorder.end_batch()
        return recorder.sums

    @staticmethod
    def _refuse_bad_norms(loaded: LoadedModel, sublayers: Sequence[Sublayer], norms, lengths: Sequence[int]) -> None:
        """Name the first layer, module and number that is non-finite, or a divisor that is zero."""
        import torch

        several = torch.tensor(lengths) > 1  # (P,) prompts with a token after the first
        # (checks, S, P), every number at once: the common case has no bad one
        bad = torch.stack([_unusable(norms[:, field], is_divisor) & (several if prompts == "several" else True)
                           for field, _, is_divisor, prompts in _CHECKS])
        if not bad.any():
            return
        slot = int(bad.any(dim=2).any(dim=0).nonzero()[0])  # the first sublayer, then its first check, then prompt
        check = int(bad[:, slot].any(dim=1).nonzero()[0])
        prompt = int(bad[check, slot].nonzero()[0]) + 1
        field, what = _CHECKS[check][:2]
        sublayer = sublayers[slot]
        raise MeasurementError(
            f"{loaded.spec.name}: layer {sublayer.layer} {sublayer.kind}: {what} is {float(norms[slot, field, prompt - 1])} "
            f"for prompt {prompt} in {loaded.dtype}; "
            + ("float16 overflows at this scale: " if loaded.dtype == "float16" else "")
            + "measure in bfloat16 or float32 (--dtype); nothing was stored"
        )


#: what is checked of every sublayer's numbers: field, its name, whether a gain divides by it,
#: and which prompts have it (``several``: only those with a token after the first)
_CHECKS = (
    (IN, "input norm", True, "all"),
    (OUT, "output norm", False, "all"),
    (RESIDUAL, "residual-stream norm (the input of the norm before it)", True, "all"),
    (RATIO, "mean per-token ratio ||out_t|| / ||in_t|| (a token's input norm is 0 or its output overflows)", False, "all"),
    (IN_AFTER_FIRST, "input norm after the first token", True, "several"),
    (OUT_AFTER_FIRST, "output norm after the first token", False, "several"),
)


def _unusable(values, is_divisor: bool):
    """Where ``values`` are non-finite, or zero if a gain divides by them."""
    import torch

    return ~torch.isfinite(values) | ((values == 0) if is_divisor else False)


def _lowered_budget(loaded: LoadedModel, batch: Sequence[int], lengths: Sequence[int], budget: int) -> int:
    """Half the padded tokens of the batch that ran out of memory (so the next batch is smaller)."""
    longest = max(lengths[i] for i in batch)
    if len(batch) == 1:
        raise MeasurementError(
            f"{loaded.spec.name}: CUDA out of memory on prompt {batch[0] + 1} alone ({longest:,} tokens) in {loaded.dtype}; "
            "shorten that prompt, free the GPU, or spread the model over several with --device-map auto"
        )
    lowered = max(1, min(budget, len(batch) * longest) // 2)
    warnings.warn(
        f"{loaded.spec.name}: CUDA out of memory on {len(batch)} prompts x {longest} tokens; token budget halved to {lowered:,}",
        MeasurementWarning,
        stacklevel=4,
    )
    return lowered


def _module_norms(per_layer, lengths: Sequence[int]) -> ModuleNorms:
    """(L, fields, P) tensor -> ModuleNorms; after-first numbers of one-token prompts become None."""

    def rows(field: int) -> tuple[tuple[float, ...], ...]:
        return tuple(map(tuple, per_layer[:, field].tolist()))

    def after_first(field: int) -> tuple[tuple[float | None, ...], ...]:
        if min(lengths) > 1:  # the usual case: every prompt has tokens after the first
            return rows(field)
        return tuple(tuple(v if n > 1 else None for v, n in zip(row, lengths)) for row in rows(field))

    return ModuleNorms(
        inputs=rows(IN),
        outputs=rows(OUT),
        residual_inputs=rows(RESIDUAL),
        token_ratios=rows(RATIO),
        inputs_after_first=after_first(IN_AFTER_FIRST),
        outputs_after_first=after_first(OUT_AFTER_FIRST),
    )


def _provenance(loaded: LoadedModel, setup: dict[str, Any], seconds: float) -> Provenance:
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
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        wall_seconds=round(seconds, 3),
        **setup,
    )
