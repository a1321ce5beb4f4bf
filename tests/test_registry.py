"""The adapter registry with real PEFT adapters on tiny models, real SQLite, real files and processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend.core.layout import ADAPTER_RECORD
from backend.registry.errors import RegistryError
from backend.registry.history import read_events
from backend.registry.registry import Registry
from backend.registry.version import VERSION_RECORD
from tests.adapters import make_adapter

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LORA_STUDIO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="module")
def adapters(tmp_path_factory: pytest.TempPathFactory, tiny_model_dirs: dict[str, Path]) -> dict[str, Path]:
    """Two adapters of the tiny Llama (different rank and data) and one of the tiny Qwen2."""
    root = tmp_path_factory.mktemp("adapters")
    made = {
        "a": make_adapter(tiny_model_dirs["llama"], root / "a", seed=1),
        "b": make_adapter(tiny_model_dirs["llama"], root / "b", seed=2, r=4, lora_alpha=8),
        "other_base": make_adapter(tiny_model_dirs["qwen2"], root / "other_base", seed=3),
    }
    record = json.loads((made["b"] / ADAPTER_RECORD).read_text())
    record["dataset"]["content_hash"] = "e" * 64
    record["metrics"]["eval_loss"] = 2.25
    (made["b"] / ADAPTER_RECORD).write_text(json.dumps(record))
    return made


def cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LORA_STUDIO_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", "adapters", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_versions_are_numbered_copies_with_their_provenance(home: Path, adapters: dict[str, Path]) -> None:
    registry = Registry()
    first = registry.add(adapters["a"], "support-triage", note="first try", tags=["baseline"])
    second = registry.add(adapters["b"], "support-triage")
    assert (first.number, second.number) == (1, 2)
    assert (first.folder / "adapter_model.safetensors").read_bytes() == (
        adapters["a"] / "adapter_model.safetensors"
    ).read_bytes()
    assert first.registered["source"] == str(adapters["a"].resolve()) and first.registered["who"]
    assert first.registered["size_bytes"] > 0 and first.base_fingerprint == second.base_fingerprint

    listed = registry.versions("support-triage")
    assert [(v.version, v.stage, v.rank, v.heldout_loss) for v in listed] == [
        (2, "staging", 4, 2.25),
        (1, "staging", 8, 2.75),
    ]
    assert listed[1].tags == ["baseline"] and listed[1].notes[0]["text"] == "first try"

    # Changing the registry never writes through to the adapter it was registered from.
    registry.note("support-triage", 1, "kept")
    assert json.loads((adapters["a"] / ADAPTER_RECORD).read_text())["name"] == "a"


def test_promote_and_rollback_move_production_and_keep_the_history(home: Path, adapters: dict[str, Path]) -> None:
    registry = Registry()
    for path in (adapters["a"], adapters["b"], adapters["a"]):
        registry.add(path, "triage")
    with pytest.raises(RegistryError, match="nothing to roll back"):
        registry.rollback("triage")
    registry.promote("triage", 1, reason="first good one")
    with pytest.raises(RegistryError, match="first version in production"):
        registry.rollback("triage")
    registry.promote("triage", 2, reason="better field match")
    registry.promote("triage", 3, reason="more data")
    stages = {v.version: v.stage for v in registry.versions("triage")}
    assert stages == {1: "archived", 2: "archived", 3: "production"}

    registry.rollback("triage", reason="v3 answers in the wrong language")
    assert {v.version: v.stage for v in registry.versions("triage")} == {1: "archived", 2: "production", 3: "archived"}
    registry.rollback("triage", reason="v2 too")
    assert registry.state("triage").production == 1

    with pytest.raises(RegistryError, match="is in production"):
        registry.promote("triage", 1, "archived")
    with pytest.raises(RegistryError, match="cannot be deleted"):
        registry.remove("triage", 1)
    registry.remove("triage", 3, reason="bad")
    assert [v.version for v in registry.versions("triage")] == [2, 1]
    events = registry.history("triage")
    assert [e["event"] for e in events] == ["registered"] * 3 + ["stage"] * 3 + ["rollback"] * 2 + ["removed"]
    assert events[-2]["reason"] == "v2 too" and events[4]["previous"] == 1


def test_the_index_rebuilds_identically_from_the_folders(home: Path, adapters: dict[str, Path]) -> None:
    registry = Registry()
    for name, path in (("x", adapters["a"]), ("x", adapters["b"]), ("y", adapters["other_base"])):
        registry.add(path, name)
    registry.promote("x", 2, reason="r")
    registry.tag("x", 1, ["old"], [])
    before = [v.to_dict() for v in registry.versions()]
    registry.db_path.unlink()
    for leftover in registry.db_path.parent.glob("registry.db-*"):
        leftover.unlink()
    assert [v.to_dict() for v in Registry().versions()] == before
    Registry().rebuild()
    assert [v.to_dict() for v in Registry().versions()] == before


def test_the_index_follows_changes_made_by_other_processes_and_by_hand(home: Path, adapters: dict[str, Path]) -> None:
    registry = Registry()
    registry.add(adapters["a"], "hand")
    registry.versions()  # indexed
    assert cli("add", str(adapters["b"]), "--name", "hand", home=home).returncode == 0
    assert [v.version for v in registry.versions("hand")] == [2, 1]

    (registry.root / "hand" / "v1" / VERSION_RECORD).write_text("{ not json")
    (registry.root / "hand" / "v2" / ADAPTER_RECORD).write_text("[1, 2]")
    listed = {v.version: v for v in registry.versions("hand")}
    assert "lora_studio_version.json cannot be read" in (listed[1].problem or "")
    assert "lora_studio_adapter.json is not a JSON object" in (listed[2].problem or "")
    shown = cli("show", "hand", "1", home=home)
    assert shown.returncode == 0 and "problem" in shown.stdout


def test_a_base_of_another_fingerprint_is_refused_with_the_reason(
    home: Path, adapters: dict[str, Path], tiny_model_dirs: dict[str, Path]
) -> None:
    registry = Registry()
    registry.add(adapters["a"], "llama-task")
    registry.add(adapters["other_base"], "qwen-task")
    version = registry.get("llama-task")
    registry.check_base(version, tiny_model_dirs["llama"])
    with pytest.raises(RegistryError, match="is a different model") as refused:
        registry.check_base(version, tiny_model_dirs["qwen2"])
    assert "adapters fits" in (refused.value.hint or "")
    assert [v.name for v in registry.fitting(tiny_model_dirs["qwen2"])] == ["qwen-task"]

    plain = adapters["a"].parent / "plain"
    make_adapter(tiny_model_dirs["llama"], plain, record=False)
    config = json.loads((plain / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "someone/not-here"
    (plain / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(RegistryError, match="does not say which base") as unknown:
        registry.add(plain, "plain")
    assert "--base" in (unknown.value.hint or "")
    assert registry.add(plain, "plain", base=tiny_model_dirs["llama"]).base_fingerprint == version.base_fingerprint


def test_two_processes_promoting_at_once_leave_exactly_one_production_version(
    home: Path, adapters: dict[str, Path]
) -> None:
    registry = Registry()
    for path in (adapters["a"], adapters["b"], adapters["a"]):
        registry.add(path, "race")
    for _ in range(3):
        racers = [
            subprocess.Popen(
                [sys.executable, "-m", "backend.cli", "adapters", "promote", "race", str(n), "--reason", f"p{n}"],
                cwd=ROOT,
                env={**os.environ, "LORA_STUDIO_HOME": str(home)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in (2, 3)
        ]
        codes = [p.wait(timeout=60) for p in racers]
        assert codes.count(0) >= 1
        stages = [v.stage for v in Registry().versions("race")]
        assert stages.count("production") == 1
        # The history says the same as the index: the last promotion named the one it replaced.
        state = Registry().state("race")
        promotions = [e for e in Registry().history("race") if e["event"] == "stage"]
        assert state.production == promotions[-1]["version"]


def test_a_kill_during_add_or_promote_leaves_a_consistent_registry(home: Path, adapters: dict[str, Path]) -> None:
    script = (
        "import sys; from pathlib import Path; from backend.registry.registry import Registry\n"
        "r = Registry()\n"
        "for i in range(1000):\n"
        "    v = r.add(Path(sys.argv[1]), 'churn')\n"
        "    r.promote('churn', v.number, reason=str(i))\n"
    )
    env = {**os.environ, "LORA_STUDIO_HOME": str(home)}
    for delay in (0.8, 1.3, 1.9):
        process = subprocess.Popen([sys.executable, "-c", script, str(adapters["a"])], cwd=ROOT, env=env)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        registry = Registry()
        listed = registry.versions("churn")
        assert listed, "some versions were registered before the kill"
        assert all(v.problem is None for v in listed), [v.problem for v in listed if v.problem]
        assert [v.stage for v in listed].count("production") <= 1
        root = registry.root / "churn"
        assert all((root / f"v{v.version}" / "adapter_model.safetensors").is_file() for v in listed)
        # The next change works, whatever the kill interrupted.
        registry.promote("churn", listed[-1].version, reason="after the kill")
        assert registry.state("churn").production == listed[-1].version
    assert all(e.get("event") for e in read_events(registry.root / "churn" / "history.jsonl"))


def test_a_torn_history_line_is_skipped_and_the_next_event_starts_a_new_line(
    home: Path, adapters: dict[str, Path]
) -> None:
    registry = Registry()
    registry.add(adapters["a"], "torn")
    registry.add(adapters["b"], "torn")
    history = registry.root / "torn" / "history.jsonl"
    with history.open("a") as handle:
        handle.write('{"event": "stage", "version": 2, "sta')  # a power cut mid-line
    registry.promote("torn", 1, reason="after the cut")
    assert registry.state("torn").production == 1
    assert history.read_text().splitlines()[-1].startswith('{"at"')


def test_the_cli_lists_shows_diffs_and_refuses_in_plain_words(home: Path, adapters: dict[str, Path]) -> None:
    assert cli("add", str(adapters["a"]), "--name", "cli-task", "--tag", "v-one", home=home).returncode == 0
    assert cli("add", str(adapters["b"]), "--name", "cli-task", home=home).returncode == 0
    listed = json.loads(cli("list", "--json", home=home).stdout)
    assert [(v["name"], v["version"]) for v in listed] == [("cli-task", 2), ("cli-task", 1)]
    diff = json.loads(cli("diff", "cli-task", "1", "v2", "--json", home=home).stdout)
    assert diff["spec"]["lora.r"] == [8, 4] and diff["dataset_hash"] == ["d" * 64, "e" * 64]
    assert diff["metrics"]["eval_loss"]["delta"] == pytest.approx(-0.5)
    refused = cli("promote", "cli-task", "9", home=home)
    assert refused.returncode == 1 and "cli-task has no version 9" in refused.stderr and "v1, v2" in refused.stderr
    bad_name = cli("add", str(adapters["a"]), "--name", "Support Triage!", home=home)
    assert bad_name.returncode == 1 and "support-triage" in bad_name.stderr
    table = cli("list", home=home).stdout
    assert "cli-task" in table and "staging" in table and "[v-one]" in table
