"""The pytest plugin: options, the ``claim`` and ``gpu`` markers, parametrization, the report.

Thin by design: every decision is made by library objects (:class:`ClaimSession`, the
report writer, the baseline); the hooks here only read options and hand over.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest

from .baseline import Baseline, Tolerances
from .claims import CLAIMS, Thresholds
from .devices import visible_gpu_count
from .errors import GainscaleError
from .report import WrittenReport, write_report
from .results import ResultsCollector, labels_from_test_name, run_provenance, summary_lines
from .paths import display_path
from .settings import Settings
from .session import DEFAULT_SOURCES, ClaimSession
from .sources import Unavailable

SESSION = pytest.StashKey[ClaimSession]()


@dataclass(frozen=True)
class _Option:
    """One ``--gainscale-*`` flag and its ini key ``gainscale_*``."""

    name: str
    help: str
    default: Any = None
    #: ``string``, ``path``, ``int``, ``flag`` or ``list``
    kind: str = "string"

    @property
    def flag(self) -> str:
        return "--gainscale-" + self.name.replace("_", "-")

    @property
    def key(self) -> str:
        return "gainscale_" + self.name


OPTIONS = (
    _Option("suite", "built-in suite (pythia, pythia-deduped, tiny) or a suite TOML file; default: pythia", "pythia"),
    _Option("source", "evaluate the claims on this source: published, measured, or an imported set's name; "
            "repeatable; default: published and measured", list(DEFAULT_SOURCES), "list"),
    _Option("cache", "measurement cache directory; default: $GAINSCALE_CACHE, else .gainscale/ in the rootdir", None, "path"),
    _Option("device", "cpu, cuda or cuda:N; default: the suite's (Pythia: cuda)"),
    _Option("dtype", "float32, float16 or bfloat16; default: the suite's (Pythia: float16, as the paper)"),
    _Option("prompts", "prompt file, one prompt per line; default: the shipped set", None, "path"),
    _Option("batch_size", "prompts per forward pass; default: 8 on CPU, 64 on CUDA", None, "int"),
    _Option("allow_pickle", "load pickle weights (*.bin), which can run code when loaded", False, "flag"),
    _Option("trust_remote_code", "run model code from the hub", False, "flag"),
    _Option("device_map", "'auto' spreads a model larger than one GPU over several (accelerate)"),
    _Option("report", "directory for REPORT.md, figures/ and results.json; 'none' for no report; default: reports/", "reports"),
    _Option("baseline", "compare every claim with this baseline file: a flipped verdict or a value "
            "drifting beyond tolerance fails, a known failing claim is an xfail", None, "path"),
    _Option("update_baseline", "write the baseline (--gainscale-baseline, default reports/baseline.json) "
            "from this run instead of comparing with it", False, "flag"),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gainscale", "gainscale: the paper's claims as tests")
    for option in OPTIONS:
        if option.kind == "flag":
            group.addoption(option.flag, action="store_true", default=None, dest=option.key, help=option.help)
        elif option.kind == "list":
            group.addoption(option.flag, action="append", default=None, dest=option.key, metavar="NAME", help=option.help)
        else:
            group.addoption(option.flag, default=None, dest=option.key, help=option.help)
        ini_type = {"flag": "bool", "list": "args"}.get(option.kind, "string")
        parser.addini(option.key, option.help, type=ini_type, default=option.default)
    for threshold in fields(Thresholds):
        parser.addini(f"gainscale_{threshold.name}", f"claim threshold (default {threshold.default})", default=str(threshold.default))
    for tolerance in fields(Tolerances):
        parser.addini(f"gainscale_tolerance_{tolerance.name}", f"baseline drift tolerance for {tolerance.name} (default {tolerance.default})",
                      default=str(tolerance.default))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA device unless its measurements are cached")
    config.addinivalue_line("markers", f"claim(id): the paper's claim a test checks; one of {', '.join(CLAIMS)}")
    if not config.pluginmanager.hasplugin("xdist"):
        config.addinivalue_line("markers", "xdist_group(name): keeps a model's tests on one pytest-xdist worker")
    try:
        session = ClaimSession(
            _settings(config),
            tuple(option_value(config, "source")),
            _numbers(config, Thresholds, "gainscale_"),
            _baseline(config),
            _numbers(config, Tolerances, "gainscale_tolerance_"),
            bool(option_value(config, "update_baseline")),
        )
        session.sources  # noqa: B018  (an unknown source name is a usage error, raised now)
    except GainscaleError as error:
        raise pytest.UsageError(f"gainscale: {error}") from None
    config.stash[SESSION] = session
    if not hasattr(config, "workerinput"):  # xdist workers leave the report to the controller
        config.pluginmanager.register(ClaimsReporter(config, _report_dir(config)), "gainscale-reporter")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` on a GPU runner: one worker per visible GPU, not one per CPU core (each
    worker holds a whole model on its GPU). None leaves xdist's default.

    xdist asks before ``pytest_configure``, so this reads the options itself.
    """
    try:
        session = ClaimSession(_settings(config), tuple(option_value(config, "source")))
        needs_gpu = any(source.needs_gpu() for source in session.sources.values())
    except GainscaleError:
        return None  # pytest_configure reports the bad option
    return (visible_gpu_count() or None) if needs_gpu else None


