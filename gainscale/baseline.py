"""Baselines: a run's verdicts and numbers kept in a file, against which later runs are held.

A baseline records, besides each test's verdict and tracked numbers, what those numbers were
made under: per source its identity (suite and its models, dtype, device kind, prompt set,
method version; a table's or a file's hash) and per claim its thresholds. A run under other
settings is refused before any test runs, one line per difference, saying what to do.

Each evaluated test is then compared with its entry: the same verdict (``same``), a known
failing claim (``known_failing``, an xfail), a flipped verdict (``regression`` or
``improvement``), a value that moved beyond tolerance (``drift``), a test the baseline does
not have (``new``), or a skipped test the baseline has (``missing``). Only ``same`` passes
and ``known_failing`` is an expected failure; everything else fails until accepted with
``--gainscale-update-baseline``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import BaselineError
from .files import pretty_json, write_atomic
from .results import BaselineComparison, BaselineSummary, ClaimInfo, RunResult, Verdict

FORMAT = 2
ACCEPT = "accept it with --gainscale-update-baseline"

#: what to pass to match a baseline made under another setting of a source's identity
_IDENTITY_ADVICE = {
    "suite": "--gainscale-suite {old}",
    "suite_models_sha256": "the suite's models as they were",
    "dtype": "--gainscale-dtype {old}",
    "device": "--gainscale-device {old}",
    "prompts": "--gainscale-prompts with the prompt file whose SHA-256 is {old}",
    "method_version": "the gainscale release that measured it",
    "gain": "--gainscale-gain {old}",
    "published_table_sha256": "the gainscale release whose published table it was made from",
    "file_sha256": "the same notebook file, imported again",
}


@dataclass(frozen=True)
class Tolerances:
    """How far a tracked number may move before it is drift, per kind of number."""

    #: relative, for gains (final MLP gain)
    gain: float = 0.05
    #: relative, for the scaling exponent
    alpha: float = 0.05
    #: absolute, in layers, for contracting counts
    count: float = 0.0
    #: relative, for p-values
    p_value: float = 0.05
    #: relative, for rank statistics (Spearman's rho)
    statistic: float = 0.05
    #: relative, for kinds a claim of one's own tracks
    default: float = 0.05

    def allows(self, kind: str, old: float, new: float) -> bool:
        tolerance = self._of(kind)
        if kind == "count":
            return abs(new - old) <= tolerance
        return abs(new - old) <= tolerance * abs(old) or new == old

    def describe(self, kind: str) -> str:
        tolerance = self._of(kind)
        return f"{tolerance:g} layers" if kind == "count" else f"{tolerance:.0%}"

    def _of(self, kind: str) -> float:
        return getattr(self, kind) if kind in self.__dataclass_fields__ else self.default


@dataclass(frozen=True)
class BaselineEntry:
    """One test's verdict and numbers as the baseline holds them."""

    #: the test module, relative to the rootdir
    module: str
    source: str
    claim: str
    #: ``passed`` or ``failed``
    outcome: str
    value: float | None
    #: tracked numbers by name
    tracked: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Collected:
    """What the run collected before deselection: which entries' tests still exist."""

    #: every claims test collected (before ``-k`` / ``-m`` deselection), by test id
    tests: frozenset[str]
    #: the modules they came from
    modules: frozenset[str]

    def no_longer_exists(self, test: str, entry: BaselineEntry, sources: set[str], root: Path) -> bool:
        """The test is gone: its module was collected for its source without it, or the module itself is gone."""
        if test in self.tests:
            return False
        return (entry.source in sources and entry.module in self.modules) or not (root / entry.module).exists()


