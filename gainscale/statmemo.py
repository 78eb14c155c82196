"""A memo on disk of the statistics' kernels, so that a replay of known numbers needs no numpy or scipy.

Why: replaying the claims from cache evaluates the same statistics of the same numbers on every
run (and a sensitivity analysis a dozen variants of them). The arithmetic takes milliseconds;
importing numpy and ``scipy.special`` for it takes about 0.3 s, more than all the rest of a
replay. The kernels of :mod:`gainscale._exactstats` and :mod:`gainscale.permutation` are pure
functions of their numbers, so each result is kept, keyed by the kernel's name and its exact
arguments, in a file of the cache directory, and a later run asking the same reads back the
same bits without importing either. Pure-Python versions of the special functions would not
give scipy's bits, and results must not change.

- Off unless a run turns it on with :func:`use` (the pytest plugin does, in the run's cache
  directory) and :func:`close` ends it, writing what was added.
- Keys write every argument exactly: floats in hex, ints as ints, None, and flat sequences of
  those. Any other argument (a numpy array or scalar) passes the memo by: nothing is guessed.
- The file's name holds a fingerprint of everything the numbers depend on: the kernels' source
  code, numpy's, scipy's and Python's versions and the machine; a change of any starts afresh.
- Written atomically under a lock, merged with what other processes (xdist workers) added;
  at most :data:`MAX_ENTRIES`, the least recently used dropped first. A memo that cannot be
  written or read is left alone: it only ever saves time.

Layout: ``<cache>/stats/memo-<fingerprint>.json``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: the modules whose kernels are remembered: their source is part of the fingerprint
KERNEL_MODULES = ("_exactstats.py", "permutation.py")
#: the most results a memo file keeps (a bootstrap adds thousands; a replay uses a few dozen)
MAX_ENTRIES = 20_000
#: bumped when the file's form changes
FORMAT = 1


class _Memo:
    """The results of one fingerprint: those on disk, read on first use, and those added since."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._values: dict[str, Any] | None = None
        #: keys looked up or added in this run, in order of use: kept first when trimming
        self.used: dict[str, None] = {}
        self.added: dict[str, Any] = {}

    @functools.cached_property
    def path(self) -> Path:
        return self.directory / "stats" / f"memo-{fingerprint()}.json"

    @property
    def values(self) -> dict[str, Any]:
        if self._values is None:
            self._values = _read(self.path)
        return self._values

    def get(self, key: str) -> Any:
        """The remembered result (raises KeyError when there is none)."""
        value = self.values[key]
        self.used[key] = None
        return value

    def put(self, key: str, value: Any) -> None:
        self.values[key] = self.added[key] = value
        self.used[key] = None

    def save(self) -> None:
        """Merge what this run added into the file, under a lock; the least recently used go first."""
        if not self.added:
            return
        from filelock import FileLock, Timeout

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(self.path) + ".lock", timeout=10):
                merged = _read(self.path)  # what is there now, other processes' additions included
                for key in self.used:  # this run's results to the end: the last to be dropped
                    if key in self.added:
                        merged.pop(key, None)
                        merged[key] = self.added[key]
                    elif key in merged:
                        merged[key] = merged.pop(key)
                kept = dict(list(merged.items())[-MAX_ENTRIES:])
                from .files import write_atomic

                write_atomic(self.path, json.dumps({"format": FORMAT, "values": kept}, separators=(",", ":")))
        except (OSError, Timeout, ValueError):
            return  # a read-only or busy cache: the memo only saves time, so nothing is lost
        finally:
            self.added = {}


_active: _Memo | None = None


def use(directory: str | Path) -> None:
    """Remember the kernels' results in ``directory`` (a cache directory) from now on."""
    global _active
    close()
    _active = _Memo(Path(directory))


def close() -> None:
    """Write what was added and stop remembering."""
    global _active
    memo, _active = _active, None
    if memo is not None:
        memo.save()


def active() -> bool:
    return _active is not None


def remembered(rebuild: Callable[[Any], Any] = lambda value: value) -> Callable[[F], F]:
    """Decorate a pure kernel so that, while a memo is in use, its results are remembered.

    ``rebuild`` turns the JSON form back into the kernel's type (``Line._make``, ``tuple``).
    """

    def decorate(function: F) -> F:
        name = f"{function.__module__.rpartition('.')[2]}.{function.__qualname__}"

        @functools.wraps(function)
        def kernel(*args, **kwargs):
            memo = _active
            key = None if memo is None else _key(name, args, kwargs)
            if key is None:
                return function(*args, **kwargs)
            try:
                return rebuild(memo.get(key))
            except KeyError:
                pass
            result = function(*args, **kwargs)
            memo.put(key, result)
            return result

        kernel.uncached = function  # type: ignore[attr-defined]
        return kernel  # type: ignore[return-value]

    return decorate


def _key(name: str, args: tuple, kwargs: dict) -> str | None:
    """``name(arguments)`` written exactly, or None if an argument cannot be."""
    try:
        parts = [_exact(value) for value in args] + [f"{k}={_exact(v)}" for k, v in sorted(kwargs.items())]
    except TypeError:
        return None
    return f"{name}({','.join(parts)})"


def _exact(value: Any) -> str:
    """A number, None or a flat sequence of them, as text that no other value shares."""
    kind = type(value)
    if kind is float:
        return value.hex()  # every bit, nan and the sign of zero included
    if kind is int:
        return str(value)
    if value is None:
        return "None"
    if kind in (list, tuple):
        return "[" + " ".join(map(_exact_number, value)) + "]"
    raise TypeError(kind)


def _exact_number(value: Any) -> str:
    kind = type(value)
    if kind is float:
        return value.hex()
    if kind is int:
        return str(value)
    raise TypeError(kind)


def _read(path: Path) -> dict[str, Any]:
    """The file's results; empty if it is missing, unreadable or of another format."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    values = data.get("values") if isinstance(data, dict) and data.get("format") == FORMAT else None
    return values if isinstance(values, dict) else {}


@functools.cache
def fingerprint() -> str:
    """What the kernels' numbers depend on, hashed: their code, numpy, scipy, Python, the machine."""
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for module in KERNEL_MODULES:
        digest.update((here / module).read_bytes())
    for package in ("numpy", "scipy"):
        digest.update(_version_file(package))
    digest.update(f"{sys.version} {platform.machine()} {platform.system()}".encode())
    return digest.hexdigest()[:16]


def _version_file(package: str) -> bytes:
    """The package's ``version.py`` (its version and git revision), found without importing it.

    Faster than ``importlib.metadata``, which searches every installed distribution; the
    distribution's version stands in where the file is missing.
    """
    import importlib.util
    from importlib.metadata import PackageNotFoundError, version

    spec = importlib.util.find_spec(package)
    if spec is not None and spec.origin:
        try:
            return package.encode() + (Path(spec.origin).parent / "version.py").read_bytes()
        except OSError:
            pass
    try:
        return f"{package} {version(package)}".encode()
    except PackageNotFoundError:
        return f"{package} none".encode()
