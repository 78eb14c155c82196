"""The pytest plugin: options, the ``claim`` and ``gpu`` markers, parametrization, the report.

Registered by the ``gainscale`` entry point of the ``pytest11`` group, so installing gainscale
is enough. Thin by design: every decision is made by library objects (:class:`ClaimSession`,
the collector, the report writer, the baseline); the hooks here read options and hand over.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

import pytest

from . import statmemo
from .baseline import Baseline, Collected, Tolerances
from .claims import Claim
from .collect import ResultsCollector, run_provenance
from .devices import visible_gpu_count
from .errors import GainscaleError
from .fixtures import (  # noqa: F401  (pytest finds the fixtures as attributes of the plugin)
    RECORD,
    SESSION,
    gainscale_claim,
    gainscale_session,
    gainscale_settings,
    model_summary,
    record_verdict,
    source_summaries,
    thresholds,
)
from .paths import display_path
from .writer import ReportWriter
from .results import CaseRecord, ClaimInfo
from .session import ClaimSession, parse_threshold_overrides
from .settings import INI, PYTEST, Option, Settings, option, options_for
from .terminal import summary_lines

#: every claims test collected, before -k / -m deselection
COLLECTED = pytest.StashKey[Collected]()
#: a test's record and its JSON, as last sent with a phase report
RECORD_JSON = pytest.StashKey[tuple[CaseRecord, str]]()
#: the records this process sent, by their JSON: its own reporter takes them back without decoding
SENT = pytest.StashKey[dict[str, CaseRecord]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gainscale", "gainscale: claims about model internals as tests")
    for opt in options_for(PYTEST):
        group.addoption(opt.flag, dest=opt.ini_key, default=None, help=opt.help, **_argparse(opt))
    for opt in options_for(INI):
        ini_type = {"bool": "bool", "list": "args", "lines": "linelist"}.get(opt.kind, "string")
        default = opt.default if opt.kind in ("bool", "list", "lines") else ("" if opt.default is None else str(opt.default))
        parser.addini(opt.ini_key, opt.help, type=ini_type, default=default if default is not None else [])


def _argparse(opt: Option) -> dict[str, Any]:
    if opt.kind == "bool":
        return {"action": "store_true"}
    if opt.kind in ("list", "lines"):
        return {"action": "append", "metavar": opt.metavar}
    return {"metavar": opt.metavar or opt.name.upper(), **({"choices": opt.choices} if opt.choices else {})}


def option_value(config: pytest.Config, name: str) -> Any:
    """An option's value: the command line, else the ini key, else the default.

    Paths on the command line are relative to where pytest was invoked; in the ini file, to
    the ini file's directory.
    """
    opt = option(name)
    value = config.getoption(opt.ini_key, default=None) if PYTEST in opt.where else None
    base = config.invocation_params.dir
    if value is None:
        value = config.getini(opt.ini_key)
        base = config.inipath.parent if config.inipath else config.rootpath
        if value in ("", []):
            value = opt.default
    if opt.kind == "lines" and config.getoption(opt.ini_key, default=None):
        value = [*config.getini(opt.ini_key), *value]  # ini lines, then flags: a flag wins for its name
    parsed = opt.parse(value, given_as=f"{opt.flag} / {opt.ini_key}")
    return base / parsed if isinstance(parsed, Path) else parsed


# ---------------------------------------------------------------------------- configuration


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA device unless its measurements are cached")
    config.addinivalue_line("markers", "claim(claim_or_id, **fields): the claim a test checks: a gainscale.Claim, "
                                       "or an id with statement=, scope=, thresholds=, where=")
    if not config.pluginmanager.hasplugin("xdist"):
        config.addinivalue_line("markers", "xdist_group(name): keeps a model's tests on one pytest-xdist worker")
    try:
        session = _session(config)
        session.sources  # noqa: B018  (an unknown source name is a usage error, raised now)
        differences = session.setting_differences()
    except GainscaleError as error:
        raise pytest.UsageError(f"gainscale: {error}") from None
    if differences:
        raise pytest.UsageError(
            f"gainscale: baseline {session.baseline.path} was made under other settings; nothing was run:\n  "
            + "\n  ".join(differences))
    config.stash[SESSION] = session
    statmemo.use(session.settings.cache_dir)  # a replay of known numbers reads its statistics back
    if not hasattr(config, "workerinput"):  # xdist workers leave the report to the controller
        reporter = ClaimsReporter(config, session, _report_dir(config))
        config.pluginmanager.register(reporter, "gainscale-reporter")


def pytest_unconfigure(config: pytest.Config) -> None:
    statmemo.close()  # after the report: its statistics are remembered too


def _session(config: pytest.Config) -> ClaimSession:
    baseline = _baseline(config)
    return ClaimSession(
        settings=_settings(config),
        source_names=tuple(option_value(config, "source") or ()),
        threshold_overrides=parse_threshold_overrides(option_value(config, "threshold") or ()),
        baseline=baseline,
        tolerances=Tolerances(**{name: option_value(config, f"tolerance_{name}") for name in Tolerances.__dataclass_fields__}),
        update_baseline=bool(option_value(config, "update_baseline")),
        require_measured=bool(option_value(config, "require_measured")),
        bootstrap_resamples=option_value(config, "bootstrap_resamples"),
        bootstrap_seed=option_value(config, "bootstrap_seed"),
    )


def _settings(config: pytest.Config) -> Settings:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    values = {opt.name: option_value(config, opt.name) for opt in options_for(PYTEST) if opt.name in Settings.__dataclass_fields__}
    if values.get("cache") is None and not os.environ.get("GAINSCALE_CACHE"):
        values["cache"] = config.rootpath / ".gainscale"
    return Settings.from_options(values, progress=config.get_verbosity() >= 0 and worker is None, worker=worker)


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


@pytest.hookimpl(optionalhook=True, tryfirst=True)  # before xdist's own CPU count (the hook is firstresult)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` on a GPU runner: one worker per visible GPU, not one per CPU core (each
    worker holds a whole model on its GPU). None leaves xdist's default.

    xdist asks before ``pytest_configure``, so this reads the options itself.
    """
    try:
        needs_gpu = any(source.needs_gpu() for source in _session(config).sources.values())
    except GainscaleError:
        return None  # pytest_configure reports the bad option
    return (visible_gpu_count() or None) if needs_gpu else None


