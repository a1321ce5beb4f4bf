"""Stream the records of one file, a chunk at a time, with memory bounded by the chunk.

Each reader yields ``Chunk``s: the records (a line number where the file has
lines, and the parsed value or an ``Unreadable`` saying why not) and how far
through the file it is, so the caller can report progress and stop between
chunks. Nothing is decided about formats here; a file that is empty or not text is refused before it is
read (``files.text_encoding``), and a .json object whose list holds a conversation's turns is one row.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, cast

from backend.data.chunk import CHUNK_ROWS, Chunk, Unreadable
from backend.data.files import SourceFile, check_not_empty, text_encoding
from backend.data.problems import DataError, said
from backend.data.text_chunks import chunk_paragraphs, paragraphs

CHUNK_BYTES = 4 << 20
_MAX_JSON_ITEM = 64 << 20  # an item of a .json array larger than this is treated as malformed


def read_file(source: SourceFile, chunk_chars: int, sheet: str | None = None) -> Generator[Chunk, None, None]:
    """The records of ``source`` by its kind; ``sheet`` names the sheet of a workbook (default: the first with
    rows). A generator: a caller that stops reading early closes it, which closes the file. A file that is
    empty, or that should be text and is not, is a DataError here, before any reading."""
    check_not_empty(source)
    kind = source.kind
    if kind == "jsonl":
        return _jsonl(source.path, text_encoding(source.path))
    if kind == "json":
        return _json(source.path, text_encoding(source.path))
    if kind in ("csv", "tsv"):
        return _delimited(source.path, text_encoding(source.path), "\t" if kind == "tsv" else None)
    if kind == "parquet":
        return _parquet(source.path)
    if kind in ("arrow", "stored"):
        return _arrow(source.path)
    if kind == "text":
        return _text(source.path, text_encoding(source.path), chunk_chars)
    if kind == "xlsx":
        from backend.data.workbook import read_workbook  # openpyxl, only for workbooks

        return read_workbook(source.path, sheet)
    if kind in ("docx", "pdf"):
        from backend.data.documents import read_document  # python-docx and pypdf, only for documents

        return read_document(source.path, kind, chunk_chars)
    raise ValueError(f"no reader for {kind!r}")


def _open_text(path: Path, encoding: str, newline: str | None = None) -> io.TextIOWrapper:
    """Text in ``encoding`` (``files.text_encoding``); bytes that are not valid in it become lone surrogates,
    which the scan reports on the row that holds them instead of failing the whole file."""
    try:
        return path.open(encoding=encoding, errors="surrogateescape", newline=newline)
    except OSError as exc:
        raise DataError(f"cannot open {path}: {exc.strerror}") from None


def _position(handle: io.TextIOWrapper, size: int) -> float:
    buffer = cast(io.BufferedReader, handle.buffer)  # typeshed's protocol for it has no tell()
    return min(1.0, buffer.tell() / size)


# -- JSON lines -------------------------------------------------------------------


def _jsonl(path: Path, encoding: str) -> Generator[Chunk, None, None]:
    size = max(1, path.stat().st_size)
    loads, decode = json.loads, json.JSONDecoder().raw_decode
    line_no = 0
    with _open_text(path, encoding) as handle:
        while True:
            lines = handle.readlines(CHUNK_BYTES)
            if not lines:
                return
            records: list[tuple[int | None, Any]] = []
            for line in lines:
                line_no += 1
                if line.isspace():
                    continue
                try:
                    # raw_decode skips json.loads' checks; loads runs when they matter, for its error message.
                    value, end = decode(line)
                    if end < len(line) - 1 and not line[end:].isspace():
                        value = loads(line)
                except json.JSONDecodeError:
                    try:
                        value = loads(line.rstrip("\r\n"))  # the line's end is not part of an unclosed text
                    except json.JSONDecodeError as exc:
                        value = Unreadable(
                            "invalid_json", f"not valid JSON at column {exc.colno}: {json_words(exc.msg)}"
                        )
                except (RecursionError, ValueError) as exc:
                    value = Unreadable("invalid_json", _beyond_limits(exc))
                records.append((line_no, value))
            yield Chunk(records, _position(handle, size))


_JSON_WORDS = {  # what Python's json module says, as a person who is not a programmer would say it
    "Expecting value": "expected a value here (text in double quotes, a number, true, false, null, [ or {)",
    "Expecting ',' delimiter": "expected a comma here, between two items",
    "Expecting ':' delimiter": "expected a colon here, after a field name",
    "Expecting property name enclosed in double quotes": "expected a field name in double quotes here",
    "Unterminated string starting at": "a text in double quotes starts here and is never closed",
    "Invalid control character at": "a line break inside a text in double quotes (is its closing quote missing?); "
    "write a line break in a text as \\n",
    "Invalid \\escape": "a backslash that starts no JSON escape; write a backslash itself as \\\\",
    "Invalid \\uXXXX escape": "a \\u escape without four hexadecimal digits",
    "Extra data": "more text after a complete JSON value (two rows on one line?)",
}


def json_words(message: str) -> str:
    """Python's JSON error in plain words; one it has no words for, without a dangling 'at'."""
    return _JSON_WORDS.get(message, message.removesuffix(" at"))


