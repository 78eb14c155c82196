"""Importing the notebook's results: valid files become a named set; malformed ones leave nothing."""

from __future__ import annotations

import copy
import json
import math

import pytest
from helpers import PROJECT, SYNTHETIC_FIT, claims_project, notebook_file, synthetic_rows

from gainscale.cli import main as gainscale_cli
from gainscale.errors import NotebookImportError
from gainscale.notebook import import_notebook, read_set, set_path
from gainscale.results import load_results

NOTEBOOK_EXAMPLE = PROJECT / "examples" / "notebook" / "results.json"
README = (PROJECT / "README.md").read_text()


def test_valid_file_is_imported_with_its_recorded_fit(tmp_path):
    file = notebook_file(tmp_path / "results.json", synthetic_rows(), SYNTHETIC_FIT)
    imported = import_notebook(file, "nb", tmp_path / "cache")
    assert [s.model for s in imported.summaries] == ["m-small", "m-medium", "m-large", "m-huge"]
    small = imported.summaries[0]
    assert (small.attn_contracting, small.mlp_contracting, small.final_mlp_gain) == (3, 3, 1.4)
    huge = imported.summaries[-1]
    assert huge.attn_contracting is None and huge.attn_gains is None and huge.final_mlp_gain == 7.5
    assert read_set(tmp_path / "cache", "nb") == imported
    assert imported.recorded_fit == SYNTHETIC_FIT


def _broken(change):
    rows = copy.deepcopy(synthetic_rows())
    change(rows)
    return rows


@pytest.mark.parametrize(
    "rows, message",
    [
        (_broken(lambda r: r[1].pop("mlp_gains")), r"models\[1\] \(m-medium\): missing field 'mlp_gains'"),
        (_broken(lambda r: r[0]["attn_gains"].pop()), r"models\[0\] \(m-small\): field 'attn_gains' has 3 values; n_layers is 4"),
        (_broken(lambda r: r[2]["mlp_gains"].__setitem__(1, math.nan)), r"models\[2\] \(m-large\) layer 1: field 'mlp_gains' must be a finite number, not nan"),
        (_broken(lambda r: r[2]["attn_gains"].__setitem__(0, -0.5)), r"models\[2\] \(m-large\) layer 0: field 'attn_gains' is -0.5; a gain"),
        (_broken(lambda r: r[3].__setitem__("last_layer_mlp_gain", 0)), r"models\[3\] \(m-huge\): field 'last_layer_mlp_gain' is 0.0; .* > 0"),
        (_broken(lambda r: r[0].__setitem__("n_params", "1M")), r"models\[0\] \(m-small\): field 'n_params' must be a positive integer, not '1M'"),
        (_broken(lambda r: r[0].__setitem__("attn_contracting_pct", 100.0)), r"models\[0\] \(m-small\): field 'attn_contracting_pct' is 100.0, but its gains give 3 of 4"),
        (_broken(lambda r: r[1].__setitem__("last_layer_mlp_gain", 3.0)), r"'last_layer_mlp_gain' is 3.0, but mlp_gains ends with 2.1"),
        (_broken(lambda r: r[1].__setitem__("model", "m-small")), r"model 'm-small' appears more than once"),
        (_broken(lambda r: r.__setitem__(0, [1, 2])), r"models\[0\] is not an object"),
    ],
    ids=["missing-field", "wrong-length", "nan", "negative-gain", "zero-final", "bad-n_params", "pct-disagrees", "final-disagrees", "duplicate", "not-object"],
)
def test_malformed_row_is_refused_naming_row_and_field_and_nothing_stays(tmp_path, rows, message):
    file = notebook_file(tmp_path / "results.json", rows, SYNTHETIC_FIT)
    with pytest.raises(NotebookImportError, match=message):
        import_notebook(file, "nb", tmp_path / "cache")
    assert not set_path(tmp_path / "cache", "nb").exists()
    assert not (tmp_path / "cache").exists()


def test_a_failed_reimport_keeps_the_earlier_set(tmp_path):
    good = notebook_file(tmp_path / "good.json", synthetic_rows())
    first = import_notebook(good, "nb", tmp_path / "cache")
    bad = notebook_file(tmp_path / "bad.json", _broken(lambda r: r[0].pop("model")))
    with pytest.raises(NotebookImportError, match=r"models\[0\]: field 'model' must be a non-empty string"):
        import_notebook(bad, "nb", tmp_path / "cache")
    assert read_set(tmp_path / "cache", "nb") == first


@pytest.mark.parametrize("name", ["published", "measured", "../escape", "", "a b"])
def test_unusable_set_names_are_refused(tmp_path, name):
    file = notebook_file(tmp_path / "results.json", synthetic_rows())
    with pytest.raises(NotebookImportError, match="is not usable"):
        import_notebook(file, name, tmp_path / "cache", reserved=("published", "measured"))


