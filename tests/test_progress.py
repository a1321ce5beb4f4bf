"""The one progress callback and the one pace rule every job kind, the GUI and the terminal share."""

from __future__ import annotations

import pytest

from backend.core.progress import each_stage_once, time_left


def test_time_left_is_the_pace_so_far_and_none_before_there_is_one() -> None:
    assert time_left(30, 10, 5.0) == pytest.approx(15.0)  # 10 done in 5 s: 30 more take 15 s
    assert time_left(-3, 10, 5.0) == 0.0  # past the planned total: nothing left
    assert time_left(30, 0, 5.0) is None and time_left(30, 10, 0.0) is None


def test_each_stage_once_reports_a_stage_when_it_begins() -> None:
    stages: list[str] = []
    progress = each_stage_once(stages.append)
    for call in (("downloading", 0, None), ("downloading", 1, 1), ("writing", 1, 4), ("writing", 4, 4)):
        progress(*call)
    assert stages == ["downloading", "writing"]
