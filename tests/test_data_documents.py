"""Excel workbooks read as tables, Word documents and PDFs as text, from real files written here."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path

import psutil
import pytest
from pypdf import PdfReader, PdfWriter

from backend.cli.common import EXIT_FAILED, EXIT_OK
from backend.cli.main import main
from backend.data.load import check_dataset, read_dataset
from backend.data.problems import DataError, ImportCancelled
from backend.data.scan import ImportOptions, scan
from backend.data.store import import_dataset, read_examples
from backend.data.workbook import Sheet, default_sheet, list_sheets
from tests.document_files import cache_formula_value, truncate_sheets, write_docx, write_pdf, write_workbook

TICKETS = [
    ["instruction", "input", "output"],
    ["Printer jams", "Model LX-200", "Open tray B and remove the sheet."],
    ["Forgot my password", None, "Use 'Reset password' on the sign-in page."],
    [None, None, None],
    ["Screen is black", "Since Monday", None],
    ["Wifi drops", None, "Restart the router."],
]


def where(path: Path, **options) -> list[str]:
    return [e.where() for e in read_dataset(path, ImportOptions(**options)).examples]


# -- Excel workbooks ---------------------------------------------------------------------------


def test_a_workbook_is_read_like_csv_and_bad_rows_name_their_sheet_and_excel_row(tmp_path: Path) -> None:
    path = write_workbook(tmp_path / "tickets.xlsx", {"Tickets": TICKETS})
    report = check_dataset(path)
    assert report.files[0].format == "alpaca" and report.files[0].kind == "xlsx"
    assert (report.rows, report.accepted) == (4, 3), "the blank row 4 is not a row"
    [problem] = report.problems.kept
    assert str(problem) == "tickets.xlsx Tickets row 5, field output: 'output' is empty"
    assert problem.to_dict()["unit"] == "Tickets row" and problem.line == 5
    examples = read_dataset(path).examples
    assert [e.where() for e in examples] == [
        "tickets.xlsx Tickets row 2",
        "tickets.xlsx Tickets row 3",
        "tickets.xlsx Tickets row 6",
    ]
    assert examples[0].messages[0]["content"] == "Printer jams\n\nModel LX-200"
    assert examples[1].messages[0]["content"] == "Forgot my password", "an empty input cell is no input"
    stored, _ = import_dataset(path, root=tmp_path / "store")
    assert [e.where() for e in read_examples(stored.path, 1, 1)] == ["tickets.xlsx Tickets row 3"]


def test_a_workbook_holds_the_same_data_as_its_csv_export(tmp_path: Path) -> None:
    rows = [row for row in TICKETS if any(row)]
    write_workbook(tmp_path / "t.xlsx", {"Sheet1": rows})
    (tmp_path / "t.csv").write_text("\n".join(",".join(f'"{c or ""}"' for c in row) for row in rows) + "\n")
    assert check_dataset(tmp_path / "t.xlsx").content_hash == check_dataset(tmp_path / "t.csv").content_hash


def test_cells_become_text_as_excel_shows_them(tmp_path: Path) -> None:
    rows = [
        ["question", "answer", "context", None, "answer"],
        ["How many trays?", 3.0, datetime(2024, 3, 5), None, "a second answer column"],
        ["Sum?", 0.1 + 0.2, datetime(2024, 3, 5, 14, 30), None, None],
        ["Open?", True, date(2024, 1, 2), "a note in a column with no name", None],
        ["Ticket id?", 1234567, time(9, 15), None, None],
        ["Formula?", "=6*7", None, None, None],
    ]
    path = write_workbook(tmp_path / "cells.xlsx", {"Sheet1": rows})
    cache_formula_value(path, "6*7", "42")
    examples = read_dataset(path).examples
    assert [e.messages[-1]["content"] for e in examples] == ["3", "0.3", "TRUE", "1234567", "42"]
    assert [e.messages[0]["content"].split("\n\n")[0] for e in examples[:4]] == [
        "2024-03-05",
        "2024-03-05 14:30",
        "2024-01-02",
        "09:15",
    ]
    report = check_dataset(path)
    assert report.files[0].columns == ["answer", "answer (column E)", "column D", "context", "question"]


def test_a_value_right_of_the_header_and_merged_cells(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    path = write_workbook(tmp_path / "m.xlsx", {"Q&A": [["instruction", "output"], ["a", "b"], ["c", "d", "stray"]]})
    workbook = load_workbook(path)
    workbook["Q&A"].append(["merged over two columns"])
    workbook["Q&A"].merge_cells("A4:B4")
    workbook.save(path)
    report = check_dataset(path)
    assert report.accepted == 1
    assert [str(p) for p in report.problems.kept] == [
        "m.xlsx Q&A row 3: cell C3 holds a value, but row 1 names only columns A to B; give its column a name in "
        "row 1, or clear the cell",
        "m.xlsx Q&A row 4, field output: 'output' is empty",
    ]


def test_the_first_visible_sheet_with_rows_is_read_and_the_others_are_named(tmp_path: Path) -> None:
    path = write_workbook(
        tmp_path / "book.xlsx",
        {"Cover": [], "Secret": [["instruction", "output"], ["s", "t"]], "Tickets": TICKETS, "Old": [["x"]]},
        hidden=["Secret"],
    )
    report = check_dataset(path)
    assert report.accepted == 3
    [note] = report.notes
    assert "the sheet 'Tickets' is read; rows in 'Secret' (hidden), 'Old' are not" in note and "--sheet NAME" in note

    chosen = check_dataset(path, ImportOptions(sheet="Secret"))
    assert chosen.accepted == 1 and chosen.notes == []
    assert where(path, sheet="Secret") == ["book.xlsx Secret row 2"]
    missing = check_dataset(path, ImportOptions(sheet="tickets"))
    [problem] = missing.problems.kept
    assert problem.code == "no_sheet" and "its sheets are 'Cover', 'Secret', 'Tickets', 'Old'" in problem.message


def test_the_sheets_are_listed_for_a_choice_with_the_one_read_by_default(tmp_path: Path) -> None:
    sheets = {"Cover": [], "Secret": [["instruction", "output"], ["s", "t"]], "Tickets": TICKETS, "Old": [["x"]]}
    path = write_workbook(tmp_path / "book.xlsx", sheets, hidden=["Secret"])
    listed = list_sheets(path)
    assert listed == [
        Sheet("Cover", visible=True, has_rows=False),
        Sheet("Secret", visible=False, has_rows=True),
        Sheet("Tickets", visible=True, has_rows=True),
        Sheet("Old", visible=True, has_rows=True),
    ]
    assert default_sheet(listed) == listed[2], "as the check reads it"
    hidden_only = write_workbook(tmp_path / "hidden.xlsx", {"Cover": [], "Secret": [["x"]]}, hidden=["Secret"])
    assert default_sheet(list_sheets(hidden_only)) == Sheet("Secret", visible=False, has_rows=True)
    assert default_sheet(list_sheets(write_workbook(tmp_path / "empty.xlsx", {"Cover": []}))) is None
    (tmp_path / "broken.xlsx").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(DataError, match="not a readable Excel workbook"):
        list_sheets(tmp_path / "broken.xlsx")


def test_columns_are_mapped_and_the_sheet_chosen_on_the_command_line(tmp_path: Path, capsys) -> None:
    rows = [["ticket", "reply", "agent"], ["Printer jams", "Open tray B", "Ana"], ["No wifi", None, "Bo"]]
    path = write_workbook(tmp_path / "export.xlsx", {"Summary": [["total", 2]], "Export": rows})
    mapped = ["--map", "instruction=ticket", "--map", "response=reply"]
    assert main(["data", "check", str(path), "--sheet", "Export"]) == EXIT_FAILED
    assert "choose a format, or map the columns" in capsys.readouterr().out
    assert main(["data", "check", str(path), "--sheet", "Export", *mapped]) == EXIT_OK
    out = capsys.readouterr().out
    assert "1 of 2 rows usable" in out and "export.xlsx Export row 3, field reply: 'reply' is empty" in out
    spec_options = ImportOptions(
        format="columns", columns={"instruction": "ticket", "response": "reply"}, sheet="Export"
    )
    assert ImportOptions(**spec_options.to_dict()) == spec_options, "saved with an imported dataset, read back"


def test_a_sheet_named_where_no_workbook_is_read_is_a_warning(tmp_path: Path, capsys) -> None:
    (tmp_path / "export.csv").write_text("instruction,output\nPrinter jams,Open tray B\n")
    assert main(["data", "check", str(tmp_path / "export.csv"), "--sheet", "Export"]) == EXIT_OK
    warnings = capsys.readouterr().out.split("warnings:")[1]
    assert "The sheet 'Export' is named (--sheet; data.sheet in a job spec)" in warnings
    assert "export.csv is not one, so no sheet was chosen" in warnings
    write_workbook(tmp_path / "book.xlsx", {"Export": TICKETS})
    beside = check_dataset(tmp_path, ImportOptions(sheet="Export"))
    assert beside.accepted == 4 and "sheet_unused" not in [a.code for a in beside.advice], "the workbook has it"


def test_a_damaged_workbook_is_a_problem_of_its_file_not_a_traceback(tmp_path: Path, capsys) -> None:
    rows = [["instruction", "output"], *([f"Question {i}", f"Answer {i}"] for i in range(200))]
    path = write_workbook(tmp_path / "tickets.xlsx", {"Tickets": rows})
    truncate_sheets(path, 4000)  # past the header: the sheet is listed, and its rows fail when read
    assert list_sheets(path) == [Sheet("Tickets", visible=True, has_rows=True)]
    [problem] = check_dataset(path).problems.kept
    assert problem.file == "tickets.xlsx" and problem.code == "unreadable_file"
    assert problem.message.startswith("tickets.xlsx is not a readable Excel workbook (ParseError: ")
    assert problem.message.endswith("open it in Excel and save it again as .xlsx")
    assert main(["data", "check", str(path)]) == EXIT_FAILED
    assert "tickets.xlsx is not a readable Excel workbook" in capsys.readouterr().out
    truncate_sheets(path, 300)  # inside the header row: listing the sheets fails too
    with pytest.raises(DataError, match=r"tickets.xlsx is not a readable Excel workbook \(ParseError: "):
        list_sheets(path)


def test_a_workbook_read_no_further_is_closed_at_once(tmp_path: Path) -> None:
    """A cancelled check lets go of the file then, not when the garbage collector comes round (until it does,
    Windows won't let the file be saved over or deleted)."""
    path = write_workbook(tmp_path / "tickets.xlsx", {"Tickets": TICKETS})
    with pytest.raises(ImportCancelled) as cancelled:
        scan(path, cancel=lambda: True)
    assert cancelled.value.__traceback__ is not None, "the scan's frames, and the reader in them, are still held"
    assert path.resolve() not in [Path(f.path) for f in psutil.Process().open_files()]


def test_old_and_protected_office_files_say_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    with pytest.raises(
        DataError, match=r"old.xls is an Excel 97-2003 workbook.*save it as an Excel Workbook \(.xlsx\)"
    ):
        check_dataset(tmp_path / "old.xls")
    (tmp_path / "old.doc").write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(DataError, match=r"save it as a Word Document \(.docx\)"):
        check_dataset(tmp_path / "old.doc")
    (tmp_path / "locked.xlsx").write_bytes((tmp_path / "old.xls").read_bytes())
    write_workbook(tmp_path / "good.xlsx", {"Sheet1": TICKETS})
    report = check_dataset(tmp_path)
    assert report.accepted == 3
    assert any(n.startswith("old.xls: skipped; it is an Excel 97-2003 workbook") for n in report.notes)
    [problem] = [p for p in report.problems.kept if p.code == "encrypted"]
    assert problem.file == "locked.xlsx" and "protected by a password" in problem.message


# -- Word and PDF documents ----------------------------------------------------------------------


def test_a_word_document_is_cut_into_pieces_at_its_paragraphs(tmp_path: Path) -> None:
    intro = "This agreement is made between the Client and the Provider. " * 4
    path = write_docx(
        tmp_path / "contract.docx",
        ["# Services Agreement", intro, "", [["Term", "Meaning"], ["Client", "the buyer"]], "# Payment", intro],
    )
    examples = read_dataset(path, ImportOptions(chunk_chars=270)).examples
    assert all(e.messages == [] for e in examples)
    assert [e.text for e in examples] == [
        f"Services Agreement\n\n{intro}",
        "Term | Meaning\nClient | the buyer\n\nPayment",
        intro,
    ]
    assert [e.where() for e in examples] == [
        "contract.docx paragraph 1",
        "contract.docx paragraph 3",
        "contract.docx paragraph 5",
    ]
    assert check_dataset(path).files[0].reason == "a Word document"


def test_tracked_changes_and_content_controls_read_as_word_shows_them(tmp_path: Path) -> None:
    import docx
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    path = write_docx(tmp_path / "memo.docx", ["Fee: "])
    document = docx.Document(str(path))
    paragraph = document.paragraphs[0]._p
    w = nsdecls("w")
    paragraph.append(parse_xml(f'<w:ins {w} w:id="1" w:author="A"><w:r><w:t>EUR 900</w:t></w:r></w:ins>'))
    paragraph.append(parse_xml(f'<w:del {w} w:id="2" w:author="A"><w:r><w:delText>EUR 800</w:delText></w:r></w:del>'))
    paragraph.append(parse_xml(f"<w:sdt {w}><w:sdtContent><w:r><w:t> per month</w:t></w:r></w:sdtContent></w:sdt>"))
    block = f"<w:sdt {w}><w:sdtContent><w:p><w:r><w:t>Signed by the Client.</w:t></w:r></w:p></w:sdtContent></w:sdt>"
    document.element.body.insert(1, parse_xml(block))
    document.save(str(path))
    assert [e.text for e in read_dataset(path).examples] == ["Fee: EUR 900 per month\n\nSigned by the Client."]


def test_a_pdf_is_read_page_by_page_and_a_scanned_page_is_reported(tmp_path: Path) -> None:
    path = write_pdf(
        tmp_path / "memo.pdf",
        [["Memorandum (draft)", "on the lease of 2 Elm St."], None, ["The tenant pays the rent monthly."], []],
    )
    report = check_dataset(path, ImportOptions(chunk_chars=40))
    assert report.files[0].reason == "a PDF document" and report.accepted == 3
    [scan] = report.problems.kept
    assert scan.code == "no_text" and str(scan).startswith("memo.pdf page 2: no text layer on this page")
    assert "run OCR" in scan.message and "OCR" in scan.hint
    examples = read_dataset(path, ImportOptions(chunk_chars=40)).examples
    assert [(e.where(), e.text) for e in examples] == [
        ("memo.pdf page 1", "Memorandum (draft)"),
        ("memo.pdf page 1", "on the lease of 2 Elm St."),
        ("memo.pdf page 3", "The tenant pays the rent monthly."),
    ]
    assert [e.text for e in read_dataset(path).examples] == [
        "Memorandum (draft)\non the lease of 2 Elm St.\n\nThe tenant pays the rent monthly."
    ], "pages are joined with paragraph breaks"


def test_a_pdf_without_text_asks_for_ocr(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "scan.pdf", [None, None])
    with pytest.raises(DataError, match=r"scan.pdf has no text layer.*run OCR first"):
        read_dataset(path)
    [problem] = check_dataset(path).problems.kept
    assert problem.code == "no_text" and problem.file == "scan.pdf"


def test_a_pdf_without_text_says_why_by_what_its_pages_are(tmp_path: Path) -> None:
    damaged = b"BT /F1 12 Tf (Hi) Tj ET ] ] >> >>"  # a content stream a writer broke off
    said = {
        "empty.pdf": ([], "empty.pdf has no pages, so there is no text to read"),
        "damaged.pdf": ([damaged, damaged], "no text could be extracted from damaged.pdf (PdfReadError: "),
        "half.pdf": ([None, []], "half.pdf has no text layer: 1 of its 2 pages are images (a scan) and the others"),
        "blank.pdf": ([[], []], "blank.pdf has no text layer: its pages hold no text and no images"),
    }
    for name, (pages, message) in said.items():
        [problem] = check_dataset(write_pdf(tmp_path / name, pages)).problems.kept
        assert problem.code == "no_text" and message in problem.message, name
        assert ("run OCR" in problem.message) == (name in ("half.pdf", "blank.pdf")), name
        if name == "damaged.pdf":
            assert "on 2 pages); open it in a PDF viewer, print it to a new PDF" in problem.message


def test_a_pdf_locked_by_a_password_is_refused_and_one_only_restricted_is_read(tmp_path: Path) -> None:
    plain = write_pdf(tmp_path / "plain.pdf", [["Confidential settlement terms."]])
    for name, user_password in (("locked.pdf", "secret"), ("restricted.pdf", "")):
        writer = PdfWriter(clone_from=PdfReader(plain))
        writer.encrypt(user_password=user_password, owner_password="owner", algorithm="AES-256")
        writer.write(tmp_path / name)
    [problem] = check_dataset(tmp_path / "locked.pdf").problems.kept
    assert problem.code == "encrypted" and "save a copy without the password" in problem.message
    assert [e.text for e in read_dataset(tmp_path / "restricted.pdf").examples] == ["Confidential settlement terms."]


def test_documents_are_text_only_in_a_folder_with_no_data_files(tmp_path: Path) -> None:
    write_docx(tmp_path / "a.docx", ["First text."])
    write_pdf(tmp_path / "b.pdf", [["Second text."]])
    (tmp_path / "c.md").write_text("Third text.\n")
    assert [e.text for e in read_dataset(tmp_path).examples] == ["First text.", "Second text.", "Third text."]
    write_workbook(tmp_path / "d.xlsx", {"Sheet1": TICKETS})
    report = check_dataset(tmp_path)
    assert [f.name for f in report.files] == ["d.xlsx"]
    assert sum("skipped; text documents (.txt, .md, .docx, .pdf) are read only" in n for n in report.notes) == 3


def test_a_damaged_document_is_a_problem_of_its_file(tmp_path: Path) -> None:
    (tmp_path / "broken.docx").write_bytes(b"PK\x03\x04 not really a zip")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\n garbage")
    for name, said in (("broken.docx", "not a readable Word document"), ("broken.pdf", "not a readable PDF")):
        [problem] = check_dataset(tmp_path / name).problems.kept
        assert problem.file == name and said in problem.message
