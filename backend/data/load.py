"""The ways to read a dataset: checked (a report), in memory (for training), or measured in tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from backend.data.advice import advise
from backend.data.examples import Batch, Example
from backend.data.problems import DataError
from backend.data.report import DataReport, SplitSummary
from backend.data.scan import Cancel, ImportOptions, Progress, Sink, scan
from backend.data.split import eval_count, split
from backend.data.tokens import TokenCounter


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
