"""Bundles: a cache's measurements in one file, to carry them into another cache.

GPU machines each measure a shard of a suite and export a bundle; one machine imports them
all and replays the claims. A paper ships its measurements the same way: whoever imports its
bundle replays its claims on a laptop, with no GPU and no weights.

A bundle is a zip archive::

    gainscale-bundle.json        the manifest: format, gainscale version, and for each entry
                                 its member name, its model and the SHA-256 of its bytes
    measurements/<entry>.json    cache entries, byte for byte as in the cache

Zip rather than tar: every member carries its own CRC-32, so damage is found member by
member; members are read one at a time by name, in memory, with nothing unpacked to disk;
there are no link, device or hard-link members to guard against beyond one mode bit; and
every system opens it without extra tools. What tar.gz would compress better across members
is little for files this size (deflate looks 32 KiB back). Members are sorted and carry a
fixed time stamp, so the same entries make the same bytes.

Importing checks every member of every bundle named (safe name, listed in the manifest,
manifest checksum, the entry's own checksum, its name) before it writes anything; then each
entry is added atomically, and a different entry already cached for the same key is kept and
reported, never overwritten.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import stat
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .cache import CacheEntry, MeasurementCache, read_entry
from .errors import BundleError, CorruptEntryError, UnknownNameError
from .files import pretty_json, write_atomic

BUNDLE_FORMAT = 1
MANIFEST = "gainscale-bundle.json"
#: the folder of the entries inside a bundle, as in a cache
ENTRIES = "measurements/"
#: a member larger than this is refused unread (an entry of 12B parameters and 40 prompts is
#: about 0.2 MB; a thousand times more prompts still fits)
MAX_MEMBER_BYTES = 2**30
_ENTRY_NAME = re.compile(r"^measurements/[A-Za-z0-9._-]+\.json$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
#: zip's earliest date: a bundle's bytes depend on its entries alone, not on when it was made
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_HINT = "export it again with `gainscale cache export`"


@dataclass(frozen=True)
class ManifestEntry:
    """What a bundle's manifest says of one entry."""

    #: member name: ``measurements/`` and the entry's file name in a cache
    name: str
    #: the model's name in its suite
    model: str
    #: SHA-256 of the member's bytes
    sha256: str


@dataclass(frozen=True)
class BundledEntry:
    """One entry of a bundle, checked and ready to add to a cache."""

    #: the bundle it came from
    bundle: Path
    #: its member name in the bundle
    member: str
    #: the entry, its own checksum verified
    entry: CacheEntry
    #: the member's bytes, written to the cache as they are
    content: bytes


@dataclass(frozen=True)
class Conflict:
    """A bundle's entry refused: the cache holds a different entry for the same key."""

    #: the cache's entry file, kept as it was
    path: Path
    #: the model both entries are of
    model: str
    #: checksum of the entry kept in the cache
    kept_sha256: str
    #: checksum of the bundle's entry, refused
    refused_sha256: str
    #: ``bundle:member`` the refused entry came from
    origin: str

    def __str__(self) -> str:
        return (
            f"conflict: {self.path} ({self.model}) has entry sha256 {self.kept_sha256}, {self.origin} has "
            f"sha256 {self.refused_sha256} for the same key; kept the cache's. Compare the two, remove the "
            "one you do not want and import again, or import into another --cache"
        )


@dataclass(frozen=True)
class ImportResult:
    """What importing bundles did to a cache."""

    #: entry files written into the cache
    imported: tuple[Path, ...]
    #: entries the cache held already, identical (same checksum): skipped
    present: int
    #: entries refused because the cache holds a different one for their key
    conflicts: tuple[Conflict, ...]


@dataclass(frozen=True)
class ExportResult:
    """What a bundle was made of."""

    #: the bundle file written
    path: Path
    #: the models of its entries, sorted, each once
    models: tuple[str, ...]
    #: how many entries it holds
    entries: int


# ---------------------------------------------------------------------------- export


def export_bundle(cache: MeasurementCache, path: str | Path, models: Sequence[str] = ()) -> ExportResult:
    """Write the cache's entries (only those of ``models`` when given) into a bundle at ``path``.

    Corrupt entries are quarantined on the way (with a warning) and left out. The bundle is
    written atomically: ``path`` holds the old file or the whole new bundle.

    Raises
    ------
    BundleError
        When the cache has no entry to export.
    UnknownNameError
        When a model of ``models`` has no entry in the cache.
    """
    path = Path(path)
    entries = _selected(cache, models)
    members = {}
    for entry in entries:
        content = entry.path.read_bytes()
        members[ENTRIES + entry.file_name] = (read_entry(entry.path, content).measurement.model, content)
    write_atomic(path, _zip(members))
    return ExportResult(path, tuple(sorted({model for model, _ in members.values()})), len(members))


