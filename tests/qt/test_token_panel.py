"""The token panel: model and maximum-length choices, and its idle, busy, failed and measured states."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QComboBox, QLabel, QPushButton, QSpinBox
from pytestqt.qtbot import QtBot

from widgets.token_histogram import TokenLengths
from widgets.token_panel import TokenPanel, TokenSummary

LENGTHS = TokenLengths(edges=[0, 512, 1024, 2048], counts=[10, 20, 10], p50=700, p90=1500, p99=2000)
SUMMARY = TokenSummary(
    lengths=LENGTHS,
    max_length=1024,
    examples=40,
    total=40_000,
    longest=2000,
    truncated=10,
    cut_tokens=6000,
    tokens_per_epoch=30_000,
    loss_share=0.25,
    loss_sample=40,
    lost_reply=2,
)


@pytest.fixture
def panel(qtbot: QtBot) -> TokenPanel:
    widget = TokenPanel()
    qtbot.addWidget(widget)
    widget.set_models([("SmolLM2 (not imported yet)", "default"), ("Tiny", "tiny")], "tiny")
    return widget


def test_a_summary_fills_the_histogram_and_the_facts(panel: TokenPanel) -> None:
    panel.show_summary(SUMMARY)
    assert panel.max_length() == 1024 and panel.histogram().max_length() == 1024
    assert panel.findChild(QLabel, "epoch").text().startswith("30,000")
    learned = panel.findChild(QLabel, "learned").text()
    assert "25.0%" in learned and "2 of them are cut before their reply begins" in learned
    assert panel.findChild(QLabel, "cut").text().startswith("6,000 tokens (15.0% of all) from 10 examples")
    assert panel.status_text() == "" and not panel.is_busy()


def test_busy_then_failed_with_the_command_that_fixes_it(qtbot: QtBot, panel: TokenPanel) -> None:
    panel.show_busy("Counting tokens with Tiny…")
    assert panel.is_busy()
    with qtbot.waitSignal(panel.cancelRequested, timeout=1000):
        panel.findChild(QPushButton, "cancel").click()
    panel.show_error("The default model has not been imported yet.", "lora-studio models import default")
    assert not panel.is_busy() and panel.summary() is None
    assert panel.status_text().splitlines() == [
        "The default model has not been imported yet.",
        "lora-studio models import default",
    ]
    with qtbot.waitSignal(panel.retryRequested, timeout=1000):
        panel.findChild(QPushButton, "retry").click()


def test_choices_are_emitted_and_a_model_folder_can_be_chosen(
    qtbot: QtBot, panel: TokenPanel, tmp_path: Path, monkeypatch
) -> None:
    combo = panel.findChild(QComboBox, "model")

    def pick(index: int) -> None:  # as a click on the item does
        combo.setCurrentIndex(index)
        combo.activated.emit(index)

    with qtbot.waitSignal(panel.modelChosen, timeout=1000) as chosen:
        pick(0)
    assert chosen.args == ["default"] and panel.current_model() == "default"

    monkeypatch.setattr("widgets.token_panel.QFileDialog.getExistingDirectory", lambda *a, **k: str(tmp_path))
    with qtbot.waitSignal(panel.modelChosen, timeout=1000) as chosen:
        pick(combo.count() - 1)  # "Other model folder…"
    assert chosen.args == [str(tmp_path)] and panel.current_model_name() == tmp_path.name

    monkeypatch.setattr("widgets.token_panel.QFileDialog.getExistingDirectory", lambda *a, **k: "")
    with qtbot.assertNotEmitted(panel.modelChosen):
        pick(combo.count() - 1)
    assert panel.current_model() == str(tmp_path), "cancelling the folder dialog keeps the model chosen before"

    with qtbot.waitSignal(panel.maxLengthChanged, timeout=1000) as changed:
        panel.findChild(QSpinBox, "maxLength").setValue(2048)
    assert changed.args == [2048] and panel.histogram().max_length() == 2048
    with qtbot.assertNotEmitted(panel.maxLengthChanged):
        panel.set_max_length(512)
