"""Claims: what a test declares it checks, the conditions it is checked under, and its verdict.

A claim is declared where it is tested, with a :class:`Claim` object or the ``claim`` marker's
arguments::

    FIRST_ATTENTION_EXPANDS = Claim(
        id="first_attention_expands",
        statement="the first layer's attention expands (gain > {first_attention_gain_min:g})",
        scope="model",
        thresholds={"first_attention_gain_min": 1.0},
        where="my notes, section 2",
    )

    @pytest.mark.claim(FIRST_ATTENTION_EXPANDS)
    def test_first_attention_expands(model_summary, thresholds, record_verdict):
        gain = model_summary.attn_gains[0]
        record_verdict(passed=gain > thresholds["first_attention_gain_min"], value=gain, ...)

Everything downstream (the report, results.json, the terminal summary, the baseline) reads
the declaration that travels with each result; nothing matches a claim by its id.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ClaimDeclarationError, VariantUnavailable
from .results import ClaimInfo, Verdict

__all__ = ["MARKABLE", "SCOPES", "Claim", "Conditions", "Verdict"]  # Verdict: where claims are written, beside Claim

#: a claim is evaluated once per model, or once across all models of a source
SCOPES = ("model", "suite")
#: the quantities the figures draw that a claim's threshold can be a level of (see ``Claim.marks``)
MARKABLE = {
    "attention_contracting_pct": "the share of a model's layers whose attention contracts, in percent: "
                                 "a line across the contracting-share panels",
}
_SCOPE_ALIASES = {"model": "model", "per-model": "model", "suite": "suite", "cross-model": "suite"}
_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,79}$")


@dataclass(frozen=True)
class Claim:
    """A claim about layer internals, as a test declares it.

    Parameters
    ----------
    id
        A short unique name (letters, digits, ``_ . -``), e.g. ``final_mlp_expands``.
    statement
        The claim in one sentence. ``{name}`` fields are filled with the run's thresholds, so
        the report's title states what was actually tested.
    scope
        ``"model"`` (``"per-model"``): one verdict per model; ``"suite"`` (``"cross-model"``):
        one verdict across every model of a source.
    thresholds
        The claim's thresholds and their defaults, by name; a run may change them with
        ``--gainscale-threshold NAME=VALUE`` or the ``gainscale_thresholds`` ini key.
    where
        Where the claim is made (a paper and section), shown beside it.
    number
        Its number in that paper (``"3a"``); numbered claims come first in the report, in order.
    value_format, threshold_format
        How the verdict's value and threshold read in the report, e.g. ``"p = {}"``.
    check
        Optional: the function the test uses to reach its verdict, ``check(data, thresholds)``
        with the model's summary (per-model) or the source's summaries (cross-model). Given, it
        lets gainscale re-evaluate the claim under variants (the sensitivity table) and on
        resamples of the prompts (its stability).
    cutoffs
        The names of thresholds that are a gain's dividing line between contracting and
        expanding (1 in the paper): the sensitivity variants move them with the contracting
        counts (0.95, 1.05).
    marks
        Which of the figures' quantities (:data:`MARKABLE`) a threshold is a level of, e.g.
        ``{"attention_contracting_pct": "attention_contracting_min_pct"}``: the figures draw
        the threshold's value as a line wherever they show that quantity. Without it no line
        is drawn; the figures never look for a threshold by its name.
    """

    id: str
    statement: str
    scope: str = "model"
    thresholds: Mapping[str, float] = field(default_factory=dict)
    where: str = ""
    number: str | None = None
    value_format: str = "{}"
    threshold_format: str = "{}"
    check: Callable[..., Any] | None = field(default=None, compare=False, repr=False)
    cutoffs: tuple[str, ...] = ()
    marks: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.id, str) or not _ID.match(self.id):
            raise ClaimDeclarationError(f"claim id {self.id!r}: use letters, digits, '_', '.' or '-', starting with a letter")
        if not isinstance(self.statement, str) or not self.statement.strip():
            raise ClaimDeclarationError(f"claim {self.id}: statement must be a non-empty sentence, not {self.statement!r}")
        scope = _SCOPE_ALIASES.get(self.scope) if isinstance(self.scope, str) else None
        if scope is None:
            raise ClaimDeclarationError(f"claim {self.id}: scope {self.scope!r} is not one of {', '.join(_SCOPE_ALIASES)}")
        object.__setattr__(self, "scope", scope)
        object.__setattr__(self, "thresholds", dict(_checked_thresholds(self.id, self.thresholds)))
        for name in ("where", "value_format", "threshold_format"):
            if not isinstance(getattr(self, name), str):
                raise ClaimDeclarationError(f"claim {self.id}: {name} must be a string, not {getattr(self, name)!r}")
        if self.number is not None:
            object.__setattr__(self, "number", str(self.number))
        if self.check is not None and not callable(self.check):
            raise ClaimDeclarationError(f"claim {self.id}: check must be a function, not {self.check!r}")
        object.__setattr__(self, "cutoffs", tuple(self.cutoffs))
        unknown = [name for name in self.cutoffs if name not in self.thresholds]
        if unknown:
            raise ClaimDeclarationError(f"claim {self.id}: cutoff {unknown[0]!r} is not one of its thresholds ({', '.join(self.thresholds) or 'none'})")
        object.__setattr__(self, "marks", dict(_checked_marks(self.id, self.marks, self.thresholds)))

    @classmethod
    def from_marker(cls, args: tuple, kwargs: Mapping[str, Any]) -> Claim:
        """The claim a ``@pytest.mark.claim(...)`` declares: a :class:`Claim`, or its fields."""
        if len(args) == 1 and isinstance(args[0], Claim) and not kwargs:
            return args[0]
        if len(args) != 1 or not isinstance(args[0], str):
            raise ClaimDeclarationError(
                "@pytest.mark.claim takes a Claim object, or a claim id and keyword fields "
                f"(statement=..., scope=..., thresholds=..., where=...); got args={args!r}"
            )
        unknown = sorted(set(kwargs) - set(cls.__dataclass_fields__) - {"id"})
        if unknown:
            raise ClaimDeclarationError(
                f"@pytest.mark.claim({args[0]!r}): unknown argument {unknown[0]!r}; "
                f"known: {', '.join(f for f in cls.__dataclass_fields__ if f != 'id')}"
            )
        return cls(id=args[0], **{"statement": args[0].replace("_", " "), **kwargs})

    def info(self, thresholds: Mapping[str, float]) -> ClaimInfo:
        """The declaration as results carry it, with the run's threshold values filled in."""
        return ClaimInfo(
            id=self.id,
            statement=self.title(thresholds),
            scope=self.scope,
            where=self.where,
            number=self.number,
            thresholds=dict(thresholds),
            value_format=self.value_format,
            threshold_format=self.threshold_format,
            marks=dict(self.marks),
        )

    def title(self, thresholds: Mapping[str, float]) -> str:
        """The statement with the thresholds' values in place of their ``{name}`` fields."""
        try:
            return self.statement.format_map(dict(thresholds))
        except (KeyError, IndexError, ValueError) as error:
            raise ClaimDeclarationError(
                f"claim {self.id}: statement {self.statement!r} cannot be filled with its thresholds "
                f"({', '.join(thresholds) or 'none'}): {type(error).__name__} {error}"
            ) from None


