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

from .errors import DeviceUnavailable, GainscaleError, OptionError, UnknownNameError
from .measurer import Measurer
from .settings import MEASURE, Option, Settings, options_for
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
    """The measuring options of the settings table, as ``--name`` flags."""
    for opt in options_for(MEASURE):
        if opt.name == "suite":
            continue  # measure's --suite names the suite MODEL belongs to, declared above
        if opt.kind == "bool":
            parser.add_argument(opt.cli_flag, action="store_true", help=opt.help)
        else:
            parser.add_argument(opt.cli_flag, metavar=opt.metavar or opt.name.upper(), help=opt.help,
                                type=_typed(opt), **({"choices": opt.choices} if opt.choices else {}))


def _typed(opt: Option):
    """argparse's ``type=``: the option's own parsing, as a usage error naming the flag."""

    def parse(text: str):
        try:
            return opt.parse(text, given_as=opt.cli_flag)
        except OptionError as error:
            raise argparse.ArgumentTypeError(str(error).removeprefix(f"{opt.cli_flag}: ")) from None

    return parse


# ---------------------------------------------------------------------------- measure


def _measure(args: argparse.Namespace) -> int:
    values = {opt.name: getattr(args, opt.name, None) for opt in options_for(MEASURE)}
    settings = Settings.from_options({**values, "suite": args.suite or "pythia"}, progress=not args.quiet and not args.json)
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
        if revision:
            raise OptionError(f"{name} is a local directory, which has no revisions; drop --revision {revision}, "
                              "or pass a hub id to measure a revision")
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

    from .measurer import Measurer
    from .sources import reserved_source_names

    cache_dir = Settings(cache=args.cache).cache_dir
    reserved = tuple(reserved_source_names(Measurer(None, Settings(cache=cache_dir)), but="imported"))
    imported = import_notebook(args.file, args.name, cache_dir, reserved)
    print(f"imported {len(imported.summaries)} models from {args.file} as {args.name!r}; "
          f"evaluate with: pytest claims --gainscale-source {args.name}")
    return 0


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"gainscale: warning: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
