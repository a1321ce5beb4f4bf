"""The evaluate job on tiny models: held-out loss, answers side by side, the report and the adapter's record."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from backend.core.events import Artifact, Event, EventSink, Metric, Progress, Warn
from backend.core.layout import ADAPTER_RECORD, JobLayout
from backend.core.spec import JobSpec
from backend.core.stop import Cancelled, StopRequest
from backend.core.task_specs import EvaluateSpec
from backend.data.load import read_dataset
from backend.evaluation.errors import EvaluationError
from backend.evaluation.job import EvaluationOutcome, run_evaluation
from backend.evaluation.loss_note import loss_differences
from backend.evaluation.record import evaluations
from backend.evaluation.report import render_html, render_markdown, word_diff, write_report
from backend.evaluation.report_schema import REPORT_FORMAT, EvaluationReport, UnknownReportFormat, read_report
from backend.evaluation.side_by_side import generate_pairs
from backend.export.adapter import read_adapter
from backend.export.model_card import model_card
from tests.adapters import make_adapter
from tests.datasets import write_colour_task


class RecordingSink(EventSink):
    """An event sink that keeps the events in memory and can set a stop request on one of them."""

    def __init__(self, stop_on: type | None = None, stop: StopRequest | None = None) -> None:
        super().__init__(None, None)
        self.events: list[Event] = []
        self.stop_on, self.stop = stop_on, stop

    def emit(self, event) -> None:
        self.events.append(event)
        if self.stop_on is not None and self.stop is not None and isinstance(event, self.stop_on):
            self.stop.set("test")

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


def evaluate(tmp: Path, **spec: object) -> tuple[EvaluationOutcome, dict, RecordingSink]:
    """Run the job; its report.json as the document it is, after reading it back through the declared model."""
    sink = RecordingSink()
    layout = JobLayout.new(tmp / "jobs", "eval")
    outcome = run_evaluation(EvaluateSpec.from_dict(spec), layout, sink, StopRequest())
    assert outcome.report_path == layout.root / "report.json"
    document = json.loads(outcome.report_path.read_text(encoding="utf-8"))
    assert read_report(layout.root).model_dump(mode="json") == document, "the model keeps every field it reads"
    return outcome, document, sink


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LORA_STUDIO_HOME", str(tmp_path_factory.mktemp("home")))
        yield


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_llama: Path, home: None) -> Path:
    """A real adapter: 30 LoRA steps on the colour task, with the training job's record and held-out split."""
    from backend.models.runtime import Runtime
    from backend.training.sft import run_sft

    root = tmp_path_factory.mktemp("trained")
    spec = JobSpec.from_dict(
        {
            "name": "colours",
            "base_model": str(tiny_llama),
            "quantization": {"mode": "none"},
            "lora": {"r": 8},
            "training": {"max_steps": 30, "micro_batch_size": 4, "learning_rate": 3e-3, "max_seq_length": 64},
            "data": {"path": str(write_colour_task(root / "colours.jsonl", 200)), "eval_split": 0.1},
            "schedule": {"save_every_steps": 1000, "eval_every_steps": 1000},
        }
    )
    layout = JobLayout.new(root / "jobs", "train")
    result = run_sft(spec, layout, EventSink(None, None), StopRequest(), False, Runtime.detect(spec))
    assert result.status == "succeeded" and result.adapter_path is not None
    return result.adapter_path


@pytest.fixture(scope="module")
def noise_adapter(tmp_path_factory: pytest.TempPathFactory, tiny_llama: Path) -> Path:
    """An untrained adapter with random B: it changes the model without teaching it anything."""
    return make_adapter(tiny_llama, tmp_path_factory.mktemp("noise") / "noise", seed=1)


def held_out_file(tmp: Path) -> Path:
    return write_colour_task(tmp / "held.jsonl", 6, seed=5)


