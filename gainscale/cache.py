"""The measurement cache: one checksummed JSON file per measurement, written atomically.

Layout of a cache directory::

    measurements/<model>--<request>--<revision>.json   one entry per measurement
    locks/<request>.lock                               one lock per request (filelock)
    quarantine/                                        corrupt entries, moved aside
    sets/<name>.json                                   imported result sets
    tiny-models/                                       the tiny suite's checkpoints
    stats/memo-<fingerprint>.json                      the statistics memo (gainscale.statmemo)

A *request* is what a user asks for: model source, revision as asked (``main``), dtype,
prompt-set hash and method version. The revision the hub resolves it to (a commit sha, or a
fingerprint of a local directory) completes the key. Looking up a request needs no network
and no model: replaying on a laptop finds the newest entry of the request.

A key means the same in every cache, so that entries can be carried from one to another in a
bundle (:mod:`gainscale.bundles`): a model that lives inside the cache directory (the tiny
suite's) is keyed by its place in the cache (``<cache>/tiny-models/tiny-s``), not by the
absolute path of the cache it happened to be built in.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock

from .errors import CacheError, CorruptEntryError, WriteError
from .files import canonical_json, pretty_json, write_atomic
from .measurement import Measurement, check_definition

ENTRY_FORMAT = 1
#: how a key names a model directory inside the cache directory (see :meth:`MeasurementCache.keyed`)
IN_CACHE = "<cache>/"


class CacheWarning(UserWarning):
    """Something about the cache a user should know, that does not stop the run."""


class CacheWriteWarning(CacheWarning):
    """A measurement could not be kept: it is used in this run, and measured again next time."""


@dataclass(frozen=True)
class CacheRequest:
    """What a measurement is asked for; every field changes the numbers."""

    #: hub id or local directory
    source: str
    #: revision as asked: a branch, tag or commit; None for local directories
    revision: str | None
    dtype: str
    prompts_sha256: str
    method_version: int

    @property
    def digest(self) -> str:
        return _sha256(canonical_json(asdict(self)))[:16]


@dataclass(frozen=True)
class CacheEntry:
    """A valid entry read from disk."""

    #: the entry's file (for an entry read from a bundle: the bundle's path and member name)
    path: Path
    #: what it was measured for, as the cache keys it (see :meth:`MeasurementCache.keyed`)
    request: CacheRequest
    #: the commit sha or local fingerprint the request resolved to
    resolved_revision: str
    measurement: Measurement
    #: the entry's own checksum, over its key and measurement: equal checksums, equal entries
    sha256: str

    @property
    def file_name(self) -> str:
        """The name this entry has in every cache's ``measurements/``."""
        return entry_file_name(self.measurement.model, self.request, self.resolved_revision)


