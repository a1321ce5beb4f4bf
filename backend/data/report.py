"""What an import found, as plain data: for the CLI, the GUI and a report file (JSON or Markdown).

Problems are grouped by rule with the advice for each, so a report of ten
thousand bad rows still reads as a short list of things to fix.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from backend.data.problems import ADVICE, ProblemLog

_LISTED_PER_CODE = 20  # problems of one kind shown in the Markdown report and the terminal


@dataclass
class UnusedField:
    """A field of a file's rows that the import does not use (``backend.data.fields`` finds them)."""

    key: str  # "notes" on the row, "messages[].train" inside each message of the list "messages"
    rows: int  # rows that carry it with a value
    learned: bool  # public layouts give it training meaning: dropping it could change what is learned
    refused: bool  # so rows that carry it are refused, not imported without it
    meaning: str  # that meaning, in words; "" for a field without one

    def describe(self) -> str:
        """'messages[].train' in 3 rows, and what that means for training."""
        if self.refused:
            what = f"{self.meaning}: could change what is learned, so these rows are refused"
        elif self.learned:
            what = f"{self.meaning}: could change what is learned; left out as you mapped the columns"
        else:
            what = "not used; no training meaning known"
        return f"'{self.key}' in {count(self.rows, 'row')} ({what})"


@dataclass
class Suggested:
    """A column mapping offered for a file, tried on all its rows first (``backend.data.scan.Trial``)."""

    columns: dict[str, str]  # mapping role -> column, as ImportOptions.columns
    imports: int  # rows an import with it accepts

    def words(self) -> str:
        shown = ", ".join(f"{role} = {column}" for role, column in self.columns.items())
        flags = " ".join(f"--map {role}={column}" for role, column in self.columns.items())
        return f"map the columns {shown} ({flags}; on the Data page, Map columns…)"


@dataclass
class FileSummary:
    name: str
    kind: str  # jsonl, json, csv, tsv, parquet, arrow, xlsx, text, docx, pdf, stored
    format: str
    format_label: str
    reason: str  # why this format: detected from which fields, or chosen
    columns: list[str]  # field names seen in the first rows, for a column mapping
    rows: int = 0
    accepted: int = 0
    unused: list[UnusedField] = field(default_factory=list)  # fields the import leaves out, most carried first
    suggested: Suggested | None = None  # for a file not recognised: a mapping that imports rows, and how many


@dataclass
class ProblemGroup:
    code: str
    count: int  # rows it covers (see DataReport)
    entries: int  # problems: one per row, one per whole file
    files: int  # whole-file problems among them
    title: str
    hint: str
    excluded: bool  # whether these rows are left out of training
    listed: list[str]  # the first few, with where they are

    @property
    def tally(self) -> str:
        """'5 rows excluded', '3 rows kept', or '1 file' where whole files failed before any row was read."""
        if self.files and not self.count:
            return count(self.files, "file")
        return f"{count(self.count, 'row')} {'excluded' if self.excluded else 'kept'}"


@dataclass
class Advice:
    """A dataset-level warning for someone who is not an ML expert."""

    code: str
    message: str


@dataclass
class SplitSummary:
    eval_fraction: float
    seed: int
    train: int
    eval: int
    eval_file: bool = False  # the eval examples come from a separate file


@dataclass
class TokenStats:
    model: str
    max_length: int
    examples: int
    total: int  # tokens of every example, before truncation
    mean: float
    percentiles: dict[str, int]  # p50, p90, p95, p99
    longest: int
    histogram_edges: list[int]  # bin i counts examples longer than edges[i] and at most edges[i + 1] tokens
    histogram_counts: list[int]
    truncated: int  # examples longer than max_length
    cut_tokens: int  # tokens those lose
    tokens_per_epoch: int  # training tokens after truncation, over the train split
    loss_share: float | None  # share of tokens that carry loss (assistant replies), measured on a sample
    loss_sample: int  # examples that share was measured on
    lost_reply: int  # of the sample: examples whose replies are cut off entirely at max_length
    failed: int = 0  # examples the chat template could not render
    tools_ignored: int = 0  # examples with tools whose template does not show tools
    template_system_prompt: str = ""  # the notice, when the chat template adds its own system prompt to examples
    without_system: int = 0  # examples without a system message of their own, which it is added to


