"""Bundles carry cache entries whole and checked from one cache to another; shards split a suite."""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gainscale.bundles import MANIFEST, export_bundle, import_bundles, read_bundle
from gainscale.cache import IN_CACHE, CacheRequest, MeasurementCache, read_entry
from gainscale.errors import BundleError, OptionError, UnknownNameError
from gainscale.measurement import METHOD_VERSION, Measurement, ModuleNorms, Provenance
from gainscale.sharding import parse_shard, shard

PROMPTS_SHA = "ab" * 32


def measurement(model: str, batch_size: int = 8, scale: float = 1.0) -> Measurement:
    """A small measurement made up without any model: two layers, three prompts."""
    norms = ModuleNorms(((1.0, 2.0, 3.0), (2.0, 2.0, 2.0)), ((0.5 * scale, 1.0, 2.0), (3.0, 2.5, 2.0)))
    return Measurement(
        model=model, source=f"org/{model}", revision="main", resolved_revision="c" * 40, dtype="float16",
        prompts_name="default", prompts_sha256=PROMPTS_SHA, method_version=METHOD_VERSION, n_params=1000,
        n_layers=2, hidden_size=8, attention=norms, mlp=norms,
        provenance=Provenance("0.1.0", "2.13.0", "5.0", "cpu", "sdpa", batch_size, "2026-01-01T00:00:00+00:00", 1.5),
    )


def request(model: str) -> CacheRequest:
    return CacheRequest(source=f"org/{model}", revision="main", dtype="float16", prompts_sha256=PROMPTS_SHA,
                        method_version=METHOD_VERSION)


def fill(directory: Path, *models: str, batch_size: int = 8) -> MeasurementCache:
    cache = MeasurementCache(directory)
    for model in models:
        cache.store(request(model), "c" * 40, measurement(model, batch_size))
    return cache


def entry_files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((directory / "measurements").glob("*.json"))}


