"""Which files a dataset path stands for, and how their text is encoded.

A path may be one file, a folder of files, a dataset written by
``datasets.save_to_disk`` or one imported into LoRA Studio's data folder. Each
becomes a list of ``SourceFile``s with a kind that picks its reader.
"""

from __future__ import annotations

import codecs
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.data.problems import DataError, said

KINDS_BY_SUFFIX = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".arrow": "arrow",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".txt": "text",
    ".md": "text",
    ".docx": "docx",
    ".pdf": "pdf",
}
TEXT_KINDS = frozenset({"text", "docx", "pdf"})
"""Kinds read as plain text for continued pre-training, not as rows."""
_TEXT_SUFFIXES = [suffix for suffix, kind in KINDS_BY_SUFFIX.items() if kind in TEXT_KINDS]
OLD_FORMATS = {
    ".xls": "an Excel 97-2003 workbook, which LoRA Studio does not read: open it in Excel and save it as an Excel "
    "Workbook (.xlsx) or as CSV UTF-8",
    ".doc": "a Word 97-2003 document, which LoRA Studio does not read: open it in Word and save it as a Word "
    "Document (.docx)",
}
"""Suffixes refused with what to do instead, keyed like KINDS_BY_SUFFIX."""
STORED_RECORD = "lora_studio_dataset.json"
"""The metadata file of a dataset imported into the data folder (see store.py)."""

_OLE_HEADER = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # how .xls, .doc and password-protected Office files start
_HEAD_BYTES = 1024  # what a text file's first bytes are checked on
_TEXT_CONTROLS = frozenset(b"\t\n\r\f\v\x1b")  # control bytes text files do hold (ESC in terminal colours)
_BINARY_MAGIC = (  # how files that are not text begin: what they are, as a person knows them, and what to do
    (b"\x1f\x8b", "a gzip archive", "decompress it (gunzip, or 7-Zip on Windows) and import the file inside"),
    (b"PK\x03\x04", "a zip archive (or an Office file renamed)", "unzip it and import the file inside"),
    (b"PAR1", "a Parquet file", "give it the suffix .parquet"),
    (b"ARROW1", "an Arrow file", "give it the suffix .arrow"),
    (b"%PDF-", "a PDF document", "give it the suffix .pdf"),
    (b"\x89PNG", "a PNG image", "choose the data file"),
    (b"\xff\xd8\xff", "a JPEG image", "choose the data file"),
    (b"SQLite format 3\x00", "an SQLite database", "export the table as CSV or JSON lines"),
    (b"\xfd7zXZ\x00", "an xz archive", "decompress it and import the file inside"),
    (b"(\xb5/\xfd", "a zstd archive", "decompress it and import the file inside"),
    (_OLE_HEADER, "an Office 97-2003 file (.xls, .doc)", "save it as .xlsx or CSV UTF-8"),
)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True)
class SourceFile:
    path: Path
    kind: str
    name: str  # as shown to people: relative to the folder the user chose
    size: int


@dataclass(frozen=True)
class Sources:
    files: list[SourceFile]
    notes: list[str]  # what was skipped or chosen, in words


