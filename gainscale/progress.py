"""Progress bars for what takes more than a moment: models of a suite, batches of a model."""

from __future__ import annotations

import sys
import time
from typing import Any

#: seconds before a bar appears: never for a cache hit
DELAY = 2.0


def progress_bar(total: int, description: str, unit: str, enabled: bool, position: int = 0) -> _DelayedBar:
    """A tqdm bar on stderr, with an ETA, that appears only after two seconds (so never for a
    cache hit) and not at all when ``enabled`` is false (``-q``, xdist workers)."""
    return _DelayedBar(dict(total=total, desc=description, unit=unit, file=sys.stderr, leave=False, position=position), enabled)


class _DelayedBar:
    """tqdm's bar, made at the first update two seconds after the start, and only then imported.

    Why: importing tqdm takes tens of milliseconds, a good part of replaying the claims from
    cache, where every loop ends within the delay and no bar is ever shown.
    """

    def __init__(self, arguments: dict[str, Any], enabled: bool):
        self._arguments = arguments
        self._enabled = enabled
        self._started = time.time()  # tqdm's clock
        self._done = 0
        self._bar: Any = None

    def update(self, count: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(count)
            return
        self._done += count
        if self._enabled and time.time() - self._started >= DELAY:
            from tqdm.auto import tqdm

            self._bar = tqdm(delay=DELAY, **self._arguments)  # the delay keeps it from drawing 0 first
            self._bar.start_t = self._bar.last_print_t = self._started  # elapsed, rate and ETA from the real start
            self._bar.update(self._done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> _DelayedBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
