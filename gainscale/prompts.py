"""Prompt sets: one prompt per line of a UTF-8 text file (a leading BOM is ignored), identified by their SHA-256."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import PromptError

DEFAULT_PROMPTS = "default"


@dataclass(frozen=True)
class PromptSet:
    """The prompts a measurement averages over."""

    #: ``default`` for the shipped set, else the file's path
    name: str
    prompts: tuple[str, ...]

    @property
    def sha256(self) -> str:
        """Hash of the prompts themselves (one per line), not of the file's bytes.

        Blank lines, trailing spaces and line endings do not change it; any prompt's text does.
        """
        return hashlib.sha256("\n".join(self.prompts).encode("utf-8")).hexdigest()

    def __len__(self) -> int:
        return len(self.prompts)


def load_prompts(path: str | Path | None = None) -> PromptSet:
    """Read a prompt file, or the shipped default set when ``path`` is None or ``"default"``."""
    if path is None or str(path) == DEFAULT_PROMPTS:
        data = resources.files("gainscale.data").joinpath("prompts.txt").read_bytes()
        return PromptSet(DEFAULT_PROMPTS, _parse(data, "the default prompt set"))
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise PromptError(f"{path}: cannot read the prompt file ({error.strerror})") from None
    return PromptSet(str(path), _parse(data, str(path)))


def _parse(data: bytes, where: str) -> tuple[str, ...]:
    try:
        # utf-8-sig drops a byte order mark at the start (Windows editors write one), which
        # would otherwise be part of the first prompt and change the prompt set's hash
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise PromptError(
            f"{where}: not UTF-8 text (byte {error.start}, line {line}); save the file as UTF-8"
        ) from None
    prompts = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not prompts:
        raise PromptError(f"{where}: no prompts; write one prompt per line")
    return prompts
