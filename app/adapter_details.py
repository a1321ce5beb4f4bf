"""What the Adapters page's detail pane says about one version, as HTML: provenance, lineage, history, gates.

Built from what the registry read (the version's folder, its history, its gate results); a
version whose record is broken shows its problem first and whatever could still be read.
"""

from __future__ import annotations

from html import escape
from typing import Any

from backend.registry.gates import GateResult
from backend.registry.history import VersionState
from backend.registry.registry import flat
from backend.registry.version import Version
from widgets.units import format_bytes

SPEC_HIGHLIGHTS = (
    ("lora.r", "rank"),
    ("lora.alpha", "alpha"),
    ("lora.dropout", "dropout"),
    ("training.learning_rate", "learning rate"),
    ("training.epochs", "epochs"),
    ("training.max_steps", "max steps"),
    ("training.batch_size", "batch size"),
    ("quantization", "quantization"),
    ("objective", "objective"),
)


def number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


def details_html(
    version: Version, state: VersionState, events: list[dict[str, Any]], gates: list[GateResult] | str
) -> str:
    """The detail pane for ``version``; ``gates`` is the gate results, or why they could not be checked."""
    parts = [f"<h3>{escape(version.label)} <small>({escape(state.stage)})</small></h3>"]
    if version.problem:
        parts.append(f"<p><b>Problem:</b> {escape(version.problem)}. Shown with what could still be read.</p>")
    training, registered = version.training, version.registered
    base = training.get("base_model") or {}
    dataset = training.get("dataset") or {}
    rows = [
        ("Base", f"{base.get('ref') or 'unknown'} · fingerprint {str(base.get('fingerprint') or '—')[:12]}"),
        ("Data", f"{dataset.get('path') or 'unknown'} · hash {str(dataset.get('content_hash') or '—')[:12]}"),
    ]
    spec = flat(training.get("spec") or {})
    highlights = [f"{label} {number(spec[key])}" for key, label in SPEC_HIGHLIGHTS if key in spec]
    if highlights:
        rows.append(("Settings", ", ".join(highlights)))
    metrics = training.get("metrics") or {}
    if metrics:
        rows.append(("Training", ", ".join(f"{k} {number(v)}" for k, v in metrics.items())))
    when = registered.get("registered_at") or "unknown"
    rows.append(("Registered", f"{when} by {registered.get('who') or 'unknown'}"))
    rows.append(
        (
            "From",
            f"{registered.get('source') or '—'}" + (f" (job {registered['job']})" if registered.get("job") else ""),
        )
    )
    if isinstance(registered.get("size_bytes"), int):
        rows.append(("Size", format_bytes(registered["size_bytes"])))
    lineage = registered.get("lineage") or {}
    rows.append(("Lineage", ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in lineage.items()) or "a first training"))
    rows.append(("Tags", ", ".join(sorted(state.tags)) or "none"))
    rows.append(("Folder", str(version.folder)))
    parts.append(_table(rows))
    if state.notes:
        parts.append("<h4>Notes</h4><ul>")
        parts += [
            f"<li>{escape(n['text'])} <small>({escape(n['at'])}, {escape(n['who'])})</small></li>" for n in state.notes
        ]
        parts.append("</ul>")
    parts.append("<h4>Latest evaluation</h4>")
    latest = version.evaluations[-1] if version.evaluations else None
    if latest is None:
        parts.append("<p>Not evaluated yet: Evaluate queues an evaluation of this version.</p>")
    else:
        parts.append(_table([(k, number(v)) for k, v in flat(latest).items() if isinstance(v, int | float)]))
    parts.append("<h4>Release gates</h4>")
    parts.append(_gates(gates))
    parts.append("<h4>History</h4><ul>")
    parts += [f"<li>{escape(describe_event(e))}</li>" for e in events] or ["<li>No events.</li>"]
    parts.append("</ul>")
    return "".join(parts)


def describe_event(event: dict[str, Any]) -> str:
    """One history event in words, with its reason."""
    kind, at, who = event.get("event"), event.get("at", ""), event.get("who", "")
    number_ = event.get("version")
    if kind == "stage":
        text = f"v{number_} to {event.get('stage')}"
        if event.get("previous"):
            text += f", replacing v{event['previous']}"
        if event.get("override"):
            text += f" (gates overridden: {event['override']})"
    elif kind == "rollback":
        text = f"rolled back from v{event.get('from')} to v{number_}"
    elif kind == "tags":
        changes = [f"+{t}" for t in event.get("add") or []] + [f"-{t}" for t in event.get("remove") or []]
        text = f"v{number_} tags {' '.join(changes)}"
    elif kind == "note":
        text = f"v{number_} note: {event.get('text', '')}"
    elif kind == "gates":
        text = "gates set: " + "; ".join(event.get("gates") or [])
    else:
        text = f"v{number_} {kind}" if number_ else str(kind)
    if event.get("reason"):
        text += f" — {event['reason']}"
    return f"{at} {who}: {text}"


def gate_lines(results: list[GateResult]) -> list[str]:
    """Each gate as "passed/failed: gate (the numbers)"."""
    return [f"{'passed' if r.passed else 'FAILED'}: {r.gate.describe()} ({r.why})" for r in results]


def _gates(gates: list[GateResult] | str) -> str:
    if isinstance(gates, str):
        return f"<p>{escape(gates)}</p>"
    if not gates:
        return "<p>This adapter has no gates: any version can be promoted.</p>"
    return "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in gate_lines(gates)) + "</ul>"


def _table(rows: list[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><td><b>{escape(k)}</b>&nbsp;&nbsp;</td><td>{escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"
