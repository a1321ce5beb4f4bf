"""The ways to read a dataset: checked (a report), in memory (for training), or measured in tokens."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from backend.core.events import EventSink, Warn
from backend.core.spec import Data
from backend.data.advice import advise
from backend.data.chat_tokens import with_system_prompt
from backend.data.examples import Batch, Example
from backend.data.problems import DataError
from backend.data.report import DataReport, SplitSummary, count
from backend.data.scan import Cancel, ImportOptions, Progress, Sink, scan
from backend.data.split import eval_count, split
from backend.data.tokens import TokenCounter

MAX_LISTED_PROBLEMS = 20
"""Rejected rows a job lists one by one before it gives only the count."""


@dataclass
class LoadedDataset:
    examples: list[Example]
    report: DataReport

    @property
    def content_hash(self) -> str:
        return self.report.content_hash

    def split(self, eval_fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
        """A seeded, reproducible train/eval split (see split.py)."""
        return split(self.examples, eval_fraction, seed)


class ExampleCollector:
    """A scan sink that keeps every usable example in memory."""

    def __init__(self) -> None:
        self.examples: list[Example] = []

    def add(self, batch: Batch) -> None:
        self.examples += batch.examples()


def read_dataset(
    path: Path,
    options: ImportOptions = ImportOptions(),  # noqa: B008 - frozen
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> LoadedDataset:
    """Every usable example in memory, with the report; DataError when there is none."""
    collect = ExampleCollector()
    report = scan(path, options, [collect], progress, cancel)
    if not report.usable:
        raise DataError(no_usable_examples(report))
    return LoadedDataset(collect.examples, report)


def check_dataset(
    path: Path,
    options: ImportOptions = ImportOptions(),  # noqa: B008 - frozen
    *,
    counter: TokenCounter | None = None,
    eval_fraction: float = 0.1,
    seed: int = 42,
    sinks: Sequence[Sink] = (),
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> DataReport:
    """The full report: problems, the split, warnings, and token statistics when a counter is given."""
    report = scan(path, options, [*sinks, *([counter] if counter else [])], progress, cancel)
    plan_split(report, eval_fraction, seed)
    if counter is not None:
        counter.finish(report, eval_fraction, seed)
    report.advice = advise(report)
    return report


def plan_split(report: DataReport, eval_fraction: float, seed: int, eval_examples: int | None = None) -> None:
    """Record how the examples will be split; ``eval_examples`` when they come from a separate file."""
    if eval_examples is not None:
        report.split = SplitSummary(0.0, seed, report.accepted, eval_examples, eval_file=True)
        return
    held = eval_count(report.accepted, eval_fraction)
    report.split = SplitSummary(eval_fraction, seed, report.accepted - held, held)


def no_usable_examples(report: DataReport) -> str:
    """Why a dataset has nothing to train on, quoting its first problems."""
    first = "; ".join(str(p) for p in report.problems.kept[:3]) or "it holds no rows"
    return f"{report.source} has no usable examples ({first})"


def load_training_data(data: Data, sink: EventSink) -> tuple[list[Example], list[Example], str]:
    """Train and eval examples plus a hash of both, as training reads them; every rejected row and dataset warning
    becomes a warning event (evaluation remakes the held-out split with the same call)."""
    options = ImportOptions.from_spec(data)
    train_set = read_dataset(Path(data.path), options)
    eval_set = read_dataset(Path(data.eval_path), options) if data.eval_path else None
    for loaded in (train_set, eval_set):
        if loaded is not None:
            report_rejected(loaded, sink)
    if eval_set is not None:
        train, held = train_set.examples, eval_set.examples
        plan_split(train_set.report, data.eval_split, data.split_seed, eval_examples=len(held))
        content_hash = hashlib.sha256((train_set.content_hash + eval_set.content_hash).encode()).hexdigest()
    else:
        train, held = train_set.split(data.eval_split, data.split_seed)
        plan_split(train_set.report, data.eval_split, data.split_seed)
        content_hash = train_set.content_hash
    for advice in advise(train_set.report):
        sink.emit(Warn(code=advice.code, message=advice.message))
    if data.system_prompt is not None:
        train, held = _system_prompted(train, data.system_prompt), _system_prompted(held, data.system_prompt)
    return train, held, content_hash


def _system_prompted(examples: list[Example], system_prompt: str) -> list[Example]:
    """The job's ``data.system_prompt`` given to each conversation that has no system message of its own."""
    return [replace(e, messages=with_system_prompt(e.messages, system_prompt)) for e in examples]


def report_rejected(loaded: LoadedDataset, sink: EventSink) -> None:
    """One warning per excluded row (the first few), then how many in all."""
    excluded = [p for p in loaded.report.problems.kept if p.excluded]
    for problem in excluded[:MAX_LISTED_PROBLEMS]:
        sink.emit(Warn(code="row_rejected", message=f"{problem}; {problem.hint}"))
    if loaded.report.excluded > MAX_LISTED_PROBLEMS:
        sink.emit(
            Warn(
                code="rows_rejected",
                message=f"{loaded.report.source}: {count(loaded.report.excluded, 'row')} excluded in all; "
                "run 'lora-studio data check' for the full list",
            )
        )
