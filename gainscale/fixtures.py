"""The fixtures a claims test uses; each hands off to gainscale's library objects.

They ship with the plugin (the ``gainscale`` entry point), so a project that only installed
gainscale writes claims with them:

``model_summary``
    one model's numbers from one source (per-model claims);
``source_summaries``
    every model of one source, smallest first (cross-model claims);
``thresholds``
    the claim's thresholds by name, with the run's overrides;
``record_verdict``
    records the verdict and holds it against the baseline; a failing verdict fails the test
    with its message alone;
``gainscale_claim``, ``gainscale_settings``, ``gainscale_session``
    the test's claim declaration, the run's settings, the run itself.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from typing import Any

import pytest

from .claims import Claim, Conditions
from .errors import GainscaleError
from . import sensitivity
from .results import CaseRecord, ModelUncertainty, Stability, Verdict
from .stats import PowerLawFit
from .session import ClaimSession
from .settings import Settings
from .sources import Unavailable
from .summary import ModelSummary

SESSION = pytest.StashKey[ClaimSession]()
#: each claims test's record, filled in as its fixtures run
RECORD = pytest.StashKey[CaseRecord]()


@pytest.fixture(scope="session")
def gainscale_session(pytestconfig) -> ClaimSession:
    """The run: its settings, sources, thresholds and baseline."""
    return pytestconfig.stash[SESSION]


@pytest.fixture(scope="session")
def gainscale_settings(gainscale_session) -> Settings:
    """What the run measures with: suite, device, dtype, prompts, cache ..."""
    return gainscale_session.settings


@pytest.fixture
def gainscale_claim(request, gainscale_session) -> Claim:
    """The claim the requesting test declared with ``@pytest.mark.claim``."""
    marker = request.node.get_closest_marker("claim")
    if marker is None:
        raise pytest.UsageError(f"{request.node.nodeid}: uses claim fixtures but has no @pytest.mark.claim")
    return gainscale_session.claims[Claim.from_marker(marker.args, marker.kwargs).id]


@pytest.fixture
def thresholds(gainscale_session, gainscale_claim) -> Conditions:
    """The claim's thresholds by name (``thresholds["trend_p_max"]``), with the run's overrides."""
    return gainscale_session.conditions(gainscale_claim)


@pytest.fixture
def model_summary(request, gainscale_session, gainscale_source, gainscale_model) -> ModelSummary:
    """One model's numbers from one source (skips, saying why, where the source has none here)."""
    summary = _obtain(request, lambda: gainscale_session.summary(gainscale_source, gainscale_model))
    _read(request, gainscale_session, gainscale_source, [summary])
    return summary


@pytest.fixture
def source_summaries(request, gainscale_session, gainscale_source) -> list[ModelSummary]:
    """Every model of one source, smallest first (skips, naming the missing, if any is missing)."""
    summaries = _obtain(request, lambda: gainscale_session.summaries(gainscale_source))
    _read(request, gainscale_session, gainscale_source, summaries)
    return summaries


@pytest.fixture
def record_verdict(request, gainscale_session) -> Callable[..., Verdict]:
    """Record the test's verdict and hold it against the baseline.

    Call it with a :class:`~gainscale.results.Verdict`, or with its fields
    (``record_verdict(passed=..., value=..., threshold=..., message=..., tracked=...)``).
    A failing verdict fails the test with its message (no traceback); one the numbers do
    not allow (``passed=None``) skips it; against a baseline, a known failing claim is an
    xfail and a flipped or drifted one fails.
    """

    def record(verdict: Verdict | None = None, **fields: Any) -> Verdict:
        verdict = verdict if verdict is not None else _verdict(fields)
        node = request.node
        comparison = gainscale_session.compare(node.nodeid, node.stash[RECORD].claim, verdict)
        update_record(node, verdict=_with_uncertainty(gainscale_session, node, verdict), baseline=comparison)
        if verdict.passed is not None:
            _how_sure(gainscale_session, node)
        for name in ("value", "threshold", "message"):  # JUnit XML carries them
            request.node.user_properties.append((name, getattr(verdict, name)))
        if comparison is not None and comparison.status == "known_failing":
            pytest.xfail(comparison.message)
        if comparison is not None and comparison.fails:
            pytest.fail(comparison.message, pytrace=False)
        if verdict.passed is None:
            _skip(verdict.message)
        if not verdict.passed:
            pytest.fail(verdict.message, pytrace=False)
        return verdict

    return record