@dataclass
class Baseline:
    """The baseline file's content."""

    path: Path
    #: per source run when it was written: ``{"kind": ..., "identity": {...}}``
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: per claim, the thresholds its entries were evaluated against
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)
    tests: dict[str, BaselineEntry] = field(default_factory=dict)
    gainscale_version: str = ""

    # ------------------------------------------------------------------ reading

    @classmethod
    def load(cls, path: str | Path) -> Baseline:
        """Read a baseline; raise :class:`BaselineError` naming the file, entry and field at fault."""
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BaselineError(f"{path}: no baseline file; write one with --gainscale-update-baseline") from None
        except IsADirectoryError:
            raise BaselineError(f"{path}: is a directory, not a baseline file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise BaselineError(f"{path}: not a valid baseline JSON file ({error}); fix it or write it anew with --gainscale-update-baseline") from None
        if not isinstance(raw, dict) or raw.get("gainscale_baseline") != FORMAT:
            found = raw.get("gainscale_baseline") if isinstance(raw, dict) else type(raw).__name__
            raise BaselineError(f"{path}: not a gainscale baseline of format {FORMAT} (found {found!r}); write it anew with --gainscale-update-baseline")
        reader = _Reader(path)
        return cls(
            path=path,
            sources=reader.mapping(raw, "sources", "the top level", reader.source),
            thresholds=reader.mapping(raw, "thresholds", "the top level", reader.numbers),
            tests=reader.mapping(raw, "tests", "the top level", reader.entry),
            gainscale_version=reader.text(raw, "gainscale_version", "the top level"),
        )

    # ------------------------------------------------------------------ before the run

    def setting_differences(self, identities: Mapping[str, Mapping[str, Any]]) -> list[str]:
        """One line per setting of a source this run shares with the baseline that differs, with what to do."""
        lines = []
        for source, identity in identities.items():
            recorded = self.sources.get(source, {}).get("identity")
            if recorded is None or not any(e.source == source for e in self.tests.values()):
                continue
            if not recorded:  # an older gainscale wrote an empty identity for a source no test reached
                lines.append(f"{source}: the baseline does not record the settings its entries were made under: "
                             "--gainscale-update-baseline to replace them")
                continue
            for key in sorted(set(recorded) | set(identity)):
                old, new = recorded.get(key), identity.get(key)
                if old != new:
                    advice = _IDENTITY_ADVICE.get(key, "the same setting").format(old=old)
                    lines.append(f"{source}: made with {key} {old}, this run {new}: use {advice}, or --gainscale-update-baseline to replace it")
        return lines

    def threshold_differences(self, claim: ClaimInfo) -> list[str]:
        """One line per threshold of ``claim`` whose value differs from the baseline's."""
        recorded = self.thresholds.get(claim.id)
        if recorded is None:
            return []
        lines = []
        for name in sorted(set(recorded) | set(claim.thresholds)):
            old, new = recorded.get(name), claim.thresholds.get(name)
            if old != new:
                lines.append(f"claim {claim.id}: made with threshold {name} = {_show(old)}, this run {_show(new)}: pass "
                             f"--gainscale-threshold {name}={_show(old)}, or --gainscale-update-baseline to replace it")
        return lines

    # ------------------------------------------------------------------ during the run

    def compare(self, test: str, verdict: Verdict, tolerances: Tolerances) -> BaselineComparison:
        """Set ``verdict`` (of the test ``test``) beside its entry."""
        entry = self.tests.get(test)
        if entry is None:
            return BaselineComparison("new", f"{test} is not in baseline {self.path}: it {verdict.outcome} "
                                             f"({verdict.message}); {ACCEPT}")
        old, value = entry.outcome, entry.value
        was = f"baseline {self.path}: {old} with value {_show(value)}; now {verdict.outcome} with {_show(verdict.value)}"
        if old != verdict.outcome:
            status = "regression" if old == "passed" else "improvement"
            advice = "" if status == "regression" else f"; {ACCEPT}"
            return BaselineComparison(status, f"{status.upper()}: {verdict.message} ({was}){advice}", old, value)
        drifted = list(_drifts(entry.tracked, verdict, tolerances))
        if drifted:
            return BaselineComparison("drift", f"DRIFT beyond tolerance: {'; '.join(drifted)} ({was}); {ACCEPT} if intended", old, value)
        if old == "failed":
            return BaselineComparison("known_failing", f"known failing claim, recorded in baseline {self.path}: {verdict.message}", old, value)
        return BaselineComparison("same", f"as in baseline {self.path}", old, value)

    def missing(self, test: str, reason: str) -> BaselineComparison | None:
        """A test the baseline holds that did not get a verdict this run: a skip is not the same verdict."""
        entry = self.tests.get(test)
        if entry is None:
            return None
        return BaselineComparison(
            "missing", f"MISSING: baseline {self.path} holds {entry.outcome} with value {_show(entry.value)}, "
                       f"but this run reached no verdict: {reason}", entry.outcome, entry.value)

    def not_run(self, tests_run: Iterable[str]) -> list[str]:
        """Baseline entries with no evaluated test this run."""
        return sorted(set(self.tests) - set(tests_run))

    # ------------------------------------------------------------------ writing

    def updated(self, run: RunResult, collected: Collected | None, root: Path) -> Update:
        """This baseline with the run's evaluated tests recorded anew.

        Entries of tests evaluated now are replaced; entries of tests that no longer exist
        are removed (named), as are entries of a source whose settings changed and that
        this run did not evaluate again; entries of other sources are kept. Tests that
        reached no verdict write nothing, and a source none of whose tests reached one (no
        device, an empty cache) keeps its entries and its recorded settings as they were:
        such a run says nothing of them.
        """
        from . import __version__

        written = {c.test: _entry(c) for c in run.claims if c.verdict is not None}
        reached = {c.source for c in run.claims if c.verdict is not None}
        identities = {s.name: {"kind": s.info.kind, "identity": s.info.identity} for s in run.sources
                      if s.name in reached and s.info.identity}  # an unknown identity never replaces a known one
        changed = {name for name, s in identities.items() if self.sources.get(name, s) != s}
        removed = sorted(
            test for test, entry in self.tests.items() if test not in written and (
                entry.source in changed or (collected is not None and collected.no_longer_exists(test, entry, reached, root)))
        )
        kept = {t: e for t, e in self.tests.items() if t not in written and t not in removed}
        tests = {**kept, **written}
        held = {e.source for e in tests.values()}
        sources = {name: s for name, s in {**self.sources, **identities}.items() if name in held and s.get("identity")}
        thresholds = {**self.thresholds, **{c.claim.id: dict(c.claim.thresholds) for c in run.claims if c.verdict is not None}}
        unreached = {s.name: sum(e.source == s.name for e in kept.values()) for s in run.sources if s.name not in reached}
        summary = BaselineSummary(str(self.path), written={"written": len(written), "kept": len(kept), "removed": len(removed)},
                                  removed=tuple(removed))
        return Update(Baseline(self.path, sources, thresholds, tests, __version__), summary, unreached)

    def write(self) -> None:
        """Write the file atomically: sorted JSON, one value a line, so a review reads its diff."""
        body = {
            "gainscale_baseline": FORMAT,
            "gainscale_version": self.gainscale_version,
            "sources": self.sources,
            "thresholds": self.thresholds,
            "tests": {test: entry.to_json() for test, entry in self.tests.items()},
        }
        write_atomic(self.path, pretty_json(body))


@dataclass(frozen=True)
class Update:
    """What ``--gainscale-update-baseline`` makes of a run: the new baseline and what changed."""

    baseline: Baseline
    summary: BaselineSummary
    #: sources the run had tests of, none of which reached a verdict: how many of their entries were kept as they were
    unreached: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        """One line: how many entries were written, kept (and why, where a source measured nothing) and removed."""
        counts, removed = self.summary.written, self.summary.removed
        kept = f"{counts['kept']} kept"
        unreached = {source: n for source, n in self.unreached.items() if n}
        if unreached:
            kept += ": " + ", ".join(f"{source} reached no verdict in this run" + ("" if n == counts["kept"] else f" ({n} of them)")
                                     for source, n in unreached.items())
        return (f"baseline written: {self.baseline.path} ({counts['written']} entries written, {kept}, {counts['removed']} removed"
                + (f": {', '.join(removed)}" if removed else "") + ")")


def _entry(result) -> BaselineEntry:
    return BaselineEntry(result.module, result.source, result.claim.id, result.verdict, result.value,
                         {name: t.value for name, t in result.tracked.items()})


def _drifts(old: dict[str, float], verdict: Verdict, tolerances: Tolerances):
    for name, tracked in sorted(verdict.tracked.items()):
        if name in old and not tolerances.allows(tracked.kind, old[name], tracked.value):
            yield f"{name} {_show(old[name])} -> {_show(tracked.value)} (tolerance {tolerances.describe(tracked.kind)})"


def _show(value: float | None) -> str:
    return "none" if value is None else f"{value:.6g}"


class _Reader:
    """Reads a hand-editable baseline, naming the entry and field of any wrong type."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, field_name: str, expected: str, value: Any):
        raise BaselineError(f"{self.path}: {where}: field {field_name!r} must be {expected}, not {value!r}; "
                            "fix it or write the baseline anew with --gainscale-update-baseline")

    def mapping(self, raw: dict, key: str, where: str, read_value) -> dict:
        value = raw.get(key, {})
        if not isinstance(value, dict):
            self.fail(where, key, "an object", value)
        return {name: read_value(item, f"{key}[{name!r}]") for name, item in value.items()}

    def text(self, raw: dict, key: str, where: str) -> str:
        value = raw.get(key, "")
        if not isinstance(value, str):
            self.fail(where, key, "a string", value)
        return value

    def number(self, raw: dict, key: str, where: str, optional: bool = False) -> float | None:
        value = raw.get(key)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(where, key, "a finite number" + (" or null" if optional else ""), value)
        return float(value)

    def numbers(self, item: Any, where: str) -> dict[str, float]:
        if not isinstance(item, dict):
            raise BaselineError(f"{self.path}: {where} must be an object of numbers, not {item!r}")
        return {name: self.number(item, name, where) for name in item}

    def source(self, item: Any, where: str) -> dict[str, Any]:
        if not isinstance(item, dict) or not isinstance(item.get("identity"), dict):
            raise BaselineError(f"{self.path}: {where} must be an object with an 'identity' object, not {item!r}")
        return item

    def entry(self, item: Any, where: str) -> BaselineEntry:
        if not isinstance(item, dict):
            raise BaselineError(f"{self.path}: entry {where} must be an object, not {item!r}")
        where = f"entry {where}"
        outcome = item.get("outcome")
        if outcome not in ("passed", "failed"):
            self.fail(where, "outcome", "'passed' or 'failed'", outcome)
        return BaselineEntry(
            module=self.text(item, "module", where),
            source=self.text(item, "source", where),
            claim=self.text(item, "claim", where),
            outcome=outcome,
            value=self.number(item, "value", where, optional=True),
            tracked=self.numbers(item.get("tracked", {}), f"{where} field 'tracked'"),
        )
