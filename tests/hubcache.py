"""Checkpoints laid out as the Hugging Face hub cache keeps them, for loading offline.

``HF_HUB_CACHE/models--ORG--NAME/refs/REVISION`` holds a commit sha and
``snapshots/SHA/`` the files, here links to a checkpoint saved with ``save_pretrained``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def fake_sha(text: str) -> str:
    """A 40-hex commit sha derived from ``text``, as the hub would name a snapshot."""
    return hashlib.sha1(text.encode()).hexdigest()


def add_snapshot(hub: Path, repo_id: str, revision: str, checkpoint: Path, sha: str | None = None) -> str:
    """Lay ``checkpoint`` out as revision ``revision`` of ``repo_id`` under ``hub``; return its sha."""
    sha = sha or fake_sha(f"{repo_id}@{revision}")
    repo = Path(hub) / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / sha
    snapshot.mkdir(parents=True)
    for file in Path(checkpoint).iterdir():
        (snapshot / file.name).symlink_to(file)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / revision).write_text(sha)
    return sha


def go_offline(monkeypatch, hub: Path) -> None:
    """Point this process's huggingface_hub at ``hub`` with HF_HUB_OFFLINE set, as the env would."""
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(hub))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