@dataclass
class DataReport:
    """What one check found. The counts, defined once here, count rows the same way everywhere:

    - ``rows``: rows read, from every file (a whole file that is refused counts all its rows);
    - ``accepted``: rows imported as examples; ``excluded`` (= rows - accepted): rows read and not imported;
    - ``problems.counts`` (``problem_counts`` in JSON, each group's ``count``): rows each rule hit, a
      whole-file problem counting the rows it kept out of the import (none where no row was read).
      Every excluded row is counted under exactly one rule that excludes, so those counts add up to
      ``excluded``; rules that keep their rows (duplicates without dedupe, placeholders) count them too.
    """

    source: str
    options: dict[str, Any]
    files: list[FileSummary] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    placeholders: int = 0
    chat_examples: int = 0
    text_examples: int = 0
    content_hash: str = ""
    problems: ProblemLog = field(default_factory=ProblemLog)
    split: SplitSummary | None = None
    tokens: TokenStats | None = None
    advice: list[Advice] = field(default_factory=list)

    @property
    def excluded(self) -> int:
        return self.rows - self.accepted

    @property
    def usable(self) -> bool:
        return self.accepted > 0

    # -- serialisation ----------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["problems"] = [p.to_dict() for p in self.problems.kept]
        data["problem_counts"] = dict(self.problems.counts)
        data["excluded"] = self.excluded
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def save(self, path: Path) -> None:
        """Write as JSON (.json) or Markdown (anything else)."""
        text = self.to_json() if path.suffix.lower() == ".json" else self.to_markdown()
        path.write_text(text, encoding="utf-8")

    # -- for people -------------------------------------------------------------

    def summary_lines(self) -> list[str]:
        lines = []
        for f in self.files:
            if f.format == "unread":
                lines.append(f"{f.name}: {f.format_label}: {f.reason}")
            else:
                lines.append(f"{f.name}: {f.format_label} ({f.reason}); {f.accepted:,} of {f.rows:,} rows usable")
        lines.extend(self.notes)
        kinds = []
        if self.chat_examples:
            kinds.append(count(self.chat_examples, "conversation"))
        if self.text_examples:
            kinds.append(count(self.text_examples, "plain-text piece"))
        lines.append(
            f"{count(self.accepted, 'usable example')} ({', '.join(kinds) or 'none'}) of {count(self.rows, 'row')}; "
            f"{self.excluded:,} excluded"
        )
        if self.duplicates:
            lines.append(count(self.duplicates, "exact duplicate"))
        if self.split:
            source = "a separate eval file" if self.split.eval_file else f"seed {self.split.seed}"
            lines.append(f"split: {self.split.train:,} train / {self.split.eval:,} eval ({source})")
        if self.content_hash:
            lines.append(f"content hash: {self.content_hash}")
        return lines

    def unused_lines(self) -> list[str]:
        """Each field the import leaves out, per file: how many rows carry it, and whether that matters."""
        return [f"{f.name}: {u.describe()}" for f in self.files for u in f.unused]

    def problem_groups(self) -> list[ProblemGroup]:
        """The rules that fired, most frequent first, each with its advice and first problems."""
        groups = []
        for code, n in self.problems.counts.most_common():
            kept = [p for p in self.problems.kept if p.code == code]
            title, hint = ADVICE[code]
            excluded = kept[0].excluded if kept else True
            files = sum(p.whole_file for p in kept)
            listed = [str(p) for p in kept[:_LISTED_PER_CODE]]
            entries = self.problems.entries[code]
            groups.append(ProblemGroup(code, n, entries, files, title, hint, excluded, listed))
        return groups

    def token_lines(self) -> list[str]:
        t = self.tokens
        if t is None:
            return []
        if not t.examples:
            return [f"tokens ({t.model}, max length {t.max_length:,}): no example could be measured"]
        pct = ", ".join(f"{name} {value:,}" for name, value in t.percentiles.items())
        lines = [
            f"tokens ({t.model}, max length {t.max_length:,}): {t.total:,} in {count(t.examples, 'example')}; "
            f"mean {t.mean:,.0f}, {pct}, longest {t.longest:,}",
            f"tokens per epoch (train split, after truncation): {t.tokens_per_epoch:,}",
            f"longer than {t.max_length:,}: {count(t.truncated, 'example')} ({_share(t.truncated, t.examples)}), "
            f"{t.cut_tokens:,} tokens cut",
        ]
        if t.template_system_prompt:
            lines.append(f"{count(t.without_system, 'example')} without a system prompt: {t.template_system_prompt}")
        if t.loss_share is not None:
            lines.append(
                f"tokens that carry loss (assistant replies): {t.loss_share:.1%} "
                f"(measured on {count(t.loss_sample, 'example')}"
                + (f"; {t.lost_reply:,} of them cut before their reply begins)" if t.lost_reply else ")")
            )
        return lines

    def histogram_lines(self, width: int = 40) -> list[str]:
        t = self.tokens
        if t is None or not t.histogram_counts:
            return []
        peak = max(t.histogram_counts) or 1
        edges = t.histogram_edges
        return [
            f"{edges[i] + 1:>7,}-{edges[i + 1]:<7,} {'#' * round(width * n / peak):<{width}} {n:,}"
            + ("  (cut)" if edges[i] >= t.max_length else "")
            for i, n in enumerate(t.histogram_counts)
        ]

    def to_markdown(self) -> str:
        out = [f"# Dataset report: {Path(self.source).name}", "", f"Source: `{self.source}`", ""]
        out += [f"- {line}" for line in self.summary_lines()]
        if self.advice:
            out += ["", "## Warnings", ""] + [f"- {a.message}" for a in self.advice]
        if self.unused_lines():
            out += ["", "## Fields not used", ""] + [f"- {line}" for line in self.unused_lines()]
        groups = self.problem_groups()
        if groups:
            out += ["", "## Problems", ""]
            for group in groups:
                heading = f"### {group.title}: {group.tally}"
                out += [heading, "", f"What to do: {group.hint}.", ""]
                out += [f"- {line}" for line in group.listed]
                if group.entries > len(group.listed):
                    more = group.entries - len(group.listed)
                    out.append(f"- … and {more:,} more (the JSON report lists up to {self.problems.keep:,} of each)")
                out.append("")
        if self.tokens:
            out += ["", "## Tokens", ""] + [f"- {line}" for line in self.token_lines()]
            out += ["", "```", *self.histogram_lines(), "```"]
        return "\n".join(out).rstrip() + "\n"


def count(n: int, noun: str) -> str:
    """'1 example', '2,000 examples': numbers in messages read as a person would write them."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "0%"
