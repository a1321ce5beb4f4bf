"""Small chat datasets written by tests: a learnable task and deliberately broken rows."""

from __future__ import annotations

import json
import random
from pathlib import Path

COLOURS = {
    "sky": "blue",
    "grass": "green",
    "snow": "white",
    "coal": "black",
    "lemon": "yellow",
    "cherry": "red",
    "orange": "orange",
    "plum": "purple",
}


def colour_conversation(thing: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "Answer in one short sentence."},
        {"role": "user", "content": f"What colour is the {thing}?"},
        {"role": "assistant", "content": f"The {thing} is {COLOURS[thing]}."},
    ]


def write_colour_task(path: Path, n: int, seed: int = 0) -> Path:
    """A task a tiny random model learns in a few dozen steps: a fixed thing -> colour mapping."""
    rng = random.Random(seed)
    things = list(COLOURS)
    with path.open("w", encoding="utf-8") as handle:
        for _ in range(n):
            handle.write(json.dumps({"messages": colour_conversation(rng.choice(things))}) + "\n")
    return path