def test_one_report_holds_base_adapter_and_second_adapter_on_the_training_split(
    tmp_path: Path, trained: Path, noise_adapter: Path, tiny_llama: Path
) -> None:
    outcome, report, sink = evaluate(
        tmp_path, adapter=str(trained), compare_adapter=str(noise_adapter), max_prompts=3, max_new_tokens=8
    )

    # The held-out split is the training job's own: same examples, same order.
    spec = JobSpec.from_dict(json.loads((trained / ADAPTER_RECORD).read_text())["spec"])
    _, expected = read_dataset(Path(spec.data.path)).split(spec.data.eval_split, spec.data.split_seed)
    assert [e["where"] for e in report["examples"]] == [e.where() for e in expected]
    assert report["data"]["examples"] == len(expected) == 20 and report["data"]["tokens"] > 0

    # Loss: token-weighted mean over the reply tokens; perplexity = exp(loss); training lowered it.
    losses = report["losses"]
    assert set(losses) == {"base", "adapter", "compare"}
    for key, measured in losses.items():
        assert measured["perplexity"] == pytest.approx(math.exp(measured["loss"]))
        weighted = sum(e["losses"][key] * e["tokens"] for e in report["examples"]) / report["data"]["tokens"]
        assert measured["loss"] == pytest.approx(weighted)
    assert losses["adapter"]["loss"] < 0.8 * losses["base"]["loss"], losses
    assert losses["compare"]["loss"] != pytest.approx(losses["base"]["loss"])
    assert report["deltas"]["adapter"]["loss"] == pytest.approx(losses["adapter"]["loss"] - losses["base"]["loss"])
    assert report["better"]["adapter"] and all(r["delta"] < 0 for r in report["better"]["adapter"])
    # Training's own eval_loss (batch means, same split) agrees with the token-weighted loss on this even data.
    trained_eval = json.loads((trained / ADAPTER_RECORD).read_text())["metrics"]["eval_loss"]
    assert losses["adapter"]["loss"] == pytest.approx(trained_eval, rel=0.05)
    # The two are named side by side; here only the batch weighting differs (whole split, 16-bit base both times).
    (weighting,) = report["training_loss"]["differences"]
    assert report["training_loss"]["value"] == trained_eval and "batches of 4 examples" in weighting

    # Outcome and events: progress over loss batches then prompt batches, the losses, the three files.
    assert outcome.metrics["adapter_loss"] == pytest.approx(losses["adapter"]["loss"])
    assert outcome.metrics["compare_perplexity"] == pytest.approx(losses["compare"]["perplexity"])
    assert outcome.metrics["eval_examples"] == 20 and outcome.metrics["prompts"] == 3
    progress = sink.of(Progress)
    assert [p.step for p in progress] == [1, 2, 3, 4, 5, 6] and progress[-1].total_steps == 6  # 20/4 + 3/4
    assert [p.stage for p in progress] == ["held-out loss"] * 5 + ["answers"]
    (metric,) = sink.of(Metric)
    assert metric.values["base_loss"] == pytest.approx(losses["base"]["loss"]) and metric.step == 5
    artifacts = {Path(a.path).name for a in sink.of(Artifact) if a.kind == "report"}
    assert artifacts == {"report.json", "report.md", "report.html"}

    # Three columns of answers to the held-out prompts, with their references and word diffs.
    assert [m["key"] for m in report["models"]] == ["base", "adapter", "compare"]
    assert len(report["generations"]) == 3
    for item in report["generations"]:
        assert set(item["outputs"]) == {"base", "adapter", "compare"}
        assert item["reference"].startswith("The ") and item["prompt"][-1]["role"] == "user"
        for key in ("adapter", "compare"):
            ops = item["diff"][key]
            assert "".join(t for op, t in ops if op != "insert") == item["outputs"]["base"]
            assert "".join(t for op, t in ops if op != "delete") == item["outputs"][key]
    root = outcome.report_path.parent
    page = (root / "report.html").read_text()
    assert page.count("<th>colours</th>") == 1 and "<th>noise</th>" in page and "<th>base</th>" in page
    assert "<script" not in page and "http://" not in page and "https://" not in page
    markdown = (root / "report.md").read_text()
    assert "| colours |" in markdown and "## Answers side by side" in markdown
    for text in (markdown, page):
        assert "This is the evaluation held-out loss" in text and f"was {trained_eval:.3f}" in text

    # Both adapters' records keep their results, and the merged model's card shows them.
    (entry,) = evaluations(trained)
    assert entry["loss"] == pytest.approx(losses["adapter"]["loss"]) and entry["report"] == str(outcome.report_path)
    assert entry["compared_with"][0]["label"] == "noise"
    assert evaluations(noise_adapter)[-1]["loss"] == pytest.approx(losses["compare"]["loss"])
    record = json.loads((trained / ADAPTER_RECORD).read_text())
    assert record["evaluation"] == entry and record["spec"] == spec.to_dict()  # other keys kept
    card = model_card("colours-merged", read_adapter(trained), "tiny-llama", "float32", [])
    assert "## Evaluation" in card and f"{losses['adapter']['loss']:.4f}" in card
    assert f"{losses['base']['loss']:.4f}" in card