def _selected(cache: MeasurementCache, models: Sequence[str]) -> list[CacheEntry]:
    entries = cache.entries()
    if not entries:
        raise BundleError(
            f"no measurements in the cache {cache.directory} to export; measure first "
            "(gainscale measure ...) or name the cache that has them with --cache"
        )
    known = {entry.measurement.model for entry in entries}
    for model in models:
        if model not in known:
            raise UnknownNameError("model", model, known, where=f"in the cache {cache.directory}")
    return [entry for entry in entries if not models or entry.measurement.model in models]


def _zip(members: dict[str, tuple[str, bytes]]) -> bytes:
    """The bundle's bytes: the manifest, then the entries sorted by name."""
    from . import __version__

    manifest = {
        "gainscale_bundle": BUNDLE_FORMAT,
        "gainscale_version": __version__,
        "entries": [
            {"name": name, "model": model, "sha256": _sha256(content)} for name, (model, content) in sorted(members.items())
        ],
    }
    files = [(MANIFEST, pretty_json(manifest).encode("utf-8"))]
    files += [(name, content) for name, (_, content) in sorted(members.items())]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files:
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            archive.writestr(info, content)
    return buffer.getvalue()


# ---------------------------------------------------------------------------- import


def import_bundles(cache: MeasurementCache, paths: Sequence[str | Path]) -> ImportResult:
    """Merge the entries of the bundles at ``paths`` into ``cache``.

    Every bundle is checked whole before anything is written, so a bad one imports nothing.
    Each entry is then written atomically (whole or absent, even if the process is killed);
    an identical entry already cached is skipped and counted, a different one for the same
    key is kept and reported as a :class:`Conflict`.

    Raises
    ------
    BundleError
        Naming the bundle and member: not a bundle, a member with an unsafe name (``../x``,
        an absolute path, a link), a member that is corrupt, missing from or not listed in
        the manifest, or that fails its checksum.
    """
    bundled = [item for path in paths for item in read_bundle(path)]
    imported, present, conflicts = [], 0, []
    for item in bundled:
        held = cache.add(item.entry, item.content)
        if held is None:
            imported.append(cache.directory / "measurements" / item.entry.file_name)
        elif held.sha256 == item.entry.sha256:
            present += 1
        else:
            conflicts.append(_conflict(held, item))
    return ImportResult(tuple(imported), present, tuple(conflicts))


def _conflict(held: CacheEntry, item: BundledEntry) -> Conflict:
    return Conflict(
        path=held.path,
        model=item.entry.measurement.model,
        kept_sha256=held.sha256,
        refused_sha256=item.entry.sha256,
        origin=f"{item.bundle}:{item.member}",
    )


def read_bundle(path: str | Path) -> tuple[BundledEntry, ...]:
    """Read and check every entry of the bundle at ``path``; raise :class:`BundleError` at the first fault."""
    path = Path(path)
    with _open(path) as archive:
        members = _members(archive, path)
        manifest = _manifest(archive, members, path)
        _match(manifest, members, path)
        return tuple(_entry(archive, members[item.name], item, path) for item in manifest)


def _open(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except FileNotFoundError:
        raise BundleError(f"{path}: no such bundle file") from None
    except OSError as error:
        raise BundleError(f"{path}: cannot read the bundle ({error.strerror or error})") from None
    # NotImplementedError: a damaged header that claims a zip version the zipfile module lacks
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, NotImplementedError) as error:
        raise BundleError(f"{path}: not a gainscale bundle (not a readable zip archive: {error}); {_HINT}") from None


def _members(archive: zipfile.ZipFile, path: Path) -> dict[str, zipfile.ZipInfo]:
    """The members by name, each checked safe; a bundle with any other member is refused."""
    members = {}
    for info in archive.infolist():
        _refuse_unsafe(info, path)
        if info.filename in members:
            raise BundleError(f"{path}: member {info.filename!r} appears twice; refusing the bundle, {_HINT}")
        members[info.filename] = info
    return members