def _baseline(config: pytest.Config) -> Baseline | None:
    path = option_value(config, "baseline")
    if option_value(config, "update_baseline"):
        path = display_path(path or config.rootpath / "reports" / "baseline.json")
        return Baseline.load(path) if path.exists() else Baseline(path)  # an update merges into it
    return Baseline.load(display_path(path)) if path is not None else None


def _report_dir(config: pytest.Config) -> Path | None:
    value = option_value(config, "report")
    if str(value).lower() == "none":
        return None
    base = config.invocation_params.dir if config.getoption("gainscale_report") else config.rootpath
    return base / Path(value)


def option_value(config: pytest.Config, name: str) -> Any:
    """A ``--gainscale-*`` value: the command line, else the ini key, else the default.

    Paths on the command line are relative to where pytest was invoked; in the ini file, to
    the ini file's directory.
    """
    option = next(o for o in OPTIONS if o.name == name)
    value = config.getoption(option.key)
    base = config.invocation_params.dir
    if value is None:
        value = config.getini(option.key)
        base = config.inipath.parent if config.inipath else config.rootpath
        if value in ("", []):
            value = option.default
    if value is None or option.kind in ("flag", "list"):
        return value
    if option.kind == "path":
        return base / Path(value).expanduser()
    if option.kind == "int":
        try:
            return int(value)
        except ValueError:
            raise pytest.UsageError(f"{option.flag} / {option.key} must be an integer, not {value!r}") from None
    return value


def _settings(config: pytest.Config) -> Settings:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    cache = option_value(config, "cache")
    if cache is None and not os.environ.get("GAINSCALE_CACHE"):
        cache = config.rootpath / ".gainscale"
    return Settings(
        suite=str(option_value(config, "suite")),
        cache=cache,
        device=option_value(config, "device"),
        dtype=option_value(config, "dtype"),
        prompts=option_value(config, "prompts"),
        batch_size=option_value(config, "batch_size"),
        allow_pickle=bool(option_value(config, "allow_pickle")),
        trust_remote_code=bool(option_value(config, "trust_remote_code")),
        device_map=option_value(config, "device_map"),
        progress=config.get_verbosity() >= 0 and worker is None,
        worker=worker,
    )


def _numbers(config: pytest.Config, kind: type, prefix: str):
    """Thresholds or Tolerances from their ini keys."""
    values = {}
    for number in fields(kind):
        key = prefix + number.name
        text = config.getini(key)
        try:
            values[number.name] = float(text)
        except ValueError:
            raise pytest.UsageError(f"{key} = {text!r} in {config.inipath} is not a number") from None
    return kind(**values)


# ---------------------------------------------------------------------------- collection


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("claim")
    if marker is None:
        return
    claim = _claim_of(marker, metafunc.definition.nodeid)
    session = metafunc.config.stash[SESSION]
    if claim.scope == "model":
        cases = [
            pytest.param(c.source, c.model, id=c.id, marks=_marks(c.needs_gpu, c.model))
            for c in session.model_cases()
        ]
        metafunc.parametrize(("gainscale_source", "gainscale_model"), cases)
    else:
        cases = [pytest.param(source, id=source, marks=_marks(gpu, "all-models")) for source, gpu in session.suite_cases()]
        metafunc.parametrize("gainscale_source", cases)


def _claim_of(marker: pytest.Mark, nodeid: str):
    if len(marker.args) != 1 or marker.kwargs or marker.args[0] not in CLAIMS:
        raise pytest.UsageError(
            f"{nodeid}: @pytest.mark.claim takes one claim id, one of {', '.join(CLAIMS)}; got "
            f"args={marker.args!r} kwargs={marker.kwargs!r}"
        )
    return CLAIMS[marker.args[0]]


