"""Suites: the built-in Pythia shapes match REFERENCE.md; suite files fail loudly and precisely."""

from __future__ import annotations

import pytest

from gainscale.errors import SuiteFileError, UnknownNameError
from gainscale.params import _meta_device_parameters, count_parameters
from gainscale.suites import load_suite, pythia_config

#: ../shared/REFERENCE.md, "The Pythia suite": the parameter column
REFERENCE_PARAMETERS = {
    "pythia-70m": 70_426_624,
    "pythia-160m": 162_322_944,
    "pythia-410m": 405_334_016,
    "pythia-1b": 1_011_781_632,
    "pythia-1.4b": 1_414_647_808,
    "pythia-2.8b": 2_775_208_960,
    "pythia-6.9b": 6_857_302_016,
    "pythia-12b": 11_846_072_320,
}


@pytest.mark.parametrize("model", REFERENCE_PARAMETERS)
def test_pythia_parameter_counts_equal_reference(model):
    """The closed formula and a meta-device GPTNeoXForCausalLM both give REFERENCE.md's count."""
    config = pythia_config(model)
    assert count_parameters(config) == REFERENCE_PARAMETERS[model]
    assert _meta_device_parameters(config) == REFERENCE_PARAMETERS[model]


def test_builtin_suites(tmp_path):
    pythia = load_suite("pythia", tmp_path)
    assert pythia.model_names == list(REFERENCE_PARAMETERS)
    assert pythia.model("pythia-12b").source == "EleutherAI/pythia-12b"
    assert (pythia.device, pythia.dtype, pythia.needs_gpu) == ("cuda", "float16", True)
    deduped = load_suite("pythia-deduped", tmp_path)
    assert deduped.model("pythia-1b-deduped").source == "EleutherAI/pythia-1b-deduped"
    tiny = load_suite("tiny", tmp_path)
    assert tiny.demo and not tiny.needs_gpu and "FOR TESTS AND DEMOS ONLY" in tiny.description
    assert [count_parameters(s.config) for s in tiny.models] == sorted(count_parameters(s.config) for s in tiny.models)


def test_unknown_suite_suggests_the_closest(tmp_path):
    with pytest.raises(UnknownNameError, match=r"unknown suite 'pythai'; did you mean 'pythia'\? Known: pythia, pythia-deduped, tiny"):
        load_suite("pythai", tmp_path)


def test_unknown_model_in_suite_lists_the_suite(tmp_path):
    with pytest.raises(UnknownNameError, match=r"'pythia-12c' in suite pythia; did you mean 'pythia-12b'.*pythia-70m"):
        load_suite("pythia", tmp_path).model("pythia-12c")


GOOD_SUITE = """
name = "mine"
dtype = "bfloat16"

[[models]]
name = "p70-early"
hub = "EleutherAI/pythia-70m"
revision = "step1000"

[[models]]
name = "local-one"
path = "checkpoints/one"
dtype = "float32"
"""


def test_suite_file_is_read(tmp_path):
    path = tmp_path / "suite.toml"
    path.write_text(GOOD_SUITE)
    suite = load_suite(path, tmp_path)
    assert suite.name == "mine" and suite.dtype == "bfloat16" and suite.device is None
    early, local = suite.models
    assert (early.source, early.revision, early.local) == ("EleutherAI/pythia-70m", "step1000", False)
    assert local.local and local.source == str(tmp_path / "checkpoints" / "one") and local.dtype == "float32"


@pytest.mark.parametrize(
    "text, message",
    [
        ('name = "x"\n[[models]]\nname = "a"\nhub = \n', r"suite\.toml: TOML syntax error: .*line 4"),
        ('[[models]]\nname = "a"\nhub = "o/a"\n', r"the top level has no key 'name'"),
        ('name = "x"\n\n[[models]]\nname = "a"\nhub = "o/a"\n\n[[models]]\nhub = "o/b"\n', r"models\[1\] \(line 7\) has no key 'name'"),
        ('name = "x"\n[[models]]\nname = "a"\n', r"models\[0\] \(line 2\) \(a\) needs exactly one of 'hub'"),
        ('name = "x"\n[[models]]\nname = "a"\nhub = "o/a"\ndtype = "fp8"\n', r"dtype = 'fp8' is not one of float32, float16, bfloat16"),
        ('name = "x"\n', r"no \[\[models\]\] tables"),
        ('name = "x"\n[[models]]\nname = "a"\nhub = "o/a"\n[[models]]\nname = "a"\nhub = "o/b"\n', r"'a' appears twice"),
    ],
    ids=["syntax", "no-name", "model-no-name", "no-source", "bad-dtype", "no-models", "duplicate"],
)
def test_suite_file_mistakes_name_file_line_and_key(tmp_path, text, message):
    path = tmp_path / "suite.toml"
    path.write_text(text)
    with pytest.raises(SuiteFileError, match=message) as raised:
        load_suite(path, tmp_path)
    assert str(path) in str(raised.value)
