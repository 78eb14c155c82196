"""What a user chose, by CLI flag, pytest option or ini key: the same names everywhere."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import OptionError
from .paths import default_cache_dir
from .suites import DTYPES


@dataclass(frozen=True)
class Settings:
    """What a user chose, by CLI flag, pytest option or ini key (the same names everywhere)."""

    #: built-in suite name or suite TOML file
    suite: str = "pythia"
    #: cache directory; None for :func:`default_cache_dir`
    cache: Path | None = None
    #: ``cpu``, ``cuda``, ``cuda:N``; None for the suite's device, else CUDA when present
    device: str | None = None
    #: None for the model's, else the suite's, else float16 on CUDA / float32 on CPU
    dtype: str | None = None
    #: prompt file; None for the shipped default set
    prompts: str | None = None
    #: prompts per forward pass; None for a per-device default
    batch_size: int | None = None
    allow_pickle: bool = False
    trust_remote_code: bool = False
    device_map: str | None = None
    progress: bool = True
    #: pytest-xdist worker id (``gw3``) to pin one GPU per worker; None outside xdist
    worker: str | None = None

    def __post_init__(self):
        if self.dtype is not None and self.dtype not in DTYPES:
            raise OptionError(f"dtype {self.dtype!r} is not one of {', '.join(DTYPES)}")
        if self.batch_size is not None and self.batch_size < 1:
            raise OptionError(f"batch size must be at least 1, not {self.batch_size}")

    @property
    def cache_dir(self) -> Path:
        return Path(self.cache) if self.cache is not None else default_cache_dir()
