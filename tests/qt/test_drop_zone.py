"""The drop zone with real drag-and-drop events, the keyboard, the clipboard and the file dialogs."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragLeaveEvent, QDragMoveEvent, QDropEvent, QGuiApplication
from PySide6.QtWidgets import QApplication, QFileDialog, QPushButton
from pytestqt.qtbot import QtBot

from widgets.drop_zone import DropState, DropZone, check_paths

EXTENSIONS = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet", ".txt", ".md")
ANY_ACTION = Qt.DropAction.CopyAction | Qt.DropAction.MoveAction | Qt.DropAction.LinkAction


def mime_for(*paths: Path, urls: tuple[QUrl, ...] = ()) -> QMimeData:
    """What a file manager puts in a drag: one file:// URL per item."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths] + list(urls))
    return mime


def drag_over(zone: DropZone, mime: QMimeData, actions: Qt.DropAction = ANY_ACTION) -> tuple[bool, bool]:
    """Enter and move over the zone as a drag does; whether each event was accepted."""
    pos = zone.rect().center()
    enter = QDragEnterEvent(pos, actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(zone, enter)
    move = QDragMoveEvent(pos, actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(zone, move)
    return enter.isAccepted(), move.isAccepted()


def drop_on(zone: DropZone, mime: QMimeData, actions: Qt.DropAction = ANY_ACTION) -> QDropEvent:
    drag_over(zone, mime, actions)
    drop = QDropEvent(zone.rect().center(), actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(zone, drop)
    return drop


@pytest.fixture
def zone(qtbot: QtBot) -> DropZone:
    widget = DropZone(extensions=EXTENSIONS)
    qtbot.addWidget(widget)
    widget.show()
    return widget


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    saved = tmp_path / "saved_dataset"  # what datasets.save_to_disk writes
    saved.mkdir()
    (saved / "dataset_info.json").write_text("{}")
    paths = {"train": tmp_path / "train.jsonl", "eval": tmp_path / "Eval.CSV", "photo": tmp_path / "photo.png"}
    for path in paths.values():
        path.write_text("x")
    return {**paths, "saved": saved}


def test_dropping_files_and_a_folder_emits_their_paths(qtbot: QtBot, zone: DropZone, files: dict) -> None:
    dropped = [files["train"], files["eval"], files["saved"]]
    with qtbot.waitSignal(zone.pathsDropped, timeout=1000) as signal:
        drop = drop_on(zone, mime_for(*dropped))
    assert signal.args == [dropped]
    assert drop.isAccepted()
    # A file manager offers to move; the zone takes a copy, so the file stays where it was.
    assert drop.dropAction() == Qt.DropAction.CopyAction
    assert zone.state is DropState.IDLE


def test_hovering_says_what_a_drop_would_open_and_leaving_clears_it(zone: DropZone, files: dict) -> None:
    assert drag_over(zone, mime_for(files["saved"])) == (True, True)
    assert zone.state is DropState.ACCEPT
    assert "Release to open the folder “saved_dataset”" in zone.message()

    QApplication.sendEvent(zone, QDragLeaveEvent())
    assert zone.state is DropState.IDLE
    assert "Drop a dataset file or folder here" in zone.message()


def test_an_unsupported_file_is_refused_with_the_reason(qtbot: QtBot, zone: DropZone, files: dict) -> None:
    entered, moved = drag_over(zone, mime_for(files["photo"]))
    assert entered and not moved  # the enter is taken so the reason can show; the move forbids the drop
    assert zone.state is DropState.REJECT
    assert "“photo.png” is a .png file, not a dataset. Use .jsonl, .ndjson, .json" in zone.message()
    QApplication.sendEvent(zone, QDragLeaveEvent())  # what Qt sends when a refused drag is released
    assert zone.state is DropState.REJECT, "the reason stays readable after the pointer leaves"

    with qtbot.assertNotEmitted(zone.pathsDropped):
        drop = drop_on(zone, mime_for(files["photo"]))
    assert not drop.isAccepted()


@pytest.mark.parametrize(
    ("make_mime", "reason"),
    [
        (lambda f: mime_for(f["train"], f["photo"]), "“photo.png” is a .png file"),
        (lambda f: mime_for(urls=(QUrl("https://example.com/train.jsonl"),)), "Web links can't be opened here"),
        (lambda f: mime_for(f["train"].with_name("gone.jsonl")), "“gone.jsonl” can't be found"),
        (lambda f: QMimeData(), "Only files and folders from this computer"),
    ],
    ids=["mixed drop refused whole", "web link", "missing file", "no files at all"],
)
def test_refusals_name_what_is_wrong(qtbot: QtBot, zone: DropZone, files: dict, make_mime, reason: str) -> None:
    with qtbot.assertNotEmitted(zone.pathsDropped):
        assert not drop_on(zone, make_mime(files)).isAccepted()
    assert zone.state is DropState.REJECT
    assert reason in zone.message()


def test_a_drag_that_can_only_move_is_refused(qtbot: QtBot, zone: DropZone, files: dict) -> None:
    with qtbot.assertNotEmitted(zone.pathsDropped):
        assert drag_over(zone, mime_for(files["train"]), Qt.DropAction.MoveAction) == (True, False)
        assert not drop_on(zone, mime_for(files["train"]), Qt.DropAction.MoveAction).isAccepted()
    assert "LoRA Studio never moves your files" in zone.message()


def test_extensions_folders_and_count_are_configurable(qtbot: QtBot, files: dict) -> None:
    zone = DropZone(extensions=(".csv",), folders=False, multiple=False, refusals={".xls": "an old workbook; save it"})
    qtbot.addWidget(zone)
    old = files["eval"].with_name("old.xls")
    old.write_text("x")
    with qtbot.waitSignal(zone.pathsDropped, timeout=1000) as signal:
        drop_on(zone, mime_for(files["eval"]))  # the extension matches whatever its case
    assert signal.args == [[files["eval"]]]
    for mime, reason in [
        (mime_for(files["train"]), "Use .csv files."),
        (mime_for(files["saved"]), "is a folder; drop a file instead"),
        (mime_for(files["eval"], files["eval"]), "Drop one file or folder at a time"),
        (mime_for(old), "“old.xls” is an old workbook; save it."),
    ]:
        drop_on(zone, mime)
        assert reason in zone.message()
    assert zone.findChildren(QPushButton)[0].text() == "Browse files…"
    assert len(zone.findChildren(QPushButton)) == 1


def test_enter_opens_the_file_dialog(qtbot: QtBot, zone: DropZone, files: dict, monkeypatch) -> None:
    asked = []

    def choose(*args):
        asked.append(args)
        return [str(files["train"])], "Datasets"

    monkeypatch.setattr(QFileDialog, "getOpenFileNames", choose)
    zone.setFocus()
    with qtbot.waitSignal(zone.pathsDropped, timeout=1000) as signal:
        qtbot.keyClick(zone, Qt.Key.Key_Return)
    assert signal.args == [[files["train"]]]
    assert "*.jsonl *.ndjson *.json *.csv *.tsv *.parquet *.txt *.md" in asked[0][3]


def test_a_file_chosen_under_all_files_is_still_checked(qtbot: QtBot, zone: DropZone, files: dict, monkeypatch) -> None:
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a: ([str(files["photo"])], "All files (*)"))
    with qtbot.assertNotEmitted(zone.pathsDropped):
        qtbot.mouseClick(_button(zone, "Browse files…"), Qt.MouseButton.LeftButton)
    assert zone.state is DropState.REJECT


def test_browse_folder_button(qtbot: QtBot, zone: DropZone, files: dict, monkeypatch) -> None:
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a: str(files["saved"]))
    with qtbot.waitSignal(zone.pathsDropped, timeout=1000) as signal:
        qtbot.mouseClick(_button(zone, "Browse folder…"), Qt.MouseButton.LeftButton)
    assert signal.args == [[files["saved"]]]


def test_cancelling_the_dialog_does_nothing(qtbot: QtBot, zone: DropZone, monkeypatch) -> None:
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a: "")
    with qtbot.assertNotEmitted(zone.pathsDropped):
        qtbot.mouseClick(_button(zone, "Browse folder…"), Qt.MouseButton.LeftButton)
    assert zone.state is DropState.IDLE


def test_pasting_copied_files(qtbot: QtBot, zone: DropZone, files: dict) -> None:
    QGuiApplication.clipboard().setMimeData(mime_for(files["train"]))
    zone.setFocus()
    with qtbot.waitSignal(zone.pathsDropped, timeout=1000) as signal:
        qtbot.keyClick(zone, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert signal.args == [[files["train"]]]


def test_check_paths_without_a_widget(files: dict) -> None:
    assert check_paths([files["train"], files["saved"]], (".jsonl",)).ok
    bare = files["train"].with_suffix("")
    bare.write_text("x")
    assert "“train” is a file without an extension, not a dataset" in check_paths([bare], (".jsonl",)).reason


def _button(zone: DropZone, text: str) -> QPushButton:
    (button,) = (b for b in zone.findChildren(QPushButton) if b.text() == text)
    return button
