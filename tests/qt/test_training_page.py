"""The Model & training page with real widgets, the real estimator on a tiny Llama folder, and a real queue."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QLabel, QLineEdit, QSpinBox
from pytestqt.qtbot import QtBot

from app.session import DatasetChoice, Session
from app.spec_fields import ALL_FIELDS, default_values, description, errors_by_field
from app.training_page import NO_DATASET, TrainingPage
from backend.core.presets import PRESETS, flatten, nest
from backend.core.spec import JobSpec
from backend.estimator import GpuMemory
from backend.jobs.queue import JobQueue
from backend.models.hf_folder import inspect_folder
from tests.hub_server import LocalHub
from tests.import_check import run_fresh
from tests.tiny_models import build_tiny_model
from widgets.suggestion_list import SuggestionList
from widgets.units import format_bytes
from widgets.vram_gauge import NO_GPU_TEXT

GIB = 1024**3
BIG_GPU = GpuMemory("NVIDIA RTX A6000", 48 * GIB, 46 * GIB)
ROWS = [
    {"messages": [{"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": f"Answer {i}."}]}
    for i in range(12)
]


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny Llama (config, safetensors, tokenizer): what the estimator and the queue's checks read."""
    return build_tiny_model("llama", tmp_path_factory.mktemp("tiny") / "llama")


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def dataset(tmp_path: Path) -> DatasetChoice:
    path = tmp_path / "support.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in ROWS), encoding="utf-8")
    return DatasetChoice(str(path), "messages", None, len(ROWS), p99_tokens=48)


def make_page(qtbot: QtBot, session: Session, settings: QSettings, gpus: list[GpuMemory]) -> TrainingPage:
    page = TrainingPage(session, settings=settings, read_gpus=lambda: list(gpus))
    qtbot.addWidget(page)
    page.resize(1280, 800)
    return page


@pytest.fixture
def page(
    qtbot: QtBot, session: Session, settings: QSettings, dataset: DatasetChoice, tiny_folder: Path
) -> TrainingPage:
    session.dataset_changed.emit(dataset)
    made = make_page(qtbot, session, settings, [BIG_GPU])
    made.picker.set_ref(str(tiny_folder))
    assert made.picker.current().folder == tiny_folder
    return made


def editor(page: TrainingPage, path: str):
    return page.form.fields[path].editor


def set_spin(qtbot: QtBot, page: TrainingPage, path: str, value: int) -> None:
    """Type a number into a spin box like a person, and wait for the debounced estimate."""
    spin = editor(page, path)
    assert isinstance(spin, QSpinBox)
    with qtbot.waitSignal(page.estimated, timeout=3000):
        spin.selectAll()
        qtbot.keyClicks(spin, str(value))
    assert spin.value() == value


def peak(page: TrainingPage) -> int:
    assert page.estimate is not None
    return page.estimate.total_bytes


# -- without widgets ---------------------------------------------------------------------------------


def test_every_preset_makes_a_valid_spec_and_they_set_the_same_fields() -> None:
    keys = {frozenset(flatten(preset.values)) for preset in PRESETS.values()}
    assert len(keys) == 1
    fields = {field.path for field in ALL_FIELDS}
    assert set(next(iter(keys))) <= fields
    for preset in PRESETS.values():
        values = {**default_values(), **flatten(preset.values)}
        spec = JobSpec.from_dict({**nest(values), "data": {"path": "x.jsonl"}})
        assert spec.lora.r == preset.values["lora"]["r"]


def test_problems_go_under_the_field_they_name() -> None:
    problems = [
        "lora.alpha must be greater than 0; you wrote -16",
        "training.max_steps must be greater than 0; you wrote 0",
        "training.max_seq_length must be at least 16; you wrote 8",
        "data.columns.instruction is required",
        "lora.use_dora does not work with an 8-bit base; use nf4 or none",
        "something the form has no field for",
    ]
    placed, rest = errors_by_field(
        problems, ["lora.alpha", "training.max_steps", "training.max_seq_length", "data.columns", "lora.use_dora"]
    )
    assert placed["lora.alpha"] == problems[0]
    assert placed["training.max_steps"] == problems[1]
    assert placed["data.columns"] == problems[3]
    assert placed["lora.use_dora"] == problems[4]
    assert rest == ["something the form has no field for"]


# -- the form ------------------------------------------------------------------------------------------


def test_every_field_shows_the_specs_own_help_as_text_and_tooltip(page: TrainingPage) -> None:
    for path, field in page.form.fields.items():
        text = description(path)
        assert text, path
        assert field.help.text() == text
        assert field.editor.toolTip() == text