def _beyond_limits(exc: Exception) -> str:
    """Valid JSON that Python won't read: nested past its recursion limit, or a number past its digit limit."""
    if isinstance(exc, RecursionError):
        return "lists or objects nested too deeply to read"
    return f"a number longer than {sys.get_int_max_str_digits():,} digits, too long to read"


# -- a .json file: one array, or an object holding one --------------------------------


class _JsonStream:
    """Values of a JSON document read incrementally with ``raw_decode``, tracking line numbers."""

    def __init__(self, handle: io.TextIOWrapper, path: Path) -> None:
        self.handle, self.path = handle, path
        self.buf, self.pos = "", 0
        self.line, self.counted = 1, 0  # the line number at buffer position ``counted``
        self.eof = False
        self.decoder = json.JSONDecoder()

    def _more(self) -> bool:
        """Append more text: at least 1 MiB, doubling while one value keeps growing."""
        if self.eof:
            return False
        text = self.handle.read(max(1 << 20, len(self.buf) - self.pos))
        if not text:
            self.eof = True
            return False
        self.buf += text
        return True

    def compact(self) -> None:
        """Drop the text already consumed, keeping line numbers right."""
        if self.pos > (1 << 20):
            self.line_at(self.pos)
            self.buf, self.pos, self.counted = self.buf[self.pos :], 0, 0

    def line_at(self, index: int) -> int:
        """The line of buffer position ``index``; positions asked for only ever move forward."""
        self.line += self.buf.count("\n", self.counted, index)
        self.counted = index
        return self.line

    def peek(self) -> str:
        """The next non-space character ('' at the end), without consuming it."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def expect(self, chars: str) -> str:
        char = self.peek()
        if not char or char not in chars:
            found = f"'{char}'" if char else "the end of the file"
            raise self.error(f"expected {' or '.join(repr(c) for c in chars)} but found {found}")
        self.pos += 1
        return char

    def value(self) -> tuple[Any, int]:
        """The next value and where it starts, reading more text while it is incomplete."""
        self.peek()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if len(self.buf) - self.pos < _MAX_JSON_ITEM and self._more():
                    continue
                raise self.error(json_words(exc.msg), exc.pos) from None
            except (RecursionError, ValueError) as exc:
                raise self.error(_beyond_limits(exc)) from None
            start, self.pos = self.pos, end
            return value, start

    def error(self, message: str, at: int | None = None) -> DataError:
        index = self.pos if at is None else at
        column = index - (self.buf.rfind("\n", 0, index) + 1) + 1
        return DataError(
            f"{self.path.name}: not valid JSON at line {self.line_at(index)} column {column}: {message}",
            code="invalid_json_file",
        )


def _json(path: Path, encoding: str) -> Generator[Chunk, None, None]:
    """Stream a top-level array, or the first array of objects inside a top-level object; an object that is one
    row (it holds no list of objects but turns of a conversation) is that one row."""
    size = max(1, path.stat().st_size)
    with _open_text(path, encoding) as handle:
        stream = _JsonStream(handle, path)

        def position() -> float:
            return _position(handle, size)

        first = stream.peek()
        if first == "":
            raise DataError(f"{path.name}: the file is empty: it holds only blank space", code="empty_file")
        if first not in "[{":
            value, _ = stream.value()
            raise DataError(
                f"{path.name}: the file holds {kind_words(value)} rather than rows; write the rows as a JSON list of "
                'objects, [{"messages": [...]}, ...], or one object per line in a .jsonl file',
                code="no_rows",
            )
        if stream.expect("[{") == "[":
            yield from _json_items(stream, position)
            return
        start, line = stream.pos - 1, stream.line_at(stream.pos - 1)
        while stream.peek() != "}":
            stream.value()  # the key
            stream.expect(":")
            if stream.peek() == "[":
                items = stream.pos
                stream.expect("[")
                if stream.peek() == "]" or (stream.peek() == "{" and not _is_turn(stream)):
                    yield from _json_items(stream, position)
                    return
                stream.pos = items  # a list of something else, e.g. "tags": [...], or of a conversation's turns
            stream.value()  # a value beside the rows, e.g. "version": 2
            if stream.peek() == ",":
                stream.expect(",")
        stream.pos = start  # no list of rows: the object is one row
        row, _ = stream.value()
        yield Chunk([(line, row)], 1.0)


def _is_turn(stream: _JsonStream) -> bool:
    """Whether the object at the stream's position is a turn of a conversation (role or from), left unread."""
    at = stream.pos
    item, _ = stream.value()
    stream.pos = at
    return isinstance(item, dict) and ("role" in item or "from" in item)