def _refuse_unsafe(info: zipfile.ZipInfo, path: Path) -> None:
    """Refuse traversal names, links, encrypted, oversized and unexpected members."""
    name = info.orig_filename
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name != info.filename or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts:
        raise BundleError(
            f"{path}: member {name!r} names a path outside the bundle (path traversal); refusing the "
            "bundle, nothing imported. Import bundles made by `gainscale cache export` only"
        )
    if stat.S_ISLNK(info.external_attr >> 16):
        raise BundleError(f"{path}: member {name!r} is a symbolic link; refusing the bundle, nothing imported")
    if name != MANIFEST and not _ENTRY_NAME.match(name):
        raise BundleError(
            f"{path}: member {name!r} is not part of a gainscale bundle (only {MANIFEST} and "
            f"{ENTRIES}<entry>.json are); refusing the bundle, {_HINT}"
        )
    if info.flag_bits & 0x1:
        raise BundleError(f"{path}: member {name!r} is encrypted; gainscale bundles are not, {_HINT}")
    if info.file_size > MAX_MEMBER_BYTES:
        raise BundleError(f"{path}: member {name!r} unpacks to {info.file_size:,} bytes, over {MAX_MEMBER_BYTES:,}; refusing it")


def _manifest(archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], path: Path) -> list[ManifestEntry]:
    if MANIFEST not in members:
        raise BundleError(f"{path}: no {MANIFEST} in it, so it is not a gainscale bundle; {_HINT}")
    try:
        raw = json.loads(_read(archive, members[MANIFEST], path))
        if raw["gainscale_bundle"] != BUNDLE_FORMAT:
            raise BundleError(
                f"{path}: bundle format {raw['gainscale_bundle']!r}; this gainscale reads format {BUNDLE_FORMAT}, "
                "so import it with the gainscale version that made it"
            )
        entries = [_manifest_entry(item) for item in raw["entries"]]
    except BundleError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as error:
        raise BundleError(f"{path}: {MANIFEST} is malformed ({type(error).__name__}: {error}); {_HINT}") from None
    return entries


def _manifest_entry(item: dict) -> ManifestEntry:
    entry = ManifestEntry(name=item["name"], model=item["model"], sha256=item["sha256"])
    if not all(isinstance(value, str) for value in (entry.name, entry.model, entry.sha256)):
        raise TypeError(f"entry {item!r} must have string name, model and sha256")
    if not _SHA256.match(entry.sha256):
        raise ValueError(f"entry {entry.name!r} has sha256 {entry.sha256!r}, not 64 hex digits")
    return entry


def _match(manifest: list[ManifestEntry], members: dict[str, zipfile.ZipInfo], path: Path) -> None:
    """The manifest lists every entry member once, and nothing else."""
    listed = [item.name for item in manifest]
    for name in listed:
        if listed.count(name) > 1:
            raise BundleError(f"{path}: {MANIFEST} lists {name!r} twice; {_HINT}")
        if name not in members or name == MANIFEST:
            raise BundleError(f"{path}: {MANIFEST} lists {name!r} but the bundle has no such entry: it is incomplete; {_HINT}")
    for name in members:
        if name != MANIFEST and name not in listed:
            raise BundleError(f"{path}: member {name!r} is not listed in {MANIFEST}: the bundle was changed; {_HINT}")


def _entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, item: ManifestEntry, path: Path) -> BundledEntry:
    """One member, checked against the manifest, its own checksum and its name."""
    content = _read(archive, info, path)
    if _sha256(content) != item.sha256:
        raise BundleError(
            f"{path}: member {item.name!r} fails the manifest's checksum (sha256 {_sha256(content)}, manifest "
            f"{item.sha256}): its content was changed; refusing the bundle, nothing imported; {_HINT}"
        )
    try:
        entry = read_entry(path / item.name, content)
    except CorruptEntryError as error:
        raise BundleError(f"{path}: {error}; refusing the bundle, nothing imported; {_HINT}") from None
    if PurePosixPath(item.name).name != entry.file_name or item.model != entry.measurement.model:
        raise BundleError(
            f"{path}: member {item.name!r} (model {item.model!r} in the manifest) holds the entry "
            f"{entry.file_name} of {entry.measurement.model!r}: renamed by hand; refusing the bundle, {_HINT}"
        )
    return BundledEntry(path, item.name, entry, content)


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> bytes:
    """A member's bytes; a damaged member (bad CRC, bad deflate data) is named."""
    try:
        with archive.open(info) as member:
            content = member.read(MAX_MEMBER_BYTES + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError, OSError) as error:
        raise BundleError(
            f"{path}: member {info.filename!r} is corrupt ({type(error).__name__}: {error}); refusing the "
            f"bundle, nothing imported; download it again or {_HINT}"
        ) from None
    if len(content) > MAX_MEMBER_BYTES:
        raise BundleError(f"{path}: member {info.filename!r} unpacks to more than {MAX_MEMBER_BYTES:,} bytes; refusing it")
    return content


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
