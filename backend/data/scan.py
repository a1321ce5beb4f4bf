"""Read a dataset path end to end: files, format, rows, rules, duplicates and the content hash.

One pass, a chunk at a time, so a file of any size is validated in bounded
memory (plus about 100 bytes per distinct example: its digest and where it was
first seen, to find duplicates). Accepted examples go to sinks a batch at a time: a list for
training, an Arrow file for the data folder, a token counter. Progress is
reported between chunks, where a cancel request is also honoured.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from backend.data.advice import guess_mapping
from backend.data.chunk import Chunk, Unreadable
from backend.data.examples import Batch, canonical
from backend.data.fields import FieldAudit
from backend.data.files import TEXT_KINDS, SourceFile, find_sources
from backend.data.formats import LABELS, UNSUPPORTED, Detection, Normalizer, detect, normalizer
from backend.data.problems import DataError, ImportCancelled, RowProblem
from backend.data.readers import read_file
from backend.data.refusal import Refusal
from backend.data.report import DataReport, FileSummary, Suggested, count
from backend.data.rules import Reject, find_placeholder
from backend.data.turns import kind_of

if TYPE_CHECKING:
    from backend.core.spec import Data

Progress = Callable[[float], None]
Cancel = Callable[[], bool]
_LINE_FLAG = 1 << 40
_TEXT_REASONS = {"text": "a plain-text file", "docx": "a Word document", "pdf": "a PDF document"}
_NO_ROWS = {  # a file that holds no record, by kind, in words
    "jsonl": "the file is empty: it holds only blank lines",
    "json": "the file holds an empty list, no rows",
    "csv": "the file has a header line but no rows below it",
    "tsv": "the file has a header line but no rows below it",
    "text": "the file is empty: it holds only blank lines",
}
_NO_ROWS_ELSE = "the file holds no rows"


@dataclass(frozen=True)
class ImportOptions:
    """How to read a dataset; saved with an imported dataset so it can be read again the same way."""

    format: str = "auto"
    columns: Mapping[str, str] | None = None  # mapping role -> column, for format "columns"
    dedupe: bool = False
    chunk_chars: int = 4000  # plain text is cut into pieces of about this many characters
    sheet: str | None = None  # the sheet of an Excel workbook to read; None: the first visible one with rows

    @classmethod
    def from_spec(cls, data: Data) -> ImportOptions:
        columns = data.columns.model_dump(exclude_none=True) if data.columns else None
        return cls(
            format=data.format, columns=columns, dedupe=data.dedupe, chunk_chars=data.chunk_chars, sheet=data.sheet
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "columns": dict(self.columns) if self.columns else None,
            "dedupe": self.dedupe,
            "chunk_chars": self.chunk_chars,
            "sheet": self.sheet,
        }


class Sink(Protocol):
    def add(self, batch: Batch) -> None:
        """Take the accepted examples of one chunk."""


def scan(
    path: Path,
    options: ImportOptions = ImportOptions(),
    sinks: Sequence[Sink] = (),
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> DataReport:
    """Validate every row under ``path`` and pass the usable ones to ``sinks``; raises ImportCancelled."""
    sources = find_sources(path)
    report = DataReport(source=str(path), options=options.to_dict(), notes=list(sources.notes))
    state = _State(report, options, sinks, progress, cancel, total=sum(f.size for f in sources.files))
    for index, source in enumerate(sources.files):
        state.scan_file(index, source)
    report.content_hash = state.hasher.hexdigest()
    if progress:
        progress(1.0)
    return report


class Trial:
    """Rows imported in memory exactly as ``scan`` imports a file under ``options``: detection from the first
    rows added, the field audit, the normalizer, duplicates. Advice is checked with it before it is given, so a
    suggestion promises the rows that following it imports, and only where it imports some."""

    def __init__(self, options: ImportOptions, name: str = "rows") -> None:
        self.report = DataReport(source=name, options=options.to_dict())
        self._state = _State(self.report, options, (), None, None, total=1)
        self._source = SourceFile(Path(name), "jsonl", name, 0)
        self._state.names.append(name)
        self._state.units.append("row")
        self._summary = FileSummary(name, "jsonl", "unknown", LABELS["unknown"], "", [])
        self.report.files.append(self._summary)
        self._detection: Detection | None = None

    @property
    def imported(self) -> int:
        return self.report.accepted

    def add(self, values: Sequence[Any]) -> Trial:
        """Import one chunk of rows (as a reader parses them); a file's chunks are added in order."""
        if self._detection is None:
            self._detection = self._state.detected(self._source, self._summary, list(values))
        chunk = Chunk([(None, value) for value in values], 1.0, unit="row")
        self._state.rows(0, self._source, self._summary, self._detection, [chunk])
        return self


