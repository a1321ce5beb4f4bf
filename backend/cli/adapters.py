"""``lora-studio adapters``: the adapter registry from a terminal (list, show, add, tag, note, promote, …).

Every command has ``--json`` for scripts; refusals print the reason and what to do, and exit 1.
``backend/cli/main.py`` adds it with ``add_adapters_parser``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backend.cli.common import EXIT_FAILED, EXIT_OK
from backend.registry.errors import RegistryError
from backend.registry.gates import parse_gates
from backend.registry.history import STAGES
from backend.registry.registry import Listed, Registry
from backend.registry.version import Version, slug


def _version(text: str) -> int:
    try:
        return int(text.lower().removeprefix("v"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a version number (write 3 or v3)") from None


def add_adapters_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    adapters = sub.add_parser("adapters", help="the adapter registry: versions, stages, history").add_subparsers(
        dest="adapters_command", required=True
    )

    def command(name: str, help: str, func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        parser = adapters.add_parser(name, help=help)
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.set_defaults(func=lambda args: _run(func, args))
        return parser

    listing = command("list", "list named adapters and their versions", _list)
    listing.add_argument("name", nargs="?", help="only this adapter's versions")
    show = command("show", "one version in full: provenance, metrics, stage, tags, notes, history", _show)
    show.add_argument("name")
    show.add_argument("version", nargs="?", type=_version, help="default: the production version, else the newest")
    add = command("add", "register an adapter folder as the next version of a named adapter", _add)
    add.add_argument("path", type=Path, help="a PEFT adapter folder (a job's adapter/ or any other)")
    add.add_argument("--name", help="the adapter's name (default: from the folder or its training record)")
    add.add_argument("--base", type=Path, help="the base model folder, for an adapter without a LoRA Studio record")
    add.add_argument("--tag", action="append", default=[], help="a tag (repeat for more)")
    add.add_argument("--note", help="a note kept with the version")
    tag = command("tag", "add or remove tags of a version", _tag)
    tag.add_argument("name")
    tag.add_argument("version", type=_version)
    tag.add_argument("tags", nargs="+", help="tags to add; prefix with - to remove (-- -old)")
    note = command("note", "add a note to a version", _note)
    note.add_argument("name")
    note.add_argument("version", type=_version)
    note.add_argument("text")
    promote = command("promote", "move a version to production (default), staging or archived", _promote)
    promote.add_argument("name")
    promote.add_argument("version", type=_version)
    promote.add_argument("--stage", choices=STAGES, default="production")
    promote.add_argument("--reason", default="", help="why, kept in the adapter's history")
    promote.add_argument("--override", metavar="REASON", help="promote although a release gate fails; kept")
    gates = command("gates", "check a version against the adapter's release gates, or set the gates", _gates)
    gates.add_argument("name")
    gates.add_argument("version", nargs="?", type=_version, help="default: the newest version")
    gates.add_argument("--set", type=Path, metavar="FILE", help="a gates YAML file to use from now on")
    suite = command("suite", "list an adapter's regression suites, or keep a suite file with it", _suite)
    suite.add_argument("name")
    suite.add_argument("--set", type=Path, metavar="FILE", help="a suite YAML file to keep (its name: its 'name')")
    evaluate = command(
        "evaluate", "evaluate a version with the adapter's suites and the refusal check, in this terminal", _evaluate
    )
    evaluate.add_argument("name")
    evaluate.add_argument("version", nargs="?", type=_version, help="default: the newest version")
    rollback = command("rollback", "put back the version that was in production before the current one", _rollback)
    rollback.add_argument("name")
    rollback.add_argument("--reason", default="", help="why, kept in the adapter's history")
    diff = command("diff", "settings, data and metrics that differ between two versions", _diff)
    diff.add_argument("name")
    diff.add_argument("a", type=_version)
    diff.add_argument("b", type=_version)
    remove = command("rm", "delete a version (its history stays)", _remove)
    remove.add_argument("name")
    remove.add_argument("version", type=_version)
    remove.add_argument("--reason", default="")
    fits = command("fits", "the versions trained on a given base model", _fits)
    fits.add_argument("base", type=Path, help="a model folder")
    command("rebuild", "rebuild the registry's index from its folders", _rebuild)


def _run(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return func(args)
    except RegistryError as exc:
        print(exc.message, file=sys.stderr)
        if exc.hint:
            print(exc.hint, file=sys.stderr)
        return EXIT_FAILED


def _print_json(value: Any) -> int:
    print(json.dumps(value, indent=2, default=str))
    return EXIT_OK


def _table(rows: list[Listed]) -> None:
    if not rows:
        print(
            "no adapters registered yet; a finished training job registers its adapter, or run: "
            "lora-studio adapters add FOLDER"
        )
        return
    print(f"{'adapter':<24} {'ver':>4}  {'stage':<10} {'base':<22} {'r':>3} {'held-out':>8} {'size':>9}  registered")
    for v in rows:
        loss = f"{v.heldout_loss:.3f}" if v.heldout_loss is not None else "-"
        size = f"{v.size_bytes / 2**20:.1f} MiB" if v.size_bytes else "-"
        base = (v.base_ref or "?").rsplit("/", 1)[-1][:22]
        number = f"v{v.version}"
        line = f"{v.name:<24} {number:>4}  {v.stage:<10} {base:<22} {v.rank or '-':>3} {loss:>8} {size:>9}  "
        print(line + f"{v.registered_at or '-'}" + (f"  [{', '.join(v.tags)}]" if v.tags else ""))
        if v.problem:
            print(f"{'':<30}problem: {v.problem}")


def _list(args: argparse.Namespace) -> int:
    rows = Registry().versions(args.name)
    if args.json:
        return _print_json([row.to_dict() for row in rows])
    _table(rows)
    return EXIT_OK


def _describe(registry: Registry, version: Version) -> dict[str, Any]:
    state = registry.state(version.name).versions.get(version.number)
    return {
        "name": version.name,
        "version": version.number,
        "folder": str(version.folder),
        "stage": state.stage if state else None,
        "tags": sorted(state.tags) if state else [],
        "notes": state.notes if state else [],
        "problem": version.problem,
        "registered": version.registered,
        "training": version.training,
        "history": [e for e in registry.history(version.name) if e.get("version") == version.number],
    }


def _show(args: argparse.Namespace) -> int:
    registry = Registry()
    version = registry.get(args.name, args.version)
    described = _describe(registry, version)
    if args.json:
        return _print_json(described)
    training, registered = version.training, version.registered
    base = training.get("base_model") or {}
    data = training.get("dataset") or {}
    print(f"{version.label}  ({described['stage']})  {version.folder}")
    print(f"  base:       {base.get('ref')}  fingerprint {str(base.get('fingerprint'))[:12]}")
    print(f"  data:       {data.get('path')}  hash {str(data.get('content_hash'))[:12]}")
    print(f"  registered: {registered.get('registered_at')} by {registered.get('who')} from {registered.get('source')}")
    lineage = {k: v for k, v in (registered.get("lineage") or {}).items() if v}
    if lineage:
        print(f"  lineage:    {', '.join(f'{k} {v}' for k, v in lineage.items())}")
    for name, value in sorted((training.get("metrics") or {}).items()):
        print(f"  {name}: {value:.4g}" if isinstance(value, int | float) else f"  {name}: {value}")
    for run in version.evaluations[-3:]:
        print(f"  evaluated {run.get('job_id')}: loss {run.get('loss')} (base {run.get('base_loss')})")
    if described["tags"]:
        print(f"  tags:       {', '.join(described['tags'])}")
    for note in described["notes"]:
        print(f"  note ({note['at']}, {note['who']}): {note['text']}")
    if version.problem:
        print(f"  problem:    {version.problem}")
    for event in described["history"]:
        detail = event.get("reason") or event.get("text") or ""
        print(f"  {event.get('at')}  {event['event']} {event.get('stage', '')} {detail}".rstrip())
    return EXIT_OK


def _add(args: argparse.Namespace) -> int:
    path = args.path.resolve()
    name = args.name or _default_name(path)
    version = Registry().add(path, name, base=args.base, tags=args.tag, note=args.note)
    if args.json:
        return _print_json({"name": version.name, "version": version.number, "folder": str(version.folder)})
    print(f"registered {version.label} (staging) -> {version.folder}")
    return EXIT_OK


def _default_name(path: Path) -> str:
    try:
        record = json.loads((path / "lora_studio_adapter.json").read_text(encoding="utf-8"))
        if isinstance(record, dict) and isinstance(record.get("name"), str) and slug(record["name"]):
            return slug(record["name"])
    except (OSError, ValueError):
        pass
    folder = path.parent if path.name == "adapter" else path
    return slug(folder.name) or "adapter"


def _tag(args: argparse.Namespace) -> int:
    add = [t for t in args.tags if not t.startswith("-")]
    remove = [t[1:] for t in args.tags if t.startswith("-")]
    Registry().tag(args.name, args.version, add, remove)
    if not args.json:
        print(f"{args.name} v{args.version}: tags updated")
    return EXIT_OK


def _note(args: argparse.Namespace) -> int:
    Registry().note(args.name, args.version, args.text)
    return EXIT_OK


def _promote(args: argparse.Namespace) -> int:
    event = Registry().promote(args.name, args.version, args.stage, args.reason, args.override)
    if args.json:
        return _print_json(event)
    previous = event.get("previous")
    print(f"{args.name} v{args.version} is now in {args.stage}" + (f" (v{previous} archived)" if previous else ""))
    return EXIT_OK


def _gates(args: argparse.Namespace) -> int:
    registry = Registry()
    if args.set:
        registry.set_gates(args.name, parse_gates(args.set.read_text(encoding="utf-8"), str(args.set)))
    listed = registry.versions(args.name)
    if not listed:
        raise RegistryError(f"There is no adapter named '{args.name}'.", "See `lora-studio adapters list`.")
    number = args.version if args.version is not None else listed[0].version  # newest first
    results = registry.gate_results(args.name, number)
    if args.json:
        return _print_json({"name": args.name, "version": number, "gates": [r.to_dict() for r in results]})
    if not results:
        print(f"{args.name} has no release gates; set them with: lora-studio adapters gates {args.name} --set FILE")
        return EXIT_OK
    for result in results:
        print(f"  {'pass' if result.passed else 'FAIL'}  {result.gate.describe():<36} {result.why}")
    passed = all(r.passed for r in results)
    print(f"{args.name} v{number} {'passes' if passed else 'does not pass'} its release gates")
    return EXIT_OK if passed else EXIT_FAILED


def _suite(args: argparse.Namespace) -> int:
    from backend.evaluation.errors import EvaluationError
    from backend.evaluation.suites import read_suite

    registry = Registry()
    if args.set:
        try:
            suite = read_suite(args.set)
        except EvaluationError as exc:
            raise RegistryError(str(exc)) from None
        path = registry.set_suite(args.name, suite.name, args.set.read_text(encoding="utf-8"))
        if not args.json:
            print(f"{args.name}: suite '{suite.name}' ({len(suite.prompts)} prompts) kept at {path}")
    suites = registry.suites(args.name)
    if args.json:
        return _print_json({name: str(path) for name, path in suites.items()})
    for name, path in suites.items():
        print(f"  {name}  {path}")
    return EXIT_OK


def _evaluate(args: argparse.Namespace) -> int:
    """Run the evaluate job on a version's folder with every suite kept with the adapter and the refusal check."""
    from backend.cli.common import run_spec, spec_from_options

    registry = Registry()
    listed = registry.versions(args.name)
    if not listed:
        raise RegistryError(f"There is no adapter named '{args.name}'.", "See `lora-studio adapters list`.")
    version = registry.get(args.name, args.version if args.version is not None else listed[0].version)
    spec = spec_from_options(
        {
            "kind": "evaluate",
            "name": f"{version.name}-v{version.number}",
            "adapter": str(version.folder),
            "suites": [str(path) for path in registry.suites(args.name).values()],
            "refusal_check": True,
        }
    )
    if spec is None:
        return EXIT_FAILED
    code, _ = run_spec(spec, None, args.json)
    if code == EXIT_OK and not args.json:
        for result in registry.gate_results(version.name, version.number):
            print(f"  gate {'pass' if result.passed else 'FAIL'}  {result.gate.describe():<36} {result.why}")
    return code