class MeasurementCache:
    """Measurements on disk, keyed by request and resolved revision.

    Parameters
    ----------
    directory
        The cache directory; created on first write.
    """

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    # ------------------------------------------------------------------ reading

    def lookup(self, request: CacheRequest, resolved_revision: str | None = None) -> CacheEntry | None:
        """The entry for ``request`` (at ``resolved_revision`` if given, else the newest), or None.

        Corrupt entries met on the way are quarantined with a :class:`CacheWarning`.
        """
        request = self.keyed(request)
        pattern = f"*--{request.digest}--{_slug(resolved_revision) if resolved_revision else '*'}.json"
        entries = [e for e in map(self._read_or_quarantine, self._glob(pattern)) if e is not None]
        entries = [e for e in entries if e.request == request]
        if not entries:
            return None
        return max(entries, key=lambda e: e.measurement.provenance.date)

    def entries(self) -> list[CacheEntry]:
        """Every valid entry; corrupt ones are quarantined on the way."""
        return [e for e in map(self._read_or_quarantine, self._glob("*.json")) if e is not None]

    def verify(self) -> tuple[list[CacheEntry], list[tuple[Path, str]]]:
        """Check every entry's checksum: ``(valid entries, [(quarantined path, reason)])``."""
        valid, bad = [], []
        for path in self._glob("*.json"):
            try:
                valid.append(read_entry(path))
            except CorruptEntryError as error:
                bad.append((self.quarantine(path), str(error)))
        return valid, bad

    def to_frame(self, gain: str = "paper"):
        """Every entry's per-layer gains as a pandas DataFrame in long form, one row per entry,
        layer and module.

        The columns of ``RunResult.to_frame("layers")`` (model, n_params, layer, depth, module,
        gain), then what tells one entry of a model from another: gain_definition, dtype,
        prompts_name, prompts_sha256, n_prompts, revision, resolved_revision, loaded_from (hub
        id or directory) and measured_at. Entries that cannot give ``gain`` (measured before
        its method version) are left out.

        Example
        -------
        >>> frame = MeasurementCache(".gainscale").to_frame()                      # doctest: +SKIP
        >>> frame.pivot_table(index="layer", columns="model", values="gain")       # doctest: +SKIP
        """
        import pandas as pd

        check_definition(gain)  # an unknown name is refused, naming the known ones
        rows = [row for entry in self.entries() for row in _layer_rows(entry.measurement, gain)]
        return pd.DataFrame(rows, columns=FRAME_COLUMNS)

    def keyed(self, request: CacheRequest) -> CacheRequest:
        """``request`` as this cache keys it: a model inside the cache directory by its place there.

        The tiny suite builds its models under the cache directory, so their source is an
        absolute path that differs from one cache to the next; keyed by that, an entry carried
        to another cache would never be found again. Any other source is kept as it is.
        """
        source = Path(request.source)
        if request.source.startswith(IN_CACHE) or not source.is_dir():
            return request
        try:
            inside = source.resolve().relative_to(self.directory.resolve())
        except ValueError:
            return request
        return replace(request, source=IN_CACHE + inside.as_posix())

    def _glob(self, pattern: str) -> list[Path]:
        return sorted((self.directory / "measurements").glob(pattern))

    def _read_or_quarantine(self, path: Path) -> CacheEntry | None:
        try:
            return read_entry(path)
        except FileNotFoundError:  # removed by another process since the glob
            return None
        except CorruptEntryError as error:
            moved = self.quarantine(path)
            warnings.warn(f"{error}; moved it to {moved} and will measure again", CacheWarning, stacklevel=3)
            return None

    # ------------------------------------------------------------------ writing

    def store(self, request: CacheRequest, resolved_revision: str, measurement: Measurement) -> Path:
        """Write an entry atomically; return its path. Raises :class:`CacheError` when it cannot."""
        request = self.keyed(request)
        path = self.directory / "measurements" / entry_file_name(measurement.model, request, resolved_revision)
        key = {**asdict(request), "resolved_revision": resolved_revision}
        body = {"key": key, "measurement": measurement.to_json()}
        try:
            checksum = _sha256(canonical_json(body))
        except ValueError as error:  # NaN or infinity: never stored
            raise CacheError(f"{measurement.model}: refusing to cache a non-finite value ({error})") from None
        entry = {"gainscale_cache_entry": ENTRY_FORMAT, **body, "sha256": checksum}
        try:
            write_atomic(path, pretty_json(entry))
        except WriteError as error:
            raise CacheError(_unwritable(self.directory, error)) from None
        return path

    def lock(self, request: CacheRequest) -> FileLock:
        """The lock that makes one process measure ``request`` while others wait."""
        locks = self.directory / "locks"
        try:
            locks.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CacheError(_unwritable(self.directory, error)) from None
        return FileLock(str(locks / f"{self.keyed(request).digest}.lock"))

    def add(self, entry: CacheEntry, content: str | bytes) -> CacheEntry | None:
        """Write an entry read elsewhere (a bundle's), unless another holds its key already.

        Parameters
        ----------
        entry
            The entry, checked (:func:`read_entry`); its key names the file it goes to.
        content
            Its file's content, written as it is, atomically.

        Returns
        -------
        CacheEntry or None
            None when ``entry`` was written; else the entry that holds the key already,
            identical (same ``sha256``) or not: it is never overwritten. A corrupt entry in
            the way is quarantined (with a :class:`CacheWarning`) and replaced.
        """
        path = self.directory / "measurements" / entry.file_name
        with self.lock(entry.request):  # no measurement or other import writes the key meanwhile
            existing = self._read_or_quarantine(path)
            if existing is not None:
                return existing
            try:
                write_atomic(path, content)
            except WriteError as error:
                raise CacheError(_unwritable(self.directory, error)) from None
        return None

    def get_or_measure_many(
        self, requests: Sequence[CacheRequest], resolve: Callable[[], str],
        measure: Callable[[str, list[int]], Iterable[Measurement]],
    ) -> list[tuple[Measurement, bool]]:
        """``[(measurement, came_from_cache)]`` for several requests of one model, measured at most
        once across processes and from one load of the model.

        ``resolve()`` gives the resolved revision (it may use the network). When the cache cannot
        be written, the measurements are still returned, with a :class:`CacheWarning` saying why
        they were not kept. Each request not in the cache is locked, and looked up again once all
        are held; ``measure(resolved, indices)`` then yields the measurements of
        those still missing (``indices`` into ``requests``), in that order, and each is stored and
        its lock released as it comes. Locks are taken in one order (by digest), so processes
        asking for overlapping sets cannot deadlock; equal requests are measured once.

        Returns
        -------
        list
            ``(measurement, came_from_cache)`` for each request, in order.
        """
        results: dict[int, tuple[Measurement, bool]] = {}
        for index, request in enumerate(requests):
            hit = self.lookup(request)
            if hit:
                results[index] = (hit.measurement, True)
        missing: dict[str, list[int]] = {}  # digest -> indices of equal requests
        for index in range(len(requests)):
            if index not in results:
                missing.setdefault(self.keyed(requests[index]).digest, []).append(index)
        if missing:
            self._measure_missing(requests, missing, resolve, measure, results)
        return [results[index] for index in range(len(requests))]

    def _measure_missing(self, requests, missing: dict[str, list[int]], resolve, measure, results: dict) -> None:
        """Lock the missing requests, look again, measure what is still missing; fills ``results``."""
        held = self._locks({digest: requests[indices[0]] for digest, indices in missing.items()})
        measurements = None
        try:
            for digest, indices in list(missing.items()):
                hit = self.lookup(requests[indices[0]])  # another process may have measured it while we waited
                if hit:
                    results.update((index, (hit.measurement, True)) for index in indices)
                    del missing[digest]
                    _release(held.pop(digest, None))
            if not missing:
                return
            resolved = resolve()
            measurements = iter(measure(resolved, [indices[0] for indices in missing.values()]))
            for (digest, indices), measurement in zip(missing.items(), measurements):
                self._store_or_warn(requests[indices[0]], resolved, measurement)
                results.update((index, (measurement, False)) for index in indices)
                _release(held.pop(digest, None))
        finally:
            getattr(measurements, "close", lambda: None)()  # a generator frees its model now, not at garbage collection
            for lock in held.values():
                _release(lock)

    def _locks(self, requests: dict[str, CacheRequest]) -> dict[str, FileLock]:
        """Each request's lock, acquired in digest order; none (with a warning) where the cache cannot hold locks."""
        held: dict[str, FileLock] = {}
        try:
            for digest in sorted(requests):
                lock = self.lock(requests[digest])
                lock.acquire()
                held[digest] = lock
        except CacheError as error:
            warnings.warn(f"{error}; measuring without a lock", CacheWarning, stacklevel=4)
        except BaseException:
            for lock in held.values():
                _release(lock)
            raise
        return held

    def _store_or_warn(self, request: CacheRequest, resolved: str, measurement: Measurement) -> None:
        try:
            self.store(request, resolved, measurement)
        except CacheError as error:
            warnings.warn(f"{error}; the measurement is used in this run but not kept", CacheWriteWarning, stacklevel=5)

    # ------------------------------------------------------------------ housekeeping

    def quarantine(self, path: Path) -> Path:
        """Move a bad entry aside (never delete it) and return where it went."""
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        target = self.directory / "quarantine" / f"{path.name}.{stamp}"
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(path, target)
        except FileNotFoundError:  # another process quarantined it first
            pass
        return target

    def clear(self) -> int:
        """Delete every measurement entry and lock; return how many entries went."""
        paths = self._glob("*.json")
        for path in paths:
            path.unlink(missing_ok=True)
        shutil.rmtree(self.directory / "locks", ignore_errors=True)
        return len(paths)


