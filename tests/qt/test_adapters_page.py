"""The Adapters page on a real registry of real PEFT adapters (tiny Llama), with real gates and history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from app.adapter_picker import AdapterPicker
from app.adapter_table import COLUMNS, display
from app.adapters_page import AdaptersPage
from app.session import Session
from backend.core.layout import ADAPTER_RECORD
from backend.core.task_specs import EvaluateSpec, load_spec
from backend.evaluation.record import record_evaluation
from backend.jobs.queue import JobQueue
from backend.registry.gates import Gate, Gates
from backend.registry.registry import Registry
from tests.adapters import make_adapter


class Scripted:
    """Answers the page's questions in order; records what it was asked."""

    def __init__(self, *answers: str | bool | None) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def text(self, title: str, label: str) -> str | None:
        self.asked.append(label)
        answer = self.answers.pop(0)
        assert answer is None or isinstance(answer, str)
        return answer

    def confirm(self, title: str, text: str) -> bool:
        self.asked.append(text)
        return bool(self.answers.pop(0))


@pytest.fixture(scope="module")
def peft(tmp_path_factory: pytest.TempPathFactory, tiny_model_dirs: dict[str, Path]) -> dict[str, Path]:
    """Two adapters of the tiny Llama: rank 8 on one data set, rank 4 on another with a lower loss."""
    root = tmp_path_factory.mktemp("page_adapters")
    made = {
        "a": make_adapter(tiny_model_dirs["llama"], root / "a", seed=1),
        "b": make_adapter(tiny_model_dirs["llama"], root / "b", seed=2, r=4, lora_alpha=8),
    }
    record = json.loads((made["b"] / ADAPTER_RECORD).read_text())
    record["dataset"]["content_hash"] = "e" * 64
    record["metrics"]["eval_loss"] = 2.25
    (made["b"] / ADAPTER_RECORD).write_text(json.dumps(record))
    return made


@pytest.fixture
def registry(session: Session, peft: dict[str, Path]) -> Registry:
    """support-triage v1 (a, tagged baseline) and v2 (b)."""
    registry = Registry()
    registry.add(peft["a"], "support-triage", tags=["baseline"], note="first try")
    registry.add(peft["b"], "support-triage")
    return registry


def filled_page(qtbot, session: Session, registry: Registry) -> AdaptersPage:
    page = AdaptersPage(session, registry=registry)
    qtbot.addWidget(page)
    with qtbot.waitSignal(page.filled, timeout=5000):
        page.refresh()
    return page


def refill(qtbot, page: AdaptersPage) -> None:
    with qtbot.waitSignal(page.filled, timeout=5000):
        page.refresh()


def column(page: AdaptersPage, name: str) -> list[str]:
    return [display(page.proxy.listed(r), name) for r in range(page.proxy.rowCount())]


def cells(table) -> list[list[str]]:
    return [[table.item(r, c).text() for c in range(table.columnCount())] for r in range(table.rowCount())]


def stages(registry: Registry) -> dict[int, str]:
    return {v.version: v.stage for v in registry.versions("support-triage")}


def test_the_page_lists_versions_filters_and_sorts(qtbot, session: Session, registry: Registry) -> None:
    page = filled_page(qtbot, session, registry)
    assert page.model.columnCount() == len(COLUMNS)
    assert column(page, "Version") == ["v2", "v1"]
    assert column(page, "Stage") == ["staging", "staging"]
    assert column(page, "Rank") == ["4", "8"]
    assert column(page, "Held-out loss") == ["2.250", "2.750"]
    assert column(page, "Data")[0] == "train.jsonl (eeeeeeee)"

    page.table.sortByColumn(COLUMNS.index("Rank"), page.table.horizontalHeader().sortIndicatorOrder().DescendingOrder)
    assert column(page, "Rank") == ["8", "4"]
    page.filter.setText("baseline")  # a tag
    assert column(page, "Version") == ["v1"]
    page.filter.setText("first try")  # words of a note
    assert column(page, "Version") == ["v1"]
    page.filter.setText("nothing-like-this")
    assert page.proxy.rowCount() == 0