# ---------------------------------------------------------------------------- helpers


def _skip(reason: str) -> None:
    """Skip the test, reported at the test's own line rather than here (as @pytest.mark.skip is)."""
    raise pytest.skip.Exception(reason, _use_item_location=True)


def update_record(node: pytest.Item, **changes: Any) -> None:
    """Change the test's record (it reaches the report through the test's phase reports)."""
    node.stash[RECORD] = replace(node.stash[RECORD], **changes)


def _how_sure(session: ClaimSession, node: pytest.Item) -> None:
    """The claim under every variant of the analysis, and its stability over resampled prompts."""
    record = node.stash[RECORD]
    claim = session.claims[record.claim.id]
    if not record.models:
        return
    data, conditions = _inputs(record), session.conditions(claim)
    names = [m.model for m in record.models]

    def other_gain(gain: str):
        summaries = session.summaries_under(record.source, names, gain)
        return summaries if claim.scope == "suite" else summaries[0]

    try:
        update_record(node, sensitivity=sensitivity.evaluate(claim, data, conditions, other_gain),
                      stability=session.stability(record.source, claim, data, conditions))
    except GainscaleError as error:  # a check that cannot take a variant's numbers must not cost the verdict
        update_record(node, stability=Stability(None, reason=f"{type(error).__name__}: {error}"))


def _with_uncertainty(session: ClaimSession, node: pytest.Item, verdict: Verdict) -> Verdict:
    """A fit's verdict carries alpha's bootstrap interval too, where the prompts can be resampled."""
    record = node.stash[RECORD]
    if verdict.evidence_of(PowerLawFit) is None or record.model is not None:
        return verdict
    alpha = session.alpha_bootstrap(record.source, list(record.models))
    return verdict if alpha is None else replace(verdict, evidence=(*verdict.evidence, alpha))


def _inputs(record: CaseRecord) -> Any:
    return list(record.models) if record.model is None else record.models[0]


def _verdict(fields: dict[str, Any]) -> Verdict:
    try:
        return Verdict(**{"threshold": None, **fields})
    except TypeError as error:
        raise pytest.UsageError(f"record_verdict: {error}; pass a Verdict or passed=, value=, threshold=, message=") from None


def _read(request, session: ClaimSession, source: str, summaries: list[ModelSummary]) -> None:
    """Note in the test's record which models it read from ``source``, and how they were obtained."""
    bootstraps = {s.model: session.bootstrap(source, s) for s in summaries}
    update_record(
        request.node,
        source_info=session.source_info(source),
        models=tuple(summaries),
        provenance=session.provenance(source, [s.model for s in summaries]),
        uncertainty={model: ModelUncertainty.of(b) for model, b in bootstraps.items() if b is not None},
    )


def _obtain(request, get: Callable[[], Any]) -> Any:
    """Run ``get()`` for a fixture. A source that cannot give the numbers skips the test with
    its reason, or fails it when the run requires measured numbers or the baseline holds the
    test; any other gainscale error fails it with its message alone (no traceback)."""
    session: ClaimSession = request.config.stash[SESSION]
    try:
        with _capture_suspended(request.config):
            return get()
    except Unavailable as unavailable:
        reason = str(unavailable)
        missing = session.missing(request.node.nodeid, reason)
        update_record(request.node, unavailable=reason, baseline=missing)
        if session.require_measured:
            pytest.fail(f"--gainscale-require-measured: {reason}", pytrace=False)
        if missing is not None:
            pytest.fail(missing.message, pytrace=False)
        _skip(reason)
    except GainscaleError as error:
        pytest.fail(str(error), pytrace=False)


@contextmanager
def _capture_suspended(config: pytest.Config):
    """Let a measurement's progress bar reach the terminal through pytest's capture."""
    capture = config.pluginmanager.getplugin("capturemanager")
    show = config.stash[SESSION].settings.progress and capture is not None
    with capture.global_and_fixture_disabled() if show else nullcontext():
        yield