def _gainscale(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "gainscale.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


# ---------------------------------------------------------------------------- round trip


def test_round_trip_carries_every_entry_byte_for_byte(tmp_path):
    source = fill(tmp_path / "a", "m-small", "m-large")
    result = export_bundle(source, tmp_path / "b.zip")
    assert result.entries == 2 and result.models == ("m-large", "m-small")

    target = MeasurementCache(tmp_path / "target")
    imported = import_bundles(target, [tmp_path / "b.zip"])
    assert len(imported.imported) == 2 and imported.present == 0 and imported.conflicts == ()
    assert entry_files(tmp_path / "target") == entry_files(tmp_path / "a")
    assert target.lookup(request("m-small")).measurement == measurement("m-small")

    again = import_bundles(target, [tmp_path / "b.zip"])
    assert again.imported == () and again.present == 2 and again.conflicts == ()


def test_export_is_deterministic_and_filters_by_model(tmp_path):
    source = fill(tmp_path / "a", "m-small", "m-large", "m-huge")
    export_bundle(source, tmp_path / "one.zip")
    export_bundle(source, tmp_path / "two.zip")
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()

    result = export_bundle(source, tmp_path / "some.zip", ["m-huge", "m-small"])
    assert result.models == ("m-huge", "m-small")
    assert sorted(e.entry.measurement.model for e in read_bundle(tmp_path / "some.zip")) == ["m-huge", "m-small"]
    manifest = json.loads(zipfile.ZipFile(tmp_path / "some.zip").read(MANIFEST))
    assert manifest["gainscale_bundle"] == 1 and [e["model"] for e in manifest["entries"]] == ["m-huge", "m-small"]


def test_export_of_an_unknown_model_or_an_empty_cache_is_refused(tmp_path):
    with pytest.raises(BundleError, match="no measurements in the cache .*empty to export"):
        export_bundle(MeasurementCache(tmp_path / "empty"), tmp_path / "x.zip")
    with pytest.raises(UnknownNameError, match="unknown model 'm-smal' in the cache .*did you mean 'm-small'"):
        export_bundle(fill(tmp_path / "a", "m-small"), tmp_path / "x.zip", ["m-smal"])
    assert not (tmp_path / "x.zip").exists()


def test_a_bundle_of_the_tiny_suite_replays_in_another_cache(tmp_path):
    """The tiny suite's models live inside the cache; their entries must still be found in another."""
    assert _gainscale("measure", "tiny-xs", "--cache", tmp_path / "a", "-q").returncode == 0
    assert _gainscale("cache", "export", tmp_path / "b.zip", "--cache", tmp_path / "a").returncode == 0
    assert _gainscale("cache", "import", tmp_path / "b.zip", "--cache", tmp_path / "b").returncode == 0
    replay = _gainscale("measure", "tiny-xs", "--cache", tmp_path / "b", "-q")
    assert replay.returncode == 0 and "from cache" in replay.stdout, replay.stdout
    (entry,) = (tmp_path / "b" / "measurements").glob("*.json")
    assert read_entry(entry).request.source == IN_CACHE + "tiny-models/tiny-xs"


def test_only_models_inside_the_cache_are_keyed_by_their_place_there(tmp_path):
    cache = MeasurementCache(tmp_path / "cache")
    (tmp_path / "cache" / "tiny-models" / "m").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    inside = CacheRequest(str(tmp_path / "cache" / "tiny-models" / "m"), "local-1", "float32", PROMPTS_SHA, 1)
    outside = CacheRequest(str(tmp_path / "outside"), "local-1", "float32", PROMPTS_SHA, 1)
    assert cache.keyed(inside).source == "<cache>/tiny-models/m"
    assert cache.keyed(outside) == outside and cache.keyed(request("hub")) == request("hub")
    assert MeasurementCache(tmp_path / "other").keyed(inside) == inside


# ---------------------------------------------------------------------------- conflicts


def test_a_different_entry_for_a_cached_key_is_refused_and_named(tmp_path):
    fill(tmp_path / "a", "m-small", "m-large", batch_size=8)
    export_bundle(MeasurementCache(tmp_path / "a"), tmp_path / "a.zip")
    target = fill(tmp_path / "target", "m-small", batch_size=16)  # same key, another measurement
    before = entry_files(tmp_path / "target")

    result = import_bundles(target, [tmp_path / "a.zip"])
    assert [p.name for p in result.imported] == [n for n in entry_files(tmp_path / "a") if n.startswith("m-large")]
    (conflict,) = result.conflicts
    kept = read_entry(next((tmp_path / "target" / "measurements").glob("m-small*.json")))
    refused = read_entry(next((tmp_path / "a" / "measurements").glob("m-small*.json")))
    assert conflict.model == "m-small" and conflict.path == kept.path
    assert conflict.kept_sha256 == kept.sha256 and conflict.refused_sha256 == refused.sha256 != kept.sha256
    assert str(kept.path) in str(conflict) and "a.zip:measurements/m-small--" in str(conflict)
    assert {k: v for k, v in entry_files(tmp_path / "target").items() if k in before} == before


def test_cli_import_prints_the_counts_and_fails_on_a_conflict(tmp_path):
    fill(tmp_path / "a", "m-small", "m-large")
    assert _gainscale("cache", "export", tmp_path / "a.zip", "--cache", tmp_path / "a").returncode == 0
    fill(tmp_path / "target", "m-small")
    fill(tmp_path / "other", "m-large", batch_size=16)
    assert _gainscale("cache", "export", tmp_path / "other.zip", "--cache", tmp_path / "other").returncode == 0

    result = _gainscale("cache", "import", tmp_path / "a.zip", tmp_path / "other.zip", "--cache", tmp_path / "target")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "imported 1, already present 1, conflicts 1 from 2 bundles" in result.stdout
    (line,) = result.stderr.splitlines()
    assert line.startswith("gainscale: conflict: ") and "(m-large)" in line and "other.zip:measurements/m-large--" in line


# ---------------------------------------------------------------------------- refused bundles


def rewrite(bundle: Path, change) -> Path:
    """A copy of ``bundle`` whose members went through ``change(name, bytes) -> [(name, bytes, info)]``."""
    source = zipfile.ZipFile(bundle)
    out = bundle.with_name(bundle.stem + "-changed.zip")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            for name, data, attributes in change(info.filename, source.read(info)):
                member = zipfile.ZipInfo(name)
                member.external_attr = attributes
                archive.writestr(member, data)
    return out


def plain(name, data):
    return [(name, data, 0o644 << 16)]


def edit_entry(name, data):
    """Change a gain in the first entry; its own checksum no longer holds."""
    if not name.startswith("measurements/m-large"):
        return plain(name, data)
    entry = json.loads(data)
    entry["measurement"]["mlp"]["out"][0][0] *= 1.01
    return plain(name, json.dumps(entry, indent=1, sort_keys=True).encode())


def edit_entry_and_manifest(bundle: Path) -> Path:
    """The member changed and the manifest's checksum made to match: only the entry's own checksum is left."""
    import hashlib

    changed = rewrite(bundle, edit_entry)
    archive = zipfile.ZipFile(changed)
    manifest = json.loads(archive.read(MANIFEST))
    for item in manifest["entries"]:
        item["sha256"] = hashlib.sha256(archive.read(item["name"])).hexdigest()
    return rewrite(changed, lambda n, d: plain(n, json.dumps(manifest).encode() if n == MANIFEST else d))


def flip_compressed_byte(bundle: Path) -> Path:
    """A bit flipped inside a member's compressed data: zip's CRC or deflate finds it."""
    data = bytearray(bundle.read_bytes())
    info = next(i for i in zipfile.ZipFile(bundle).infolist() if i.filename.startswith("measurements/m-large"))
    header = 30 + len(info.filename.encode()) + len(info.extra)
    data[info.header_offset + header + info.compress_size // 2] ^= 0x10
    out = bundle.with_name("flipped.zip")
    out.write_bytes(bytes(data))
    return out


def add_member(name: str, attributes: int = 0o644 << 16, data: bytes = b"{}"):
    def change(member, content):
        return plain(member, content) + ([(name, data, attributes)] if member == MANIFEST else [])
    return change


def rename_member(name, data):
    """The member renamed, and the manifest with it."""
    if name == MANIFEST:
        return plain(name, data.replace(b"measurements/m-large", b"measurements/m-larger"))
    return plain(name.replace("m-large", "m-larger"), data)


SYMLINK = (stat.S_IFLNK | 0o777) << 16


@pytest.mark.parametrize(
    "damage, message",
    [
        pytest.param(flip_compressed_byte, r"member 'measurements/m-large--.*' is corrupt", id="bit-flip"),
        pytest.param(lambda b: rewrite(b, edit_entry), r"member 'measurements/m-large--.*' fails the manifest's checksum",
                     id="changed-member"),
        pytest.param(edit_entry_and_manifest, r"changed\.zip/measurements/m-large--.* fails its checksum: its content was changed",
                     id="changed-member-and-manifest"),
        pytest.param(lambda b: rewrite(b, lambda n, d: [] if n.startswith("measurements/m-large") else plain(n, d)),
                     r"lists 'measurements/m-large--.*' but the bundle has no such entry", id="missing-member"),
        pytest.param(lambda b: rewrite(b, add_member("measurements/extra.json")),
                     r"member 'measurements/extra.json' is not listed in gainscale-bundle.json", id="unlisted-member"),
        pytest.param(lambda b: rewrite(b, rename_member),
                     r"holds the entry m-large--.* renamed by hand", id="renamed-member"),
        pytest.param(lambda b: rewrite(b, lambda n, d: [] if n == MANIFEST else plain(n, d)),
                     r"no gainscale-bundle.json in it", id="no-manifest"),
        pytest.param(lambda b: rewrite(b, lambda n, d: plain(n, b"{" if n == MANIFEST else d)),
                     r"gainscale-bundle.json is malformed", id="bad-manifest"),
        pytest.param(lambda b: (b.write_bytes(b.read_bytes()[:200]), b)[1], r"not a gainscale bundle", id="truncated"),
    ],
)
def test_a_corrupt_bundle_is_refused_whole_and_named(tmp_path, damage, message):
    export_bundle(fill(tmp_path / "a", "m-small", "m-large"), tmp_path / "b.zip")
    bad = damage(tmp_path / "b.zip")
    with pytest.raises(BundleError, match=message):
        import_bundles(MeasurementCache(tmp_path / "target"), [bad])
    assert not (tmp_path / "target" / "measurements").exists()


@pytest.mark.parametrize(
    "name, attributes",
    [
        pytest.param("../x.json", 0o644 << 16, id="parent"),
        pytest.param("measurements/../../x.json", 0o644 << 16, id="nested-parent"),
        pytest.param("/tmp/x.json", 0o644 << 16, id="absolute"),
        pytest.param("..\\x.json", 0o644 << 16, id="backslash-parent"),
        pytest.param("C:/x.json", 0o644 << 16, id="drive"),
        pytest.param("measurements/link.json", SYMLINK, id="symlink"),
    ],
)
def test_path_traversal_and_links_are_refused(tmp_path, name, attributes):
    export_bundle(fill(tmp_path / "a", "m-small"), tmp_path / "b.zip")
    bad = rewrite(tmp_path / "b.zip", add_member(name, attributes, data=b"/etc/passwd"))
    work = tmp_path / "work"
    work.mkdir()
    planted_before = Path("/tmp/x.json").exists()
    # run from inside a folder: a member written where its name points would land in it or above
    result = _gainscale("cache", "import", bad, "--cache", work / "cache", cwd=work)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and f"member {name!r}" in result.stderr
    assert ("symbolic link" if attributes == SYMLINK else "path traversal") in result.stderr
    assert not (work / "cache").exists() and not list(tmp_path.rglob("x.json"))
    assert Path("/tmp/x.json").exists() == planted_before


def test_a_bad_bundle_among_several_imports_nothing(tmp_path):
    export_bundle(fill(tmp_path / "a", "m-small"), tmp_path / "good.zip")
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(BundleError, match=r"bad\.zip: not a gainscale bundle"):
        import_bundles(MeasurementCache(tmp_path / "target"), [tmp_path / "good.zip", tmp_path / "bad.zip"])
    assert not (tmp_path / "target" / "measurements").exists()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=3),
       cut=st.integers(0, 10**6))
