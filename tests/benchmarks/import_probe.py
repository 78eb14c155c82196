"""A pytest plugin that writes down which torch and transformers modules a run imported.

    GAINSCALE_IMPORT_PROBE=FILE pytest -p import_probe ...

At the very end of the run (the last ``pytest_unconfigure``, after every report is written)
it writes the sorted list of imported ``torch*``, ``transformers*``, ``numpy*`` and ``scipy*``
modules to FILE as JSON.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

#: what a replay from cache must not need: the models' libraries, and numpy and scipy, whose
#: statistics come from the memo when the numbers were seen before
HEAVY = {"torch", "transformers", "numpy", "scipy"}


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    path = os.environ.get("GAINSCALE_IMPORT_PROBE")
    if path:
        imported = sorted(name for name in sys.modules if name.split(".")[0] in HEAVY)
        Path(path).write_text(json.dumps(imported))
