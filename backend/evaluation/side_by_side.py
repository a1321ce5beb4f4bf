"""One base model with one or more adapters attached, answering the same prompts with the same decoding.

The base is loaded once; every adapter is attached to it with peft and switched on
alone, and the base's own answers come from the same weights with the adapters
switched off (``disable_adapter``), so the columns differ only by the adapter.
The demo (``generate_pairs``) and the evaluation job (``backend.evaluation.job``)
both answer through here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.core.precision import auto_dtype
from backend.data.chat_tokens import render_chat

BASE = "base"
"""The column of the base model (all adapters off)."""


@dataclass(frozen=True)
class Pair:
    prompt: list[dict[str, str]]
    base: str
    tuned: str


@dataclass(frozen=True)
class Decoding:
    """How every model answers: the same for the base and every adapter.

    Temperature 0 is greedy decoding (the most likely token each time, repeatable). Above 0
    it samples from the full distribution at that temperature (no top-k or top-p cut), and
    the random generator is seeded with ``seed + the prompt's index`` before each model
    answers each prompt, so every model draws from the same random stream for a prompt,
    whatever the batch size or the order of the models.
    """

    max_new_tokens: int = 64
    temperature: float = 0.0
    seed: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0

    def settings(self) -> dict[str, Any]:
        """The settings as recorded in a report."""
        if self.greedy:
            return {"max_new_tokens": self.max_new_tokens, "do_sample": False, "temperature": 0.0}
        return {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": True,
            "temperature": self.temperature,
            "top_k": 0,  # no top-k cut
            "top_p": 1.0,
            "seed": self.seed,
            "seeding": "seed + prompt index, before every model's answer",
        }


@dataclass(frozen=True)
class Precision:
    """How the base was loaded, for the report: weights, compute dtype and device."""

    weights: str  # bfloat16, float16, float32, 4-bit NF4, 4-bit FP4, 8-bit
    compute_dtype: str
    device: str
    note: str = ""

    def describe(self) -> str:
        text = f"{self.weights} weights, {self.compute_dtype} compute on {self.device}"
        return f"{text} ({self.note})" if self.note else text


@dataclass
class Comparison:
    """A loaded base with named adapters attached; ``using(name)`` picks one, ``using(BASE)`` none."""

    model: Any  # peft.PeftModel
    tokenizer: Any
    adapters: list[str]
    precision: Precision
    eos_token_ids: list[int] = field(default_factory=list)

    @property
    def device(self) -> Any:
        return self.model.device

    @contextmanager
    def using(self, name: str) -> Iterator[Any]:
        """The model with only adapter ``name`` active (``BASE``: every adapter off)."""
        if name == BASE:
            with self.model.disable_adapter():
                yield self.model
            return
        self.model.set_adapter(name)
        yield self.model

    def generation_config(self, decoding: Decoding) -> Any:
        """The base's own generation config (stop tokens, penalties its authors set) with our sampling settings."""
        import copy

        config = copy.deepcopy(self.model.generation_config)
        sampling = (
            {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
            if decoding.greedy
            else {"do_sample": True, "temperature": decoding.temperature, "top_p": 1.0, "top_k": 0}
        )
        config.update(
            max_new_tokens=decoding.max_new_tokens,
            max_length=None,
            num_beams=1,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.eos_token_ids or None,
            **sampling,
        )
        return config

    def generate(
        self,
        prompts: list[list[dict[str, Any]]],
        decoding: Decoding,
        adapter: str = BASE,
        first_index: int = 0,
        tools: list[list[dict[str, Any]] | None] | None = None,
    ) -> list[str]:
        """Answers to ``prompts`` (conversations ending before the reply), in one batch.

        ``first_index`` is the index of ``prompts[0]`` in the whole prompt list: sampling seeds by it.
        ``tools`` holds each prompt's tool definitions (or None), shown to the model by its template.
        """
        import torch

        shown = tools or [None] * len(prompts)
        texts = [
            render_chat(self.tokenizer, prompt, tool_list, generation_prompt=True)
            for prompt, tool_list in zip(prompts, shown, strict=True)
        ]
        config = self.generation_config(decoding)
        with self.using(adapter) as model:
            if decoding.greedy:
                return self._complete(model, texts, config)
            answers = []
            devices = [self.device] if self.device.type == "cuda" else []
            for offset, text in enumerate(texts):  # one at a time: each prompt's draws depend on its seed alone
                with torch.random.fork_rng(devices=devices):
                    torch.manual_seed(decoding.seed + first_index + offset)
                    answers += self._complete(model, [text], config)
            return answers

    def _complete(self, model: Any, texts: list[str], config: Any) -> list[str]:
        import torch

        # The template already holds BOS and other specials where the model expects them.
        inputs = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        with torch.inference_mode():
            out = model.generate(**inputs, generation_config=config)
        answers = self.tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        return [answer.strip() for answer in answers]


def quiet_libraries() -> None:
    """Library progress bars and notices would bury the comparison in a terminal or a job log."""
    import logging
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)


def sixteen_bit() -> tuple[str, str]:
    """The dtype for an unquantized base on this machine, and the device: bf16 where it is native, else fp32 on CPU."""
    from backend.models.runtime import device_facts

    device, bf16 = device_facts()
    return auto_dtype(device, bf16), device


def load_comparison(
    model_path: Path,
    adapters: dict[str, Path],
    *,
    tokenizer_path: Path | None = None,
    model_kwargs: dict[str, Any] | None = None,
    precision: Precision | None = None,
) -> Comparison:
    """Load the base once and attach each adapter under its name (the first one is active).

    Without ``model_kwargs`` the base is loaded unquantized in ``sixteen_bit()``'s dtype;
    with them (``Runtime.model_kwargs()`` of a quantized training run) as they say, and
    ``precision`` describes it.
    """
    quiet_libraries()
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not adapters:
        raise ValueError("load_comparison needs at least one adapter")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path or next(iter(adapters.values())))
    tokenizer.padding_side = "left"  # generation continues from the right end of every row
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model_kwargs is None:
        dtype, device = sixteen_bit()
        model_kwargs = {"dtype": getattr(torch, dtype), "device_map": {"": 0 if device == "cuda" else "cpu"}}
        precision = precision or Precision(dtype, dtype, device)
    elif precision is None:
        raise ValueError("say how the base is loaded (precision) when passing model_kwargs")
    base = AutoModelForCausalLM.from_pretrained(model_path, **model_kwargs)
    names = list(adapters)
    model = PeftModel.from_pretrained(base, adapters[names[0]], adapter_name=names[0])
    for name in names[1:]:
        model.load_adapter(adapters[name], adapter_name=name)
    model.set_adapter(names[0])
    model.eval()
    eos = model.generation_config.eos_token_id
    eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos_ids:
        eos_ids.append(tokenizer.eos_token_id)  # a chat model's end of turn, when its config stops elsewhere
    return Comparison(model, tokenizer, names, precision, eos_ids)


def generate_pairs(
    model_path: Path,
    adapter_path: Path,
    prompts: list[list[dict[str, str]]],
    max_new_tokens: int = 64,
    batch_size: int = 8,
) -> list[Pair]:
    """Greedy answers of the base and of base + adapter to each prompt."""
    comparison = load_comparison(model_path, {"tuned": adapter_path})
    decoding = Decoding(max_new_tokens=max_new_tokens)
    pairs: list[Pair] = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        base_out = comparison.generate(batch, decoding, BASE, start)
        tuned_out = comparison.generate(batch, decoding, "tuned", start)
        pairs.extend(Pair(p, b, t) for p, b, t in zip(batch, base_out, tuned_out, strict=True))
    return pairs
