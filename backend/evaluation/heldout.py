"""The held-out examples of an evaluation, tokenized as training saw them, and their loss under a model.

With no dataset named, the training job's own evaluation split is made again by the
same code that made it (``backend.data.load.load_training_data``: same reader, import
options, fraction and seed), and the examples are tokenized by the same function
with the same label mask (``tokenize_example``) and cut at the same
``max_seq_length`` as trl cuts them (keep the start; an example left without a
reply token carries no loss and is dropped). torch is imported only by the
function that runs a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.core.spec import Data, JobSpec, LossOn, Training
from backend.core.task_specs import EvaluateSpec
from backend.data.chat_tokens import IGNORE, RowRefused, TemplateError
from backend.data.examples import Example
from backend.data.load import load_training_data
from backend.evaluation.errors import EvaluationError

_LISTED_SKIPS = 5


@dataclass
class HeldOut:
    """The examples losses are measured on, where they came from, and how they are tokenized."""

    examples: list[Example]
    source: str
    content_hash: str | None
    max_length: int
    loss_on: LossOn
    available: int  # examples before max_examples cut the list
    warnings: list[str] = field(default_factory=list)
    pairs: list[dict[str, Any]] = field(default_factory=list)
    """Preference adapters: the held-out pairs (trl rows), whose chosen conversations are ``examples``."""


@dataclass(frozen=True)
class TokenizedExample:
    index: int  # position in HeldOut.examples
    example: Example
    input_ids: list[int]
    labels: list[int]
    truncated: bool

    @property
    def loss_tokens(self) -> int:
        return sum(1 for label in self.labels[1:] if label != IGNORE)  # the first token is never predicted


def held_out(spec: EvaluateSpec, train_spec: JobSpec | None, recorded_hash: str | None, adapter_name: str) -> HeldOut:
    """The examples named by ``spec.data``, or the training job's held-out split made again."""
    max_length = train_spec.training.max_seq_length if train_spec else Training().max_seq_length
    loss_on = train_spec.data.loss_on if train_spec else Data.model_fields["loss_on"].default
    if spec.data:
        held = _named_data(Path(spec.data).expanduser(), train_spec, recorded_hash, max_length, loss_on)
    else:
        held = _training_split(train_spec, recorded_hash, adapter_name, max_length, loss_on)
    if spec.max_examples is not None and len(held.examples) > spec.max_examples:
        held.examples, held.pairs = held.examples[: spec.max_examples], held.pairs[: spec.max_examples]
        held.source += f"; the first {spec.max_examples} of {held.available} examples"
    return held


def _named_data(
    path: Path, train_spec: JobSpec | None, recorded_hash: str | None, max_length: int, loss_on: LossOn
) -> HeldOut:
    from backend.data.load import read_dataset
    from backend.data.scan import ImportOptions

    if not path.exists():
        raise EvaluationError(f"The held-out data {path} does not exist.", error_type="data")
    if train_spec is not None and train_spec.training.objective != "sft":
        from backend.data.preference_rows import read_preferences

        loaded_pairs = read_preferences(path, "dpo")  # any pair layout; labelled answers cannot be compared
        pairs = _pairs(loaded_pairs.records)
        warnings = [f"{path}: {len(loaded_pairs.problems)} rows cannot be used and are left out"] * bool(
            loaded_pairs.problems
        )
        return _preference_held_out(pairs, str(path), loaded_pairs.content_hash, max_length, warnings)
    options = ImportOptions.from_spec(train_spec.data) if train_spec else ImportOptions()
    loaded = read_dataset(path, options)
    warnings = []
    if loaded.report.excluded:
        warnings.append(f"{path}: {loaded.report.excluded} rows cannot be used and are left out")
    trained_on_it = loaded.content_hash == recorded_hash and not (train_spec and train_spec.data.eval_path)
    if recorded_hash is not None and trained_on_it:
        warnings.append(
            f"{path} is the very data the adapter was trained on, so most of these examples are not held out: "
            "its loss will look better than on new data"
        )
    return HeldOut(loaded.examples, str(path), loaded.content_hash, max_length, loss_on, len(loaded.examples), warnings)