def test_presets_change_the_fields(qtbot: QtBot, page: TrainingPage) -> None:
    quick, balanced, best = (page.presets.button(i) for i in range(3))
    qtbot.mouseClick(quick, Qt.MouseButton.LeftButton)
    assert editor(page, "lora.r").value() == 8
    assert editor(page, "training.max_steps").value() == 30
    assert editor(page, "training.micro_batch_size").value() == 2
    assert quick.isChecked() and not balanced.isChecked()
    assert page.presets.summary.text() == PRESETS["Quick test"].summary
    qtbot.mouseClick(best, Qt.MouseButton.LeftButton)
    assert editor(page, "lora.r").value() == 64
    assert editor(page, "training.max_steps").value() == 0  # empty: count epochs
    assert editor(page, "lora.use_rslora").isChecked()
    assert best.isChecked() and not quick.isChecked()
    assert page.spec is not None and page.spec.training.max_steps is None and page.spec.lora.r == 64
    set_spin(qtbot, page, "lora.r", 48)
    assert not any(page.presets.button(i).isChecked() for i in range(3))
    assert page.presets.summary.text().startswith("Custom settings")


def test_an_invalid_value_shows_its_message_under_the_field_and_blocks_queueing(
    qtbot: QtBot, page: TrainingPage
) -> None:
    assert page.add_button.isEnabled() and page.start_button.isEnabled()
    alpha = editor(page, "lora.alpha")
    assert isinstance(alpha, QLineEdit)
    assert not page.form.advanced.is_expanded()
    qtbot.keyClicks(alpha, "-16")
    error = page.form.fields["lora.alpha"].findChild(QLabel, "fieldError")
    assert error.text() == "Alpha must be greater than 0; you wrote -16"
    assert error.isVisibleTo(page)
    assert page.form.advanced.is_expanded(), "an error in a folded section unfolds it"
    assert not page.add_button.isEnabled() and not page.start_button.isEnabled()
    assert page.form.errors() == {"lora.alpha": "Alpha must be greater than 0; you wrote -16"}

    alpha.clear()
    qtbot.keyClicks(alpha, "32")
    assert page.form.errors() == {}
    assert not error.isVisibleTo(page)
    assert page.add_button.isEnabled() and page.start_button.isEnabled()
    assert page.spec is not None and page.spec.lora.alpha == 32
    qtbot.waitUntil(lambda: not page.is_busy())


def test_a_number_that_is_not_one_says_so(qtbot: QtBot, page: TrainingPage) -> None:
    rate = editor(page, "training.learning_rate")
    assert rate.text() == "2e-4"
    rate.clear()
    qtbot.keyClicks(rate, "fast")
    assert page.form.errors()["training.learning_rate"] == "Learning rate must be a number; you wrote 'fast'"
    assert not page.add_button.isEnabled()
    rate.clear()
    qtbot.keyClicks(rate, "1e-4")
    assert page.form.errors() == {} and page.spec.training.learning_rate == 1e-4
    qtbot.waitUntil(lambda: not page.is_busy())


# -- the gauge -----------------------------------------------------------------------------------------


def test_the_gauge_follows_micro_batch_and_max_length(qtbot: QtBot, page: TrainingPage) -> None:
    assert page.gauge.findChild(QLabel, "verdict").text() == "Fits"
    first = peak(page)
    set_spin(qtbot, page, "training.micro_batch_size", 16)
    second = peak(page)
    assert second > first
    assert page.estimate.tokens_per_micro_batch == 16 * 1024
    set_spin(qtbot, page, "training.max_seq_length", 2048)
    assert peak(page) > second
    assert page.estimate.tokens_per_micro_batch == 16 * 2048
    needed = page.gauge.findChild(QLabel, "verdictDetail").text()
    assert needed.startswith(f"About {format_bytes(peak(page))} needed"), "the gauge shows this estimate"


