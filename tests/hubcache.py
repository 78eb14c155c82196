"""Checkpoints laid out as the Hugging Face hub cache keeps them, for loading offline.

``HF_HUB_CACHE/models--ORG--NAME/refs/REVISION`` holds a commit sha and ``snapshots/SHA/`` the
files: :func:`gainscale.randommodels.add_hub_snapshot` lays them out.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from gainscale.randommodels import add_hub_snapshot


def fake_sha(text: str) -> str:
    """A 40-hex commit sha derived from ``text``, as the hub would name a snapshot."""
    return hashlib.sha1(text.encode()).hexdigest()


def add_snapshot(hub: Path, repo_id: str, revision: str, checkpoint: Path, sha: str | None = None) -> str:
    """Lay ``checkpoint`` out as revision ``revision`` of ``repo_id`` under ``hub``; return its sha."""
    return add_hub_snapshot(hub, repo_id, revision, checkpoint, sha)


def go_offline(monkeypatch, hub: Path) -> None:
    """Point this process's huggingface_hub at ``hub`` with HF_HUB_OFFLINE set, as the env would."""
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(hub))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