#: the columns of :meth:`MeasurementCache.to_frame`
FRAME_COLUMNS = ("model", "n_params", "layer", "depth", "module", "gain", "gain_definition", "dtype", "prompts_name",
                 "prompts_sha256", "n_prompts", "revision", "resolved_revision", "loaded_from", "measured_at")


def _layer_rows(measurement: Measurement, gain: str) -> list[dict]:
    """One row per layer and module of ``measurement`` under the gain definition ``gain``."""
    if gain not in measurement.available_definitions():
        return []
    m = measurement
    about = {"gain_definition": gain, "dtype": m.dtype, "prompts_name": m.prompts_name, "prompts_sha256": m.prompts_sha256,
             "n_prompts": m.n_prompts, "revision": m.revision, "resolved_revision": m.resolved_revision,
             "loaded_from": m.source, "measured_at": m.provenance.date}
    return [{**row, **about} for row in m.summary(gain).layer_rows()]


def load_measurements(cache_dir: str | Path, gain: str = "paper"):
    """A cache of measurements as a pandas DataFrame of per-layer gains (:meth:`MeasurementCache.to_frame`).

    Parameters
    ----------
    cache_dir
        The cache directory (``.gainscale/``, ``$GAINSCALE_CACHE``, or ``--cache``).
    gain
        The gain definition (``gainscale.measurement.GAIN_DEFINITIONS``); default: the paper's.

    Raises
    ------
    CacheError
        When ``cache_dir`` is not a directory.

    Example
    -------
    >>> gainscale.load_measurements(".gainscale").query("module == 'mlp'")   # doctest: +SKIP
    """
    directory = Path(cache_dir).expanduser()
    if not directory.is_dir():
        raise CacheError(f"no cache directory at {directory}: pass the directory gainscale measured into "
                         "(.gainscale/ in the project, $GAINSCALE_CACHE, or --cache)")
    return MeasurementCache(directory).to_frame(gain)


