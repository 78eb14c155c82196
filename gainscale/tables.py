"""Plain-text tables for the terminal: a measurement, a suite, the cache."""

from __future__ import annotations

from pathlib import Path

from .cache import CacheEntry
from .loading import read_config
from .measurement import GAIN_DEFINITIONS, Measurement
from .params import count_parameters
from .suites import Suite


def measurement_tables(measurement: Measurement, from_cache: bool, gain: str = "paper") -> str:
    """The per-layer table (gains, contracting or not) and the summary of one measurement, under
    the gain definition ``gain``."""
    summary = measurement.summary(gain)
    rows = [f"{'layer':>5}  {'attention gain':>14}  {'':11}  {'MLP gain':>9}  {'':11}"]
    for layer, (attn, mlp) in enumerate(zip(summary.attn_gains, summary.mlp_gains)):
        rows.append(f"{layer:>5}  {attn:>14.4f}  {_state(attn):11}  {mlp:>9.4f}  {_state(mlp):11}")
    origin = "from cache" if from_cache else f"measured in {measurement.provenance.wall_seconds:.1f} s"
    rows += [
        "",
        f"model                  {measurement.model} ({measurement.source}, {measurement.n_params:,} parameters)",
        f"gain definition        {gain}: {GAIN_DEFINITIONS[gain]}",
        f"final MLP gain         {summary.final_mlp_gain:.4f}",
        f"attention contracting  {summary.attn_contracting} of {summary.n_layers} layers ({summary.attn_contracting_pct:.1f}%)",
        f"MLP contracting        {summary.mlp_contracting} of {summary.n_layers} layers ({summary.mlp_contracting_pct:.1f}%)",
        f"measured               {measurement.dtype} on {measurement.provenance.device}, "
        f"{measurement.n_prompts} prompts ({measurement.prompts_name}, sha256 {measurement.prompts_sha256[:12]}), {origin}",
    ]
    return "\n".join(rows)


def _state(gain: float) -> str:
    return "contracting" if gain < 1 else "expanding"


def suite_table(suite: Suite) -> str:
    """A suite's models with their sources and parameter counts (from configs, no weights)."""
    header = f"{suite.name}: {suite.description}"
    defaults = f"  device {suite.device or 'auto'}, dtype {suite.dtype or 'by device'}; {suite.origin}"
    rows = [header, defaults]
    for spec in suite.models:
        config = read_config(spec)
        params = f"{count_parameters(config):>15,}" if config else f"{'?':>15}"
        revision = f"@{spec.revision}" if spec.revision else ""
        rows.append(f"  {spec.name:<22} {params} parameters  {spec.source}{revision}")
    return "\n".join(rows)


def cache_table(entries: list[CacheEntry], directory: Path) -> str:
    """One line per cached measurement."""
    if not entries:
        return f"no measurements cached in {directory}"
    rows = [f"{len(entries)} measurements in {directory}:"]
    for entry in sorted(entries, key=lambda e: (e.measurement.model, e.measurement.provenance.date)):
        m = entry.measurement
        rows.append(
            f"  {m.model:<22} {m.dtype:<9} prompts {m.prompts_sha256[:12]}  revision {entry.resolved_revision[:12]}  "
            f"{m.provenance.date}  {entry.path.name}"
        )
    return "\n".join(rows)