def _marks(needs_gpu: bool, group: str) -> list:
    marks = [pytest.mark.xdist_group(name=group)]  # a model's tests stay on one worker with --dist loadgroup
    return marks + [pytest.mark.gpu] if needs_gpu else marks


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Label every claims test with its claim, source and model, whatever its outcome will be."""
    for item in items:
        marker = item.get_closest_marker("claim")
        params = getattr(getattr(item, "callspec", None), "params", {})
        if marker is not None and "gainscale_source" in params:
            item.user_properties += [
                ("claim", marker.args[0]),
                ("source", params["gainscale_source"]),
                ("model", params.get("gainscale_model", "")),
            ]


# ---------------------------------------------------------------------------- helpers for fixtures


def obtain(config: pytest.Config, get: Callable[[], Any]) -> Any:
    """Run ``get()`` for a fixture: a source that cannot give the numbers skips the test with its
    reason; any other gainscale error fails it with its message alone (no traceback)."""
    try:
        with _capture_suspended(config):
            return get()
    except Unavailable as unavailable:
        pytest.skip(str(unavailable))
    except GainscaleError as error:
        pytest.fail(str(error), pytrace=False)


@contextmanager
def _capture_suspended(config: pytest.Config):
    """Let a measurement's progress bar reach the terminal through pytest's capture."""
    capture = config.pluginmanager.getplugin("capturemanager")
    show = config.stash[SESSION].settings.progress and capture is not None
    with capture.global_and_fixture_disabled() if show else nullcontext():
        yield


def record_json(record_property: Callable[[str, Any], None], name: str, value: Any) -> None:
    """Record a property as compact JSON: JUnit XML and xdist carry strings safely."""
    record_property(name, json.dumps(value, sort_keys=True, separators=(",", ":")))


# ---------------------------------------------------------------------------- the report


class ClaimsReporter:
    """Collects every claims test's outcome (from workers too, under xdist) and writes the report.

    Registered like junitxml's writer: collects in ``pytest_runtest_logreport``, writes in
    ``pytest_sessionfinish``, and says where the report went in the terminal summary.
    """

    def __init__(self, config: pytest.Config, directory: Path | None):
        self.config = config
        self.session = config.stash[SESSION]
        self.directory = directory
        self.collector = ResultsCollector()
        self.written: WrittenReport | None = None
        self.errors: list[str] = []
        self.baseline_notes: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        properties = [tuple(p) for p in report.user_properties]  # xdist delivers lists
        test = report.nodeid.rpartition("::")[2]
        if not any(name == "claim" for name, _ in properties):
            labels = labels_from_test_name(test, list(self.session.source_names))
            if labels is None or report.outcome != "failed":
                return
            properties = labels  # a crashed xdist worker's test still counts, as failed
        self.collector.add_phase(test, report.when, report.outcome, properties, _message(report), hasattr(report, "wasxfail"))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.collector:
            return
        command = "pytest " + " ".join(shlex.quote(a) for a in self.config.invocation_params.args)
        try:
            provenance = run_provenance(self.config.rootpath, self.session.settings, self.session.measurer.prompts, command)
            results = self.collector.results(provenance)
        except GainscaleError as error:
            self.errors.append(f"gainscale: could not gather the results: {error}")
            return
        results["baseline"] = self._baseline_results(results)
        if self.session.update_baseline:
            self._write_baseline(results)
        if self.directory is not None:
            try:
                self.written = write_report(results, self.directory)
            except (OSError, GainscaleError) as error:
                self.errors.append(f"gainscale: could not write the report to {self.directory}: {error}")

    def _baseline_results(self, results: dict) -> dict | None:
        """Which tests the baseline lacks and which of its entries had no test: named, never silent."""
        baseline = self.session.baseline
        if baseline is None or self.session.update_baseline:
            return None
        evaluated = [c["test"] for c in results["claims"] if c["verdict"] is not None]
        missing = [c["test"] for c in results["claims"] if (c["baseline"] or {}).get("status") == "new"]
        not_run = baseline.not_run(evaluated)
        if missing:
            self.baseline_notes.append(f"not in baseline {baseline.path} ({len(missing)}): {', '.join(missing)}")
        if not_run:
            self.baseline_notes.append(f"in baseline {baseline.path} but not evaluated this run ({len(not_run)}): {', '.join(not_run)}")
        return {"file": str(baseline.path), "not_in_baseline": missing, "not_run": not_run}

    def _write_baseline(self, results: dict) -> None:
        baseline = self.session.baseline.updated(results)
        try:
            baseline.write()
        except GainscaleError as error:
            self.errors.append(f"gainscale: could not write the baseline: {error}")
            return
        self.baseline_notes.append(f"baseline written: {baseline.path} ({len(baseline.tests)} tests)")

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.collector:
            return
        terminalreporter.section("gainscale claims")
        for line in summary_lines(self.collector.claim_results(), width=max(80, self.config.get_terminal_writer().fullwidth)):
            terminalreporter.line(line)
        for note in self.baseline_notes:
            terminalreporter.line(note, yellow=not note.startswith("baseline written"))
        for error in self.errors:
            terminalreporter.line(error, red=True)
        if self.written:
            terminalreporter.line(f"report: {display_path(self.written.markdown)} (results.json, {len(self.written.files) - 2} figures)")
            for problem in self.written.figure_errors:
                terminalreporter.line(f"figure not drawn: {problem}", yellow=True)


def _message(report: pytest.TestReport) -> str:
    """A skip's reason, or the last line of a failure."""
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    if hasattr(report, "wasxfail"):
        return str(report.wasxfail)
    text = report.longreprtext.strip()
    return text.splitlines()[-1].removeprefix("E   ").strip() if text else ""
