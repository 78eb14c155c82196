"""How much do the claims depend on the prompts? A seeded bootstrap over prompts.

A layer's gain is the mean over prompts of ``gain_p = out_p / in_p``. One resample draws as
many prompt indices as there are prompts, with replacement, and recomputes every gain from
them: the same indices for every layer and for attention and MLP of a model, because a prompt
passes through all of them. Across models the prompts are resampled independently (each model
saw its own forward passes), and the power law is refitted on every resampled suite.

From the resamples: 95% percentile intervals of each layer's gain, of the final MLP gain, of the
contracting counts and of alpha (beside the t interval of the fit); and the *stability* of a
claim, the share of resamples in which its predicate holds. Everything follows from the seed:
one ``numpy.random.default_rng(seed)`` draws the models' prompt indices in the order given.
numpy loads inside the functions, so importing gainscale stays cheap.

Examples
--------
>>> gains = PromptGains("m", 10**6, attn=((0.5, 0.7),), mlp=((0.8, 1.4),))
>>> result = bootstrap_model(gains, resamples=200, seed=0)
>>> result.final_mlp_gain.estimate, sorted(set(result.mlp_draws_of_layer(0)))
(1.1, [0.8, 1.1, 1.4])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from .errors import GainscaleError
from .stats import FieldsJson, fit_power_law
from .summary import ModelSummary

#: resamples drawn unless asked otherwise
DEFAULT_RESAMPLES = 1000


@dataclass(frozen=True)
class PromptGains:
    """One model's per-prompt gains: what the bootstrap resamples."""

    #: the model's name
    model: str
    #: its parameter count
    n_params: int
    #: ``attn[layer][prompt]``: gain_p of the layer's attention
    attn: tuple[tuple[float, ...], ...]
    #: ``mlp[layer][prompt]``: gain_p of the layer's MLP
    mlp: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        _check_gains(self)

    @property
    def n_layers(self) -> int:
        return len(self.mlp)

    @property
    def n_prompts(self) -> int:
        return len(self.mlp[0])

    @classmethod
    def from_measurement(cls, measurement) -> PromptGains:
        """The per-prompt gains of a :class:`gainscale.measurement.Measurement` (from its kept norms)."""
        attn = tuple(tuple(measurement.attention.prompt_gains(k)) for k in range(measurement.n_layers))
        mlp = tuple(tuple(measurement.mlp.prompt_gains(k)) for k in range(measurement.n_layers))
        return cls(measurement.model, measurement.n_params, attn, mlp)


@dataclass(frozen=True)
class Interval(FieldsJson):
    """A statistic as measured and its bootstrap percentile interval."""

    #: the statistic on the prompts as measured (no resampling)
    estimate: float
    #: the (1 - level) / 2 quantile of the resampled statistic
    lower: float
    #: the (1 + level) / 2 quantile of the resampled statistic
    upper: float
    #: the interval's nominal coverage, e.g. 0.95
    level: float

    def contains(self, value: float) -> bool:
        return self.lower <= value <= self.upper


@dataclass(frozen=True, repr=False)
class ModelBootstrap:
    """One model's gains and contracting counts over the resamples of its prompts."""

    #: the model's name
    model: str
    #: its parameter count
    n_params: int
    #: prompts drawn in each resample (all of the model's)
    n_prompts: int
    #: the seed of the rng that drew the suite's resamples (this model's follow its place in the list)
    seed: int
    #: each layer's attention gain
    attn_gains: tuple[Interval, ...]
    #: each layer's MLP gain
    mlp_gains: tuple[Interval, ...]
    #: the last layer's MLP gain
    final_mlp_gain: Interval
    #: layers whose attention gain is < 1 (ends are resampled counts: the interval's quantiles are
    #: taken with numpy's ``lower`` and ``higher`` methods, so they are whole numbers)
    attn_contracting: Interval
    #: layers whose MLP gain is < 1 (whole-number ends, as ``attn_contracting``)
    mlp_contracting: Interval
    #: ``attn_draws[resample][layer]``: the resampled attention gains
    attn_draws: tuple[tuple[float, ...], ...]
    #: ``mlp_draws[resample][layer]``: the resampled MLP gains
    mlp_draws: tuple[tuple[float, ...], ...]

    def __repr__(self) -> str:  # short: the draws are thousands of numbers
        return f"ModelBootstrap({self.model}, {self.resamples} resamples, final MLP gain {self.final_mlp_gain})"

    @property
    def resamples(self) -> int:
        return len(self.mlp_draws)

    @property
    def level(self) -> float:
        return self.final_mlp_gain.level

    def mlp_draws_of_layer(self, layer: int) -> list[float]:
        """The resampled MLP gains of one layer (negative indices count from the last layer)."""
        return [draw[layer] for draw in self.mlp_draws]

    def summary(self, resample: int) -> ModelSummary:
        """The model as one resample of its prompts sees it, for a claim's predicate."""
        return ModelSummary.from_gains(self.model, self.n_params, self.attn_draws[resample], self.mlp_draws[resample])

    def summaries(self) -> list[ModelSummary]:
        return [self.summary(b) for b in range(self.resamples)]

    def stability(self, predicate: Callable[[ModelSummary], bool]) -> float:
        """The share of resamples in which ``predicate`` holds, e.g. ``lambda s: s.final_mlp_gain > 1``."""
        return sum(bool(predicate(s)) for s in self.summaries()) / self.resamples

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("attn_gains", "mlp_gains"):
            data[name] = [i.to_json() for i in data[name]]
        for name in ("final_mlp_gain", "attn_contracting", "mlp_contracting"):
            data[name] = data[name].to_json()
        for name in ("attn_draws", "mlp_draws"):
            data[name] = [list(row) for row in data[name]]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelBootstrap:
        values = {f.name: data[f.name] for f in fields(cls)}
        for name in ("attn_gains", "mlp_gains"):
            values[name] = tuple(Interval.from_json(i) for i in values[name])
        for name in ("final_mlp_gain", "attn_contracting", "mlp_contracting"):
            values[name] = Interval.from_json(values[name])
        for name in ("attn_draws", "mlp_draws"):
            values[name] = tuple(tuple(row) for row in values[name])
        return cls(**values)


