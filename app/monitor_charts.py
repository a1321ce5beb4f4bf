"""The Monitor page's charts, and the line that says the last system sample.

Training charts are drawn by step; GPU and host charts by time since the job started, each
waiting for its first sample until one comes. The page fills them from the job's events.
"""

from __future__ import annotations

from typing import TypedDict

from backend.core.events import Telemetry
from widgets.live_chart import LiveChart, Series, SeriesStyle, XAxis
from widgets.units import CELSIUS, GIB, GIBIBYTES, LEARNING_RATE, PERCENT, TOKENS_PER_SECOND, WATTS

WAITING_SAMPLE = "Waiting for the first measurement (every 2 s)…"


def training_charts() -> dict[str, LiveChart]:
    """Loss (smoothed, with a log scale), learning rate, gradient norm and speed, by step."""
    return {
        "loss": LiveChart(
            "Loss",
            # Named as everywhere else: the trainer's eval_loss, not the evaluate job's (backend.evaluation.loss_note).
            [Series("train", "Training loss"), Series("eval", "In-training held-out loss", SeriesStyle.POINTS)],
            smoothing=True,
            log_scale_toggle=True,
        ),
        "lr": LiveChart("Learning rate", [Series("lr", "Learning rate")], unit=LEARNING_RATE),
        "grad_norm": LiveChart("Gradient norm", [Series("grad_norm", "Gradient norm")]),
        "tokens": LiveChart("Speed", [Series("tps", "Tokens per second")], unit=TOKENS_PER_SECOND),
    }


def preference_charts() -> dict[str, LiveChart]:
    """A preference job's own values by step (trl's rewards): the implied rewards of the chosen and rejected
    answers and their margin, and how often the chosen answer wins; held-out values as points."""
    return {
        "rewards": LiveChart(
            "Preference rewards",
            [
                Series("chosen", "Chosen answers"),
                Series("rejected", "Rejected answers"),
                Series("margin", "Margin"),
                Series("eval_margin", "Held-out margin", SeriesStyle.POINTS),
            ],
        ),
        "pref_accuracy": LiveChart(
            "Share of pairs whose chosen answer wins",
            [Series("train", "Training pairs"), Series("eval", "Held-out pairs", SeriesStyle.POINTS)],
            y_range=(0, 1),
        ),
    }


PREFERENCE_CHARTS = frozenset({"rewards", "pref_accuracy"})
"""The keys of ``preference_charts``, known without building a widget."""


class _ElapsedAxis(TypedDict):
    """The options of a chart over time since the job started."""

    x_axis: XAxis
    empty_text: str


def gpu_charts() -> dict[str, LiveChart]:
    """Use, memory, temperature and power of the GPUs over time; a series each GPU is added as it is seen."""
    elapsed: _ElapsedAxis = {"x_axis": XAxis.ELAPSED, "empty_text": WAITING_SAMPLE}
    return {
        "gpu_util": LiveChart("GPU utilisation", unit=PERCENT, y_range=(0, 100), **elapsed),
        "gpu_mem": LiveChart("GPU memory", unit=GIBIBYTES, **elapsed),
        "gpu_temp": LiveChart("GPU temperature", unit=CELSIUS, **elapsed),
        "gpu_power": LiveChart("GPU power", unit=WATTS, **elapsed),
    }


def host_charts() -> dict[str, LiveChart]:
    """CPU use, and memory used, by this job and in total, over time."""
    elapsed: _ElapsedAxis = {"x_axis": XAxis.ELAPSED, "empty_text": WAITING_SAMPLE}
    return {
        "cpu": LiveChart("CPU", [Series("cpu", "CPU use")], unit=PERCENT, y_range=(0, 100), **elapsed),
        "ram": LiveChart(
            "Memory (RAM)",
            [
                Series("used", "Used"),
                Series("rss", "This job"),
                Series("total", "Total", SeriesStyle.LIMIT),
            ],
            unit=GIBIBYTES,
            **elapsed,
        ),
    }


def system_line(telemetry: Telemetry) -> str:
    """The last sample in one line: each GPU's use, memory, temperature and power, then CPU and RAM."""
    parts = []
    for gpu in telemetry.gpus:
        facts = [f"GPU {gpu.index} ({gpu.name})"]
        if gpu.utilization_percent is not None:
            facts.append(f"{gpu.utilization_percent:.0f}\u00a0%")
        facts.append(f"{gpu.memory_used_bytes / GIB:.1f} of {gpu.memory_total_bytes / GIB:.1f}\u00a0GiB")
        if gpu.temperature_c is not None:
            facts.append(f"{gpu.temperature_c:.0f}\u00a0°C")
        if gpu.power_w is not None:
            facts.append(f"{gpu.power_w:.0f}\u00a0W")
        parts.append(" · ".join(facts))
    ram = f"RAM {telemetry.ram_used_bytes / GIB:.1f} of {telemetry.ram_total_bytes / GIB:.1f}\u00a0GiB"
    parts.append(f"CPU {telemetry.cpu_percent:.0f}\u00a0% · {ram}")
    return "    ".join(parts)
