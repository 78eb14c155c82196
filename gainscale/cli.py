"""The ``gainscale`` command: measure a model, list suites, look after the cache, import results.

A user's mistake ends in one line on stderr that says what, where and what to do, and exit
status 2 (1 for a failure that is not a mistake, such as a cache that cannot be written);
no traceback. Output cut short by its reader (``gainscale cache list | head``) ends quietly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from .errors import DeviceUnavailable, GainscaleError, ModelUnavailable, OptionError, UnknownNameError
from .measurer import Measurer
from .settings import MEASURE, Option, Settings, option, options_for
from .suites import BUILTIN_SUITES, ModelSpec, Suite, load_suite


#: the exit status of a command whose reader went away, as of a tool killed by SIGPIPE
BROKEN_PIPE_STATUS = 128 + 13


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return its exit status."""
    try:
        return _run(argv)
    except BrokenPipeError:
        return _quiet_broken_pipe()


def _run(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    warnings.showwarning = _one_line_warning
    try:
        status = args.run(args) or 0
        sys.stdout.flush()  # a reader gone meanwhile shows here, inside main, not at exit
        return status
    except GainscaleError as error:
        print(f"gainscale: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gainscale: interrupted; nothing partial was cached", file=sys.stderr)
        return 130


def _quiet_broken_pipe() -> int:
    """The reader of our output closed it (``| head``): stop without a word.

    What is still buffered for stdout can never be written; pointing stdout at /dev/null
    keeps Python from reporting that when it flushes at exit.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a file descriptor (a test's capture)
        pass
    return BROKEN_PIPE_STATUS


class _Parser(argparse.ArgumentParser):
    """argparse, with a mistake in one line (no usage block), as every other mistake of the CLI."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gainscale", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action=_Version)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    measure = commands.add_parser("measure", help="measure one model's attention and MLP gains (cached), or a suite's")
    measure.add_argument("model", metavar="MODEL", nargs="?",
                         help="a suite's model name, a hub id (org/name) or a local directory; "
                         "leave it out to measure every model of --suite")
    _add_option(measure, option("suite"))
    measure.add_argument("--revision", help="hub revision: branch, tag or commit (default: main)")
    _add_suite_measure_options(measure)
    _add_measure_options(measure)
    measure.add_argument("--json", action="store_true", help="print the measurement record as JSON instead of tables")
    measure.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    measure.set_defaults(run=_measure)

    suites = commands.add_parser("suites", help="list the suites and their models with parameter counts")
    _add_option(suites, option("cache"))
    suites.add_argument("files", nargs="*", type=Path, metavar="SUITE.toml", help="suite files to list too")
    suites.set_defaults(run=_suites)

    cache = commands.add_parser("cache", help="list, verify or clear cached measurements; export or import bundles",
                                description=CACHE_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    cache.add_argument("action", choices=["list", "verify", "clear", "export", "import"])
    _add_option(cache, option("cache"))
    _add_bundle_options(cache)
    cache.set_defaults(run=_cache)

    notebook = commands.add_parser("import-notebook", help="store the paper notebook's results JSON as a named set")
    notebook.add_argument("file", type=Path, metavar="FILE")
    notebook.add_argument("--name", required=True, help="name to evaluate it under: pytest claims --gainscale-source NAME")
    _add_option(notebook, option("cache"))
    notebook.set_defaults(run=_import_notebook)
    return parser


CACHE_DESCRIPTION = """\
list, verify or clear the cached measurements; export them to a bundle, or import bundles.

A bundle is one zip file of cache entries with their checksums. GPU machines that each
measure a shard of a suite (gainscale measure --suite S --shard K/N) export one each, and one
machine imports them all. It is also how a paper ships its measurements: anyone who imports
its bundle replays its claims on a laptop (pytest claims), with no GPU and no weights.

  gainscale cache export FILE.zip [--model NAME ...]   every entry, or those of the models named
  gainscale cache import FILE.zip [FILE.zip ...]       checked whole first; never overwrites a
                                                       different entry for the same key"""


def _add_bundle_options(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``cache export`` and ``cache import`` (kept together to move them as one)."""
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE",
                        help="export: the bundle to write (FILE.zip); import: the bundles to read")
    parser.add_argument("--model", action="append", default=[], metavar="NAME",
                        help="export: only the entries of this model (repeatable; default: every entry)")


def _add_suite_measure_options(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``measure --suite S`` with no MODEL (kept together to move them as one)."""
    parser.add_argument("--shard", metavar="K/N",
                        help="with --suite and no MODEL: measure only the K-th of N disjoint parts of the suite "
                        "(K from 1, round robin over the suite's order); the N parts together are the suite")


def _add_measure_options(parser: argparse.ArgumentParser) -> None:
    """The measuring options of the settings table, as ``--name`` flags."""
    for opt in options_for(MEASURE):
        if opt.name == "suite":
            continue  # added first, beside MODEL and --revision: it says where MODEL comes from
        if opt.name == "prompts":  # several: each model is loaded once and measured over each set
            parser.add_argument(opt.cli_flag, action="append", metavar=opt.metavar, type=_typed(opt),
                                help=opt.help + "; repeat it to measure several sets from one load of each model")
        else:
            _add_option(parser, opt)


def _add_option(parser: argparse.ArgumentParser, opt: Option) -> None:
    """One option of the settings table as a ``--name`` flag; absent, it is None (or False)."""
    help_text = opt.cli_help or opt.help
    if opt.kind == "bool":
        parser.add_argument(opt.cli_flag, action="store_true", help=help_text)
    else:
        parser.add_argument(opt.cli_flag, metavar=opt.metavar or opt.name.upper(), help=help_text,
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
    if args.model is None:
        return _measure_suite(args)
    if args.shard:
        raise OptionError(f"--shard {args.shard} picks models of a suite: pass --suite and no MODEL")
    settings = _measure_settings(args)
    suite, spec = resolve_model(args.model, args.suite, settings.cache_dir, args.revision, settings.weights_dir)
    measurer = Measurer(suite, settings)
    results, status = _get(measurer, spec, _prompt_sets(measurer, args))
    if args.json and len(results) > 1:
        print(json.dumps([measurement.to_json() for measurement, _ in results], indent=1))
        return status
    for measurement, from_cache in results:
        _print_measurement(measurement, from_cache, args.json, settings.gain)
    return status


def _measure_settings(args: argparse.Namespace) -> Settings:
    values = {opt.name: getattr(args, opt.name, None) for opt in options_for(MEASURE)}
    values["prompts"] = (args.prompts or [None])[0]  # the run's set; the others are measured beside it
    return Settings.from_options({**values, "suite": args.suite or "pythia"}, progress=not args.quiet and not args.json)


def _prompt_sets(measurer: Measurer, args: argparse.Namespace) -> list:
    """The prompt sets to measure over, in the order given (a bad file fails before any model)."""
    from .prompts import load_prompts

    return [measurer.prompts, *(load_prompts(path) for path in (args.prompts or [])[1:])]


def _get(measurer: Measurer, spec: ModelSpec, prompt_sets: list):
    """``([(measurement, from_cache) per prompt set], status)``: status 1 when one could not be cached, else 0."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            results = measurer.get_many(spec, prompt_sets)
        except ModelUnavailable:
            raise  # its message names the package to install, and is complete
        except DeviceUnavailable as missing:
            raise GainscaleError(f"{spec.name}: {missing}; pass --device cpu (and --dtype float32) to measure on the CPU") from None
    for warning in caught:
        print(f"gainscale: warning: {warning.message}", file=sys.stderr)
    from .cache import CacheWriteWarning

    return results, 1 if any(issubclass(w.category, CacheWriteWarning) for w in caught) else 0


def _print_measurement(measurement, from_cache: bool, as_json: bool, gain: str = "paper") -> None:
    if as_json:
        print(json.dumps(measurement.to_json(), indent=1))
    else:
        from .tables import measurement_tables

        print(measurement_tables(measurement, from_cache, gain))


def _measure_suite(args: argparse.Namespace) -> int:
    """Every model of ``--suite`` (or of its ``--shard``), one after another.

    A model that fails is reported in one line and the others are still measured; the exit
    status is 1 when any failed. A mistake common to every model (a bad prompt file, an
    unknown suite) stops before the first, with status 2.
    """
    if not args.suite:
        raise OptionError("name a MODEL to measure, or pass --suite S to measure every model of a suite")
    if args.revision:
        raise OptionError("--revision applies to one MODEL; a suite's models name their own revisions")
    settings = _measure_settings(args)
    suite = load_suite(args.suite, settings.cache_dir, settings.weights_dir)
    specs, part = _suite_part(suite, args.shard)
    measurer = Measurer(suite, settings)
    prompt_sets = _prompt_sets(measurer, args)  # a bad prompt file is every model's mistake: one line, before any model
    if not specs:
        print(f"gainscale: {part} has no models (more shards than the suite's {len(suite.models)} models)", file=sys.stderr)
        return 0
    records, failed, status = [], [], 0
    for number, spec in enumerate(specs, 1):
        if not args.json:
            print(f"== {spec.name} ({number} of {len(specs)}, {part})")
        try:
            results, cached_status = _get(measurer, spec, prompt_sets)
        except Exception as error:  # one model's failure must not cost the others (KeyboardInterrupt still stops)
            failed.append(spec.name)
            print(f"gainscale: error: {_about(spec.name, error)}", file=sys.stderr)
            continue
        status = max(status, cached_status)
        for measurement, from_cache in results:
            if args.json:
                records.append(measurement.to_json())
            else:
                _print_measurement(measurement, from_cache, as_json=False, gain=measurer.settings.gain)
    if args.json:
        print(json.dumps(records, indent=1))
    print(_suite_summary(part, len(specs), failed), file=sys.stderr)
    return 1 if failed else status


def _suite_part(suite: Suite, shard_text: str | None) -> tuple[tuple[ModelSpec, ...], str]:
    """The models to measure and how to name them: the suite, or one shard of it."""
    from .sharding import parse_shard, shard

    if not shard_text:
        return suite.models, f"suite {suite.name}"
    k, n = parse_shard(shard_text)
    return shard(suite.models, k, n), f"shard {k}/{n} of suite {suite.name}"


def _about(name: str, error: Exception) -> str:
    """One line about a model's failure, naming the model once."""
    message = str(error) if isinstance(error, GainscaleError) else f"{type(error).__name__}: {error}"
    return message if message.startswith(name) else f"{name}: {message}"


def _suite_summary(part: str, total: int, failed: list[str]) -> str:
    if not failed:
        return f"gainscale: {part}: {total} of {total} models measured or found in the cache"
    return f"gainscale: {part}: {total - len(failed)} of {total} models measured or found in the cache; failed: {', '.join(failed)}"


def _model_of(suite: Suite, name: str, revision: str | None) -> tuple[Suite, ModelSpec]:
    """``suite``'s model ``name`` at ``revision`` (else its own); a local one has no revisions to pick."""
    import dataclasses

    spec = suite.model(name)
    if revision and spec.local:
        where = f"the local {'file' if spec.gguf else 'directory'} {spec.source}"
        raise OptionError(f"{name} loads from {where}, which has no revisions; drop --revision {revision}")
    return suite, dataclasses.replace(spec, revision=revision or spec.revision)


def resolve_model(name: str, suite_name: str | None, cache_dir: Path, revision: str | None,
                  weights_dir: Path | None = None) -> tuple[Suite | None, ModelSpec]:
    """Find MODEL: in the given suite, else in the built-in suites, else as a directory or hub id.

    With ``weights_dir``, the suite's models found there load from it (``--weights-dir``).
    """
    if suite_name:
        return _model_of(load_suite(suite_name, cache_dir, weights_dir), name, revision)
    known = []
    for builtin in BUILTIN_SUITES:
        suite = load_suite(builtin, cache_dir)
        if name in suite.model_names:
            return _model_of(suite if weights_dir is None else suite.with_local_weights(weights_dir), name, revision)
        known += suite.model_names
    if weights_dir is not None:
        raise OptionError(f"--weights-dir {weights_dir} points a suite's models at local copies; {name} is no suite's "
                          "model: drop --weights-dir, or pass --suite S with a model of S")
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

    _check_bundle_arguments(args)
    cache = MeasurementCache(Settings(cache=args.cache).cache_dir)
    if args.action == "export":
        return _export(cache, args.files[0], args.model)
    if args.action == "import":
        return _import(cache, args.files)
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


def _check_bundle_arguments(args: argparse.Namespace) -> None:
    """FILE and --model belong to export and import alone; export writes one FILE, import reads some."""
    if args.action not in ("export", "import"):
        if args.files or args.model:
            extra = " ".join(map(str, args.files)) or f"--model {args.model[0]}"
            raise OptionError(f"cache {args.action} takes no FILE or --model (got {extra}); they are for export and import")
    elif args.action == "export" and len(args.files) != 1:
        raise OptionError(f"cache export writes one bundle: pass one FILE (e.g. measurements.zip), not {len(args.files)}")
    elif args.action == "import" and (not args.files or args.model):
        raise OptionError("cache import reads the bundles named: pass one FILE or more, and no --model"
                          if args.files else "cache import needs the bundle FILEs to read")


def _export(cache, path: Path, models: list[str]) -> int:
    from .bundles import export_bundle

    result = export_bundle(cache, path, models)
    entries = "1 entry" if result.entries == 1 else f"{result.entries} entries"
    print(f"exported {entries} ({', '.join(result.models)}) from {cache.directory} to {result.path}")
    return 0


def _import(cache, paths: list[Path]) -> int:
    """Import bundles; a conflict is a line each and exit status 1, after the others are imported."""
    from .bundles import import_bundles

    result = import_bundles(cache, paths)
    for conflict in result.conflicts:
        print(f"gainscale: {conflict}", file=sys.stderr)
    print(f"imported {len(result.imported)}, already present {result.present}, conflicts {len(result.conflicts)} "
          f"from {len(paths)} {'bundle' if len(paths) == 1 else 'bundles'} into {cache.directory}")
    return 1 if result.conflicts else 0


class _Version(argparse.Action):
    """``--version``: the versions are looked up only when asked for."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="show the versions of gainscale, torch, transformers and Python, and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        print(_version())
        parser.exit()


def _version() -> str:
    """gainscale's version and those its numbers depend on, read without importing torch."""
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return (f"gainscale {__version__} (torch {installed('torch')}, transformers {installed('transformers')}, "
            f"Python {sys.version.split()[0]})")


def _import_notebook(args: argparse.Namespace) -> int:
    from .notebook import import_notebook

    from .sources import imported, reserved_source_names

    cache_dir = Settings(cache=args.cache).cache_dir
    reserved = tuple(reserved_source_names(Measurer(None, Settings(cache=cache_dir)), but=imported.KIND))
    imported = import_notebook(args.file, args.name, cache_dir, reserved)
    print(f"imported {len(imported.summaries)} models from {args.file} as {args.name!r}; "
          f"evaluate with: pytest claims --gainscale-source {args.name}")
    return 0


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"gainscale: warning: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