def _training_split(
    train_spec: JobSpec | None, recorded_hash: str | None, adapter_name: str, max_length: int, loss_on: LossOn
) -> HeldOut:
    from backend.core.events import EventSink

    if train_spec is None:
        raise EvaluationError(
            f"{adapter_name} has no LoRA Studio record of the data it was trained on, so its held-out split "
            "cannot be made again.",
            hint="Name a held-out dataset (data) for the evaluation.",
        )
    data = train_spec.data
    for name in filter(None, (data.path, data.eval_path)):
        if not Path(name).exists():
            raise EvaluationError(
                f"The data {adapter_name} was trained on is gone: {name} does not exist, so its held-out split "
                "cannot be made again.",
                hint="Put the file back where it was, or name a held-out dataset (data) for the evaluation.",
                error_type="data",
            )
    preference = train_spec.training.objective != "sft"
    pairs: list[dict[str, Any]] = []
    # Training's own reader and split; its warnings (rejected rows, advice) were shown when it trained.
    if preference:
        from backend.data.preference_rows import load_preference_split

        _, records, content_hash = load_preference_split(data, train_spec.training.objective, EventSink(None, None))
        pairs = _pairs(records)
        examples = [_chosen_example(pair) for pair in pairs]
    else:
        _, examples, content_hash = load_training_data(train_spec.data, EventSink(None, None))
    if data.eval_path:
        source = f"{data.eval_path} (the training job's held-out file)"
    else:
        source = f"the training job's held-out split of {data.path} ({data.eval_split:.0%}, seed {data.split_seed})"
    warnings = []
    if recorded_hash is not None and content_hash != recorded_hash:
        warnings.append(
            f"the training data changed since {adapter_name} was trained (content hash {content_hash[:12]}, "
            f"recorded {recorded_hash[:12]}): the held-out split made again may hold examples the adapter was "
            "trained on and miss some it never saw"
        )
    if not examples:
        warnings.append("the training job held nothing out (eval_split 0 and no eval_path), so no loss is measured")
    if preference:
        kto = " (KTO: the desirable answers and the undesirable ones of the same prompt)" * bool(
            train_spec.training.objective == "kto"
        )
        source += f"; {len(pairs)} pairs{kto}"
        return _preference_held_out(pairs, source, content_hash, max_length, warnings)
    return HeldOut(examples, source, content_hash, max_length, loss_on, len(examples), warnings)


def _pairs(records: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Held-out pairs as trl rows; KTO records become pairs where a prompt has a desirable and an undesirable
    answer (a pair trained as KTO is one record of both), and single labelled answers are left out."""
    pairs = []
    for record in records:
        if len(record) == 1 and "chosen" in record[0]:
            pairs.append(record[0])
        elif len(record) == 2 and record[0].get("label") is True and record[1].get("label") is False:
            pairs.append(
                {"prompt": record[0]["prompt"], "chosen": record[0]["completion"], "rejected": record[1]["completion"]}
            )
    return pairs


def _chosen_example(pair: dict[str, Any]) -> Example:
    return Example(messages=[*pair["prompt"], *pair["chosen"]])


def _preference_held_out(
    pairs: list[dict[str, Any]], source: str, content_hash: str, max_length: int, warnings: list[str]
) -> HeldOut:
    """The held-out pairs of a preference adapter: the loss is measured on their chosen answers."""
    if not pairs:
        warnings.append("no held-out preference pairs (KTO answers without a pair cannot be compared)")
    examples = [_chosen_example(pair) for pair in pairs]
    return HeldOut(examples, source, content_hash, max_length, "assistant", len(examples), warnings, pairs)


def tokenize_held_out(tokenizer: Any, held: HeldOut) -> tuple[list[TokenizedExample], list[str]]:
    """Ids and labels of every example as training built them, and why any was left out."""
    import jinja2

    from backend.data.tokens import tokenize_example

    items: list[TokenizedExample] = []
    refused: list[str] = []
    lost: list[str] = []
    for index, example in enumerate(held.examples):
        try:
            tokens = tokenize_example(tokenizer, example, held.loss_on)
        except RowRefused as exc:  # left out of training too
            refused.append(f"{example.where()}: {exc}")
            continue
        except TemplateError as exc:
            raise EvaluationError(str(exc), error_type="data") from None
        except jinja2.TemplateError as exc:  # the template refuses this conversation (e.g. a role it lacks)
            refused.append(f"{example.where()}: the chat template says: {exc}")
            continue
        ids, labels = tokens.input_ids[: held.max_length], tokens.labels[: held.max_length]
        item = TokenizedExample(index, example, ids, labels, len(tokens.input_ids) > held.max_length)
        if item.loss_tokens == 0:
            lost.append(example.where())
            continue
        items.append(item)
    notes = []
    if refused:
        listed = "; ".join(refused[:_LISTED_SKIPS])
        notes.append(f"{len(refused)} held-out examples skipped, the chat template cannot render them: {listed}")
    if lost:
        notes.append(
            f"{len(lost)} held-out examples skipped, their reply lies beyond max_seq_length={held.max_length} "
            f"(as in training): {', '.join(lost[:_LISTED_SKIPS])}"
        )
    cut = sum(item.truncated for item in items)
    if cut:
        notes.append(f"{cut} held-out examples are cut at max_seq_length={held.max_length}, as in training")
    return items, notes


def batch_losses(model: Any, batch: list[TokenizedExample], pad_id: int) -> list[float]:
    """The summed negative log-likelihood of each example's label tokens (in nats, computed in float32)."""
    import torch

    width = max(len(item.input_ids) for item in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, item in enumerate(batch):  # right padding: no real token attends to a pad
        n = len(item.input_ids)
        ids[row, :n] = torch.tensor(item.input_ids)
        labels[row, :n] = torch.tensor(item.labels)
        mask[row, :n] = 1
    device = model.device
    with torch.inference_mode():
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        targets = labels[:, 1:].to(device)
        sums = []
        for row in range(len(batch)):  # one row at a time: float32 logits of a whole batch can be gigabytes
            nll = torch.nn.functional.cross_entropy(
                logits[row, :-1].float(), targets[row], ignore_index=IGNORE, reduction="sum"
            )
            sums.append(float(nll))
    return sums