def _rollback(args: argparse.Namespace) -> int:
    event = Registry().rollback(args.name, args.reason)
    if args.json:
        return _print_json(event)
    print(f"{args.name}: v{event['version']} is back in production (v{event['from']} archived)")
    return EXIT_OK


def _diff(args: argparse.Namespace) -> int:
    registry = Registry()
    result = registry.diff(registry.get(args.name, args.a), registry.get(args.name, args.b))
    if args.json:
        return _print_json(result)
    print(f"{result['a']}  ->  {result['b']}")
    for key, (a, b) in result["spec"].items():
        print(f"  {key}: {a} -> {b}")
    if result["dataset_hash"]:
        print(f"  dataset: {str(result['dataset_hash'][0])[:12]} -> {str(result['dataset_hash'][1])[:12]}")
    if result["base_fingerprint"]:
        print("  base model: different (these versions cannot be swapped for each other)")
    for key, values in result["metrics"].items():
        delta = f" ({values['delta']:+.4g})" if values["delta"] is not None else ""
        print(f"  {key}: {values['a']} -> {values['b']}{delta}")
    if not (result["spec"] or result["dataset_hash"] or result["metrics"]):
        print("  no differences in settings, data or metrics")
    return EXIT_OK


def _remove(args: argparse.Namespace) -> int:
    Registry().remove(args.name, args.version, args.reason)
    if not args.json:
        print(f"deleted {args.name} v{args.version}")
    return EXIT_OK


def _fits(args: argparse.Namespace) -> int:
    rows = Registry().fitting(args.base)
    if args.json:
        return _print_json([row.to_dict() for row in rows])
    _table(rows)
    return EXIT_OK


def _rebuild(args: argparse.Namespace) -> int:
    registry = Registry()
    registry.rebuild()
    count = len(registry.versions())
    if args.json:
        return _print_json({"versions": count})
    print(f"index rebuilt: {count} versions")
    return EXIT_OK
