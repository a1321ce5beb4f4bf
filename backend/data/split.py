"""The seeded train/eval split: the same data, fraction and seed always hold out the same examples."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def eval_count(n: int, fraction: float) -> int:
    """How many of ``n`` examples are held out: at least one whenever any are asked for."""
    if fraction <= 0 or n < 2:
        return 0
    return min(n - 1, max(1, round(n * fraction)))


def split_indices(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Train and eval indices, each in dataset order."""
    held = eval_count(n, fraction)
    if not held:
        return list(range(n)), []
    order = list(range(n))
    random.Random(seed).shuffle(order)  # noqa: S311 - a reproducible split, not a secret
    eval_idx = sorted(order[:held])
    chosen = set(eval_idx)
    return [i for i in range(n) if i not in chosen], eval_idx


def split(items: Sequence[T], fraction: float, seed: int) -> tuple[list[T], list[T]]:
    """Train and eval items, each in dataset order."""
    train_idx, eval_idx = split_indices(len(items), fraction, seed)
    return [items[i] for i in train_idx], [items[i] for i in eval_idx]
