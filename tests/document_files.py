"""Real Excel workbooks, Word documents and PDFs written by tests, as the programs people use would save them."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import docx
from openpyxl import Workbook


def write_workbook(path: Path, sheets: dict[str, Sequence[Sequence[Any]]], hidden: Sequence[str] = ()) -> Path:
    """An .xlsx with one sheet per entry, rows from row 1 (None is an empty cell); ``hidden`` sheets are hidden."""
    workbook = Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(list(row))
        if title in hidden:
            sheet.sheet_state = "hidden"
    workbook.save(path)
    return path


def truncate_sheets(path: Path, size: int) -> None:
    """Damage a workbook: cut every sheet's XML after ``size`` bytes, leaving the zip around it whole."""
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    with zipfile.ZipFile(path, "w") as target:
        for name, data in parts.items():
            target.writestr(name, data[:size] if name.startswith("xl/worksheets/") else data)


def cache_formula_value(path: Path, formula: str, value: str) -> None:
    """Save ``value`` as the result of ``formula`` in every sheet, as Excel does on saving (openpyxl saves none)."""
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    for name in parts:
        if name.startswith("xl/worksheets/"):
            parts[name] = parts[name].replace(
                f"<f>{formula}</f><v></v>".encode(), f"<f>{formula}</f><v>{value}</v>".encode()
            )
    with zipfile.ZipFile(path, "w") as target:
        for name, data in parts.items():
            target.writestr(name, data)


def write_docx(path: Path, blocks: Sequence[str | list[list[str]]]) -> Path:
    """A Word document: a string is a paragraph ('# ' starts a heading), a list of rows a table."""
    document = docx.Document()
    for block in blocks:
        if isinstance(block, str) and block.startswith("# "):
            document.add_heading(block[2:], level=1)
        elif isinstance(block, str):
            document.add_paragraph(block)
        else:
            table = document.add_table(rows=len(block), cols=len(block[0]))
            for r, row in enumerate(block):
                for c, text in enumerate(row):
                    table.cell(r, c).text = text
    document.save(str(path))
    return path


def write_pdf(path: Path, pages: Sequence[Sequence[str] | bytes | None]) -> Path:
    """A PDF whose pages show these lines of text in Helvetica; a page given as None is one image with no text, as a
    scanner makes, one given as bytes is that content stream as is (e.g. a damaged one). Written object by object,
    so that no PDF library decides what the file holds."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",  # the page tree, once the pages are numbered
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Type /XObject /Subtype /Image /Width 1 /Height 1 /ColorSpace /DeviceGray /BitsPerComponent 8 "
        b"/Length 1 >>\nstream\n\x80\nendstream",
    ]
    kids = []
    for lines in pages:
        if lines is None:
            content, resources = b"q 400 0 0 500 100 150 cm /Im1 Do Q", b"/XObject << /Im1 4 0 R >>"
        elif isinstance(lines, bytes):
            content, resources = lines, b"/Font << /F1 3 0 R >>"
        else:
            shown = b" T* ".join(b"(" + _pdf_string(line) + b") Tj" for line in lines)
            content, resources = b"BT /F1 12 Tf 14 TL 72 720 Td " + shown + b" ET", b"/Font << /F1 3 0 R >>"
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content))
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << %s >> /Contents %d 0 R >>"
            % (resources, len(objects))
        )
        kids.append(len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path


def _pdf_string(text: str) -> bytes:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("latin-1")
