"""Finishing a claims run: what the baseline makes of it, an update of the baseline, the report.

A complete run writes its report into the report directory. A run that did not finish
(Ctrl-C, ``-x``) never replaces the last complete report: its partial report goes to
``partial/`` inside the report directory, says at the top that it was interrupted and lists
what did not run, and it refuses to update the baseline.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from .baseline import Collected
from .errors import GainscaleError
from .paths import display_path
from .report import WrittenReport, write_report
from .results import BaselineSummary, RunResult
from .session import ClaimSession

PARTIAL = "partial"


class ReportWriter:
    """Finishes a run for the plugin; keeps what the terminal summary should say."""

    def __init__(self, directory: Path | None, session: ClaimSession, root: Path):
        self.directory = directory
        self.session = session
        self.root = root
        self.run: RunResult | None = None
        self.written: WrittenReport | None = None
        self.notes: list[str] = []
        self.errors: list[str] = []

    def settings_record(self) -> dict[str, Any]:
        """The run's settings as the report's provenance states them."""
        settings = self.session.settings
        record: dict[str, Any] = {"sources": ", ".join(self.session.sources), "suite": settings.suite, "gain": settings.gain,
                                  "device": settings.device, "dtype": settings.dtype, "token_budget": settings.token_budget,
                                  "batch_size": settings.batch_size, "threads": settings.threads}
        try:
            prompts = self.session.measurer.prompts
            record.update(prompts=prompts.name, prompts_sha256=prompts.sha256)
        except GainscaleError as error:
            record.update(prompts=f"unreadable: {error}")
        if self.session.threshold_overrides:
            record["thresholds"] = ", ".join(f"{k}={v:g}" for k, v in self.session.threshold_overrides.items())
        return record

    def finish(self, run: RunResult, collected: Collected | None) -> None:
        """Compare with the baseline, update it if asked, and write the report."""
        run = run.with_baseline(self._baseline_summary(run))
        if self.session.update_baseline:
            run = self._update_baseline(run, collected)
        self.run = run
        if self.directory is not None:
            self._write(run)

    # ------------------------------------------------------------------ the baseline

    def _baseline_summary(self, run: RunResult) -> BaselineSummary | None:
        """Which tests the baseline lacks and which of its entries had no test: named, never silent."""
        baseline = self.session.baseline
        if not self.session.comparing():
            return None
        from . import __version__

        if baseline.gainscale_version and baseline.gainscale_version != __version__:
            # a note, not a refusal: the settings and the method version decide whether numbers compare
            self.notes.append(f"baseline {baseline.path} was written by gainscale {baseline.gainscale_version}, this is "
                              f"{__version__}; its settings and method version match, so it holds")
        evaluated = [c.test for c in run.claims if c.verdict is not None]
        missing = [c.test for c in run.claims if c.baseline is not None and c.baseline.status == "new"]
        not_run = baseline.not_run(evaluated)
        if missing:
            self.notes.append(f"not in baseline {baseline.path} ({len(missing)}): {', '.join(missing)}")
        if not_run:
            self.notes.append(f"in baseline {baseline.path} but not evaluated this run ({len(not_run)}): {', '.join(not_run)}")
        return BaselineSummary(str(baseline.path), tuple(missing), tuple(not_run))

    def _update_baseline(self, run: RunResult, collected: Collected | None) -> RunResult:
        baseline = self.session.baseline
        if run.interruption is not None:
            self.errors.append(f"gainscale: the run was {run.interruption.reason}; baseline {baseline.path} was not updated")
            return run
        update = baseline.updated(run, collected, self.root)
        try:
            update.baseline.write()
        except GainscaleError as error:
            self.errors.append(f"gainscale: could not write the baseline: {error}")
            return run
        self.notes.append(update.describe())
        return run.with_baseline(update.summary)

    # ------------------------------------------------------------------ the report

    def _write(self, run: RunResult) -> None:
        complete = run.interruption is None
        directory = self.directory if complete else self.directory / PARTIAL
        earlier = WrittenReport(self.directory).markdown.is_file()  # a complete report of an earlier run
        try:
            self.written = write_report(run, directory)
            if complete:
                shutil.rmtree(self.directory / PARTIAL, ignore_errors=True)  # an older partial report would mislead
        except (OSError, GainscaleError) as error:
            self.errors.append(f"gainscale: could not write the report to {display_path(directory)}: {error}")
            return
        where = display_path(self.written.markdown)
        if complete:
            self.notes.append(f"report: {where} (results.json, {len(self.written.figures)} figures)")
        else:
            kept = (f"the last complete report in {display_path(self.directory)} is kept" if earlier else
                    f"there was no complete report in {display_path(self.directory)} to keep")
            self.notes.append(f"the run was {run.interruption.reason}: its partial report is {where}; {kept}")
        self.notes += [f"figure not drawn: {problem}" for problem in self.written.figure_errors]
