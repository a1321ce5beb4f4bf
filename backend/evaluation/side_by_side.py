"""Greedy generations from the base model and from base + adapter, on the same prompts.

One base is loaded once; the adapter is switched off and on around it, so both
columns come from exactly the same weights and decoding settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pair:
    prompt: list[dict[str, str]]
    base: str
    tuned: str


def _quiet_libraries() -> None:
    """This runs in the user's terminal: library progress bars and notices would bury the comparison."""
    import logging
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)


def generate_pairs(
    model_path: Path,
    adapter_path: Path,
    prompts: list[list[dict[str, str]]],
    max_new_tokens: int = 64,
    batch_size: int = 8,
) -> list[Pair]:
    _quiet_libraries()
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(adapter_path)
    tokenizer.padding_side = "left"  # generation continues from the right end of every row
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    from backend.training.runtime import cpu_has_bf16

    dtype = torch.bfloat16 if torch.cuda.is_available() or cpu_has_bf16() else torch.float32
    base = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
    model = PeftModel.from_pretrained(base, adapter_path).eval()
    if torch.cuda.is_available():
        model = model.cuda()

    def complete(batch: list[list[dict[str, str]]]) -> list[str]:
        texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in batch]
        inputs = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        with torch.inference_mode():
            out = model.generate(
                **inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )
        return tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)

    pairs: list[Pair] = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        with model.disable_adapter():
            base_out = complete(batch)
        tuned_out = complete(batch)
        pairs.extend(Pair(p, b.strip(), t.strip()) for p, b, t in zip(batch, base_out, tuned_out, strict=True))
    return pairs
