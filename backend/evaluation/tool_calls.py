"""The tool-call check: do a model's answers call the example's functions, in JSON, with valid arguments?

Each model writes calls in its own chat template's syntax (Hermes/Qwen ``<tool_call>{...}</tool_call>``,
Llama 3.1 ``{"name": ..., "parameters": ...}``, Mistral ``[TOOL_CALLS][{...}]``), so an answer is read
generically: every JSON object in it (or in a list) with a ``name`` and ``arguments`` or ``parameters``
is a call, as is an OpenAI-style ``{"function": {"name", "arguments"}}``; a ``<tool_call>`` block, or
text that names a ``"name"`` key, that holds no such object is a call that does not parse. A call is
then checked against the example's tool definitions: its name must be one of them and its arguments
valid against that function's JSON schema (``jsonschema``, the schema's own draft).

Rates count answers to prompts whose reference makes a call (``calls_expected``), so a model that
makes no call scores 0 rather than nothing: ``parse_rate`` is the share of those answers holding a
call that parses, ``valid_name_rate`` the share whose calls all name a defined function,
``valid_arguments_rate`` the share whose calls all also have valid arguments. ``calls_made`` counts
the calls found in every answer to a prompt with tools.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

_TAGGED = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL)
_NAME_KEY = re.compile(r'"name"\s*:')
_OPENING = re.compile(r"[\[{]")


@dataclass(frozen=True)
class CallCheck:
    """One call found in an answer and what the check made of it."""

    text: str
    parsed: bool
    name: str | None = None
    arguments: Any = None
    valid_name: bool = False
    valid_arguments: bool = False
    problem: str | None = None


def tool_schemas(tools: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Function name -> its parameters' JSON schema, from OpenAI-style or bare definitions."""
    schemas = {}
    for tool in tools:
        function = tool.get("function", tool) if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            parameters = function.get("parameters")
            schemas[function["name"]] = parameters if isinstance(parameters, dict) else {}
    return schemas


def find_calls(answer: str) -> list[CallCheck]:
    """The calls in ``answer``, parsed or not, in the order written (not yet checked against tools)."""
    tagged = [m.group(1) for m in _TAGGED.finditer(answer)]
    regions = tagged or [answer]
    calls: list[CallCheck] = []
    for region in regions:
        found = _json_calls(region)
        if found:
            calls += found
        elif tagged or _NAME_KEY.search(region):
            calls.append(CallCheck(region.strip(), parsed=False, problem=_json_problem(region)))
    return calls


def _json_calls(text: str) -> list[CallCheck]:
    """Every JSON value in ``text`` that is a call (or a list of calls), outermost first."""
    decoder = json.JSONDecoder()
    calls: list[CallCheck] = []
    at = 0
    while (match := _OPENING.search(text, at)) is not None:
        start = match.start()
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            at = start + 1
            continue
        found = [_as_call(item, text[start:end]) for item in (value if isinstance(value, list) else [value])]
        if found and all(c is not None for c in found):
            calls += [c for c in found if c is not None]
            at = end
        else:
            at = start + 1  # not a call itself: one may be nested inside
    return calls


def _as_call(value: Any, text: str) -> CallCheck | None:
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("function"), dict):
        value = value["function"]
    name = value.get("name")
    if not isinstance(name, str) or not ("arguments" in value or "parameters" in value):
        return None
    arguments = value.get("arguments", value.get("parameters"))
    if isinstance(arguments, str):  # OpenAI's wire format: the arguments as JSON text
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError as exc:
            return CallCheck(text, parsed=False, name=name, problem=f"the arguments are not JSON: {exc.msg}")
    return CallCheck(text, parsed=True, name=name, arguments=arguments)


def _json_problem(region: str) -> str:
    start = next((i for i, ch in enumerate(region) if ch in "[{"), None)
    if start is None:
        return "no JSON object"
    try:
        json.JSONDecoder().raw_decode(region, start)
    except json.JSONDecodeError as exc:
        return f"not JSON: {exc.msg} at character {exc.pos - start}"
    return 'the JSON has no "name" with "arguments" or "parameters"'


def check_calls(answer: str, tools: list[dict[str, Any]]) -> list[CallCheck]:
    """The calls in ``answer``, each checked against the functions ``tools`` defines."""
    from jsonschema import exceptions, validators

    schemas = tool_schemas(tools)
    checked = []
    for call in find_calls(answer):
        if not call.parsed or call.name is None:
            checked.append(call)
            continue
        if call.name not in schemas:
            defined = ", ".join(sorted(schemas)) or "none"
            checked.append(_with(call, problem=f"{call.name} is not a defined function (defined: {defined})"))
            continue
        schema = schemas[call.name]
        try:
            validator_class = validators.validator_for(schema)
            validator_class.check_schema(schema)
        except exceptions.SchemaError as exc:
            checked.append(_with(call, valid_name=True, problem=f"{call.name}'s schema is not valid: {exc.message}"))
            continue
        error = exceptions.best_match(validator_class(schema).iter_errors(call.arguments))
        if error is None:
            checked.append(_with(call, valid_name=True, valid_arguments=True))
        else:
            where = "/".join(str(part) for part in error.absolute_path)
            checked.append(
                _with(call, valid_name=True, problem=f"arguments{'/' + where if where else ''}: {error.message}")
            )
    return checked


def _with(call: CallCheck, **changes: Any) -> CallCheck:
    return CallCheck(**(asdict(call) | changes))


def answer_scores(calls: list[CallCheck]) -> dict[str, bool]:
    """An answer's standing: it holds a call that parses, its calls all name defined functions, with valid arguments."""
    parsed = [c for c in calls if c.parsed]
    return {
        "parsed": bool(parsed),
        "valid_name": bool(parsed) and all(c.valid_name for c in calls),
        "valid_arguments": bool(parsed) and all(c.valid_arguments for c in calls),
    }


def tool_call_rates(expected: list[bool], checked: list[list[CallCheck]]) -> dict[str, float]:
    """One model's summary over the answers to prompts with tools; rates over the answers expected to call."""
    scores = [answer_scores(calls) for calls, wanted in zip(checked, expected, strict=True) if wanted]
    count = len(scores)

    def rate(key: str) -> float:
        return sum(s[key] for s in scores) / count if count else 0.0

    return {
        "calls_expected": float(count),
        "calls_made": float(sum(len(calls) for calls in checked)),
        "parse_rate": rate("parsed"),
        "valid_name_rate": rate("valid_name"),
        "valid_arguments_rate": rate("valid_arguments"),
    }