def test_the_detail_pane_shows_provenance_history_and_gates(qtbot, session: Session, registry: Registry) -> None:
    registry.promote("support-triage", 1, reason="the first that answers in the right form")
    page = filled_page(qtbot, session, registry)
    page.select(("support-triage", 1))
    text = page.details.toPlainText()
    version = registry.get("support-triage", 1)
    assert f"fingerprint {(version.base_fingerprint or '')[:12]}" in text
    assert "hash dddddddddddd" in text and "rank 8" in text and "learning rate 0.0002" in text
    assert "baseline" in text and "first try" in text
    assert "v1 to production — the first that answers in the right form" in text
    assert "Not evaluated yet" in text and "no gates" in text


def test_two_selected_versions_are_compared_with_deltas_and_charts(qtbot, session: Session, registry: Registry) -> None:
    page = filled_page(qtbot, session, registry)
    page.select(("support-triage", 1), ("support-triage", 2))
    assert page.tabs.currentIndex() == 1
    assert "A = support-triage v1, B = support-triage v2" in page.compare_note.text()
    settings = {row[0]: row[1:] for row in cells(page.settings_diff)}
    assert settings["lora.r"] == ["8", "4"] and settings["lora.alpha"] == ["16", "8"]
    assert settings["data hash"] == ["d" * 12, "e" * 12]
    metrics = {row[0]: row[1:] for row in cells(page.metrics_diff)}
    assert metrics["eval_loss"] == ["2.75", "2.25", "-0.5"]
    assert page.charts["heldout_loss"].points == {1: 2.75, 2: 2.25}
    assert page.charts["task_score"].points == {}  # not evaluated: nothing to draw


def test_promote_passes_a_gate_is_refused_by_a_failing_one_and_can_be_overridden_and_rolled_back(
    qtbot, session: Session, registry: Registry
) -> None:
    registry.set_gates("support-triage", Gates(gates=[Gate(metric="loss", rule="<=", than="base")]))
    record_evaluation(registry.get("support-triage", 1).folder, {"loss": 1.0, "base_loss": 2.0, "task_score": 0.9})
    record_evaluation(registry.get("support-triage", 2).folder, {"loss": 2.5, "base_loss": 2.0, "task_score": 0.4})
    page = filled_page(qtbot, session, registry)

    page.select(("support-triage", 1))
    assert "passed: loss <= base (loss is 1; the base's is 2)" in page.details.toPlainText()
    page.ask = Scripted("beats the base")
    with qtbot.waitSignal(page.filled, timeout=5000):
        page.promote_selected()
    assert stages(registry) == {1: "production", 2: "staging"}
    assert column(page, "Stage") == ["staging", "production"]
    assert column(page, "Task score") == ["0.40", "0.90"]

    page.select(("support-triage", 2))
    page.ask = Scripted("newer data", None)  # the override is declined
    page.promote_selected()
    assert stages(registry) == {1: "production", 2: "staging"}
    assert "FAILED: loss <= base (loss is 2.5; the base's is 2)" in page.message.text()
    assert "FAILED: loss <= base" in page.ask.asked[1]

    page.ask = Scripted("newer data", "the customer asked for the new labels")
    with qtbot.waitSignal(page.filled, timeout=5000):
        page.promote_selected()
    assert stages(registry) == {1: "archived", 2: "production"}
    event = registry.history("support-triage")[-1]
    assert event["override"] == "the customer asked for the new labels" and event["previous"] == 1
    assert event["failed_gates"][0]["value"] == 2.5
    page.select(("support-triage", 2))
    assert "gates overridden: the customer asked for the new labels" in page.details.toPlainText()

    page.ask = Scripted("v2 mislabels refunds")
    with qtbot.waitSignal(page.filled, timeout=5000):
        page.rollback_selected()
    assert stages(registry) == {1: "production", 2: "archived"}
    assert "v1 is in production again (v2 archived)" in page.message.text()


