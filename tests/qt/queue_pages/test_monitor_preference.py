"""The Monitor charts a preference job's own values (rewards, margin, how often the chosen answer wins) and
keeps those charts out of the way for any other job."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pytestqt.qtbot import QtBot

from app.session import Session
from backend.core.events import EventSink, Metric
from backend.jobs.queue import JobQueue
from tests.qt.charts import drawn_x
from tests.qt.queue_pages.test_monitor_page import make_monitor
from tests.queue_support import add, run_once


def test_a_preference_job_shows_its_rewards_and_an_sft_job_does_not(
    qtbot: QtBot, session: Session, queue: JobQueue, tmp_path: Path
) -> None:
    sft = add(queue, tmp_path, "sft", steps=5, save_every=100)
    dpo = add(queue, tmp_path, "dpo", steps=5, save_every=100)
    run_once(queue, step_s=0.005)
    run_once(queue, step_s=0.005)
    # The values trl's DPOTrainer logs, as the worker sends them (backend.core.events.PREFERENCE_KEYS).
    sink = EventSink(dpo.layout.events, None)
    for step in range(1, 6):
        values = {"rewards/chosen": 0.1 * step, "rewards/rejected": -0.2 * step, "rewards/margins": 0.3 * step}
        sink.emit(Metric(step=step, split="train", values={"loss": 0.7, **values, "rewards/accuracies": 0.5}))
    sink.emit(Metric(step=5, split="eval", values={"eval_rewards/margins": 1.2, "eval_rewards/accuracies": 0.9}))
    sink.close()

    page = make_monitor(qtbot, session)
    session.job_selected.emit(dpo.id)
    rewards = page.charts["rewards"]
    qtbot.waitUntil(lambda: len(drawn_x(rewards.raw_curve("margin"))) == 5, timeout=10_000)
    assert page.preference.isVisible()
    _x, margins = rewards.raw_curve("margin").getOriginalDataset()
    np.testing.assert_allclose(margins, [0.3, 0.6, 0.9, 1.2, 1.5])
    np.testing.assert_array_equal(drawn_x(rewards.raw_curve("eval_margin")), [5])
    accuracy = page.charts["pref_accuracy"]
    accuracy.flush()
    np.testing.assert_array_equal(drawn_x(accuracy.raw_curve("eval")), [5])

    session.job_selected.emit(sft.id)
    qtbot.waitUntil(lambda: not page.preference.isVisible(), timeout=10_000)
    rewards.flush()
    assert len(drawn_x(rewards.raw_curve("margin"))) == 0, "the DPO job's points are gone with it"