def _release(lock: FileLock | None) -> None:
    if lock is not None:
        lock.release()


def entry_file_name(model: str, request: CacheRequest, resolved_revision: str) -> str:
    """The file name of an entry in ``measurements/``: model, request digest, resolved revision."""
    return f"{_slug(model)}--{request.digest}--{_slug(resolved_revision)}.json"


def read_entry(path: Path, data: bytes | None = None) -> CacheEntry:
    """Read and check one entry; raise :class:`CorruptEntryError` naming the file and the fault.

    Parameters
    ----------
    path
        The entry's file; only named in messages when ``data`` is given.
    data
        The entry's bytes when they come from elsewhere (a bundle's member); None to read ``path``.
    """
    try:
        raw = json.loads(path.read_bytes() if data is None else data)
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CorruptEntryError(f"cache entry {path} is unreadable ({error})") from None
    try:
        if raw["gainscale_cache_entry"] != ENTRY_FORMAT:
            raise CorruptEntryError(f"cache entry {path} has format {raw['gainscale_cache_entry']!r}, not {ENTRY_FORMAT}")
        checksum = raw["sha256"]
        body = {"key": raw["key"], "measurement": raw["measurement"]}
        if _sha256(canonical_json(body)) != checksum:
            raise CorruptEntryError(f"cache entry {path} fails its checksum: its content was changed")
        key = dict(raw["key"])
        resolved = key.pop("resolved_revision")
        request = CacheRequest(**key)
        measurement = Measurement.from_json(raw["measurement"])
    except CorruptEntryError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, ZeroDivisionError) as error:
        raise CorruptEntryError(f"cache entry {path} is malformed ({type(error).__name__}: {error})") from None
    return CacheEntry(path, request, resolved, measurement, checksum)


def _unwritable(directory: Path, error: OSError) -> str:
    reason = error.reason if isinstance(error, WriteError) else (error.strerror or error)
    return (
        f"cannot write to the cache directory {directory} ({reason}); "
        "free space, fix its permissions, or pass another with --cache / GAINSCALE_CACHE"
    )


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:48]
