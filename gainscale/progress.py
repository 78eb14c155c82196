"""Progress bars for what takes more than a moment: models of a suite, batches of a model."""

from __future__ import annotations

import sys


def progress_bar(total: int, description: str, unit: str, enabled: bool, position: int = 0):
    """A tqdm bar on stderr, with an ETA, that appears only after two seconds (so never for a
    cache hit) and not at all when ``enabled`` is false (``-q``, xdist workers)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit=unit, delay=2.0, disable=not enabled, file=sys.stderr,
                leave=False, position=position)
