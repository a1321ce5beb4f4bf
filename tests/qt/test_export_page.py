"""The Export page: sizing, refusal of a mismatched base, and queueing the jobs one click makes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.export_page import ExportPage
from app.session import Session
from backend.core.layout import ADAPTER_RECORD
from backend.core.task_specs import load_spec
from backend.jobs.queue import JobQueue
from tests.adapters import make_adapter


@pytest.fixture(scope="module")
def adapter(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_adapter(tiny_llama, tmp_path_factory.mktemp("export") / "adapter", r=4, lora_alpha=8)


def _page(qtbot: QtBot, session: Session, adapter: Path) -> ExportPage:
    page = ExportPage(session)
    qtbot.addWidget(page)
    page.picker.select(str(adapter))
    return page


def test_sizes_the_merge_before_anything_runs(qtbot: QtBot, session: Session, adapter: Path) -> None:
    page = _page(qtbot, session, adapter)

    assert "GiB of RAM" in page._needs.text() and "rank 4" in page._about.text()
    assert page.export_button.isEnabled()
    page.gguf.setChecked(False)
    assert not page.export_button.isEnabled(), "nothing chosen, nothing to export"
    page.adapter_only.setChecked(True)
    assert page.export_button.isEnabled() and page._needs.text() == "", "copying the adapter needs no merge"


def test_says_which_checks_the_ram_at_hand_allows(qtbot: QtBot, session: Session, adapter: Path, report_ram) -> None:
    report_ram(2**29)  # half a GiB
    page = _page(qtbot, session, adapter)

    assert "merge's logits check was skipped" in page._needs.text()
    assert "comparison with the source model's logits was skipped" in page._needs.text()
    page.gguf.setChecked(False)
    page.merged.setChecked(True)
    assert "source model" not in page._needs.text(), "a merge alone has no GGUF to check"


def test_refuses_an_adapter_whose_base_changed(qtbot: QtBot, session: Session, adapter: Path, tmp_path: Path) -> None:
    altered = tmp_path / "altered"
    altered.mkdir()
    for file in adapter.iterdir():
        (altered / file.name).write_bytes(file.read_bytes())
    record = json.loads((altered / ADAPTER_RECORD).read_text())
    record["base_model"]["fingerprint"] = "0" * 64
    (altered / ADAPTER_RECORD).write_text(json.dumps(record))

    page = _page(qtbot, session, altered)

    assert "fingerprint" in page._needs.text().lower() and not page.export_button.isEnabled()


def test_one_click_queues_a_job_per_output(qtbot: QtBot, session: Session, adapter: Path) -> None:
    page = _page(qtbot, session, adapter)
    page.show()  # the page follows the queue while it is visible
    page.merged.setChecked(True)
    page.gguf_type.setCurrentIndex(page.gguf_type.findData("f16"))
    page.system.setText("You answer briefly.")

    with qtbot.waitSignals([session.job_queued, session.job_queued]):
        page.export()

    with JobQueue(session.queue_path, session.jobs_dir) as queue:
        jobs = sorted(queue.jobs(), key=lambda job: job.id)
    assert [job.kind for job in jobs] == ["merge", "export"]
    merge, export = (load_spec(job.layout.spec) for job in jobs)
    assert merge.adapter == export.source == str(adapter)
    assert export.gguf_type == "f16" and export.system == "You answer briefly."
    assert "Queued jobs" in page.message.text()
    qtbot.waitUntil(lambda: page.results.rowCount() == 2)

    with JobQueue(session.queue_path, session.jobs_dir) as queue:
        qtbot.waitUntil(
            lambda: all(queue.get(job.id).state in ("succeeded", "failed") for job in jobs), timeout=300_000
        )
        finished = [queue.get(job.id) for job in jobs]
    assert [job.state for job in finished] == ["succeeded", "succeeded"], [job.message for job in finished]
    qtbot.waitUntil(lambda: {page.results.item(row, 1).text() for row in range(2)} == {"succeeded"}, timeout=10_000)
    outputs = {page.results.item(row, 2).toolTip() for row in range(2)}
    assert any(".gguf" in text for text in outputs), outputs
    gguf = next(Path(line) for text in outputs for line in text.splitlines() if line.endswith(".gguf"))
    assert gguf.is_file() and (gguf.parent / "Modelfile").is_file()


def test_the_gguf_lora_choice_queues_an_adapter_export_and_no_merge(
    qtbot: QtBot, session: Session, adapter: Path, tmp_path: Path
) -> None:
    page = _page(qtbot, session, adapter)
    page.gguf.setChecked(False)
    assert not page.system.isEnabled()
    page.gguf_lora.setChecked(True)
    page.output.setText(str(tmp_path))

    assert page.export_button.isEnabled() and page.system.isEnabled() and page._needs.text() == ""
    (spec,) = page.specs()
    assert spec.target == "gguf_lora" and spec.source == str(adapter) and spec.output_dir == str(tmp_path)