class _State:
    """What one scan carries from file to file: the hash, the digests seen, the counts."""

    def __init__(
        self,
        report: DataReport,
        options: ImportOptions,
        sinks: Sequence[Sink],
        progress: Progress | None,
        cancel: Cancel | None,
        total: int,
    ) -> None:
        self.report, self.options, self.sinks = report, options, sinks
        self.progress, self.cancel = progress, cancel
        self.total, self.done = max(1, total), 0
        self.hasher = hashlib.sha256()
        self.seen: dict[bytes, int] = {}  # digest prefix -> packed location of the first copy
        self.names: list[str] = []
        self.units: list[str] = []  # what each file's lines count
        self.audits: dict[int, FieldAudit] = {}  # file index -> the fields its rows carry that are not used

    def scan_file(self, index: int, source: SourceFile) -> None:
        self.names.append(source.name)
        self.units.append("line")
        summary = FileSummary(source.name, source.kind, "unknown", LABELS["unknown"], "", [])
        self.report.files.append(summary)
        try:
            # Closed on the spot when reading stops early (a cancel, a sink that fails), not when collected.
            with closing(read_file(source, self.options.chunk_chars, self.options.sheet)) as chunks:
                first = self._first_records(chunks)
                if first is None:
                    raise DataError(f"{source.path.name}: {_NO_ROWS.get(source.kind, _NO_ROWS_ELSE)}", "empty_file")
                self.units[index] = first.unit
                detection = self.detected(source, summary, [value for _, value in first.records])
                self.rows(index, source, summary, detection, chain([first], chunks))
        except DataError as exc:  # the rows read before it were counted one by one
            message = str(exc).removeprefix(f"{source.path.name}: ")
            self.report.problems.add(RowProblem(exc.code, message, source.name, rows=0))
            if not summary.rows:
                summary.format, summary.format_label, summary.reason = "unread", LABELS["unread"], message
        self.done += source.size

    def _first_records(self, chunks: Iterator[Chunk]) -> Chunk | None:
        """The first chunk that holds records (blank lines and headers yield chunks without), its notes taken."""
        for chunk in chunks:
            self.report.notes += chunk.notes
            if chunk.records:
                return chunk
        return None

    def detected(self, source: SourceFile, summary: FileSummary, values: list[Any]) -> Detection:
        """The file's layout from its first rows, noted in its summary."""
        detection = self._detect(source, values)
        summary.format, summary.format_label = detection.format, detection.label
        summary.reason, summary.columns = detection.reason, detection.columns
        return detection

    def _detect(self, source: SourceFile, values: list[Any]) -> Detection:
        if source.kind == "stored":
            return Detection("stored", "messages", "imported by LoRA Studio", ["messages", "text", "tools"])
        if source.kind in TEXT_KINDS:
            return Detection("text", None, _TEXT_REASONS[source.kind], [])
        return detect(values, self.options.format, self.options.columns)

    def rows(self, index: int, source: SourceFile, summary: FileSummary, detection: Detection, chunks: Any) -> None:
        """Read a file's rows a chunk at a time: import those that can be, note the problems of the rest."""
        report, name, unit = self.report, source.name, self.units[index]
        if detection.format in UNSUPPORTED or detection.format == "unknown":
            self._refuse(source, summary, detection, chunks)
            return
        normalize = normalizer(detection, self.options.columns)
        audit = self._audit(index, source, detection, normalize)
        add_problem = report.problems.add
        seen, hasher, dedupe, sinks = self.seen, self.hasher, self.options.dedupe, self.sinks
        sha256 = hashlib.sha256
        start = row = summary.rows  # rows of this file read before (a Trial adds a file a chunk at a time)
        accepted = duplicates = placeholders = texts = 0
        try:
            for chunk in chunks:
                batch = Batch(name, unit)
                for line, value in chunk.records:
                    row += 1
                    key = ""
                    try:
                        if type(value) is Unreadable:
                            raise Reject(value.code, value.message)
                        refusal = audit.check(value) if audit else None
                        if refusal is not None:
                            raise Reject("unsupported_field", *refusal)
                        example = normalize(value)
                        key = canonical(example)
                        digest = sha256(key.encode()).digest()
                    except Reject as reject:
                        add_problem(RowProblem(reject.code, reject.message, name, line, row, reject.field, unit=unit))
                        continue
                    except UnicodeEncodeError:
                        add_problem(RowProblem("invalid_text", _not_utf8(key), name, line, row, unit=unit))
                        continue
                    short = digest[:16]
                    first = seen.get(short)
                    if first is None:
                        seen[short] = (index << 41) | (_LINE_FLAG | line if line is not None else row)
                    else:
                        duplicates += 1
                        earlier = self._where(first)
                        if earlier == f"{name} {unit} {line}":  # a JSON list written on one line
                            earlier = f"an earlier row on the same {unit}"
                        problem = RowProblem(
                            "duplicate", f"same as {earlier}", name, line, row, excluded=dedupe, unit=unit
                        )
                        add_problem(problem)
                        if dedupe:
                            continue
                    if "{{" in key:
                        found = find_placeholder(example.contents if example.text is None else [example.text])
                        if found:
                            placeholders += 1
                            message = f"unfilled placeholder {found}"
                            add_problem(RowProblem("placeholder", message, name, line, row, excluded=False, unit=unit))
                    hasher.update(digest)
                    accepted += 1
                    if example.text is not None:
                        texts += 1
                    if sinks:
                        batch.add(example, line, row)
                if batch.items:
                    for sink in sinks:
                        sink.add(batch)
                self._between_chunks(source, chunk.position)
        finally:  # a file that fails part-way keeps the rows read before
            summary.rows = row
            summary.accepted += accepted
            summary.unused = audit.unused_fields() if audit else []
            report.rows += row - start
            report.accepted += accepted
            report.duplicates += duplicates
            report.placeholders += placeholders
            report.text_examples += texts
            report.chat_examples += accepted - texts

    def _audit(self, index: int, source: SourceFile, detection: Detection, normalize: Normalizer) -> FieldAudit | None:
        """The file's field audit (one per file, also when its rows come in several calls); none for stored rows,
        which are LoRA Studio's own, or text pieces, which have one field."""
        if source.kind == "stored" or detection.format == "text":
            return None
        if index not in self.audits:
            self.audits[index] = FieldAudit(normalize, mapped=detection.format == "columns")
        return self.audits[index]

    def _refuse(self, source: SourceFile, summary: FileSummary, detection: Detection, chunks: Any) -> None:
        """A file in no usable format: count its rows and say why none is imported. A row that cannot be read, or
        that is not an object, is a problem of its own; with no object at all, those problems are the whole story."""
        refusal = Refusal(detection) if detection.format in UNSUPPORTED else None
        mapping = guess_mapping(detection.columns) if detection.format == "unknown" else None
        trial = Trial(replace(self.options, format="auto", columns=mapping), source.name) if mapping else None
        objects = not (detection.format == "unknown" and not detection.columns)
        read = own = 0  # rows read; rows with a problem of their own
        try:
            for chunk in chunks:
                for line, value in chunk.records:
                    read += 1
                    if type(value) is Unreadable or not objects:
                        own += 1
                        self.report.problems.add(self._not_a_row(value, source.name, line, summary.rows + read))
                values = [value for _, value in chunk.records]
                if refusal is not None:
                    refusal.add(values)
                if trial is not None:
                    trial.add(values)
                self._between_chunks(source, chunk.position)
        finally:  # a file that fails part-way still counts the rows read before, each under one rule
            summary.rows += read
            self.report.rows += read
            if objects:
                self._refused(source, summary, detection, refusal, trial, mapping, read - own)

    def _not_a_row(self, value: Any, name: str, line: int | None, row: int) -> RowProblem:
        unit = self.units[-1]
        if type(value) is Unreadable:
            return RowProblem(value.code, value.message, name, line, row, unit=unit)
        message = f"the row is {kind_of(value)}, not an object with named fields"
        return RowProblem("not_an_object", message, name, line, row, unit=unit)

    def _refused(
        self,
        source: SourceFile,
        summary: FileSummary,
        detection: Detection,
        refusal: Refusal | None,
        trial: Trial | None,
        mapping: dict[str, str] | None,
        read: int,
    ) -> None:
        """The file-level problem for ``read`` rows of a layout that is not recognised or not supported."""
        if detection.format == "unknown":
            message = f"the format was not recognised ({detection.reason}); "
            if trial is not None and mapping and trial.imported:
                summary.suggested = Suggested(mapping, trial.imported)
                message += f"{summary.suggested.words()}, which imports {trial.imported:,} of {count(read, 'row')}"
            else:
                message += "choose a format, or map the columns to instruction, input, response and system"
            self.report.problems.add(RowProblem("unknown_format", message, source.name, rows=read))
        elif refusal is not None:
            problem = RowProblem("unsupported_format", refusal.message, source.name, rows=read)
            self.report.problems.add(problem)

    def _between_chunks(self, source: SourceFile, position: float) -> None:
        if self.progress:
            self.progress(min(1.0, (self.done + position * source.size) / self.total))
        if self.cancel and self.cancel():
            raise ImportCancelled

    def _where(self, packed: int) -> str:
        index = packed >> 41
        place = packed & (_LINE_FLAG - 1)
        return f"{self.names[index]} {self.units[index] if packed & _LINE_FLAG else 'row'} {place}"


def _not_utf8(text: str) -> str:
    """Which character of a row is not UTF-8, in words: a byte the file's encoding did not decode (read as a lone
    surrogate, see ``readers._open_text``), named with what it is in Windows-1252, or a lone surrogate escape."""
    code = next((ord(char) for char in text if "\ud800" <= char <= "\udfff"), 0)
    if 0xDC80 <= code <= 0xDCFF:
        byte = code - 0xDC00
        seen = bytes([byte]).decode("cp1252", errors="replace")
        return (
            f"the row holds byte 0x{byte:02X}, which is not UTF-8 text; in Windows-1252 (Latin-1) it is '{seen}', so "
            "the file was probably saved in that encoding"
        )
    if code:
        return f"the row holds a lone surrogate escape (\\u{code:04x}), half of a character that text cannot hold"
    return "the row holds text that is not UTF-8"