# ---------------------------------------------------------------------------- collection


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("claim")
    if marker is None:
        return
    session: ClaimSession = metafunc.config.stash[SESSION]
    where = metafunc.definition.nodeid
    try:
        claim = session.declare(Claim.from_marker(marker.args, marker.kwargs))
    except GainscaleError as error:
        raise pytest.UsageError(f"{where}: {error}") from None
    cases = session.cases(claim.scope)
    if claim.scope == "model":
        params = [pytest.param(c.source, c.model, id=c.id, marks=_marks(c.needs_gpu, c.model)) for c in cases]
        metafunc.parametrize(("gainscale_source", "gainscale_model"), params)
    else:
        metafunc.parametrize("gainscale_source", [pytest.param(c.source, id=c.id, marks=_marks(c.needs_gpu, "all-models")) for c in cases])


def _marks(needs_gpu: bool, group: str) -> list:
    marks = [pytest.mark.xdist_group(name=group)]  # a model's tests stay on one worker with --dist loadgroup
    return marks + [pytest.mark.gpu] if needs_gpu else marks


@pytest.hookimpl(tryfirst=True)  # before -k / -m deselect: the baseline learns which tests exist
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give every claims test its record (claim, source, model), whatever its outcome will be."""
    claims_session: ClaimSession = config.stash[SESSION]
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        marker = item.get_closest_marker("claim")
        if marker is None or "gainscale_source" not in params:
            continue
        claim = claims_session.claims[Claim.from_marker(marker.args, marker.kwargs).id]
        model = params.get("gainscale_model")
        item.stash[RECORD] = CaseRecord(claims_session.claim_info(claim), params["gainscale_source"], model,
                                        item.nodeid.partition("::")[0])
        item.user_properties += [("claim", claim.id), ("source", params["gainscale_source"]), ("model", model or "")]
    problems = claims_session.unknown_threshold_overrides() + _threshold_changes(claims_session)
    if problems:
        raise pytest.UsageError("gainscale: " + "\n  ".join(problems))
    records = [i for i in items if RECORD in i.stash]
    config.stash[COLLECTED] = Collected(frozenset(i.nodeid for i in records), frozenset(i.stash[RECORD].module for i in records))


def _threshold_changes(session: ClaimSession) -> list[str]:
    if not session.comparing():
        return []
    return [line for claim in session.claims.values() for line in session.baseline.threshold_differences(session.claim_info(claim))]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On an xdist worker: tell the controller which claims were declared and which tests collected."""
    output = getattr(session.config, "workeroutput", None)
    if output is not None and COLLECTED in session.config.stash:
        claims_session = session.config.stash[SESSION]
        collected = session.config.stash[COLLECTED]
        output["gainscale"] = json.dumps({
            "declared": [claims_session.claim_info(c).to_json() for c in claims_session.claims.values()],
            "tests": sorted(collected.tests), "modules": sorted(collected.modules),
        })


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    """Attach the test's record to each phase report (xdist carries it to the controller)."""
    report = yield
    if RECORD in item.stash:
        report.gainscale_record = _record_json(item)
    return report


