"""Writing files so that nothing is ever half-written, and the one JSON form checksums use.

Both wings use it: the cache writes its entries here, the report its Markdown, results and
baseline. It imports nothing of either, so the report never pulls in the measuring code.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from .errors import WriteError


def canonical_json(value: Any) -> str:
    """The one serialisation checksums are taken over; refuses NaN and infinities."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def pretty_json(value: Any) -> str:
    """Sorted, one value a line, newline-terminated: the form of files people review in diffs."""
    return json.dumps(value, indent=1, sort_keys=True) + "\n"


def ordered_json(value: Any) -> str:
    """One value a line, newline-terminated, keys in the order ``value`` gives them: for a file whose
    head should say the most (results.json opens with its format and whether the run finished).

    The same data built the same way gives the same bytes; unlike :func:`pretty_json`, two equal
    mappings built in different orders do not, so ``value`` must come from code that fixes its order.
    """
    return json.dumps(value, indent=1) + "\n"


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new, never a part.

    The text (UTF-8; or bytes, written as they are) goes to a temporary file in the same
    directory, is flushed to disk, and is renamed over ``path``.

    Raises
    ------
    WriteError
        Naming ``path`` and the reason (read-only, full disk, a file where a directory
        should be); nothing is left behind then.
    """
    path = Path(path)
    blocking = next((p for p in (path.parent, *path.parent.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise WriteError(path, f"{blocking.name} is a file, not a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise WriteError(path, error) from None
    try:
        os.fchmod(descriptor, _file_mode())  # mkstemp makes it private; a cache is often shared
        binary = isinstance(text, bytes)
        with os.fdopen(descriptor, "wb" if binary else "w", encoding=None if binary else "utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        _publish(temporary, path)
    except OSError as error:
        raise WriteError(path, error) from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def write_if_changed(path: Path, text: str | bytes) -> bool:
    """:func:`write_atomic`, unless ``path`` holds exactly ``text`` already; returns whether it wrote.

    A replay of unchanged numbers writes the same report again: comparing costs microseconds,
    a write with its fsync milliseconds, and the file's time then says when it last changed.
    """
    path = Path(path)
    try:
        same = path.read_bytes() == (text if isinstance(text, bytes) else text.encode("utf-8"))
    except OSError:
        same = False
    if not same:
        write_atomic(path, text)
    return not same


@functools.cache
def _file_mode() -> int:
    """0o666 less the process's umask: the mode ``open()`` would have given the file."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _publish(temporary: str, path: Path) -> None:
    """The one step that makes a written file visible (tests pause here to kill a writer)."""
    os.replace(temporary, path)


def slug(name: str) -> str:
    """A file-name-safe form of ``name`` that no other name shares.

    Letters, digits, ``.``, ``_`` and ``-`` are kept; when anything else had to be replaced
    (``my model``, ``modèle``) a short hash of the original is appended, so ``my model`` and
    ``my_model`` never collide. No leading dot (a hidden file, or ``..``).
    """
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:60]
    safe = re.sub(r"^\.", "_", safe)
    if safe == name:
        return safe
    return f"{safe}-{hashlib.sha256(name.encode('utf-8')).hexdigest()[:8]}"