def test_tag_note_and_delete_with_confirmation(qtbot, session: Session, registry: Registry) -> None:
    page = filled_page(qtbot, session, registry)
    page.select(("support-triage", 2))
    page.ask = Scripted("candidate -none")
    with qtbot.waitSignal(page.filled, timeout=5000):
        page.tag_selected()
    page.ask = Scripted("smaller rank, same answers")
    with qtbot.waitSignal(page.filled, timeout=5000):
        page.note_selected()
    listed = registry.versions("support-triage")[0]
    assert listed.tags == ["candidate"] and listed.notes[-1]["text"] == "smaller rank, same answers"

    page.select(("support-triage", 2))
    page.ask = Scripted(False)
    page.delete_selected()
    assert [v.version for v in registry.versions("support-triage")] == [2, 1]
    page.ask = Scripted(True)
    with qtbot.waitSignal(page.filled, timeout=5000):
        page.delete_selected()
    assert column(page, "Version") == ["v1"]
    assert "Its history stays" in page.ask.asked[0]


def test_a_hand_broken_record_shows_its_problem(qtbot, session: Session, registry: Registry) -> None:
    (registry.get("support-triage", 2).folder / ADAPTER_RECORD).write_text("{ not json")
    page = filled_page(qtbot, session, registry)
    assert column(page, "Stage") == ["staging · problem", "staging"]
    page.select(("support-triage", 2))
    assert "Problem: lora_studio_adapter.json cannot be read" in page.details.toPlainText()
    page.select(("support-triage", 1), ("support-triage", 2))  # comparing with it does not crash either
    assert page.tabs.currentIndex() == 1


def test_evaluate_queues_a_job_for_the_version_and_export_hands_it_over(
    qtbot, session: Session, registry: Registry
) -> None:
    page = filled_page(qtbot, session, registry)
    page.select(("support-triage", 1))
    folder = registry.get("support-triage", 1).folder
    with qtbot.waitSignal(session.job_queued, timeout=5000) as queued:
        page.evaluate_selected()
    queue = JobQueue(session.queue_path, session.jobs_dir)
    try:
        job = queue.get(queued.args[0])
        assert job is not None and job.kind == "evaluate"
        spec = load_spec(job.layout.spec)
        assert isinstance(spec, EvaluateSpec) and spec.adapter == str(folder)
    finally:
        queue.close()

    requested: list[str] = []
    session.show_page.connect(requested.append)
    page.export_selected()
    assert requested == ["Export"] and session.pending_adapters == {"Export": str(folder)}


def test_the_adapter_picker_offers_registered_versions(
    qtbot, session: Session, registry: Registry, tmp_path: Path
) -> None:
    registry.promote("support-triage", 2, reason="r")
    session.request_adapter("Export", str(registry.get("support-triage", 1).folder))
    queue = JobQueue(session.queue_path, session.jobs_dir)
    try:
        picker = AdapterPicker(queue, QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
        qtbot.addWidget(picker)
        labels = [picker._combo.itemText(i) for i in range(picker._combo.count())]
        assert labels == ["support-triage v2 (production)", "support-triage v1 (staging)"]
        picker.follow_requests(session, "Export")  # asked for before the picker existed
        assert picker.path() == str(registry.get("support-triage", 1).folder)
        assert session.pending_adapters == {}
    finally:
        queue.close()


def test_a_hand_broken_gates_file_is_reported_not_a_crash(qtbot, session: Session, registry: Registry) -> None:
    (registry.root / "support-triage" / "gates.yaml").write_text("gates:\n  - metric: loss\n    rule: '=='\n")
    page = filled_page(qtbot, session, registry)
    page.select(("support-triage", 1))
    assert "The gates cannot be checked" in page.details.toPlainText()
    page.ask = Scripted("first")
    page.promote_selected()
    assert "gates LoRA Studio cannot read" in page.message.text()
    assert stages(registry) == {1: "staging", 2: "staging"}