def text_encoding(path: Path) -> str:
    """The encoding to read a text file in (its byte-order mark's, UTF-16 without one, else UTF-8), from its first
    KiB; a DataError when those bytes say it is not text at all, or hold nothing but blank space."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_HEAD_BYTES)
            whole = not handle.read(1)
    except OSError as exc:
        raise DataError(f"cannot open {path}: {exc.strerror}") from None
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    for magic, what, advice in _BINARY_MAGIC:
        if head.startswith(magic):
            raise DataError(f"{path.name}: this is not text/JSON but {what}; {advice}", code="not_text")
    utf16 = _utf16_without_bom(head)
    if utf16 is not None:
        return utf16
    controls = [i for i, byte in enumerate(head) if byte < 0x20 and byte not in _TEXT_CONTROLS]
    if b"\0" in head or len(controls) > len(head) // 20:
        at = head.find(b"\0") if b"\0" in head else controls[0]
        raise DataError(
            f"{path.name}: this is not text/JSON: it holds binary data (byte {at + 1:,} is 0x{head[at]:02X}, which "
            f"text never holds); check that this is the data file and not a compressed, image or other file renamed "
            f"{path.suffix or 'without a suffix'}",
            code="not_text",
        )
    if whole and head.isspace():
        raise DataError(
            f"{path.name}: the file is empty: it holds only blank space ({len(head):,} bytes of spaces and line "
            "breaks)",
            code="empty_file",
        )
    return "utf-8"


def check_not_empty(source: SourceFile) -> None:
    """A DataError saying plainly that a file of 0 bytes is empty, whatever its kind."""
    if source.size == 0:
        raise DataError(f"{source.path.name}: the file is empty (0 bytes)", code="empty_file")


def _utf16_without_bom(head: bytes) -> str | None:
    """UTF-16 without a byte-order mark (as some Windows tools write it): ASCII characters (JSON's punctuation,
    line breaks) put a zero in every second byte, at odd offsets in little-endian, even ones in big-endian. Binary
    data has zeros at both."""
    pairs = len(head) // 2
    even, odd = head[0 : pairs * 2 : 2].count(0), head[1 : pairs * 2 : 2].count(0)
    enough = max(2, pairs // 50)
    if odd >= enough and not even:
        return "utf-16-le"
    if even >= enough and not odd:
        return "utf-16-be"
    return None


def check_office_zip(path: Path, older: str) -> None:
    """A DataError when an Office file that should be a zip (.xlsx, .docx) is not: a password protects it, or it
    is an ``older`` file (e.g. "an Excel 97-2003 workbook (.xls)") renamed."""
    try:
        with path.open("rb") as handle:
            head = handle.read(len(_OLE_HEADER))
    except OSError as exc:
        raise DataError(f"cannot open {path}: {exc.strerror}") from None
    if head == _OLE_HEADER:
        raise DataError(
            f"{path.name} is protected by a password, or is {older} renamed; open it, remove the password "
            "(File > Info > Protect), and save it again in the current format",
            code="encrypted",
        )


def find_sources(path: Path) -> Sources:
    """The files to read for ``path``, in a stable order, or a DataError saying why there are none."""
    if not path.exists():
        raise DataError(f"{path} does not exist; check the path")
    if path.is_file():
        kind = KINDS_BY_SUFFIX.get(path.suffix.lower())
        if kind is None:
            old = OLD_FORMATS.get(path.suffix.lower())
            if old is not None:
                raise DataError(f"{path.name} is {old}")
            known = ", ".join(sorted(KINDS_BY_SUFFIX))
            raise DataError(f"{path.name}: LoRA Studio reads {known} files, not {_suffixed(path)}")
        return Sources([SourceFile(path, kind, path.name, path.stat().st_size)], [])
    found = _dataset_folder(path, path)
    return found if found is not None else _folder(path)


def _suffixed(path: Path) -> str:
    """'.zip' files, or files without a suffix, in words."""
    return f"'{path.suffix}' files" if path.suffix else "files without a suffix"


def _dataset_folder(root: Path, folder: Path) -> Sources | None:
    """The files of a dataset folder (imported, or saved by ``datasets``), named relative to ``root``; None for
    an ordinary folder."""
    if (folder / STORED_RECORD).is_file():
        data = folder / "data.arrow"
        if not data.is_file():
            raise DataError(f"{folder} is an imported dataset without its data.arrow; import the data again")
        name = folder.name if folder == root else str(folder.relative_to(root))
        return Sources([SourceFile(data, "stored", name, data.stat().st_size)], [])
    if (folder / "dataset_dict.json").is_file():
        splits = _read_json(folder / "dataset_dict.json").get("splits", [])
        chosen = "train" if "train" in splits else (splits[0] if splits else None)
        if chosen is None:
            raise DataError(f"{folder} is a saved dataset with no splits; save it again with datasets")
        others = [s for s in splits if s != chosen]
        notes = []
        if others:
            notes.append(
                f"{folder.name}: this saved dataset has the splits {', '.join(splits)}; the '{chosen}' split is "
                f"imported. To evaluate on another, set data.eval_path to {folder / others[0]}"
            )
        inner = _dataset_folder(root, folder / chosen)
        if inner is None:
            raise DataError(f"{folder / chosen} is missing or damaged; save the dataset again with datasets")
        return Sources(inner.files, notes + inner.notes)
    if (folder / "state.json").is_file():
        names = [entry["filename"] for entry in _read_json(folder / "state.json").get("_data_files", [])]
        files = [folder / name for name in names] or sorted(folder.glob("*.arrow"))
        return Sources([SourceFile(f, "arrow", str(f.relative_to(root)), f.stat().st_size) for f in files], [])
    return None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path} cannot be read ({said(exc)}); save the dataset again") from None
    return value if isinstance(value, dict) else {}


def _folder(root: Path) -> Sources:
    """Every readable file under ``root`` (a dataset folder inside counts as one source); plain text only when the
    folder holds nothing else."""
    found: list[SourceFile] = []
    notes: list[str] = []
    for here, folders, names in os.walk(root):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        current = Path(here)
        if current != root:
            inner = _dataset_folder(root, current)
            if inner is not None:
                found += inner.files
                notes += inner.notes
                folders[:] = []
                continue
        for name in sorted(n for n in names if not n.startswith(".")):
            path = current / name
            relative = path.relative_to(root)
            kind = KINDS_BY_SUFFIX.get(path.suffix.lower())
            if kind is None:
                old = OLD_FORMATS.get(path.suffix.lower())
                why = f"it is {old}" if old else f"LoRA Studio does not read {_suffixed(path)}"
                notes.append(f"{relative}: skipped; {why}")
                continue
            found.append(SourceFile(path, kind, str(relative), path.stat().st_size))
    structured = [f for f in found if f.kind not in TEXT_KINDS]
    if structured:
        for text in (f for f in found if f.kind in TEXT_KINDS):
            notes.append(
                f"{text.name}: skipped; text documents ({', '.join(_TEXT_SUFFIXES)}) are read only from a folder "
                "that holds no data files (a README next to the data is not training text)"
            )
        found = structured
    if not found:
        known = ", ".join(sorted(KINDS_BY_SUFFIX))
        skipped = f"; {notes[0]}" if notes else ""
        raise DataError(f"{root} holds no dataset files ({known}){skipped}")
    return Sources(found, notes)
