"""Word (.docx) and PDF documents as plain text for continued pre-training, cut into pieces as a .txt file is.

A Word document's paragraphs (headings among them) and tables, in document order, are its
paragraphs, a table with a row per line and its cells between bars. Text in content
controls and tracked insertions is read; tracked deletions are not, nor are headers,
footers, footnotes, comments and text boxes. A PDF's text is extracted page by page and
each page is split at its blank lines; pages are joined with paragraph breaks. A piece is
placed by the paragraph (Word) or page (PDF) it starts on.

A PDF whose pages are scanned images has no text to extract: that is reported with OCR as
the fix, per page when only some pages are scans, instead of reading as an empty file. A PDF
that gives no text at all is refused with its cause: no pages, pages whose text cannot be
extracted (damage), scans, or blank pages.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docx
from docx.oxml.ns import qn
from pypdf import PdfReader

from backend.data.chunk import Chunk, Unreadable
from backend.data.files import check_office_zip
from backend.data.problems import DataError, said
from backend.data.report import count
from backend.data.text_chunks import chunk_paragraphs, paragraphs

_PIECES_PER_CHUNK = 256


@dataclass
class _Reading:
    """What a document's paragraphs report beside their text: how far through, pages without text, and what a PDF's
    pages were, to say why when none has text."""

    done: float = 0.0
    problems: list[tuple[int | None, Any]] = field(default_factory=list)
    pages: int = 0
    scans: int = 0  # pages that are an image without a text layer
    failures: list[str] = field(default_factory=list)  # why each page whose text could not be extracted failed


def read_document(path: Path, kind: str, chunk_chars: int) -> Generator[Chunk, None, None]:
    """``{"text": piece}`` records of a .docx (``kind`` docx) or .pdf (``kind`` pdf), placed by paragraph or page."""
    reading = _Reading()
    if kind == "docx":
        unit, blocks = "paragraph", _docx_paragraphs(path, reading)
    else:
        unit, blocks = "page", _pdf_paragraphs(path, reading)
    records: list[tuple[int | None, Any]] = []
    pieces = 0
    for place, text in chunk_paragraphs(blocks, chunk_chars):
        pieces += 1
        records += [*reading.problems, (place, {"text": text})]
        reading.problems.clear()
        if len(records) >= _PIECES_PER_CHUNK:
            yield Chunk(records, reading.done, unit)
            records = []
    if not pieces:
        raise DataError(_no_text(path.name, kind, reading), code="no_text")
    yield Chunk(records + reading.problems, 1.0, unit)


_OCR = "run OCR first (e.g. ocrmypdf, or Scan & OCR in Acrobat) and import the searchable PDF"


def _no_text(name: str, kind: str, reading: _Reading) -> str:
    """Why a document gave no text at all, by what its pages were, and what to do."""
    if kind != "pdf":
        return f"{name} holds no text (a document of pictures, or an empty one)"
    pages, scans, failures = reading.pages, reading.scans, reading.failures
    if not pages:
        return (
            f"{name} has no pages, so there is no text to read; check that it opens in a PDF viewer, and export it "
            "again"
        )
    if failures:
        return (
            f"no text could be extracted from {name} ({failures[0]}, on {count(len(failures), 'page')}); open it in "
            "a PDF viewer, print it to a new PDF and import that"
        )
    if scans == pages:
        return f"{name} has no text layer: its pages are images (a scan), so there is no text to read; {_OCR}"
    if scans:
        return (
            f"{name} has no text layer: {scans:,} of its {count(pages, 'page')} are images (a scan) and the others "
            f"are blank, so there is no text to read; {_OCR}"
        )
    return (
        f"{name} has no text layer: its pages hold no text and no images (blank, or text drawn as shapes); if they "
        f"show text, {_OCR}"
    )


# -- Word -----------------------------------------------------------------------------


def _docx_paragraphs(path: Path, reading: _Reading) -> Iterator[tuple[int, str]]:
    """Each non-empty paragraph and table, numbered from 1 in document order."""
    check_office_zip(path, "a Word 97-2003 document (.doc)")
    try:
        body = docx.Document(str(path)).element.body
    except Exception as exc:  # noqa: BLE001 - python-docx raises several types for a damaged file
        raise DataError(
            f"{path.name} is not a readable Word document ({said(exc)}); open it in Word and save it again"
        ) from None
    blocks = list(_blocks(body))
    number = 0
    for index, text in enumerate(blocks, start=1):
        reading.done = index / len(blocks)
        if text.strip():
            number += 1
            yield number, text


def _blocks(element: Any) -> Iterator[str]:
    """The text of each paragraph and table under ``element`` (a table's rows on lines of their own), content
    controls opened."""
    for child in element.iterchildren():
        if child.tag == qn("w:p"):
            runs = child.xpath(".//w:r[not(ancestor::w:del or ancestor::w:moveFrom or ancestor::w:txbxContent)]")
            yield "".join(run.text for run in runs)
        elif child.tag == qn("w:tbl"):
            rows = (_row_text(row) for row in child.iterchildren(qn("w:tr")))
            yield "\n".join(row for row in rows if row)
        elif child.tag == qn("w:sdt"):
            content = child.find(qn("w:sdtContent"))
            if content is not None:
                yield from _blocks(content)


def _row_text(row: Any) -> str:
    """A table row on one line, its cells between bars; a vertically merged cell's text is in its first row only,
    as Word shows it."""
    cells = [
        "" if cell.vMerge == "continue" else " ".join(" ".join(_blocks(cell)).split())
        for cell in row.iterchildren(qn("w:tc"))
    ]
    return " | ".join(cells) if any(cells) else ""


# -- PDF ------------------------------------------------------------------------------


def _pdf_paragraphs(path: Path, reading: _Reading) -> Iterator[tuple[int, str]]:
    """The paragraphs of each page, numbered by page; a page of images without text is a problem."""
    try:
        pdf = PdfReader(path)
        # Most "secured" PDFs only restrict printing or copying, under an empty password that opens them.
        locked = pdf.is_encrypted and not pdf.decrypt("")
        pages = 0 if locked else len(pdf.pages)
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types for a damaged file
        raise DataError(f"{path.name} is not a readable PDF ({said(exc)})") from None
    if locked:
        raise DataError(
            f"{path.name} is protected by a password; open it, save a copy without the password "
            "(or print it to a new PDF) and import that",
            code="encrypted",
        )
    reading.pages = pages
    for number in range(1, pages + 1):
        reading.done = number / pages
        try:
            page = pdf.pages[number - 1]
            text = page.extract_text()
            scanned = not text.strip() and len(page.images) > 0
        except Exception as exc:  # noqa: BLE001 - one damaged page must not lose the others
            why = said(exc)
            reading.failures.append(why)
            reading.problems.append((number, Unreadable("no_text", f"its text cannot be extracted ({why})")))
            continue
        if scanned:
            reading.scans += 1
            message = "no text layer on this page: it is an image (a scan); run OCR first to read its text"
            reading.problems.append((number, Unreadable("no_text", message)))
        yield from ((number, paragraph) for _, paragraph in paragraphs(text.splitlines()))