def _checked_thresholds(claim: str, thresholds: Any) -> Iterator[tuple[str, float]]:
    if not isinstance(thresholds, Mapping):
        raise ClaimDeclarationError(f"claim {claim}: thresholds must map names to numbers, not {thresholds!r}")
    for name, value in thresholds.items():
        if not isinstance(name, str) or not _ID.match(name):
            raise ClaimDeclarationError(f"claim {claim}: threshold name {name!r} must be an identifier")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ClaimDeclarationError(f"claim {claim}: threshold {name} = {value!r} must be a finite number")
        yield name, float(value)


def _checked_marks(claim: str, marks: Any, thresholds: Mapping[str, float]) -> Iterator[tuple[str, str]]:
    if not isinstance(marks, Mapping):
        raise ClaimDeclarationError(f"claim {claim}: marks must map a figure quantity to a threshold name, not {marks!r}")
    for quantity, threshold in marks.items():
        if quantity not in MARKABLE:
            raise ClaimDeclarationError(f"claim {claim}: marks {quantity!r}, which no figure draws; known: {', '.join(MARKABLE)}")
        if threshold not in thresholds:
            raise ClaimDeclarationError(
                f"claim {claim}: marks {quantity} with {threshold!r}, which is not one of its thresholds ({', '.join(thresholds) or 'none'})")
        yield quantity, threshold


@dataclass(frozen=True)
class Conditions(Mapping[str, float]):
    """What a claim is evaluated under: its thresholds by name, and the analysis' choices.

    A mapping of threshold names to values (``thresholds["trend_p_max"]``); the choices beside
    them are the main analysis' unless a sensitivity variant changes them.
    """

    values: Mapping[str, float]
    #: which parameter count cross-model fits use: ``total`` (the paper's) or ``non_embedding``
    parameters: str = "total"
    #: p-values of rank tests from their exact permutation distribution instead of asymptotics
    exact_p: bool = False
    #: compute every statistic the report shows (exact p-values beside asymptotic ones ...);
    #: False inside resampling loops, where only the verdict counts
    full: bool = True

    def __getitem__(self, name: str) -> float:
        try:
            return self.values[name]
        except KeyError:
            raise KeyError(f"no threshold {name!r}; this claim declares {', '.join(self.values) or 'none'}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def n_params(self, summary) -> int:
        """The parameter count of ``summary`` that fits use under these conditions."""
        if self.parameters == "total":
            return summary.n_params
        if summary.n_embedding_params is None:
            raise VariantUnavailable(f"{summary.model}: the source gives no embedding parameter count")
        return summary.n_params - summary.n_embedding_params