def kind_words(value: Any) -> str:
    """A JSON value that is not rows, as a person would name it."""
    if value is None:
        return "only null"
    if isinstance(value, bool):
        return f"only {str(value).lower()}"
    if isinstance(value, int | float):
        return f"a single number ({value})"
    return "a single text" if isinstance(value, str) else "one value"


def _json_items(stream: _JsonStream, position: Callable[[], float]) -> Iterator[Chunk]:
    """The items of an array whose '[' was just consumed; on a syntax error, the items before it first."""
    records: list[tuple[int | None, Any]] = []
    try:
        while stream.peek() != "]":
            value, start = stream.value()
            records.append((stream.line_at(start), value))
            if stream.expect(",]") == "]":
                break
            if len(records) >= CHUNK_ROWS:
                yield Chunk(records, position())
                records = []
                stream.compact()
    except DataError:
        yield Chunk(records, position())
        raise
    yield Chunk(records, 1.0)


# -- CSV / TSV ------------------------------------------------------------------------


def _delimited(path: Path, encoding: str, delimiter: str | None) -> Generator[Chunk, None, None]:
    size = max(1, path.stat().st_size)
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # texts longer than csv's default 128 KiB
    with _open_text(path, encoding, newline="") as handle:
        try:
            header_line = handle.readline()
            if delimiter is None:  # Excel in many locales writes ';'
                delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
            header = [name.strip() for name in next(csv.reader([header_line], delimiter=delimiter), [])]
            reader = csv.reader(handle, delimiter=delimiter)
            consumed = 0  # lines the reader has taken after the header
            records: list[tuple[int | None, Any]] = []
            for fields in reader:
                start, consumed = consumed + 2, reader.line_num
                if not fields:
                    continue
                if len(fields) > len(header):
                    value: Any = Unreadable("extra_fields", f"{len(fields)} fields but the header names {len(header)}")
                else:
                    value = dict(zip(header, fields, strict=False))
                records.append((start, value))
                if len(records) >= CHUNK_ROWS:
                    yield Chunk(records, _position(handle, size))
                    records = []
        except csv.Error as exc:
            raise DataError(
                f"{path.name}: not valid CSV at line {consumed + 2} ({said(exc)})", code="invalid_csv_file"
            ) from None
        yield Chunk(records, 1.0)


# -- Parquet and Arrow ----------------------------------------------------------------


def _parquet(path: Path) -> Generator[Chunk, None, None]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        total = max(1, parquet.metadata.num_rows)
        done = 0
        for batch in parquet.iter_batches(batch_size=CHUNK_ROWS):  # a damaged page fails here, not on opening
            done += batch.num_rows
            yield Chunk([(None, row) for row in batch.to_pylist()], done / total)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a damaged file
        raise DataError(
            f"{path.name} is not a readable Parquet file ({said(exc)}); write it again from the program that made it"
        ) from None


def _arrow(path: Path) -> Generator[Chunk, None, None]:
    """Arrow IPC: the file format (LoRA Studio's store) or the stream format (``save_to_disk``)."""
    import pyarrow as pa

    try:
        with pa.memory_map(str(path)) as source:
            try:
                reader = pa.ipc.open_file(source)
                count = reader.num_record_batches
                batches = ((reader.get_batch(i), (i + 1) / count) for i in range(count))
            except pa.ArrowInvalid:
                source.seek(0)
                size = max(1, path.stat().st_size)
                batches = ((batch, source.tell() / size) for batch in pa.ipc.open_stream(source))
            done = 0.0
            for batch, position in batches:
                for start in range(0, batch.num_rows, CHUNK_ROWS):
                    part = batch.slice(start, CHUNK_ROWS).to_pylist()
                    yield Chunk(
                        [(None, row) for row in part], position if start + CHUNK_ROWS >= batch.num_rows else done
                    )
                done = position
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"{path.name} is not a readable Arrow file ({said(exc)})") from None


# -- plain text -----------------------------------------------------------------------


def _text(path: Path, encoding: str, chunk_chars: int) -> Generator[Chunk, None, None]:
    size = max(1, path.stat().st_size)
    with _open_text(path, encoding) as handle:
        records: list[tuple[int | None, Any]] = []
        for line, text in chunk_paragraphs(paragraphs(handle), chunk_chars):
            records.append((line, {"text": text}))
            if len(records) >= 256:
                yield Chunk(records, _position(handle, size))
                records = []
        yield Chunk(records, 1.0)
