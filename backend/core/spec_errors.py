"""A spec's validation errors in words for a person: "lora.alpha must be greater than 0; you wrote -16".

``explain`` turns pydantic's errors into one sentence a setting: the dotted name as written
(without pydantic's union-branch names), the rule broken and the value given, the closest known
name for a misspelt setting, and one line for a value that fails every branch of a union.
"""

from __future__ import annotations

import difflib

from pydantic import BaseModel, ValidationError

_PHRASES: dict[str, str] = {
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be text",
    "string_too_short": "must not be empty",
    "string_too_long": "must be at most {max_length} characters",
    "missing": "is required",
    "model_type": "must be a section of settings",
    "model_attributes_type": "must be a section of settings",
    "list_type": "must be a list",
}


def _field_name(loc: tuple[int | str, ...]) -> str:
    # Pydantic adds union-branch names ("list[str]", "literal[...]") to the location; a person never wrote those.
    parts = [str(p) for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))]
    return ".".join(parts)


def _known_fields(loc: tuple[int | str, ...], model: type[BaseModel]) -> list[str]:
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def explain(exc: ValidationError, document: type[BaseModel]) -> list[str]:
    """One sentence a problem, each naming the setting as written (``lora.alpha``) and what was wrong."""
    problems: list[str] = []
    seen: set[str] = set()
    for err in exc.errors(include_url=False):
        name = _field_name(err["loc"]) or "the spec"
        kind = err["type"]
        ctx = {k: f"{v:g}" if isinstance(v, float) else v for k, v in (err.get("ctx") or {}).items()}
        if kind == "extra_forbidden":
            last = str(err["loc"][-1])
            close = difflib.get_close_matches(last, _known_fields(err["loc"], document), n=1)
            hint = f"; did you mean {close[0]}?" if close else "; remove it"
            message = f"{name} is not a setting LoRA Studio knows{hint}"
        elif kind == "literal_error":
            message = f"{name} must be one of {ctx.get('expected', '')}; you wrote {err['input']!r}"
        elif kind == "value_error":
            message = f"{name} {ctx.get('error', err['msg'])!s}".strip()
            if name == "the spec":
                message = str(ctx.get("error", err["msg"]))
        elif kind in _PHRASES:
            message = f"{name} {_PHRASES[kind].format(**ctx)}"
            if kind != "missing":
                message += f"; you wrote {err['input']!r}"
        else:
            message = f"{name}: {err['msg']}; you wrote {err['input']!r}"
        # A value failing a union (preset or list) reports once per branch; one line is enough.
        if name in seen and kind != "extra_forbidden":
            continue
        seen.add(name)
        problems.append(message)
    return problems
