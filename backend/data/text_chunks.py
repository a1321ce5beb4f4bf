"""Cut plain text into training pieces for continued pre-training.

Pieces end at paragraph breaks where possible, so a piece rarely starts
mid-sentence; a paragraph longer than the limit is cut at the last line break or
space before it. The limit is in characters because no tokenizer is needed to
read a file; about four characters make a token in English.

Paragraphs come numbered by where a person finds them (the line of a text file,
the page of a PDF, the paragraph of a Word document); a piece takes the number
of its first paragraph.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def chunk_paragraphs(paragraphs: Iterable[tuple[int, str]], limit: int) -> Iterator[tuple[int, str]]:
    """(number of the first paragraph, text) pieces of at most ``limit`` characters."""
    piece: list[str] = []
    piece_len = 0
    piece_place = 0
    for place, paragraph in paragraphs:
        for part in _split_long(paragraph, limit):
            added = len(part) + (2 if piece else 0)
            if piece and piece_len + added > limit:
                yield piece_place, "\n\n".join(piece)
                piece, piece_len = [], 0
                added = len(part)
            if not piece:
                piece_place = place
            piece.append(part)
            piece_len += added
    if piece:
        yield piece_place, "\n\n".join(piece)


def paragraphs(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """Blocks of non-blank lines with the number of their first line."""
    block: list[str] = []
    first = 0
    for number, line in enumerate(lines, start=1):
        text = line.rstrip("\r\n")
        if text.strip():
            if not block:
                first = number
            block.append(text)
        elif block:
            yield first, "\n".join(block)
            block = []
    if block:
        yield first, "\n".join(block)


def _split_long(text: str, limit: int) -> Iterator[str]:
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit + 1)
        if cut <= 0:
            cut = text.rfind(" ", 0, limit + 1)
        if cut <= 0:
            cut = limit
        yield text[:cut].rstrip()
        text = text[cut:].lstrip()
    if text:
        yield text
