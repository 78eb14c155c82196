"""Shards: a deterministic part of a suite's models, so that N machines measure a suite together.

``gainscale measure --suite pythia --shard K/N`` measures the K-th of N parts; the N parts are
disjoint and together they are the suite. Each machine exports its cache as a bundle and one
machine imports them all (:mod:`gainscale.bundles`).

The rule is round robin over the suite's order: model i (from 0) goes to shard ``i mod N + 1``.

- It depends on nothing but the suite's order, which a suite fixes, so every machine computes
  the same parts without talking to the others.
- The parts differ in size by at most one model. A hash of the model's name would be as
  deterministic but balanced only on average: eight models hashed into four shards land two
  to a shard in 4% of cases (2,520 of 65,536 assignments); otherwise some shard has three.
- Suites list their models from small to large (Pythia 70M to 12B), so round robin gives each
  shard some small and some large models, where cutting the list into N runs would give the
  last shard all the large ones.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

from .errors import OptionError

T = TypeVar("T")

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(text: str) -> tuple[int, int]:
    """Read ``K/N`` (the K-th of N shards, K from 1) and check it.

    Raises
    ------
    OptionError
        When ``text`` is not of the form K/N or K is not one of 1 ... N.
    """
    match = _SHARD.match(text)
    if not match:
        raise OptionError(f"--shard {text!r} is not K/N: pass e.g. 1/4 for the first of four shards")
    k, n = int(match[1]), int(match[2])
    check_shard(k, n)
    return k, n


def check_shard(k: int, n: int) -> None:
    """Refuse a shard K/N unless N >= 1 and 1 <= K <= N, saying which shards there are."""
    if n < 1:
        raise OptionError(f"--shard {k}/{n}: N, the number of shards, must be at least 1")
    if not 1 <= k <= n:
        raise OptionError(f"--shard {k}/{n}: K counts from 1, so it is one of 1/{n} ... {n}/{n}")


def shard(models: Sequence[T], k: int, n: int) -> tuple[T, ...]:
    """The K-th of N disjoint parts of ``models`` (K from 1), by round robin over their order.

    Parameters
    ----------
    models
        A suite's models (or their names), in the suite's order.
    k
        Which shard, 1 ... ``n``.
    n
        How many shards; more shards than models leaves the last ones empty.

    Returns
    -------
    tuple
        ``models[k - 1], models[k - 1 + n], ...``: the N shards are disjoint, together they
        are ``models``, and their sizes differ by at most one.

    Raises
    ------
    OptionError
        When N < 1 or K is not one of 1 ... N.
    """
    check_shard(k, n)
    return tuple(models[k - 1 :: n])
