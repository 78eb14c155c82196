"""Every error gainscale raises on purpose.

Each one is a user's mistake or a fact about their model, not a bug in gainscale, so its
message says what went wrong, with which model, layer or file, and what to do. The CLI
prints ``str(error)`` as one line and no traceback; the pytest plugin turns the ones that
concern options into ``pytest.UsageError``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GainscaleError(Exception):
    """Base of gainscale's own errors."""


class UnknownNameError(GainscaleError, LookupError):
    """A model, suite or source name that gainscale does not know."""

    def __init__(self, kind: str, name: str, known: Iterable[str], where: str = "", hint: str = ""):
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        message = f"unknown {kind} {name!r}" + (f" {where}" if where else "")
        if close:
            message += f"; did you mean {close[0]!r}?"
        message += f" Known: {', '.join(known) if known else '(none)'}."
        if hint:
            message += f" {hint}"
        super().__init__(message)
        self.name = name
        self.known = known


class SuiteFileError(GainscaleError):
    """A suite TOML file that cannot be read, with file, line and key."""


class ModelLoadError(GainscaleError):
    """A model that cannot be loaded: missing config or weights, unsafe weights, offline, ..."""


class UnsupportedArchitectureError(GainscaleError):
    """A ``model_type`` whose attention and MLP modules gainscale does not know how to find."""


class PromptError(GainscaleError):
    """A prompt file that is empty, not UTF-8, or has a prompt too long for the model."""


class MeasurementError(GainscaleError):
    """A measurement that must not be kept: a non-finite or zero norm in some layer."""


class DeviceUnavailable(GainscaleError):
    """A measurement that is not cached and cannot be made here: its device is missing."""


class ModelUnavailable(DeviceUnavailable):
    """A model whose weights or reader are not installed here: its message names the package.

    A subclass of :class:`DeviceUnavailable`, so that whatever skips a claim for a missing
    device skips it for a missing package too; its message is complete on its own.
    """


class WriteError(GainscaleError, OSError):
    """A file that cannot be written: read-only, full disk, or a file where a directory should be."""

    def __init__(self, path, error: OSError | str):
        from .paths import display_path

        self.path = path
        self.reason = error if isinstance(error, str) else error.strerror or str(error)
        super().__init__(f"cannot write {display_path(path)} ({self.reason})")


class CacheError(GainscaleError):
    """A cache directory or entry that cannot be used."""


class CorruptEntryError(CacheError):
    """A cache entry whose content fails to parse or to match its checksum."""


class BundleError(CacheError):
    """A bundle of measurements that cannot be imported or exported; nothing of it is imported."""


class NotebookImportError(GainscaleError):
    """A notebook results file that is malformed; nothing of it is imported."""


class BaselineError(GainscaleError):
    """A baseline file that cannot be read."""


class OptionError(GainscaleError):
    """A bad option value or combination (the plugin raises it as ``pytest.UsageError``)."""


class VariantUnavailable(GainscaleError):
    """A sensitivity variant the numbers at hand cannot give (no per-layer gains, no such definition)."""


class ClaimDeclarationError(GainscaleError):
    """A claim declared wrongly: a bad id, scope, threshold or statement (a usage error under pytest)."""


class ResultsError(GainscaleError):
    """A results.json that cannot be read back."""