@dataclass(frozen=True, repr=False)
class SuiteBootstrap:
    """Every model's bootstrap and the power law refitted on each resampled suite."""

    #: one per model, in the order given
    models: tuple[ModelBootstrap, ...]
    #: the seed of the one rng that drew every model's resamples, in order
    seed: int
    #: alpha's percentile interval over the resampled suites (estimate: the fit of the measured
    #: gains); None with fewer than 3 models or models of one size
    alpha: Interval | None
    #: alpha's t interval at the same level (n - 2 df), from the measured gains; None as ``alpha``
    alpha_ols: tuple[float, float] | None
    #: alpha of each resampled suite (resample b of every model together)
    alpha_draws: tuple[float, ...]

    def __repr__(self) -> str:
        return f"SuiteBootstrap({len(self.models)} models, {self.resamples} resamples, seed {self.seed}, alpha {self.alpha})"

    @property
    def resamples(self) -> int:
        return self.models[0].resamples

    def model(self, name: str) -> ModelBootstrap:
        """One model's bootstrap, by name."""
        for result in self.models:
            if result.model == name:
                return result
        raise GainscaleError(f"no model {name!r} in this bootstrap; it has {', '.join(m.model for m in self.models)}")

    def suite(self, resample: int) -> list[ModelSummary]:
        """Every model as resample ``resample`` sees it."""
        return [m.summary(resample) for m in self.models]

    def stability(self, predicate: Callable[[Sequence[ModelSummary]], bool]) -> float:
        """The share of resampled suites in which ``predicate`` (over every model's summary) holds.

        Examples: ``lambda suite: scaling_law_significant(suite, 0.05).passed`` for claim 3a.
        """
        return sum(bool(predicate(self.suite(b))) for b in range(self.resamples)) / self.resamples

    def to_json(self) -> dict[str, Any]:
        return {
            "models": [m.to_json() for m in self.models],
            "seed": self.seed,
            "alpha": None if self.alpha is None else self.alpha.to_json(),
            "alpha_ols": None if self.alpha_ols is None else list(self.alpha_ols),
            "alpha_draws": list(self.alpha_draws),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SuiteBootstrap:
        return cls(
            models=tuple(ModelBootstrap.from_json(m) for m in data["models"]),
            seed=data["seed"],
            alpha=None if data["alpha"] is None else Interval.from_json(data["alpha"]),
            alpha_ols=None if data["alpha_ols"] is None else tuple(data["alpha_ols"]),
            alpha_draws=tuple(data["alpha_draws"]),
        )


def bootstrap_prompts(models: Sequence[PromptGains], resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                      level: float = 0.95) -> SuiteBootstrap:
    """Resample every model's prompts and refit the power law on each resampled suite.

    Parameters
    ----------
    models
        Each model's per-prompt gains and parameter count.
    resamples
        Resamples per model; resample b of every model makes resampled suite b.
    seed
        Seeds the one rng that draws every model's prompt indices, model after model.
    level
        The coverage of the percentile intervals.

    Returns
    -------
    SuiteBootstrap
    """
    import numpy as np

    _check_settings(resamples, level)
    if not models:
        raise GainscaleError("a bootstrap needs at least one model, got none")
    rng = np.random.default_rng(seed)
    results = tuple(_resample_model(gains, rng, resamples, seed, level) for gains in models)
    return combine(results, seed, level)


def combine(results: Sequence[ModelBootstrap], seed: int, level: float = 0.95) -> SuiteBootstrap:
    """The suite of models bootstrapped one by one (each from its own seed): resample b of every
    model makes resampled suite b, on which the power law is refitted."""
    alpha, alpha_ols, alpha_draws = _alpha_bootstrap(results, level)
    return SuiteBootstrap(tuple(results), seed, alpha, alpha_ols, alpha_draws)


def bootstrap_model(gains: PromptGains, resamples: int = DEFAULT_RESAMPLES, seed: int = 0, level: float = 0.95) -> ModelBootstrap:
    """One model's bootstrap: the same as the first model of :func:`bootstrap_prompts` with this seed."""
    import numpy as np

    _check_settings(resamples, level)
    return _resample_model(gains, np.random.default_rng(seed), resamples, seed, level)


def _resample_model(gains: PromptGains, rng, resamples: int, seed: int, level: float) -> ModelBootstrap:
    """Draw ``resamples`` sets of prompt indices and recompute every layer's gains from each."""
    import numpy as np

    n = gains.n_prompts
    indices = rng.integers(0, n, size=(resamples, n))
    # counts[b, p]: how often resample b drew prompt p; a resampled gain is counts @ gains / n
    counts = np.bincount((indices + n * np.arange(resamples)[:, None]).ravel(), minlength=resamples * n).reshape(resamples, n)
    attn = counts @ np.asarray(gains.attn, dtype=float).T / n
    mlp = counts @ np.asarray(gains.mlp, dtype=float).T / n
    attn_gains, mlp_gains = _layer_means(gains.attn), _layer_means(gains.mlp)
    return ModelBootstrap(
        model=gains.model,
        n_params=gains.n_params,
        n_prompts=n,
        seed=seed,
        attn_gains=tuple(_interval(attn[:, k], attn_gains[k], level) for k in range(gains.n_layers)),
        mlp_gains=tuple(_interval(mlp[:, k], mlp_gains[k], level) for k in range(gains.n_layers)),
        final_mlp_gain=_interval(mlp[:, -1], mlp_gains[-1], level),
        attn_contracting=_count_interval((attn < 1).sum(axis=1), sum(g < 1 for g in attn_gains), level),
        mlp_contracting=_count_interval((mlp < 1).sum(axis=1), sum(g < 1 for g in mlp_gains), level),
        attn_draws=tuple(map(tuple, attn.tolist())),
        mlp_draws=tuple(map(tuple, mlp.tolist())),
    )


def _alpha_bootstrap(results: Sequence[ModelBootstrap], level: float):
    """alpha's percentile interval over the resampled suites, its t interval, and the draws."""
    import numpy as np

    x = np.log10([float(r.n_params) for r in results])
    if len(results) < 3 or np.all(x == x[0]):
        return None, None, ()
    fit = fit_power_law([r.model for r in results], [r.n_params for r in results], [r.final_mlp_gain.estimate for r in results])
    y = np.log10(np.column_stack([[draw[-1] for draw in r.mlp_draws] for r in results]))  # (resamples, models)
    dx = x - x.mean()
    draws = (y - y.mean(axis=1, keepdims=True)) @ dx / (dx @ dx)  # least-squares slope of every resampled suite
    return _interval(draws, fit.alpha, level), fit.confidence_interval(level), tuple(draws.tolist())


def _interval(draws, estimate: float, level: float) -> Interval:
    """numpy's default (linear) percentiles of the draws."""
    import numpy as np

    lower, upper = np.percentile(draws, [50 * (1 - level), 50 * (1 + level)])
    return Interval(float(estimate), float(lower), float(upper), level)


def _count_interval(draws, estimate: int, level: float) -> Interval:
    """Percentiles of resampled counts that are counts themselves: the draw at or below, at or above."""
    import numpy as np

    lower = np.percentile(draws, 50 * (1 - level), method="lower")
    upper = np.percentile(draws, 50 * (1 + level), method="higher")
    return Interval(float(estimate), float(lower), float(upper), level)


def _layer_means(rows: Sequence[Sequence[float]]) -> list[float]:
    """Each layer's gain, the mean over prompts, as :meth:`ModuleNorms.gains` computes it."""
    return [math.fsum(row) / len(row) for row in rows]


def _check_gains(gains: PromptGains) -> None:
    """Refuse gains that cannot be resampled, naming the model, module and layer."""
    if not gains.mlp or len(gains.attn) != len(gains.mlp):
        raise GainscaleError(f"{gains.model}: attention and MLP need gains for the same layers, "
                             f"got {len(gains.attn)} and {len(gains.mlp)} layers")
    prompts = len(gains.mlp[0])
    for module, rows in (("attention", gains.attn), ("MLP", gains.mlp)):
        for layer, row in enumerate(rows):
            if len(row) != prompts or prompts == 0:
                raise GainscaleError(f"{gains.model}: {module} layer {layer} has gains for {len(row)} prompts, "
                                     f"layer 0 of the MLP for {prompts}; every layer needs one per prompt (at least one)")
            bad = [g for g in row if not (g > 0 and math.isfinite(g))]
            if bad:
                raise GainscaleError(f"{gains.model}: {module} layer {layer} has a gain that is not a finite "
                                     f"positive number ({bad[0]}); nothing was resampled")


def _check_settings(resamples: int, level: float) -> None:
    if not (isinstance(resamples, int) and resamples >= 1):
        raise GainscaleError(f"a bootstrap needs a whole number of resamples >= 1, got {resamples!r}")
    if not 0 < level < 1:
        raise GainscaleError(f"a percentile interval's level must be between 0 and 1, got {level!r}")
