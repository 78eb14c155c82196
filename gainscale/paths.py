"""Where things are: the project root, the default cache, and paths as messages show them."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "GAINSCALE_CACHE"


def default_cache_dir(project_root: str | Path | None = None) -> Path:
    """``$GAINSCALE_CACHE``, else ``.gainscale/`` under the project root (or the current directory)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(project_root or find_project_root()) / ".gainscale"


def display_path(path: str | Path) -> Path:
    """``path`` relative to the current directory when it lies under it: shorter in messages."""
    path = Path(path)
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def find_project_root(start: Path | None = None) -> Path:
    """The nearest directory upwards holding ``pyproject.toml``, ``pytest.ini`` or ``.git``."""
    start = (start or Path.cwd()).resolve()
    for directory in (start, *start.parents):
        if any((directory / marker).exists() for marker in ("pyproject.toml", "pytest.ini", ".git")):
            return directory
    return start
