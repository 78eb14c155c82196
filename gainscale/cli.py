"""The ``gainscale`` command: measure a model, list suites, look after the cache, import results.

A user's mistake ends in one line on stderr that says what, where and what to do, and exit
status 2 (1 for a failure that is not a mistake, such as a cache that cannot be written);
no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from .errors import DeviceUnavailable, GainscaleError, UnknownNameError
from .measurer import Measurer
from .settings import Settings
from .suites import BUILTIN_SUITES, ModelSpec, Suite, load_suite


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return its exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    warnings.showwarning = _one_line_warning
    try:
        return args.run(args) or 0
    except GainscaleError as error:
        print(f"gainscale: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gainscale: interrupted; nothing partial was cached", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gainscale", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    measure = commands.add_parser("measure", help="measure one model's attention and MLP gains (cached)")
    measure.add_argument("model", metavar="MODEL", help="a suite's model name, a hub id (org/name) or a local directory")
    measure.add_argument("--suite", help="suite the model name belongs to (built-in name or TOML file)")
    measure.add_argument("--revision", help="hub revision: branch, tag or commit (default: main)")
    _add_measure_options(measure)
    measure.add_argument("--json", action="store_true", help="print the measurement record as JSON instead of tables")
    measure.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    measure.set_defaults(run=_measure)

    suites = commands.add_parser("suites", help="list the suites and their models with parameter counts")
    suites.add_argument("--cache", type=Path, help="cache directory (where the tiny suite lives)")
    suites.add_argument("files", nargs="*", type=Path, metavar="SUITE.toml", help="suite files to list too")
    suites.set_defaults(run=_suites)

    cache = commands.add_parser("cache", help="list, verify or clear cached measurements")
    cache.add_argument("action", choices=["list", "verify", "clear"])
    cache.add_argument("--cache", type=Path, help="cache directory (default: $GAINSCALE_CACHE or .gainscale/)")
    cache.set_defaults(run=_cache)

    notebook = commands.add_parser("import-notebook", help="store the paper notebook's results JSON as a named set")
    notebook.add_argument("file", type=Path, metavar="FILE")
    notebook.add_argument("--name", required=True, help="name to evaluate it under: pytest claims --gainscale-source NAME")
    notebook.add_argument("--cache", type=Path, help="cache directory (default: $GAINSCALE_CACHE or .gainscale/)")
    notebook.set_defaults(run=_import_notebook)
    return parser


def _add_measure_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: the suite's, else CUDA when present)")
    parser.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], help="default: the suite's, else float16 on CUDA, float32 on CPU")
    parser.add_argument("--prompts", help="prompt file, one prompt per line (default: the shipped set)")
    parser.add_argument("--batch-size", type=int, help="prompts per forward pass (default: 8 on CPU, 64 on CUDA)")
    parser.add_argument("--cache", type=Path, help="cache directory (default: $GAINSCALE_CACHE or .gainscale/)")
    parser.add_argument("--allow-pickle", action="store_true", help="load pickle weights (*.bin); they can run code")
    parser.add_argument("--trust-remote-code", action="store_true", help="run model code from the hub")
    parser.add_argument("--device-map", choices=["auto"], help="spread a model larger than one device (needs accelerate)")


# ---------------------------------------------------------------------------- measure


def _measure(args: argparse.Namespace) -> int:
    settings = Settings(
        suite=args.suite or "pythia",
        cache=args.cache,
        device=args.device,
        dtype=args.dtype,
        prompts=args.prompts,
        batch_size=args.batch_size,
        allow_pickle=args.allow_pickle,
        trust_remote_code=args.trust_remote_code,
        device_map=args.device_map,
        progress=not args.quiet and not args.json,
    )
    suite, spec = resolve_model(args.model, args.suite, settings.cache_dir, args.revision)
    measurer = Measurer(suite, settings)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            measurement, from_cache = measurer.get(spec)
        except DeviceUnavailable as missing:
            raise GainscaleError(f"{spec.name}: {missing}; pass --device cpu (and --dtype float32) to measure on the CPU") from None
    for warning in caught:
        print(f"gainscale: warning: {warning.message}", file=sys.stderr)
    if args.json:
        print(json.dumps(measurement.to_json(), indent=1))
    else:
        from .tables import measurement_tables

        print(measurement_tables(measurement, from_cache))
    from .cache import CacheWriteWarning

    return 1 if any(issubclass(w.category, CacheWriteWarning) for w in caught) else 0


def resolve_model(name: str, suite_name: str | None, cache_dir: Path, revision: str | None) -> tuple[Suite | None, ModelSpec]:
    """Find MODEL: in the given suite, else in the built-in suites, else as a directory or hub id."""
    import dataclasses

    if suite_name:
        suite = load_suite(suite_name, cache_dir)
        spec = suite.model(name)
        return suite, dataclasses.replace(spec, revision=revision or spec.revision)
    known = []
    for builtin in BUILTIN_SUITES:
        suite = load_suite(builtin, cache_dir)
        if name in suite.model_names:
            return suite, dataclasses.replace(suite.model(name), revision=revision)
        known += suite.model_names
    path = Path(name).expanduser()
    if path.is_dir():
        return None, ModelSpec(name=path.resolve().name, source=str(path.resolve()), local=True)
    if name.count("/") == 1 and not name.startswith((".", "/", "~")):
        return None, ModelSpec(name=name.split("/")[1], source=name, revision=revision)
    raise UnknownNameError("model", name, known, hint="Or pass a hub id (org/name) or an existing local directory.")


# ---------------------------------------------------------------------------- suites and cache


def _suites(args: argparse.Namespace) -> int:
    from .tables import suite_table

    cache_dir = Settings(cache=args.cache).cache_dir
    names = [*BUILTIN_SUITES, *map(str, args.files)]
    print("\n\n".join(suite_table(load_suite(name, cache_dir)) for name in names))
    return 0


def _cache(args: argparse.Namespace) -> int:
    from .cache import MeasurementCache
    from .tables import cache_table

    cache = MeasurementCache(Settings(cache=args.cache).cache_dir)
    if args.action == "clear":
        print(f"removed {cache.clear()} entries from {cache.directory}")
        return 0
    if args.action == "verify":
        valid, bad = cache.verify()
        for path, reason in bad:
            print(f"CORRUPT {reason}; quarantined as {path}")
        print(f"{len(valid)} valid entries, {len(bad)} corrupt (quarantined) in {cache.directory}")
        return 1 if bad else 0
    print(cache_table(cache.entries(), cache.directory))
    return 0


def _import_notebook(args: argparse.Namespace) -> int:
    from .notebook import import_notebook

    imported = import_notebook(args.file, args.name, Settings(cache=args.cache).cache_dir)
    print(f"imported {len(imported.summaries)} models from {args.file} as {args.name!r}; "
          f"evaluate with: pytest claims --gainscale-source {args.name}")
    return 0


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"gainscale: warning: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
