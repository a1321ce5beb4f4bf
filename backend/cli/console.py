"""Human-readable rendering of job events for the terminal."""

from __future__ import annotations

from backend.core.events import Artifact, Done, Error, Event, Log, Metric, Progress, Started, Telemetry, Warn
from backend.core.progress import duration_words, ended_words


def render(event: Event | str, verbose: bool = False) -> str | None:
    """One line for the terminal, or None for events not worth a line (telemetry unless verbose)."""
    if isinstance(event, str):
        return f"  | {event}"
    if isinstance(event, Started):
        device = event.device
        resumed = f", resuming from step {event.resumed_from_step}" if event.resumed_from_step else ""
        return f"started {event.job_kind} job on {device.kind} ({device.name}){resumed}"
    if isinstance(event, Progress):
        if event.stage is not None:
            return f"{event.stage} {event.step}/{event.total_steps}  elapsed {duration_words(event.elapsed_s)}"
        rate = f"{event.tokens_per_second:,.0f} tok/s" if event.tokens_per_second else ""
        epoch = f"  epoch {event.epoch:.2f}" if event.epoch is not None else ""
        return (
            f"step {event.step}/{event.total_steps}{epoch}  {rate}  "
            f"elapsed {duration_words(event.elapsed_s)}  ETA {duration_words(event.eta_s)}"
        )
    if isinstance(event, Metric):
        values = "  ".join(f"{k} {v:.4g}" for k, v in event.values.items())
        return f"  {event.split:5s} @ {event.step}: {values}"
    if isinstance(event, Telemetry):
        if not verbose:
            return None
        gpus = "  ".join(f"GPU{g.index} {g.memory_used_bytes / 2**30:.1f} GiB" for g in event.gpus)
        return f"  cpu {event.cpu_percent:.0f}%  rss {event.process_rss_bytes / 2**30:.2f} GiB  {gpus}"
    if isinstance(event, Log):
        return f"  {event.message}"
    if isinstance(event, Warn):
        return f"  warning: {event.message}"
    if isinstance(event, Artifact):
        return f"  saved {event.kind}: {event.path}"
    if isinstance(event, Error):
        hint = f"\n  what to do: {event.hint}" if event.hint else ""
        return f"error ({event.error_type}): {event.message}{hint}"
    if isinstance(event, Done):
        output = f": {event.output_path}" if event.output_path else ""
        ended = ended_words(None, event.status, event.step)
        return f"{ended}; this attempt ran {duration_words(event.duration_s)}{output}"
    return None
