"""Claims over training end to end: ``pytest claims`` on a suite that sweeps one hub model over
revisions step0 ... step2000, each a random-weight checkpoint in a local Hugging Face hub cache,
read offline. What the run leaves behind (test ids, results.json, REPORT.md, the figure) is
checked against the checkpoints and against each other."""

from __future__ import annotations

import re

import pytest
from helpers import claims_project, junit_cases
from hubcache import add_snapshot, go_offline
from reference import paper_gains

from gainscale.architectures import describe_input
from gainscale.figures import training_figure_name
from gainscale.randommodels import build_random_model
from gainscale.results import load_results
from gainscale.suites import tiny_config

PROMPTS = ["The cat sat on the mat.", "A river flows to the sea, slowly.", "Numbers: 1 2 3."]
REPO = "EleutherAI/pythia-sweep"
#: listed out of order: the report must sort by training step, not by the suite file's order
REVISIONS = ("step2000", "step0", "step1000")
STEPS = (0, 1000, 2000)
PER_MODEL_CLAIMS = ("test_attention_contractive", "test_final_mlp_expands")
ROW = re.compile(r"^\| ([\d,]+) \| ([^|]+) \| (\d+)/(\d+) = [^|]+ \| (\d+)/(\d+) = [^|]+ \| (.+) \|$")


@pytest.fixture
def sweep(pytester, tmp_path, monkeypatch):
    """The claims project beside a suite sweeping three checkpoints, the hub cache offline."""
    hub = tmp_path / "hub"
    checkpoints = {}
    for step in STEPS:
        checkpoints[step] = build_random_model(tmp_path / "checkpoints" / f"step{step}", tiny_config("tiny-xs"), seed=500 + step)
        add_snapshot(hub, REPO, f"step{step}", checkpoints[step])
    go_offline(monkeypatch, hub)
    monkeypatch.setenv("GAINSCALE_CACHE", str(tmp_path / "cache"))
    claims_project(pytester)
    (pytester.path / "prompts.txt").write_text("\n".join(PROMPTS) + "\n")
    revisions = ", ".join(f'"{revision}"' for revision in REVISIONS)
    (pytester.path / "sweep.toml").write_text(
        f'name = "sweep"\ndevice = "cpu"\ndtype = "float32"\n\n[[models]]\nname = "neox"\nhub = "{REPO}"\nrevisions = [{revisions}]\n'
    )
    return pytester, checkpoints


def _training_rows(report: str) -> list[re.Match]:
    """The rows of the report's claims-over-training table of sweep neox."""
    section = report.split("## Claims over training: neox (measured)\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| Step")]
    return [ROW.match(line) for line in lines]


def test_claims_over_training_run_on_a_revision_sweep_offline(sweep):
    """Each revision is its own test; report, figure and results.json agree with the checkpoints."""
    pytester, checkpoints = sweep
    result = pytester.runpytest(
        "claims", "--gainscale-suite", "sweep.toml", "--gainscale-source", "measured", "--gainscale-prompts", "prompts.txt",
        "--gainscale-bootstrap-resamples", "20", "--junitxml=out.xml", "-p", "no:randomly",
    )
    cases = junit_cases(pytester.path / "out.xml")
    for claim in PER_MODEL_CLAIMS:
        assert {name for name in cases if name.startswith(claim + "[")} == {f"{claim}[measured-neox@step{s}]" for s in STEPS}
    assert all(case["outcome"] == "skipped" for name, case in cases.items() if name.endswith("[measured]")), result.stdout.str()

    run = load_results(pytester.path / "reports" / "results.json")
    (source,) = run.sources
    models = {m.model: m for m in source.models}
    assert {name: (m.sweep, m.step) for name, m in models.items()} == {f"neox@step{s}": ("neox", s) for s in STEPS}
    for step, checkpoint in checkpoints.items():  # each revision measured from its own checkpoint
        attn, mlp = paper_gains(checkpoint, PROMPTS)
        assert models[f"neox@step{step}"].final_mlp_gain == pytest.approx(mlp[-1], rel=1e-5)
    values = {(c.claim.id, c.model): c for c in run.claims_of("measured") if c.model}

    report = (pytester.path / "reports" / "REPORT.md").read_text()
    rows = _training_rows(report)
    assert all(rows) and [int(row[1].replace(",", "")) for row in rows] == list(STEPS)
    for row, step in zip(rows, STEPS):
        m = models[f"neox@step{step}"]
        assert float(row[2]) == pytest.approx(m.final_mlp_gain, rel=1e-3)
        assert (int(row[3]), int(row[4]), int(row[5]), int(row[6])) == (m.attn_contracting, m.n_layers, m.mlp_contracting, m.n_layers)
        contractive, expands = (values[(claim, m.model)] for claim in ("attention_contractive", "final_mlp_expands"))
        assert row[7] == (f"{'✅' if contractive.outcome == 'passed' else '❌'} {contractive.value:.4g}% of layers | "
                          f"{'✅' if expands.outcome == 'passed' else '❌'} gain {expands.value:.4g}")
        assert expands.value == m.final_mlp_gain

    figure = f"figures/{training_figure_name('measured', 'neox')}"
    assert (pytester.path / "reports" / figure).stat().st_size > 0
    assert f"![neox over training, measured]({figure})" in report

    # the architecture comes from the config in the hub cache: the models name it, the notes say what "input" is
    assert {m.architecture for m in source.models} == {"gpt_neox"}
    assert describe_input("gpt_neox") in source.info.notes
    assert "> - gpt\\_neox: a sublayer's input is its LayerNorm's output (input\\_layernorm before the attention" in report
