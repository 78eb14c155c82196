"""One run of the claims: its settings, sources, thresholds and baseline, evaluated lazily.

The pytest plugin creates one :class:`ClaimSession` per test session and asks it which cases
to parametrize, for each case's numbers, and what the baseline makes of each verdict; nothing
here knows pytest.
"""

from __future__ import annotations

import difflib
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from typing import Any

from .baseline import Baseline, Tolerances
from .bootstrap import DEFAULT_RESAMPLES, ModelBootstrap, PromptGains, bootstrap_model, combine
from .claims import Claim, Conditions
from .errors import ClaimDeclarationError, OptionError
from .measurer import Measurer
from .progress import progress_bar
from .results import AlphaBootstrap, BaselineComparison, ClaimInfo, SourceInfo, Stability, Verdict
from .settings import Settings
from .sources import Source, Unavailable, default_source_names, open_source
from .suites import Suite, load_suite
from .summary import ModelSummary


@dataclass(frozen=True)
class Case:
    """One parametrization of a claims test: a source, and a model for per-model claims."""

    source: str
    #: None for a cross-model claim
    model: str | None
    needs_gpu: bool

    @property
    def id(self) -> str:
        return self.source if self.model is None else f"{self.source}-{self.model}"


@dataclass
class ClaimSession:
    """The sources a run evaluates the claims on, under one set of settings and thresholds."""

    settings: Settings = field(default_factory=Settings)
    #: the sources named by the run; empty for the default ones
    source_names: tuple[str, ...] = ()
    #: threshold values the run sets, by name, overriding the claims' defaults
    threshold_overrides: Mapping[str, float] = field(default_factory=dict)
    #: the baseline verdicts are compared with; None for none
    baseline: Baseline | None = None
    tolerances: Tolerances = field(default_factory=Tolerances)
    #: record this run as the new baseline instead of comparing with it
    update_baseline: bool = False
    #: a test whose numbers cannot be had fails instead of skipping
    require_measured: bool = False
    #: every claim declared so far, by id
    claims: dict[str, Claim] = field(default_factory=dict)
    #: resamples of the prompts for the bootstrap; 0 for none
    bootstrap_resamples: int = DEFAULT_RESAMPLES
    #: the bootstrap's seed; each model's resamples are drawn from it and the model's name
    bootstrap_seed: int = 0
    _bootstraps: dict[tuple[str, str], ModelBootstrap | None] = field(default_factory=dict, repr=False)

    @cached_property
    def suite(self) -> Suite:
        return load_suite(self.settings.suite, self.settings.cache_dir, self.settings.weights_dir)

    @cached_property
    def measurer(self) -> Measurer:
        return Measurer(self.suite, self.settings)

    @cached_property
    def sources(self) -> dict[str, Source]:
        """Every source of the run, by name; an unknown name raises, naming the known ones."""
        names = self.source_names or tuple(default_source_names(self.measurer))
        return {name: open_source(name, self.measurer) for name in dict.fromkeys(names)}

    # ------------------------------------------------------------------ claims

    def declare(self, claim: Claim) -> Claim:
        """Register ``claim``; the same id declared differently is refused, naming the difference."""
        known = self.claims.setdefault(claim.id, claim)
        if known != claim:
            differences = ", ".join(f"{f.name} {getattr(known, f.name)!r} vs {getattr(claim, f.name)!r}"
                                    for f in fields(Claim) if f.compare and getattr(known, f.name) != getattr(claim, f.name))
            raise ClaimDeclarationError(f"claim {claim.id!r} is declared twice, differently ({differences}); "
                                        "give each claim its own id, or share one Claim object")
        return claim

    def conditions(self, claim: Claim) -> Conditions:
        """The claim's thresholds, with the run's overrides applied."""
        return Conditions({name: self.threshold_overrides.get(name, value) for name, value in claim.thresholds.items()})

    def claim_info(self, claim: Claim) -> ClaimInfo:
        return claim.info(self.conditions(claim))

    def unknown_threshold_overrides(self) -> list[str]:
        """Overrides that name no threshold of any declared claim, with the closest known name."""
        known = sorted({name for claim in self.claims.values() for name in claim.thresholds})
        lines = []
        for name in sorted(set(self.threshold_overrides) - set(known)):
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            lines.append(f"--gainscale-threshold {name}: no claim of this run has a threshold {name!r}{hint} "
                         f"Known: {', '.join(known) or '(none)'}")
        return lines

    # ------------------------------------------------------------------ cases and numbers

    def cases(self, scope: str) -> list[Case]:
        """Every (source, model) a per-model claim is tested on, or every source for a cross-model one."""
        if scope == "model":
            return [Case(name, model, s.needs_gpu()) for name, s in self.sources.items() for model in s.model_names()]
        return [Case(name, None, s.needs_gpu()) for name, s in self.sources.items()]

    def summary(self, source: str, model: str) -> ModelSummary:
        """One model's numbers under the run's gain definition; raises :class:`Unavailable` saying why."""
        return self.sources[source].summary(model, self.settings.gain)

    def source_info(self, source: str) -> SourceInfo:
        """What the report says of ``source``; its identity includes the run's gain definition."""
        info = self.sources[source].info()
        return replace(info, identity={**info.identity, "gain": self.settings.gain})

    def summaries(self, source: str) -> list[ModelSummary]:
        """Every model of ``source``, smallest first, for a cross-model claim; raises
        :class:`Unavailable` naming the missing.

        A control (the same network with its weights drawn again) stands beside its trained
        model in the per-model claims, and is left out here: it is not another size.
        """
        found, missing = [], []
        models = self.sources[source].model_names()
        # the bar shows only after two seconds: for a table it never does, for measuring it says how far
        with progress_bar(len(models), f"{source} models", "model", self.settings.progress) as bar:
            for model in models:
                try:
                    found.append(self.summary(source, model))
                except Unavailable as unavailable:
                    missing.append((model, str(unavailable)))
                bar.update()
        if missing:
            names = ", ".join(model for model, _ in missing)
            raise Unavailable(f"needs all {len(found) + len(missing)} models of {source}; {len(missing)} missing ({names}): {missing[0][1]}")
        return sorted((s for s in found if s.control_of is None), key=lambda s: s.n_params)

    def summaries_under(self, source: str, models: Sequence[str], gain: str) -> list[ModelSummary]:
        """The models' summaries under another gain definition (for the sensitivity table)."""
        return [self.sources[source].summary(model, gain) for model in models]

    def provenance(self, source: str, models: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {model: self.sources[source].provenance(model) for model in models}

    # ------------------------------------------------------------------ how sure a verdict is

    def bootstrap(self, source: str, summary: ModelSummary) -> ModelBootstrap | None:
        """The model's prompts resampled (cached); None where the source kept no per-prompt gains.

        Each model's resamples come from the run's seed and the model's name, so every xdist
        worker draws the same ones, whatever it ran before.
        """
        key = (source, summary.model)
        if key not in self._bootstraps:
            self._bootstraps[key] = _bootstrap(summary, self.bootstrap_resamples, self.bootstrap_seed)
        return self._bootstraps[key]

    def stability(self, source: str, claim: Claim, data: Any, conditions: Conditions) -> Stability:
        """How often ``claim``'s check passes over resampled prompts of the models in ``data``."""
        if claim.check is None:
            return Stability(None, reason="the claim declares no check to run on resamples")
        summaries = data if isinstance(data, list) else [data]
        bootstraps = [self.bootstrap(source, s) for s in summaries]
        if not bootstraps or any(b is None for b in bootstraps):
            return Stability(None, reason=f"{source} kept no per-prompt gains to resample")
        lean = replace(conditions, full=False)  # the verdict alone, a thousand times
        passes = (lambda d: claim.check(d, lean).passed is True)
        if isinstance(data, list):
            share = combine(bootstraps, self.bootstrap_seed).stability(passes)
        else:
            share = bootstraps[0].stability(passes)
        return Stability(share, self.bootstrap_resamples, self.bootstrap_seed)

    def alpha_bootstrap(self, source: str, summaries: list[ModelSummary]) -> AlphaBootstrap | None:
        """The power law's exponent over resampled prompts; None without per-prompt gains or a fit."""
        bootstraps = [self.bootstrap(source, s) for s in summaries]
        if not bootstraps or any(b is None for b in bootstraps):
            return None
        suite = combine(bootstraps, self.bootstrap_seed)
        if suite.alpha is None:
            return None
        return AlphaBootstrap(suite.alpha, suite.alpha_ols, suite.resamples, self.bootstrap_seed)

    # ------------------------------------------------------------------ the baseline

    def comparing(self) -> bool:
        return self.baseline is not None and not self.update_baseline

    def setting_differences(self) -> list[str]:
        """Why this run's settings do not match the baseline's (empty when they do, or without one)."""
        if not self.comparing():
            return []
        identities = {name: self.source_info(name).identity for name in self.sources}
        lines = self.baseline.setting_differences(identities)
        for claim_id, recorded in self.baseline.thresholds.items():
            for name, value in sorted(recorded.items()):
                if name in self.threshold_overrides and self.threshold_overrides[name] != value:
                    lines.append(f"claim {claim_id}: made with threshold {name} = {value:g}, this run "
                                 f"{self.threshold_overrides[name]:g}: pass --gainscale-threshold {name}={value:g}, "
                                 "or --gainscale-update-baseline to replace it")
        return lines

    def compare(self, test: str, claim: ClaimInfo, verdict: Verdict) -> BaselineComparison | None:
        """The verdict of ``test`` beside the baseline, or None when there is nothing to compare."""
        if not self.comparing():
            return None
        changed = self.baseline.threshold_differences(claim)
        if changed:
            return BaselineComparison("settings", "; ".join(changed))
        if verdict.passed is None:
            return self.baseline.missing(test, verdict.message)
        return self.baseline.compare(test, verdict, self.tolerances)

    def missing(self, test: str, reason: str) -> BaselineComparison | None:
        """A test the baseline holds whose numbers could not be had this run."""
        return self.baseline.missing(test, reason) if self.comparing() else None


def _bootstrap(summary: ModelSummary, resamples: int, seed: int) -> ModelBootstrap | None:
    if resamples < 1 or summary.attn_prompt_gains is None or summary.mlp_prompt_gains is None:
        return None
    gains = PromptGains(summary.model, summary.n_params, summary.attn_prompt_gains, summary.mlp_prompt_gains)
    return bootstrap_model(gains, resamples, seed=seed + zlib.crc32(summary.model.encode("utf-8")))


def parse_threshold_overrides(lines: Iterable[str]) -> dict[str, float]:
    """``["name=value", ...]`` (from ``--gainscale-threshold`` or the ini key) as a dict."""
    overrides = {}
    for line in lines:
        name, equals, value = str(line).partition("=")
        name, value = name.strip(), value.strip()
        try:
            if not equals or not name:
                raise ValueError
            overrides[name] = float(value)
        except ValueError:
            raise OptionError(f"--gainscale-threshold {line!r}: write NAME=VALUE with a number, e.g. trend_p_max=0.05") from None
    return overrides
