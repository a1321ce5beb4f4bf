"""Generate the preference sample dataset shipped with LoRA Studio: correct, concise answers preferred.

Each row is trl's conversational preference pair: a short question, the chosen answer (correct, one
short sentence) and a rejected one, which is wrong, padded with filler, or both::

    {"prompt": [{"role": "user", "content": "What is 7 plus 5?"}],
     "chosen": [{"role": "assistant", "content": "12."}],
     "rejected": [{"role": "assistant", "content": "Great question! Let me think about it. It is 13."}]}

The preference is checkable: every chosen answer is right by construction (sums, capitals, opposites,
plurals, colours from the tables below) and at most six words. The eval split asks questions the
training split never asks (other numbers, countries, words), so its accuracy measures the preference,
not memory. Output is deterministic for a given seed.

Usage: python assets/datasets/make_concise_answers.py [--out DIR] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

CAPITALS = {
    "France": "Paris",
    "Japan": "Tokyo",
    "Italy": "Rome",
    "Spain": "Madrid",
    "Germany": "Berlin",
    "Egypt": "Cairo",
    "Canada": "Ottawa",
    "Kenya": "Nairobi",
    "Peru": "Lima",
    "Norway": "Oslo",
    "Greece": "Athens",
    "Portugal": "Lisbon",
    "Austria": "Vienna",
    "Ireland": "Dublin",
    "Poland": "Warsaw",
    "Chile": "Santiago",
}
OPPOSITES = {
    "hot": "cold",
    "up": "down",
    "early": "late",
    "full": "empty",
    "wet": "dry",
    "open": "closed",
    "fast": "slow",
    "light": "dark",
    "loud": "quiet",
    "heavy": "light",
    "long": "short",
    "rich": "poor",
}
PLURALS = {
    "mouse": "mice",
    "child": "children",
    "tooth": "teeth",
    "foot": "feet",
    "goose": "geese",
    "man": "men",
    "woman": "women",
    "person": "people",
    "leaf": "leaves",
    "knife": "knives",
}
COLOURS = {
    "a ripe banana": "yellow",
    "fresh grass": "green",
    "a clear daytime sky": "blue",
    "fresh snow": "white",
    "coal": "black",
    "a ripe tomato": "red",
    "a carrot": "orange",
    "an aubergine": "purple",
}
FILLERS = (
    "Great question! Let me think about it carefully before I answer. ",
    "That is something many people wonder about, and there are a few things to consider. ",
    "Sure, I would be happy to help you with that question today. ",
    "Well, thinking it over step by step and considering everything I know, ",
)
CLOSINGS = ("", " I hope this helps, and let me know if you have any other questions!", " Anything else?")
EVAL_SHARE = 3  # every third key of each table is asked only in the eval split


def _split_keys(table: dict[str, str]) -> tuple[list[str], list[str]]:
    keys = list(table)
    return [k for i, k in enumerate(keys) if i % EVAL_SHARE], [k for i, k in enumerate(keys) if not i % EVAL_SHARE]


def _questions(rng: random.Random, split: str, n: int) -> list[tuple[str, str, str]]:
    """(question, right answer, a wrong answer of the same kind), ``n`` of them."""
    tables = {
        "capital": (CAPITALS, "What is the capital of {}?"),
        "opposite": (OPPOSITES, "What is the opposite of {}?"),
        "plural": (PLURALS, "What is the plural of {}?"),
        "colour": (COLOURS, "What colour is {}?"),
    }
    pools = {}
    for kind, (table, _) in tables.items():
        train_keys, eval_keys = _split_keys(table)
        keys = train_keys if split == "train" else eval_keys
        rng.shuffle(keys)
        pools[kind] = keys
    asked = dict.fromkeys(tables, 0)
    out = []
    for i in range(n):
        kind = ("sum", "capital", "opposite", "plural", "colour")[i % 5]
        if kind == "sum":
            low, high = (1, 20) if split == "train" else (21, 40)  # eval sums use numbers never seen in training
            a, b = rng.randint(low, high), rng.randint(low, high)
            wrong = a + b + rng.choice([-2, -1, 1, 2, 10])
            out.append((f"What is {a} plus {b}?", str(a + b), str(wrong)))
            continue
        table, template = tables[kind]
        key = pools[kind][asked[kind] % len(pools[kind])]  # each key once before any is asked again
        asked[kind] += 1
        wrong = rng.choice([v for v in table.values() if v != table[key]])
        out.append((template.format(key), table[key], wrong))
    return out


def _sentence(answer: str) -> str:
    return answer[0].upper() + answer[1:] + "."


def pairs(split: str, n: int, seed: int) -> list[dict[str, object]]:
    rng = random.Random(f"{seed}-{split}")  # noqa: S311 - a reproducible sample, not a secret
    rows = []
    for i, (question, right, wrong) in enumerate(_questions(rng, split, n)):
        style = i % 3  # wrong and short, right but padded, wrong and padded
        filler = rng.choice(FILLERS)
        closing = rng.choice(CLOSINGS)
        if style == 0:
            rejected = _sentence(wrong)
        elif style == 1:
            rejected = f"{filler}The answer is {right}.{closing}"
        else:
            rejected = f"{filler}The answer is {wrong}.{closing}"
        rows.append(
            {
                "prompt": [{"role": "user", "content": question}],
                "chosen": [{"role": "assistant", "content": _sentence(right)}],
                "rejected": [{"role": "assistant", "content": rejected}],
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "concise_answers")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 80), ("eval", 20)):
        path = args.out / f"{split}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in pairs(split, n, args.seed)), encoding="utf-8")
        print(f"wrote {n} pairs to {path}")


if __name__ == "__main__":
    main()
