"""A built-in suite's weights copied onto an offline machine: ``--weights-dir`` (CLI) and
``--gainscale-weights-dir`` / ``gainscale_weights_dir`` (pytest) load the suite's models from
``DIR/<model name>``, say so in the provenance, and refuse a directory that holds none of them."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers import PROJECT
from reference import paper_gains

from gainscale.cli import main
from gainscale.randommodels import build_random_model
from gainscale.results import load_results
from gainscale.suites import tiny_config

PROMPTS = ["The cat sat on the mat.", "A river flows to the sea, slowly.", "Numbers: 1 2 3."]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """``weights/tiny-xs``: tiny-xs's shape with weights of another seed than the suite builds."""
    root = tmp_path_factory.mktemp("copied") / "weights"
    build_random_model(root / "tiny-xs", tiny_config("tiny-xs"), seed=99)
    return root


@pytest.fixture(scope="module")
def expected(weights):
    """The copied model's gains by the independent reference: (attention, MLP) per layer."""
    return paper_gains(weights / "tiny-xs", PROMPTS)


@pytest.fixture
def prompts(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("\n".join(PROMPTS) + "\n")
    return path


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("suite", [[], ["--suite", "tiny"]], ids=["looked-up", "named-suite"])
def test_measure_loads_a_suite_model_from_the_weights_directory(weights, expected, prompts, tmp_path, capsys, suite):
    status, out, _ = run(capsys, "measure", "tiny-xs", *suite, "--weights-dir", weights, "--prompts", prompts,
                         "--cache", tmp_path / "cache", "--json")
    record = json.loads(out)
    assert status == 0
    assert record["source"] == str((weights / "tiny-xs").resolve())
    assert record["attn_gains"] == pytest.approx(expected[0], rel=1e-5)
    assert record["mlp_gains"] == pytest.approx(expected[1], rel=1e-5)
    assert not (tmp_path / "cache" / "tiny-models" / "tiny-xs").exists()  # the suite's own model was never built


@pytest.mark.parametrize(
    "argv, message",
    [
        (["measure", "tiny-xs", "--weights-dir", "nowhere"], "local weights directory {tmp}/nowhere does not exist or is not "
                                                            "a directory: copy the weights there"),
        (["measure", "--suite", "tiny", "--weights-dir", "empty"], "local weights directory {tmp}/empty has none of suite "
                                                                   "tiny's models; it needs one directory per model, named "
                                                                   "after it: tiny-xs, tiny-s, tiny-m, tiny-l"),
        (["measure", "org/model", "--weights-dir", "empty"], "--weights-dir empty points a suite's models at local copies; "
                                                             "org/model is no suite's model"),
        (["measure", "tiny-xs", "--weights-dir", "{weights}", "--revision", "step1"],
         "tiny-xs loads from the local directory {weights}/tiny-xs, which has no revisions; drop --revision step1"),
    ],
    ids=["missing", "empty", "not-a-suite-model", "revision"],
)
def test_a_weights_directory_without_the_suites_models_is_one_line(weights, tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    argv = [a.format(weights=weights) for a in argv]
    status, out, err = run(capsys, *argv, "--cache", tmp_path / "cache")
    assert status == 2 and out == ""
    assert err.count("\n") == 1, err
    assert message.format(tmp=tmp_path.resolve(), weights=weights.resolve()) in err
    assert not (tmp_path / "cache").exists()


@pytest.fixture
def example(pytester, tiny_cache, monkeypatch, prompts):
    """The own-claim example project, measuring over three prompts into the shared tiny cache."""
    shutil.copytree(PROJECT / "examples" / "own_claim", pytester.path, dirs_exist_ok=True)
    shutil.copy(prompts, pytester.path / "prompts.txt")
    monkeypatch.setenv("GAINSCALE_CACHE", str(tiny_cache))
    return pytester


@pytest.mark.parametrize("given_as", ["flag", "ini"])
def test_a_claims_run_measures_the_copied_weights_and_says_so(example, weights, expected, given_as):
    if given_as == "flag":
        shutil.copytree(weights, example.path / "copied")
        args = ["--gainscale-weights-dir", "copied"]
    else:  # relative to the ini file's directory
        with open(example.path / "pytest.ini", "a") as ini:
            ini.write(f"gainscale_weights_dir = {weights}\n")
        args = []
    result = example.runpytest_subprocess("--gainscale-prompts", "prompts.txt", "-p", "no:cacheprovider", *args)
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 5, result.stdout.str()

    run = load_results(example.path / "reports" / "results.json")
    first = {c.model: c.value for c in run.claims if c.claim.id == "first_attention_expands"}
    assert first["tiny-xs"] == pytest.approx(expected[0][0], rel=1e-5)
    measured = run.source("measured")
    copied = (example.path / "copied" if given_as == "flag" else weights).resolve()
    assert (example.path / measured.provenance["tiny-xs"]["weights"]).resolve() == copied / "tiny-xs"
    assert "weights" not in measured.provenance["tiny-s"]  # not copied: built by the suite as usual
    assert any("Weights of tiny-xs loaded from local copies in" in note for note in measured.info.notes)
    assert " weights |" in (example.path / "reports" / "REPORT.md").read_text()  # the provenance table's column


@pytest.mark.parametrize("directory, message", [
    ("nowhere", "local weights directory */nowhere does not exist or is not a directory*"),
    ("empty", "local weights directory */empty has none of suite tiny's models*"),
])
def test_a_claims_run_refuses_a_weights_directory_without_the_suites_models(example, directory, message):
    (example.path / "empty").mkdir()
    result = example.runpytest("--gainscale-weights-dir", directory)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*gainscale: {message}"])
    assert not (example.path / "reports").exists()