def test_a_suggestion_changes_the_form(qtbot: QtBot, page: TrainingPage) -> None:
    set_spin(qtbot, page, "training.micro_batch_size", 8)
    need = peak(page)
    small = GpuMemory("NVIDIA GeForce GT 1030", need, need * 9 // 10)
    page.set_gpus([small])
    assert page.estimate.verdict in ("tight", "wont_fit")
    buttons = page.gauge.findChild(SuggestionList, "suggestions").buttons()
    first = page.estimate.suggestions[0]
    assert buttons[0].text() == f"{first.title}\n{first.detail}"
    # Halved until it fits, keeping the effective batch of 8 x 4.
    assert first.changes == {"training.micro_batch_size": 2, "training.gradient_accumulation_steps": 16}
    with qtbot.waitSignal(page.estimated, timeout=3000):
        qtbot.mouseClick(buttons[0], Qt.MouseButton.LeftButton)
    assert editor(page, "training.micro_batch_size").value() == 2
    assert editor(page, "training.gradient_accumulation_steps").value() == 16
    assert peak(page) == first.peak_bytes < need
    assert page.estimate.verdict == "fits"
    assert page.spec is not None and page.spec.training.effective_batch_size == 32


def test_without_a_gpu_the_gauge_says_so_and_still_shows_the_need(
    qtbot: QtBot, session: Session, settings: QSettings, dataset: DatasetChoice
) -> None:
    session.dataset_changed.emit(dataset)
    page = make_page(qtbot, session, settings, [])
    assert page.picker.ref() == "default"
    assert "not imported yet" in page.picker.combo.currentText()
    assert page.picker.import_button.isVisibleTo(page)
    assert page.gauge.findChild(QLabel, "verdict").text() == NO_GPU_TEXT
    assert page.estimate is not None and page.estimate.verdict == "unknown"
    assert page.estimate.host.ram_load_bytes > 0


# -- the dataset ---------------------------------------------------------------------------------------


def test_without_a_dataset_the_page_points_to_the_data_page(
    qtbot: QtBot, session: Session, settings: QSettings, dataset: DatasetChoice
) -> None:
    page = make_page(qtbot, session, settings, [BIG_GPU])
    assert page.dataset.title.text() == "No dataset chosen yet"
    assert page.dataset_field.error() == NO_DATASET
    assert not page.add_button.isEnabled() and not page.start_button.isEnabled()
    assert page.estimate is not None, "the gauge works before a dataset is chosen"
    with qtbot.waitSignal(session.show_page) as asked:
        qtbot.mouseClick(page.dataset.button, Qt.MouseButton.LeftButton)
    assert asked.args == ["Data"]
    session.dataset_changed.emit(dataset)
    assert page.dataset.title.text() == "support.jsonl"
    assert "12 examples" in page.dataset.facts.text()
    assert page.dataset_field.error() == ""
    assert page.add_button.isEnabled()


def test_a_sheet_the_spec_refuses_is_shown_under_the_dataset(
    session: Session, dataset: DatasetChoice, page: TrainingPage
) -> None:
    session.dataset_changed.emit(replace(dataset, sheet=""))  # e.g. from a hand-edited recent list
    assert page.dataset_field.error().startswith("Sheet ")
    assert "Sheet" not in page.status.text(), "said once, where the dataset is"
    assert not page.add_button.isEnabled()


# -- the model -----------------------------------------------------------------------------------------


def test_a_model_folder_shows_its_facts(page: TrainingPage, tiny_folder: Path) -> None:
    info = page.picker.current()
    assert info.parameters and info.parameters > 0
    assert info.architecture == "LlamaForCausalLM"
    assert info.context_length == 1024
    facts = page.picker.facts.text()
    assert f"{info.parameters:,} parameters" in facts and "LlamaForCausalLM" in facts
    assert "context 1,024 tokens" in facts


def test_a_hub_id_is_checked_before_it_is_used(qtbot: QtBot, page: TrainingPage) -> None:
    picker = page.picker
    qtbot.keyClicks(picker.hub_edit, "not a hub id")
    assert not picker.hub_button.isEnabled()
    qtbot.keyClick(picker.hub_edit, Qt.Key.Key_Return)
    assert "is not a Hugging Face id" in picker.hub_field.error()
    picker.hub_edit.clear()
    assert picker.hub_field.error() == ""
    qtbot.keyClicks(picker.hub_edit, "example-org/example-model")
    with qtbot.waitSignal(page.estimated, timeout=10_000, check_params_cb=lambda result: not page.is_busy()):
        qtbot.mouseClick(picker.hub_button, Qt.MouseButton.LeftButton)
    assert picker.ref() == "example-org/example-model"
    assert "Not imported yet" in picker.status.messages()[0][1]
    # Tests run offline (HF_HUB_OFFLINE): the shapes cannot be read, and the page says what to do.
    assert page.estimate is None
    assert "Import the model to see it" in page.notes.messages()[0][1]
    assert "could not be read from the Hugging Face Hub" in picker.facts.text()
    assert page.add_button.isEnabled(), "a hub model is imported when its job starts"


def choose_hub_id(qtbot: QtBot, page: TrainingPage, repo_id: str) -> None:
    """Type a hub id and press Enter, then wait for the Hub's answer and the estimate it allows."""
    qtbot.keyClicks(page.picker.hub_edit, repo_id)
    with qtbot.waitSignal(page.estimated, timeout=10_000, check_params_cb=lambda result: not page.is_busy()):
        qtbot.keyClick(page.picker.hub_edit, Qt.Key.Key_Return)
    assert page.picker.ref() == repo_id


def test_a_hub_model_shows_what_the_hub_says_before_an_import(
    qtbot: QtBot, page: TrainingPage, tiny_folder: Path, local_hub: LocalHub
) -> None:
    local_hub.add("acme/tiny-llama", tiny_folder, readme="---\nlicense: apache-2.0\n---\n# Tiny Llama\n")
    choose_hub_id(qtbot, page, "acme/tiny-llama")
    info = page.picker.current()
    assert not info.imported and info.parameters == inspect_folder(tiny_folder).parameter_count
    facts = page.picker.facts.text()
    assert f"{info.parameters:,} parameters" in facts and "license apache-2.0" in facts
    assert "LlamaForCausalLM" in facts and "context 1,024 tokens" in facts and "gated" not in facts
    assert page.estimate is not None, "the Hub's shapes give the estimate"
    assert "Not imported yet" in page.picker.status.messages()[0][1]


def test_a_gated_hub_model_says_how_to_get_access(
    qtbot: QtBot, page: TrainingPage, tiny_folder: Path, local_hub: LocalHub
) -> None:
    local_hub.add("acme/gated-llama", tiny_folder, readme="---\nlicense: llama3.1\n---\n", gated=True)
    choose_hub_id(qtbot, page, "acme/gated-llama")
    assert page.picker.facts.text() == "license llama3.1 · gated"
    level, text = page.picker.status.messages()[0]
    assert level == "warning"
    assert text == (
        "acme/gated-llama is gated: accept its license on huggingface.co and log in with `hf auth login`, "
        "then import it."
    )
    assert page.estimate is None and "(it is gated)" in page.notes.messages()[0][1]


def test_a_hub_read_that_gave_nothing_is_tried_again_later(
    qtbot: QtBot, page: TrainingPage, tiny_folder: Path, local_hub: LocalHub, monkeypatch
) -> None:
    """Gated at first; once access is granted (here: the repo opened), the next estimate after a while reads it."""
    import app.hub_shapes as hub_shapes

    local_hub.add("acme/later-llama", tiny_folder, readme="---\nlicense: apache-2.0\n---\n", gated=True)
    choose_hub_id(qtbot, page, "acme/later-llama")
    assert page.estimate is None and "gated" in page.picker.facts.text()
    page.update_estimate()
    assert not page.is_busy(), "within the retry interval the failure stands: no new read"

    local_hub.add("acme/later-llama", tiny_folder, readme="---\nlicense: apache-2.0\n---\n")
    monkeypatch.setattr(hub_shapes, "HUB_RETRY_S", 0.0)
    with qtbot.waitSignal(page.estimated, timeout=10_000, check_params_cb=lambda result: not page.is_busy()):
        page.update_estimate()
    assert page.estimate is not None
    assert "gated" not in page.picker.facts.text() and "license apache-2.0" in page.picker.facts.text()


def test_an_import_runs_in_a_process_and_its_failure_is_shown(qtbot: QtBot, page: TrainingPage, monkeypatch) -> None:
    picker = page.picker
    picker.set_ref("default")
    script = "import sys; print('  downloading', flush=True); print('error: PyPI cannot be reached'); sys.exit(1)"
    monkeypatch.setattr(picker, "import_command", lambda ref: [sys.executable, "-c", script])
    qtbot.mouseClick(picker.import_button, Qt.MouseButton.LeftButton)
    assert picker.is_importing() and not picker.import_button.isEnabled()
    qtbot.waitUntil(lambda: not picker.is_importing(), timeout=20_000)
    assert picker.status.messages() == [("error", "The import failed: PyPI cannot be reached")]
    assert picker.import_button.isEnabled()


# -- queueing ------------------------------------------------------------------------------------------


def test_add_to_queue_creates_a_queued_job_with_the_specs_values(
    qtbot: QtBot, page: TrainingPage, session: Session, dataset: DatasetChoice, tiny_folder: Path
) -> None:
    qtbot.mouseClick(page.presets.button(0), Qt.MouseButton.LeftButton)  # Quick test
    set_spin(qtbot, page, "lora.r", 12)
    started: list[Path] = []
    page.start_runner = lambda queue: started.append(queue.path)
    with qtbot.waitSignal(session.job_queued) as queued:
        qtbot.mouseClick(page.add_button, Qt.MouseButton.LeftButton)
    assert started == [session.queue_path], "a queued job is one that will run: adding it starts the runner"
    with JobQueue(session.queue_path, session.jobs_dir) as queue:
        [job] = queue.jobs("queued")
        assert queued.args == [job.id]
        spec = JobSpec.load(job.layout.spec)
    assert job.folder.parent == session.jobs_dir
    assert spec.lora.r == 12
    assert spec.training.max_steps == 30 and spec.training.micro_batch_size == 2
    assert spec.base_model == str(tiny_folder.resolve())
    assert spec.data.path == str(Path(dataset.path).resolve()) and spec.data.format == "messages"
    levels = [level for level, _ in page.checks.messages()]
    assert levels[0] == "ok" and "error" not in levels
    assert f"Queued as job {job.id}" in page.checks.messages()[0][1]
    assert "It runs when its turn comes." in page.checks.messages()[0][1]


def test_a_blocking_check_is_shown_and_nothing_is_queued(
    qtbot: QtBot, page: TrainingPage, session: Session, dataset: DatasetChoice
) -> None:
    Path(dataset.path).write_text("")
    assert page.add_to_queue() is None
    levels = [level for level, _ in page.checks.messages()]
    assert levels[:2] == ["error", "error"]
    assert any("is empty" in text for _, text in page.checks.messages())
    with JobQueue(session.queue_path, session.jobs_dir) as queue:
        assert queue.jobs() == []


def test_start_now_queues_starts_a_runner_and_shows_the_jobs_page(
    qtbot: QtBot, page: TrainingPage, session: Session, settings: QSettings, tiny_folder: Path
) -> None:
    started: list[Path] = []
    page.start_runner = lambda queue: started.append(queue.path)
    with qtbot.waitSignal(session.job_queued) as queued, qtbot.waitSignal(session.show_page) as shown:
        qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    assert started == [session.queue_path]
    assert shown.args == ["Jobs"]
    assert "It starts now." in page.checks.messages()[0][1]
    with JobQueue(session.queue_path, session.jobs_dir) as queue:
        assert [job.id for job in queue.jobs("queued")] == queued.args

    again = make_page(qtbot, session, settings, [BIG_GPU])
    assert again.picker.ref() == str(tiny_folder), "the last used model and values are remembered"
    assert again.form.values() == page.form.values()


def test_measure_queues_a_measure_job_of_this_configuration_where_there_is_a_gpu(
    qtbot: QtBot, page: TrainingPage, session: Session, settings: QSettings
) -> None:
    started: list[Path] = []
    page.start_runner = lambda queue: started.append(queue.path)
    assert page.measure_button.isEnabled()
    with qtbot.waitSignal(session.job_queued) as queued:
        qtbot.mouseClick(page.measure_button, Qt.MouseButton.LeftButton)
    assert started == [session.queue_path]
    with JobQueue(session.queue_path, session.jobs_dir) as queue:
        job = queue.get(queued.args[0])
    assert job is not None and job.kind == "measure" and job.name.endswith("-measure")
    assert JobSpec.load(job.layout.spec).training == page.job_spec().training

    without = make_page(qtbot, session, settings, [])
    assert not without.measure_button.isEnabled(), "measuring needs a GPU"


# -- the GUI process -----------------------------------------------------------------------------------

SCRIPT = """
import sys
from pathlib import Path
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
app = QApplication([])
from app.session import DatasetChoice, Session
from app.training_page import TrainingPage
home, model, data = (Path(arg) for arg in sys.argv[1:4])
settings = QSettings(str(home / "settings.ini"), QSettings.Format.IniFormat)
for _ in range(3):
    session = Session(home)
    session.dataset_changed.emit(DatasetChoice(str(data), "messages", None, 12, 48))
    page = TrainingPage(session, settings=settings)
    page.start_runner = lambda queue: None  # queueing starts a runner, which would outlive this process
    page.picker.set_ref(str(model))
    page.resize(1280, 800)
    page.show()
    app.processEvents()
    assert page.estimate is not None
    job = page.add_to_queue()
    assert job is not None, page.checks.messages()
    page.close()
    page.deleteLater()
    app.processEvents()
"""


def test_the_page_never_imports_the_ml_stack(tmp_path: Path, tiny_folder: Path, dataset: DatasetChoice) -> None:
    home = tmp_path / "gui-home"
    env = {"QT_QPA_PLATFORM": "offscreen", "LORA_STUDIO_HOME": str(home)}
    assert run_fresh(SCRIPT, str(home), str(tiny_folder), dataset.path, env=env).loaded == []