def test_a_damaged_bundle_raises_only_a_bundle_error(tmp_path_factory, flips, cut):
    """Whatever the damage, reading refuses with BundleError or yields the very entries exported."""
    directory = tmp_path_factory.mktemp("fuzz")
    export_bundle(fill(directory / "a", "m-small", "m-large"), directory / "b.zip")
    data = bytearray((directory / "b.zip").read_bytes())
    if cut % 4 == 0:
        del data[max(1, len(data) - cut % len(data)):]
    for position, mask in flips:
        data[position % len(data)] ^= mask
    (directory / "d.zip").write_bytes(bytes(data))
    try:
        entries = read_bundle(directory / "d.zip")
    except BundleError as error:
        assert "d.zip" in str(error)
    else:  # only damage outside the members' content (a time stamp, say) may go unnoticed
        assert {e.member: e.content for e in entries} == {e.member: e.content for e in read_bundle(directory / "b.zip")}


# ---------------------------------------------------------------------------- kill safety


KILLED_IMPORT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import gainscale.files
    from gainscale.cli import main

    ready, published = Path(sys.argv[1]), gainscale.files._publish
    def pause_at_the_second_write(temporary, path):
        if ready.exists():                 # the second entry: its temporary file is whole, not yet published
            time.sleep(600)
        published(temporary, path)
        ready.write_text(str(path))
    gainscale.files._publish = pause_at_the_second_write
    sys.exit(main(sys.argv[2:]))
    """
)


def test_kill_9_during_an_import_leaves_each_entry_whole_or_absent(tmp_path):
    export_bundle(fill(tmp_path / "a", "m-small", "m-large", "m-huge"), tmp_path / "b.zip")
    cache = tmp_path / "target"
    ready = tmp_path / "ready"
    importer = subprocess.Popen([sys.executable, "-c", KILLED_IMPORT, ready, "cache", "import", tmp_path / "b.zip",
                                 "--cache", cache])
    deadline = time.monotonic() + 120
    while not list(cache.glob("measurements/.*.tmp")) or not ready.exists():
        assert time.monotonic() < deadline and importer.poll() is None, "the importer never reached its second write"
        time.sleep(0.05)
    os.kill(importer.pid, signal.SIGKILL)
    importer.wait()

    written = entry_files(cache)
    assert len(written) == 1 and written.items() <= entry_files(tmp_path / "a").items()  # one whole, the rest absent
    assert _gainscale("cache", "verify", "--cache", cache).stdout.startswith("1 valid entries, 0 corrupt")
    again = _gainscale("cache", "import", tmp_path / "b.zip", "--cache", cache)
    assert again.returncode == 0 and "imported 2, already present 1, conflicts 0" in again.stdout
    assert entry_files(cache) == entry_files(tmp_path / "a")


# ---------------------------------------------------------------------------- shards


@given(size=st.integers(0, 40), n=st.integers(1, 12))
def test_shards_are_disjoint_balanced_and_together_the_suite(size, n):
    models = [f"m{i}" for i in range(size)]
    parts = [shard(models, k, n) for k in range(1, n + 1)]
    assert sorted(m for part in parts for m in part) == sorted(models)   # the union is the suite
    assert sum(map(len, parts)) == size                                   # ... and no model twice
    assert max(map(len, parts)) - min(map(len, parts)) <= 1               # balanced
    assert parts == [shard(list(models), k, n) for k in range(1, n + 1)]  # the same on every machine
    assert all(list(part) == [m for m in models if m in part] for part in parts)  # in the suite's order


def test_shards_of_the_pythia_suite_mix_small_and_large_models():
    names = ["70m", "160m", "410m", "1b", "1.4b", "2.8b", "6.9b", "12b"]
    assert [shard(names, k, 4) for k in (1, 2, 3, 4)] == [("70m", "1.4b"), ("160m", "2.8b"), ("410m", "6.9b"), ("1b", "12b")]


@pytest.mark.parametrize(
    "text, message",
    [
        ("0/4", r"--shard 0/4: K counts from 1, so it is one of 1/4 \.\.\. 4/4"),
        ("5/4", r"--shard 5/4: K counts from 1, so it is one of 1/4 \.\.\. 4/4"),
        ("1/0", r"--shard 1/0: N, the number of shards, must be at least 1"),
        ("1", r"--shard '1' is not K/N: pass e\.g\. 1/4"),
        ("-1/4", r"--shard '-1/4' is not K/N"),
        ("a/b", r"--shard 'a/b' is not K/N"),
    ],
)
def test_a_bad_shard_is_refused_with_what_to_pass(text, message):
    with pytest.raises(OptionError, match=message):
        parse_shard(text)


def test_shard_checks_its_numbers_too():
    assert parse_shard(" 2 / 3 ") == (2, 3)
    with pytest.raises(OptionError, match="K counts from 1"):
        shard(["a"], 0, 1)


def test_zip_members_written_by_export_are_plain_files(tmp_path):
    export_bundle(fill(tmp_path / "a", "m-small"), tmp_path / "b.zip")
    for info in zipfile.ZipFile(io.BytesIO((tmp_path / "b.zip").read_bytes())).infolist():
        assert stat.S_ISREG(info.external_attr >> 16) and info.date_time == (1980, 1, 1, 0, 0, 0)


def test_a_header_claiming_an_unknown_zip_version_is_a_bundle_error(tmp_path):
    """Found by the fuzzer: one flipped bit made zipfile raise NotImplementedError ("zip file version 8.4")."""
    export_bundle(fill(tmp_path / "a", "m-small", "m-large"), tmp_path / "b.zip")
    data = bytearray((tmp_path / "b.zip").read_bytes())
    central = data.rfind(b"PK\x01\x02")  # the last member's central directory record
    data[central + 6] = 84  # "version needed to extract": 8.4
    (tmp_path / "d.zip").write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"d\.zip: not a gainscale bundle \(not a readable zip archive: zip file version 8\.4\)"):
        read_bundle(tmp_path / "d.zip")
