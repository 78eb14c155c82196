"""What a cold measurement cannot do without: load a model and its tokenizer, and run its body once.

    python tests/benchmarks/pretrained_probe.py MODEL_DIR THREADS [GGUF_FILE]

In this (fresh) process: import torch and transformers, ``AutoModelForCausalLM.from_pretrained``
(float32, CPU) and ``AutoTokenizer.from_pretrained`` as a user would, tokenize the shipped
prompts, and run them through the transformer body (``model.base_model``, no LM head) once, in
the batches gainscale makes of them (same order, padding and token budget), under
``torch.inference_mode()``. ``test_bench_cold_measure.py`` times it against ``gainscale
measure``; :func:`load_and_forward` is the same work in the calling process.
"""

from __future__ import annotations

import sys


def load_and_forward(model_dir: str, gguf_file: str | None = None) -> None:
    """from_pretrained (model and tokenizer), then one forward of the body over the shipped prompts."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gainscale.meter import default_token_budget, pad_right, plan_batches
    from gainscale.prompts import load_prompts

    extra = {"gguf_file": gguf_file} if gguf_file else {}
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, device_map="cpu", **extra)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, **extra)
    token_ids = [tokenizer(prompt)["input_ids"] for prompt in load_prompts().prompts]
    with torch.inference_mode():
        for batch in plan_batches(token_ids, default_token_budget("cpu")):
            input_ids, mask = pad_right([token_ids[i] for i in batch])
            model.base_model(input_ids=input_ids, attention_mask=mask, use_cache=False)


def main(model_dir: str, threads: int, gguf_file: str | None = None) -> None:
    import torch
    from transformers.utils import logging

    torch.set_num_threads(threads)
    logging.disable_progress_bar()  # as gainscale measure -q
    load_and_forward(model_dir, gguf_file)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