def test_user_prompt_file_greedy_answers_repeat_exactly_and_history_grows(tmp_path: Path, tiny_llama: Path) -> None:
    adapter = make_adapter(tiny_llama, tmp_path / "tuned", seed=3)
    prompts = tmp_path / "regressions.txt"
    prompts.write_text("What colour is the sky?\n\nName a fruit.\nSay <b>hello</b> & goodbye.\n", encoding="utf-8")
    data = str(held_out_file(tmp_path))
    runs = [
        evaluate(tmp_path, adapter=str(adapter), data=data, prompts=str(prompts), max_new_tokens=12, batch_size=2)
        for _ in range(2)
    ]
    (_, first, sink), (_, second, _) = runs
    asked = [g["prompt"] for g in first["generations"]]
    assert asked == [[{"role": "user", "content": line}] for line in prompts.read_text().splitlines() if line]
    assert first["prompts_source"].startswith(str(prompts))
    assert [g["outputs"] for g in first["generations"]] == [g["outputs"] for g in second["generations"]]
    assert any(g["outputs"]["adapter"] != g["outputs"]["base"] for g in first["generations"])
    assert first["decoding"] == {"max_new_tokens": 12, "do_sample": False, "temperature": 0.0}
    assert first["losses"]["adapter"]["loss"] != pytest.approx(first["losses"]["base"]["loss"])
    assert first["data"]["examples"] == 6 and first["generations"][0]["reference"] is None
    assert sink.of(Progress)[-1].step == 3 + 2  # 6 examples and 3 prompts in batches of 2
    assert len(evaluations(adapter)) == 2
    assert "Say &lt;b&gt;hello&lt;/b&gt; &amp; goodbye." in (Path(first["job"]) / "report.html").read_text()


def test_sampled_answers_repeat_with_the_same_seed(tmp_path: Path, tiny_llama: Path, noise_adapter: Path) -> None:
    def answers(seed: int, batch_size: int) -> list[dict[str, str]]:
        _, report, _ = evaluate(
            tmp_path,
            adapter=str(noise_adapter),
            data=str(held_out_file(tmp_path)),
            max_examples=1,
            max_prompts=3,
            max_new_tokens=10,
            temperature=1.0,
            seed=seed,
            batch_size=batch_size,
        )
        assert report["decoding"]["do_sample"] is True
        return [g["outputs"] for g in report["generations"]]

    first = answers(7, 2)
    assert answers(7, 3) == first  # seeded per prompt: the batch size does not matter
    assert answers(8, 2) != first


def test_a_base_with_another_fingerprint_is_refused(tmp_path: Path, tiny_llama: Path, noise_adapter: Path) -> None:
    other = shutil.copytree(tiny_llama, tmp_path / "other-llama")
    config = json.loads((other / "config.json").read_text())
    config["rms_norm_eps"] = config.get("rms_norm_eps", 1e-6) * 2
    (other / "config.json").write_text(json.dumps(config))
    layout = JobLayout.new(tmp_path / "jobs", "eval")
    spec = EvaluateSpec.from_dict({"adapter": str(noise_adapter), "base_model": str(other)})
    with pytest.raises(EvaluationError, match=r"noise was trained on .* but the base given, .*other-llama") as caught:
        run_evaluation(spec, layout, RecordingSink(), StopRequest())
    assert "fingerprint" in str(caught.value) and caught.value.hint
    assert not (layout.root / "report.json").exists()


