"""Revision sweeps and local weights, loaded through the real loading code with no network:
random-weight checkpoints laid out as revisions in a local Hugging Face hub cache, read with
HF_HUB_OFFLINE set, each measured and compared with the one-prompt reference."""

from __future__ import annotations

import pytest
from hubcache import add_snapshot, go_offline
from reference import paper_gains

from gainscale.measurer import Measurer
from gainscale.randommodels import build_random_model
from gainscale.settings import Settings
from gainscale.suites import load_suite, tiny_config

PROMPTS = ["The cat sat on the mat.", "A river flows to the sea, slowly.", "Numbers: 1 2 3."]
STEPS = (0, 1000, 2000)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Three checkpoints of one small GPT-NeoX, as if saved at three training steps."""
    root = tmp_path_factory.mktemp("sweep")
    return {step: build_random_model(root / f"step{step}", tiny_config("tiny-xs"), seed=100 + step) for step in STEPS}


def _measurer(tmp_path, suite) -> Measurer:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n")
    return Measurer(suite, Settings(cache=tmp_path / "cache", prompts=str(prompts), progress=False))


def assert_close(actual, expected, rel=1e-5):
    assert actual == pytest.approx(expected, rel=rel)


def test_a_revision_sweep_loads_each_checkpoint_offline_from_the_hub_cache(checkpoints, tmp_path, monkeypatch):
    hub = tmp_path / "hub"
    shas = {step: add_snapshot(hub, "EleutherAI/pythia-sweep", f"step{step}", path) for step, path in checkpoints.items()}
    go_offline(monkeypatch, hub)
    (tmp_path / "sweep.toml").write_text(
        'name = "sweep"\ndevice = "cpu"\ndtype = "float32"\n\n[[models]]\nname = "neox"\n'
        'hub = "EleutherAI/pythia-sweep"\nrevisions = {start = 0, stop = 2000, step = 1000}\n'
    )
    suite = load_suite(tmp_path / "sweep.toml", tmp_path)
    assert suite.model_names == ["neox@step0", "neox@step1000", "neox@step2000"]
    measurer = _measurer(tmp_path, suite)
    final_gains = set()
    for spec in suite.models:
        measurement, from_cache = measurer.get(spec)
        assert not from_cache and (spec.sweep, spec.step) == ("neox", int(spec.revision.removeprefix("step")))
        assert (measurement.model, measurement.revision, measurement.resolved_revision) == (spec.name, spec.revision, shas[spec.step])
        attn, mlp = paper_gains(checkpoints[spec.step], PROMPTS)  # each revision is its own checkpoint
        assert_close(measurement.attn_gains, attn)
        assert_close(measurement.mlp_gains, mlp)
        final_gains.add(measurement.mlp_gains[-1])
    assert len(final_gains) == len(STEPS)
    assert all(measurer.get(spec)[1] for spec in suite.models), "a second look must be a cache hit"


def test_a_missing_revision_is_named_offline(checkpoints, tmp_path, monkeypatch):
    from gainscale.errors import ModelLoadError

    hub = tmp_path / "hub"
    add_snapshot(hub, "EleutherAI/pythia-sweep", "step0", checkpoints[0])
    go_offline(monkeypatch, hub)
    (tmp_path / "sweep.toml").write_text(
        'name = "sweep"\ndevice = "cpu"\n[[models]]\nname = "neox"\nhub = "EleutherAI/pythia-sweep"\nrevisions = ["step0", "step5"]\n'
    )
    suite = load_suite(tmp_path / "sweep.toml", tmp_path)
    measurer = _measurer(tmp_path, suite)
    assert measurer.get(suite.model("neox@step0"))[0].resolved_revision
    with pytest.raises(ModelLoadError, match=r"neox@step5: cannot resolve revision 'step5' of EleutherAI/pythia-sweep: HF_HUB_OFFLINE is set"):
        measurer.get(suite.model("neox@step5"))


def test_a_built_in_suite_measures_from_local_weights_offline(pythia_70m_dir, tmp_path, monkeypatch):
    """An offline GPU machine with the weights copied in: `pythia-70m` loads from DIR/pythia-70m."""
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "pythia-70m").symlink_to(pythia_70m_dir, target_is_directory=True)
    go_offline(monkeypatch, tmp_path / "empty-hub")
    suite = load_suite("pythia", tmp_path).with_local_weights(tmp_path / "weights")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n")
    measurer = Measurer(suite, Settings(cache=tmp_path / "cache", prompts=str(prompts), device="cpu", dtype="float32", progress=False))
    measurement, _ = measurer.get(suite.model("pythia-70m"))
    attn, mlp = paper_gains(pythia_70m_dir, PROMPTS)
    assert_close(measurement.attn_gains, attn)
    assert_close(measurement.mlp_gains, mlp)
    assert measurement.source == str(tmp_path / "weights" / "pythia-70m") and measurement.n_params == 70_426_624
