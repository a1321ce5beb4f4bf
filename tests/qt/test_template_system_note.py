"""The Data page tells the user when the model's chat template adds a system prompt they never wrote."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from PySide6.QtCore import QSettings

from app.data_page import DataPage
from app.session import Session
from backend.models.store import import_folder
from tests.test_system_prompt import QWEN, QWEN_TEMPLATE, tokenizer_with

SUBPROCESS_S = 120_000


def test_the_rendered_example_says_the_template_adds_its_own_system_prompt(
    qtbot, session: Session, tiny_llama: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "qwen-like"
    shutil.copytree(tiny_llama, folder)
    tokenizer_with(tiny_llama, QWEN_TEMPLATE).save_pretrained(folder)
    model = import_folder(folder, name="Qwen-like").slug
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("data/model", model)
    data = tmp_path / "chats.jsonl"
    own = {"role": "system", "content": "Answer in one word."}
    chat = [{"role": "user", "content": "What colour is the sky?"}, {"role": "assistant", "content": "Blue."}]
    data.write_text(json.dumps({"messages": chat}) + "\n" + json.dumps({"messages": [own, *chat]}) + "\n")
    page = DataPage(session, settings=settings)
    qtbot.addWidget(page)
    page.show()
    page.preview.show_rendered_view()
    with qtbot.waitSignal(page.checked, timeout=30_000):
        page.open(data)
    qtbot.waitUntil(lambda: page.preview.rendered() is not None, timeout=SUBPROCESS_S)
    assert QWEN in page.preview.rendered().text
    assert page.template_note.isVisible()
    assert page.template_note.text() == (
        f"This model's chat template adds its own system prompt to examples that have none: '{QWEN}'. "
        'Set data.system_prompt to your own text, or to "" for none.'
    )
    page.preview.select_example(1)  # the example with its own system message
    qtbot.waitUntil(
        lambda: "Answer in one word." in (getattr(page.preview.rendered(), "text", "")), timeout=SUBPROCESS_S
    )
    assert not page.template_note.isVisible()
    page.close()