def test_an_adapter_without_a_record_needs_named_data(tmp_path: Path, tiny_llama: Path) -> None:
    adapter = make_adapter(tiny_llama, tmp_path / "external", record=False)
    layout = JobLayout.new(tmp_path / "jobs", "eval")
    spec = EvaluateSpec.from_dict({"adapter": str(adapter), "base_model": str(tiny_llama)})
    with pytest.raises(EvaluationError, match="no LoRA Studio record of the data") as caught:
        run_evaluation(spec, layout, RecordingSink(), StopRequest())
    assert "data" in (caught.value.hint or "")

    # With data it runs, warns that the base cannot be checked, and leaves the folder without a record.
    _, report, sink = evaluate(
        tmp_path,
        adapter=str(adapter),
        base_model=str(tiny_llama),
        data=str(held_out_file(tmp_path)),
        max_prompts=1,
        max_new_tokens=4,
    )
    codes = {w.code for w in sink.of(Warn)}
    assert {"unchecked_base", "no_adapter_record"} <= codes
    assert not (adapter / ADAPTER_RECORD).exists() and report["losses"]["adapter"]["loss"] > 0


def test_cancel_stops_between_batches_without_a_report(tmp_path: Path, noise_adapter: Path) -> None:
    stop = StopRequest()
    sink = RecordingSink(stop_on=Progress, stop=stop)
    layout = JobLayout.new(tmp_path / "jobs", "eval")
    spec = EvaluateSpec.from_dict(
        {"adapter": str(noise_adapter), "data": str(held_out_file(tmp_path)), "batch_size": 2}
    )
    with pytest.raises(Cancelled):
        run_evaluation(spec, layout, sink, stop)
    assert [p.step for p in sink.of(Progress)] == [1]
    assert not (layout.root / "report.json").exists()


def test_demo_pairs_come_from_the_shared_comparison(tiny_llama: Path, noise_adapter: Path) -> None:
    prompts = [[{"role": "user", "content": "What colour is the sky?"}], [{"role": "user", "content": "Hi"}]]
    pairs = generate_pairs(tiny_llama, noise_adapter, prompts, max_new_tokens=6, batch_size=1)
    assert [p.prompt for p in pairs] == prompts
    assert pairs == generate_pairs(tiny_llama, noise_adapter, prompts, max_new_tokens=6, batch_size=2)


def test_word_diff_and_html_escape_everything() -> None:
    before, after = "The sky is blue.", "The sky is <b>green</b>, really."
    ops = word_diff(before, after)
    assert "".join(t for op, t in ops if op != "insert") == before
    assert "".join(t for op, t in ops if op != "delete") == after
    assert ("equal", "The sky is ") in ops
    report = _report(
        name="<x>",
        models=[{"key": "base", "label": "base"}, {"key": "adapter", "label": "a<script>"}],
        generations=[
            {
                "index": 0,
                "prompt": [{"role": "user", "content": "<script>alert(1)</script>"}],
                "reference": None,
                "outputs": {"base": before, "adapter": after},
                "diff": {"adapter": [list(op) for op in ops]},
            }
        ],
    )
    page = render_html(report)
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<ins>&lt;b&gt;green&lt;/b&gt;, really</ins>" in page and "<del>blue</del>" in page


def test_every_architecture_evaluates(tmp_path: Path, tiny_model: Path) -> None:
    adapter = make_adapter(tiny_model, tmp_path / "adapter", seed=2)
    _, report, _ = evaluate(
        tmp_path, adapter=str(adapter), data=str(held_out_file(tmp_path)), max_prompts=2, max_new_tokens=6
    )
    assert report["data"]["examples"] == 6 and len(report["generations"]) == 2
    assert report["losses"]["adapter"]["loss"] != pytest.approx(report["losses"]["base"]["loss"])


