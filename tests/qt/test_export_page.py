"""The Export page: sizing, refusal of a mismatched base, and queueing the jobs one click makes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.export_page import ExportPage
from app.session import Session
from backend.core.events import Progress, read_events
from backend.core.layout import ADAPTER_RECORD
from backend.core.task_specs import ExportSpec, MergeSpec, load_spec
from backend.export.merge import merge_adapter
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


def test_says_when_a_finished_merge_will_be_converted_instead_of_merging_again(
    qtbot: QtBot, session: Session, adapter: Path
) -> None:
    merged = session.jobs_dir / "earlier-merge" / "merged"
    merge_adapter(adapter, merged)  # as a merge job leaves it: auto format, verified

    page = _page(qtbot, session, adapter)
    assert page._needs.text() == f"The GGUF is made from the finished merge at {merged}, without merging again."
    page.merged.setChecked(True)
    page.merge_dtype.setCurrentIndex(page.merge_dtype.findData("float32"))
    assert page._needs.text().startswith("Merging into"), "a float32 merge is another model"
    page.merge_dtype.setCurrentIndex(page.merge_dtype.findData("auto"))
    assert "finished merge" in page._needs.text(), "the kept merged model is that same merge"


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


def test_a_merged_model_and_a_gguf_are_one_job_that_merges_once(
    qtbot: QtBot, session: Session, adapter: Path, tmp_path: Path
) -> None:
    page = _page(qtbot, session, adapter)
    page.show()  # the page follows the queue while it is visible
    page.merged.setChecked(True)
    page.merge_dtype.setCurrentIndex(page.merge_dtype.findData("float32"))
    page.gguf_type.setCurrentIndex(page.gguf_type.findData("f16"))
    page.system.setText("You answer briefly.")
    page.output.setText(str(tmp_path))

    with qtbot.waitSignal(session.job_queued):
        page.export()

    with JobQueue(session.queue_path, session.jobs_dir) as queue:
        (job,) = queue.jobs()
    assert job.kind == "export"
    spec = load_spec(job.layout.spec)
    assert isinstance(spec, ExportSpec) and spec.source == str(adapter)
    assert (spec.gguf_type, spec.system, spec.merge_dtype) == ("f16", "You answer briefly.", "float32")
    assert spec.merged_dir == str(tmp_path / f"{adapter.name}-merged")
    assert "Queued job" in page.message.text()
    qtbot.waitUntil(lambda: page.results.rowCount() == 1)

    with JobQueue(session.queue_path, session.jobs_dir) as queue:
        qtbot.waitUntil(lambda: queue.get(job.id).state in ("succeeded", "failed"), timeout=300_000)
        finished = queue.get(job.id)
    assert finished.state == "succeeded", finished.message
    qtbot.waitUntil(lambda: page.results.item(0, 1).text() == "succeeded", timeout=10_000)
    outputs = page.results.item(0, 2).toolTip().splitlines()
    assert outputs[0] == spec.merged_dir and (Path(spec.merged_dir) / "config.json").is_file()
    gguf = next(Path(line) for line in outputs if line.endswith(".gguf"))
    assert gguf.is_file() and (gguf.parent / "Modelfile").is_file()
    merges = [e for e in read_events(job.layout.events) if isinstance(e, Progress) and e.stage == "merging"]
    assert merges and merges[-1].step == merges[-1].total_steps, "one merge, whose output the GGUF was made from"


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


def test_a_refill_keeps_each_rows_open_folder_button(qtbot: QtBot, session: Session, adapter: Path) -> None:
    """A new button each fill stood unplaced over the Job column until the next layout."""
    with JobQueue(session.queue_path, session.jobs_dir) as queue:
        added = queue.add(MergeSpec(name="merged", adapter=str(adapter)), checks=[])
    assert added.job is not None
    page = _page(qtbot, session, adapter)
    page.show()
    session.queue_state().refresh()
    qtbot.waitUntil(lambda: page.results.rowCount() == 1)
    button = page.results.cellWidget(0, 3)
    page._fill_results()
    assert page.results.cellWidget(0, 3) is button