def test_the_cli_refuses_the_names_other_sources_go_by(tmp_path, capsys):
    """The names reserved are those the other kinds of source provide, from their registry."""
    file = notebook_file(tmp_path / "results.json", synthetic_rows())
    assert gainscale_cli(["import-notebook", str(file), "--name", "measured", "--cache", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "set name 'measured' is not usable" in error and "and not published or measured" in error
    assert gainscale_cli(["import-notebook", str(file), "--name", "nb", "--cache", str(tmp_path)]) == 0
    assert gainscale_cli(["import-notebook", str(file), "--name", "nb", "--cache", str(tmp_path)]) == 0  # its own kind's names stay free


def test_not_json_is_refused(tmp_path):
    file = tmp_path / "results.json"
    file.write_text("{models: oops")
    with pytest.raises(NotebookImportError, match=r"results\.json: not a JSON file"):
        import_notebook(file, "nb", tmp_path / "cache")


def test_a_tampered_set_is_detected(tmp_path):
    import_notebook(notebook_file(tmp_path / "r.json", synthetic_rows()), "nb", tmp_path / "cache")
    path = set_path(tmp_path / "cache", "nb")
    entry = json.loads(path.read_text())
    entry["set"]["models"][0]["final_mlp_gain"] = 9.9
    path.write_text(json.dumps(entry))
    with pytest.raises(NotebookImportError, match="fails its checksum: import the notebook file again"):
        read_set(tmp_path / "cache", "nb")


def test_the_shipped_example_imports_and_its_models_replay(pytester, tmp_path, monkeypatch):
    """examples/notebook/results.json, the README's example, imports; the paper's claims run on its models."""
    shipped = json.loads(NOTEBOOK_EXAMPLE.read_text())
    monkeypatch.setenv("GAINSCALE_CACHE", str(tmp_path / "cache"))
    assert gainscale_cli(["import-notebook", str(NOTEBOOK_EXAMPLE), "--name", "nb"]) == 0
    claims_project(pytester)
    result = pytester.runpytest("claims", "--gainscale-source", "nb", "--gainscale-bootstrap-resamples", "0")
    outcomes = result.parseoutcomes()
    assert "skipped" not in outcomes and "error" not in outcomes, result.stdout.str()
    (nb,) = load_results(pytester.path / "reports" / "results.json").sources
    rows = {row["model"]: row for row in shipped["models"]}
    assert [m.model for m in nb.models] == list(rows)
    for model in nb.models:
        row = rows[model.model]
        assert (list(model.attn_gains), list(model.mlp_gains)) == (row["attn_gains"], row["mlp_gains"])
        assert model.final_mlp_gain == row["last_layer_mlp_gain"]


def test_the_readme_sample_row_is_a_row_of_the_shipped_example_and_imports(tmp_path):
    """The notebook JSON the README shows has the shipped file's schema (and numbers), and imports."""
    section = README.split("## Importing the paper's notebook results", 1)[1]
    sample = json.loads(section.split("```json", 1)[1].split("```", 1)[0])
    shipped = {row["model"]: row for row in json.loads(NOTEBOOK_EXAMPLE.read_text())["models"]}
    assert sample == shipped[sample["model"]]
    imported = import_notebook(notebook_file(tmp_path / "sample.json", [sample]), "sample", tmp_path / "cache")
    (summary,) = imported.summaries
    assert (summary.model, summary.final_mlp_gain, summary.attn_gains) == (sample["model"], sample["last_layer_mlp_gain"],
                                                                           tuple(sample["attn_gains"]))


def test_an_imported_set_says_what_made_its_numbers_never_this_runs_settings(tmp_path):
    """The file's own settings where it records them; else the notebook's, with the paper's named."""
    from gainscale.sources.imported import ImportedSource

    rows = synthetic_rows()
    plain = ImportedSource(import_notebook(notebook_file(tmp_path / "plain.json", rows), "plain", tmp_path / "cache"))
    provenance = plain.provenance(rows[0]["model"])
    assert (provenance["prompts"], provenance["dtype"]) == ("the notebook's (not in the file)",) * 2
    assert "the paper's notebook used 4 short English prompts, float16, GPU" in plain.info().description
    assert "default" not in json.dumps(provenance)  # this run's prompt set is not theirs

    file = notebook_file(tmp_path / "recorded.json", rows)
    data = json.loads(file.read_text())
    file.write_text(json.dumps({**data, "settings": {"prompts": "8 prompts", "dtype": "bfloat16"}}))
    recorded = ImportedSource(read_set(tmp_path / "cache", import_notebook(file, "rec", tmp_path / "cache").name))
    provenance = recorded.provenance(rows[0]["model"])
    assert (provenance["prompts"], provenance["dtype"], provenance["device"]) == ("8 prompts", "bfloat16", "the notebook's (not in the file)")
    assert "the settings its file records" in recorded.info().description


@pytest.mark.parametrize("settings, message", [
    (["float16"], "'settings' must be an object"),
    ({"dtpye": "float16"}, "settings: unknown key 'dtpye'; known: prompts, dtype, device"),
    ({"dtype": 16}, "settings: 'dtype' must be a short text, not 16"),
])
def test_bad_settings_are_refused_and_nothing_is_imported(tmp_path, settings, message):
    file = notebook_file(tmp_path / "nb.json", synthetic_rows())
    file.write_text(json.dumps({**json.loads(file.read_text()), "settings": settings}))
    with pytest.raises(NotebookImportError, match=message):
        import_notebook(file, "nb", tmp_path / "cache")
    assert not set_path(tmp_path / "cache", "nb").exists()


def test_an_imported_set_says_the_bootstrap_is_unavailable(pytester, tmp_path, monkeypatch):
    monkeypatch.setenv("GAINSCALE_CACHE", str(tmp_path / "cache"))
    import_notebook(NOTEBOOK_EXAMPLE, "nb", tmp_path / "cache")
    claims_project(pytester)
    pytester.runpytest("claims", "--gainscale-source", "nb", "-k", "final_mlp")
    report = (pytester.path / "reports" / "REPORT.md").read_text()
    assert "Over resampled prompts: not available (nb kept no per-prompt gains to resample)" in report
    assert "| gainscale's 40 default prompts | float32 | cpu |" in report  # the provenance the file records