def test_the_worker_runs_an_evaluate_job(tmp_path: Path, noise_adapter: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from backend.core.events import Done, read_events
    from backend.jobs.launch import start_worker, stream

    monkeypatch.setenv("LORA_STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    layout = JobLayout.new(tmp_path / "jobs", "eval")
    spec = {"adapter": str(noise_adapter), "data": str(held_out_file(tmp_path)), "max_prompts": 2, "max_new_tokens": 4}
    EvaluateSpec.from_dict(spec).save(layout.spec)
    process = start_worker(layout, resume=False)
    events = list(stream(process))
    assert process.wait() == 0, layout.log.read_text()[-3000:]
    done = events[-1]
    assert isinstance(done, Done) and done.status == "succeeded", events[-3:]
    assert done.output_path == str(layout.root / "report.json") and done.metrics["eval_examples"] == 6
    assert [e.model_dump() for e in read_events(layout.events)] == [e.model_dump() for e in events]
    assert read_report(layout.root).losses["adapter"].loss == pytest.approx(done.metrics["adapter_loss"])


def _report(**fields: object) -> EvaluationReport:
    """A small report as the job writes one, ``fields`` replacing its parts."""
    document = {
        "name": "colours",
        "created_at": "2026-01-01T00:00:00Z",
        "job": "/jobs/eval",
        "precision": "float32 weights, float32 compute on cpu",
        "device": "cpu",
        "base": {"label": "tiny", "path": "/models/tiny", "fingerprint": "0739b8877ef9"},
        "models": [
            {"key": "base", "label": "base", "path": "/models/tiny"},
            {"key": "adapter", "label": "colours", "path": "/a", "trained_steps": 30, "training_metrics": {"loss": 1}},
        ],
        "data": {"source": "held.jsonl", "available": 2, "examples": 2, "tokens": 9, "max_length": 64},
        "losses": {"base": {"loss": 2.0, "perplexity": 7.389}, "adapter": {"loss": 1.5, "perplexity": None}},
        "deltas": {"adapter": {"loss": -0.5, "perplexity": None, "perplexity_relative": -0.39}},
        "worse": {"adapter": []},
        "better": {
            "adapter": [
                {
                    "index": 1,
                    "where": "held.jsonl line 2",
                    "prompt": "Sky?",
                    "tokens": 4,
                    "base": 2.2,
                    "loss": 1.1,
                    "delta": -1.1,
                }
            ]
        },
        "generations": [
            {
                "index": 0,
                "prompt": [{"role": "user", "content": "Sky?"}],
                "reference": "Blue.",
                "outputs": {"base": "Grey.", "adapter": "Blue."},
                "diff": {"adapter": [["delete", "Grey"], ["insert", "Blue"], ["equal", "."]]},
            }
        ],
    }
    return EvaluationReport.model_validate(document | fields)


def test_the_report_round_trips_through_its_file(tmp_path: Path) -> None:
    report = _report()
    files = write_report(tmp_path, report)
    assert json.loads(files.json.read_text())["format"] == REPORT_FORMAT
    assert read_report(tmp_path) == read_report(files.json) == report
    assert report.label("adapter") == "colours" and report.generations[0].changed("adapter")
    assert files.markdown.read_text() == render_markdown(report) and "| colours | 1.5000 |" in render_markdown(report)
    assert "<del>Grey</del>" in files.html.read_text()


def test_a_report_in_an_unknown_format_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    document = json.loads(_report().to_json()) | {"format": REPORT_FORMAT + 1}
    (tmp_path / "report.json").write_text(json.dumps(document))
    with pytest.raises(UnknownReportFormat, match=rf"in format {REPORT_FORMAT + 1}, but this LoRA Studio reads format"):
        read_report(tmp_path)
    (tmp_path / "report.json").write_text(json.dumps({"kind": "dataset"}))
    with pytest.raises(ValueError, match="is not a LoRA Studio evaluation report"):
        read_report(tmp_path)
    (tmp_path / "report.json").write_text(json.dumps({"kind": "evaluation", "format": REPORT_FORMAT, "name": "x"}))
    with pytest.raises(ValueError, match="is not a valid evaluation report: created_at"):
        read_report(tmp_path)


def test_the_evaluation_names_every_condition_its_loss_does_not_share_with_training() -> None:
    qlora = {"training": {"micro_batch_size": 8}, "quantization": {"mode": "nf4"}}
    common = {"source": "the split", "tokens": 12_000, "precision": "bfloat16 weights, bfloat16 compute on cuda"}
    reasons = loss_differences(training_spec=qlora, named_data=False, examples=200, available=900, **common)
    assert len(reasons) == 3
    assert "200 of the 900 held-out examples (max_examples)" in reasons[0]
    assert "batches of 8 examples" in reasons[1] and "12,000 reply tokens" in reasons[1]
    assert "quantized (nf4)" in reasons[2] and "bfloat16 weights" in reasons[2]

    quantized_too = {**common, "precision": "4-bit NF4 weights, bfloat16 compute on cuda"}
    same = loss_differences(training_spec=qlora | {"training": {"micro_batch_size": 1}}, named_data=False,
                            examples=900, available=900, **quantized_too)  # fmt: skip
    assert same == [], "the same examples, one example a batch, the base as trained: one number"
    other = loss_differences(training_spec=None, named_data=True, examples=5, available=5, **common)
    assert other == ["it is measured on the split, not on the training job's held-out split"]
