"""Which fields of a file's rows the import uses, so that none is dropped without a word.

The fields a layout uses are not listed anywhere: they are found by watching the layout's own
normalizer, so they follow it when it learns to read more. A probed row is normalized once more as
a copy whose keys note when they are looked up (a dict that finds a key by its hash compares it with
``==``, so a ``str`` subclass sees every lookup, even by code that checks ``type(row) is dict``);
a key that is never looked up is then removed, and if the row still normalizes to the same result
it is unused. Keys are watched on the row and inside each object of a list the normalizer looks
into (the messages, also when a CSV or workbook cell holds them as JSON text); a list it only
passes on whole, such as ``tools``, is used whole.

A key that public layouts give training meaning (see ``MEANINGS``) and that the import does not
use would change what is learned if dropped, so a row that carries one is refused with the reason
instead. Other keys are probed on a file's first rows that carry them and then counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from backend.data.report import UnusedField
from backend.data.rules import Reject
from backend.data.turns import json_list

PROBES = 20  # rows that carry a key without training meaning, watched before it is taken as unused

# key -> what it means where it has training meaning: on the row, and on a message (an object in a list)
ROW_MEANINGS = {
    "weight": "a per-row loss weight (Fireworks)",
    "label": "a good/bad label on the row (KTO, unpaired preference)",
    "kto_tag": "LLaMA-Factory's KTO good/bad tag",
    "chosen": "the preferred answer of a preference pair",
    "rejected": "the rejected answer of a preference pair",
    "preferred_output": "the preferred answer of an OpenAI preference row",
    "non_preferred_output": "the rejected answer of an OpenAI preference row",
    "completions": "the steps of a stepwise-supervision row",
    "labels": "per-step labels, or token labels computed elsewhere",
    "segments": "Axolotl's input/output segments, each labelled trained or not",
    "tools": "the tool definitions the model is shown",
    "functions": "the tool definitions the model is shown (OpenAI's legacy functions)",
    "message_field_training": "the message field that says which turns are trained (Axolotl)",
    "loss_mask": "which tokens are trained",
    "mask": "which tokens are trained",
}
MESSAGE_MEANINGS = {
    "weight": "whether this turn is trained on (0 or 1)",
    "train": "whether this turn is trained on (Axolotl)",
    "train_detail": "the character ranges of this turn that are trained on (Axolotl)",
    "label": "whether this turn is trained on, or its label",
    "loss": "whether this turn is trained on",
    "mask": "whether this turn is trained on",
    "tool_calls": "the tool calls this reply makes",
    "function_call": "the function call this reply makes (OpenAI's legacy format)",
    "tool_call_id": "the tool call this result answers",
    "reasoning_content": "the reasoning written before the reply",
    "thinking": "the reasoning written before the reply",
}
# Keys that say which rows or turns are learned: left unused they make the import learn what the source
# says not to, so they refuse the row even where a person mapped the columns (and so chose the rest).
SELECTS = frozenset({"weight", "label", "kto_tag", "labels", "train", "train_detail", "loss", "mask", "loss_mask"})

Place = tuple[str | None, str]  # (the list the key is in, or None on the row; the key)
_Outcome = tuple[str, Any]


class _Key(str):
    """A row or message key that notes when it is looked up."""

    read = False
    __hash__ = str.__hash__

    def __eq__(self, other: object) -> bool:
        same = str.__eq__(self, other)
        if same is True:
            self.read = True
        return same


class FieldAudit:
    """Counts, for one file, the rows that carry each key the import leaves unused.

    ``check`` is called on every row before it is normalized; it returns why the row must be refused
    (a field with training meaning that is not used), or None.
    """

    def __init__(self, normalize: Callable[[Any], Any], mapped: bool = False) -> None:
        self.normalize = normalize
        self.mapped = mapped  # a person mapped the columns: fields that only carry data were left out on purpose
        self.used_row: set[str] = set()  # row keys the normalizer uses
        self.used_in: dict[str, set[str]] = {}  # row fields whose objects it looks into (messages) -> keys used
        self.unused: set[Place] = set()  # keys without training meaning, decided unused after PROBES rows
        self.tries: Counter[Place] = Counter()
        self.carried: Counter[Place] = Counter()  # rows that carry an unused key with a value

    def check(self, row: Any) -> tuple[str, str | None] | None:
        """(why the row is refused, the field) when it carries a training field the import does not use."""
        if type(row) is not dict:
            return None
        found = self._carried(row)
        if not found:
            return None
        if any(p[1] in _meanings(p[0]) or p not in self.unused for p in found):
            found = self._probe(row)
        refusal = None
        for place in found:
            self.carried[place] += 1
            if refusal is None and self._refuses(place):
                refusal = _refusal(row, place)
        return refusal

    def unused_fields(self) -> list[UnusedField]:
        """The keys left unused, most carried first."""
        out = []
        for (container, key), rows in self.carried.most_common():
            meaning = _meanings(container).get(key, "")
            name = key if container is None else f"{container}[].{key}"
            out.append(UnusedField(name, rows, bool(meaning), self._refuses((container, key)), meaning))
        return out

    def _refuses(self, place: Place) -> bool:
        return place[1] in _meanings(place[0]) and (not self.mapped or place[1] in SELECTS)

    def _carried(self, row: dict[str, Any]) -> list[Place]:
        """The keys of ``row`` (and of its messages) with a value that are not known to be used."""
        used = self.used_row  # issuperset first: most rows carry only used keys, and it allocates nothing
        found: list[Place] = (
            [] if used.issuperset(row) else [(None, k) for k in row if k not in used and not _empty(row[k])]
        )
        for container, known in self.used_in.items():
            items = row.get(container)
            if type(items) is not list:
                items = _objects(items)
            if items is not None and not all(map(known.issuperset, items)):  # most rows: every message covered
                covers = known.issuperset
                keys = {
                    k
                    for item in items
                    if type(item) is dict and not covers(item)
                    for k in item
                    if k not in known and not _empty(item[k])
                }
                found += [(container, k) for k in keys]
        return found

    def _probe(self, row: dict[str, Any]) -> list[Place]:
        """Normalize a watched copy of ``row``, note what it uses, and return the keys of ``row`` left unused."""
        row = {k: _as_list(v) for k, v in row.items()}  # JSON text of a list is probed as the list
        watched = {_Key(k): _watched_items(v) for k, v in row.items()}
        outcome = self._outcome(watched)
        for key, value in watched.items():
            if key.read:
                self.used_row.add(str(key))
            if type(value) is list:
                read = {str(k) for item in value if type(item) is dict for k in item if k.read}
                if read:
                    self.used_in.setdefault(str(key), set()).update(read)
        left = []
        for place in self._carried(row):
            if self._outcome(_without(row, place)) != outcome:  # passed on without a lookup: used
                if place[0] is None:
                    self.used_row.add(place[1])
                else:
                    self.used_in[place[0]].add(place[1])
                continue
            left.append(place)
            self.tries[place] += 1
            if self.tries[place] >= PROBES and place[1] not in _meanings(place[0]):
                self.unused.add(place)
        return left

    def _outcome(self, row: Any) -> _Outcome:
        try:
            return ("ok", self.normalize(row))
        except Reject as exc:
            return ("refused", (exc.code, exc.message, exc.field))
        except (LookupError, TypeError, ValueError) as exc:  # fails without the key: it relied on it
            return ("failed", repr(exc))


def _meanings(container: str | None) -> dict[str, str]:
    return ROW_MEANINGS if container is None else MESSAGE_MEANINGS


def _empty(value: Any) -> bool:
    return value is None or (type(value) in (str, list, dict) and not value)


def _objects(value: Any) -> Any:
    """``value`` as a list when it is one or JSON text of one (a CSV cell), else None."""
    if type(value) is list:
        return value
    if type(value) is str and value.lstrip().startswith("["):
        return json_list(value)
    return None


def _as_list(value: Any) -> Any:
    listed = _objects(value) if type(value) is str else None
    return value if listed is None else listed


def _watched_items(value: Any) -> Any:
    if type(value) is not list:
        return value
    return [{_Key(k): v for k, v in item.items()} if type(item) is dict else item for item in value]


def _without(row: dict[str, Any], place: Place) -> dict[str, Any]:
    container, key = place
    if container is None:
        return {k: v for k, v in row.items() if k != key}
    items = [{k: v for k, v in item.items() if k != key} if type(item) is dict else item for item in row[container]]
    return {**row, container: items}


def _refusal(row: dict[str, Any], place: Place) -> tuple[str, str | None]:
    container, key = place
    meaning = _meanings(container)[key]
    if container is None:
        where, field = f"the row has '{key}'", key
    else:
        items = _objects(row[container]) or []
        number = next(i for i, item in enumerate(items, 1) if type(item) is dict and not _empty(item.get(key)))
        where, field = f"message {number} has '{key}'", container
    return (
        f"{where} ({meaning}), which LoRA Studio does not use with this layout; the row is left out "
        "rather than trained without it",
        field,
    )