def _record_json(item: pytest.Item) -> str:
    """The test's record as JSON, encoded once for each version of it (phases mostly share one)."""
    record, encoded = item.stash.get(RECORD_JSON, (None, ""))
    if record is not item.stash[RECORD]:
        record, encoded = item.stash[RECORD], json.dumps(item.stash[RECORD].to_json(), separators=(",", ":"))
        item.stash[RECORD_JSON] = (record, encoded)
        item.config.stash.setdefault(SENT, {})[encoded] = record
    return encoded


# ---------------------------------------------------------------------------- the report


class ClaimsReporter:
    """Collects every claims test's outcome (from workers too, under xdist) and writes the report.

    Registered like junitxml's writer: collects in ``pytest_runtest_logreport``, writes in
    ``pytest_sessionfinish``, and says what happened in the terminal summary.
    """

    def __init__(self, config: pytest.Config, session: ClaimSession, directory: Path | None):
        self.config = config
        self.session = session
        self.collector = ResultsCollector(list(session.source_names or session.sources))
        self.writer = ReportWriter(directory, session, config.rootpath)
        #: what xdist workers declared and collected; None outside xdist
        self.from_workers: dict[str, Any] | None = None
        self.interrupted = False

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collector.expect([i.nodeid for i in session.items if RECORD in i.stash])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids: list[str]) -> None:
        self.collector.expect(ids)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        data = json.loads(getattr(node, "workeroutput", {}).get("gainscale", "null") or "null")
        if data is not None:
            self.from_workers = data

    def pytest_keyboard_interrupt(self, excinfo) -> None:
        self.interrupted = True

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = getattr(report, "gainscale_record", None)
        decoded = self.config.stash.get(SENT, {}).get(record) if record is not None else None  # None: an xdist worker's
        self.collector.add_phase(report.nodeid, report.when, report.outcome, record, _message(report), hasattr(report, "wasxfail"),
                                 decoded=decoded)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        stopped = "interrupted" if self.interrupted else "stopped early" if session.shouldfail or session.shouldstop else None
        if not self.collector and not (stopped and self.collector.not_run()):
            return  # no claims test ran, and none was cut short
        command = "pytest " + " ".join(shlex.quote(a) for a in self.config.invocation_params.args)
        dated = bool(option_value(self.config, "report_dates"))
        provenance = run_provenance(self.config.rootpath, self.writer.settings_record(), command, dated)
        declared, collected = self._declared_and_collected()
        self.writer.finish(self.collector.result(provenance, stopped, declared), collected)
        if self.writer.errors and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a report or baseline that was asked for and not written

    def _declared_and_collected(self) -> tuple[tuple[ClaimInfo, ...], Collected | None]:
        """The claims declared and the tests collected: here, or as the xdist workers said."""
        if self.from_workers is not None:
            data = self.from_workers
            return tuple(map(ClaimInfo.from_json, data["declared"])), Collected(frozenset(data["tests"]), frozenset(data["modules"]))
        declared = tuple(self.session.claim_info(claim) for claim in self.session.claims.values())
        return declared, self.config.stash.get(COLLECTED, None)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        run = self.writer.run
        if run is None:
            return
        if run.interruption is not None:
            terminalreporter.line(f"gainscale: the run was {run.interruption.reason}; {len(run.interruption.not_run)} claims tests did not run",
                                  yellow=True)
        terminalreporter.section("gainscale claims")
        width = terminalreporter._tw.fullwidth if terminalreporter.isatty() else None  # never cut in CI logs
        for line in summary_lines(run, width):
            terminalreporter.line(line)
        for note in self.writer.notes:
            terminalreporter.line(note, yellow=True)
        for error in self.writer.errors:
            terminalreporter.line(error, red=True)


def _message(report: pytest.TestReport) -> str:
    """A skip's reason, or the last line of a failure."""
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    if hasattr(report, "wasxfail"):
        return str(report.wasxfail)
    text = report.longreprtext.strip()
    return text.splitlines()[-1].removeprefix("E   ").strip() if text else ""
