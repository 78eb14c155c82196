"""Suites: the built-in Pythia shapes match the published parameter counts; suite files fail loudly and precisely."""

from __future__ import annotations

import pytest

from gainscale.errors import OptionError, SuiteFileError, UnknownNameError
from gainscale.params import _llama_parameters, _meta_device_parameters, count_parameters
from gainscale.suites import MAX_SWEEP, load_suite, pythia_config, smollm2_config, training_step

#: the Pythia suite's published parameter counts (every parameter of the causal-LM, untied LM head)
PUBLISHED_PARAMETERS = {
    "pythia-70m": 70_426_624,
    "pythia-160m": 162_322_944,
    "pythia-410m": 405_334_016,
    "pythia-1b": 1_011_781_632,
    "pythia-1.4b": 1_414_647_808,
    "pythia-2.8b": 2_775_208_960,
    "pythia-6.9b": 6_857_302_016,
    "pythia-12b": 11_846_072_320,
}


@pytest.mark.parametrize("model", PUBLISHED_PARAMETERS)
def test_pythia_parameter_counts_equal_reference(model):
    """The closed formula and a meta-device GPTNeoXForCausalLM both give the published count."""
    config = pythia_config(model)
    assert count_parameters(config) == PUBLISHED_PARAMETERS[model]
    assert _meta_device_parameters(config) == PUBLISHED_PARAMETERS[model]


def test_builtin_suites(tmp_path):
    pythia = load_suite("pythia", tmp_path)
    assert pythia.model_names == list(PUBLISHED_PARAMETERS)
    assert pythia.model("pythia-12b").source == "EleutherAI/pythia-12b"
    assert (pythia.device, pythia.dtype, pythia.needs_gpu) == ("cuda", "float16", True)
    deduped = load_suite("pythia-deduped", tmp_path)
    assert deduped.model("pythia-1b-deduped").source == "EleutherAI/pythia-1b-deduped"
    tiny = load_suite("tiny", tmp_path)
    assert tiny.demo and not tiny.needs_gpu and "FOR TESTS AND DEMOS ONLY" in tiny.description
    assert [count_parameters(s.config) for s in tiny.models] == sorted(count_parameters(s.config) for s in tiny.models)


def test_unknown_suite_suggests_the_closest(tmp_path):
    with pytest.raises(UnknownNameError, match=r"unknown suite 'pythai'; did you mean 'pythia'\? Known: pythia, pythia-deduped, smollm2, tiny"):
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


# ---------------------------------------------------------------------------- Llama's parameter count

LLAMA_VARIANTS = {
    "smollm2": smollm2_config(),
    "untied-mha": {"model_type": "llama", "hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 2,
                   "num_attention_heads": 4, "vocab_size": 300},
    "biases-gqa-head-dim": {"model_type": "llama", "hidden_size": 48, "intermediate_size": 100, "num_hidden_layers": 3,
                            "num_attention_heads": 6, "num_key_value_heads": 2, "head_dim": 12, "vocab_size": 257,
                            "attention_bias": True, "mlp_bias": True, "tie_word_embeddings": True},
}


@pytest.mark.parametrize("variant", LLAMA_VARIANTS)
def test_llama_formula_equals_a_meta_device_model(variant):
    """The closed formula (no torch, for listings) counts what transformers builds."""
    config = LLAMA_VARIANTS[variant]
    assert _llama_parameters(config) == _meta_device_parameters(config)
    assert count_parameters(config) == _meta_device_parameters(config)


def test_smollm2_is_listed_with_its_parameter_count(tmp_path):
    suite = load_suite("smollm2", tmp_path)
    assert suite.model_names == ["smollm2-135m", "smollm2-135m-random"]
    trained, control = suite.models
    assert trained.gguf and trained.local and trained.source.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert control.reinit_seed == 0 and control.control_of == "smollm2-135m" and control.source == trained.source
    assert count_parameters(trained.config) == 134_515_008


# ---------------------------------------------------------------------------- revision sweeps


def _suite(tmp_path, text):
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return load_suite(path, tmp_path)


def test_a_revision_list_expands_into_one_model_per_revision(tmp_path):
    suite = _suite(tmp_path, 'name = "s"\n[[models]]\nname = "p70"\nhub = "EleutherAI/pythia-70m"\n'
                             'revisions = ["step0", "step512", "main"]\ndtype = "float32"\n'
                             '[[models]]\nname = "one"\nhub = "o/one"\nrevision = "step7"\n')
    assert suite.model_names == ["p70@step0", "p70@step512", "p70@main", "one"]
    step0, step512, main, one = suite.models
    assert (step512.source, step512.revision, step512.sweep, step512.step, step512.dtype) == (
        "EleutherAI/pythia-70m", "step512", "p70", 512, "float32")
    assert (step0.step, main.step, main.sweep) == (0, None, "p70")
    assert (one.sweep, one.step, one.revision) == (None, 7, "step7")
    assert step512.config == pythia_config("pythia-70m") and one.config is None  # Pythia's is known


def test_a_revision_range_includes_its_stop_and_formats_each_step(tmp_path):
    suite = _suite(tmp_path, 'name = "s"\n[[models]]\nname = "p"\nhub = "o/p"\n'
                             'revisions = {start = 0, stop = 2000, step = 1000}\n'
                             '[[models]]\nname = "q"\nhub = "o/q"\n'
                             '[models.revisions]\nstart = 10\nstop = 25\nstep = 5\nformat = "ckpt-{}-final"\n')
    assert suite.model_names == ["p@step0", "p@step1000", "p@step2000",
                                 "q@ckpt-10-final", "q@ckpt-15-final", "q@ckpt-20-final", "q@ckpt-25-final"]
    assert [spec.step for spec in suite.models] == [0, 1000, 2000, 10, 15, 20, 25]
    assert {spec.sweep for spec in suite.models} == {"p", "q"}


def test_pythia_full_sweep_fits_the_limit(tmp_path):
    suite = _suite(tmp_path, 'name = "s"\n[[models]]\nname = "p"\nhub = "o/p"\n'
                             'revisions = {start = 1000, stop = 143000, step = 1000}\n')
    assert len(suite.models) == 143 <= MAX_SWEEP and suite.models[-1].name == "p@step143000"


@pytest.mark.parametrize("revision, step", [("step1000", 1000), ("global_step20", 20), ("123", 123), ("main", None),
                                            ("v1.0", None), ("0123456789abcdef0123456789abcdef01234567", None), (None, None)])
def test_training_step_is_read_from_a_word_and_a_number(revision, step):
    assert training_step(revision) == step


# ---------------------------------------------------------------------------- suite file checks


@pytest.mark.parametrize(
    "text, message",
    [
        ('name = "x"\ndevise = "cpu"\n[[models]]\nname = "a"\nhub = "o/a"\n',
         r"the top level: unknown key 'devise' \(line 2\); did you mean 'device'\? Known keys: name, description, device"),
        ('name = "x"\n\n[[models]]\nname = "a"\nhub = "o/a"\n\n[[models]]\nname = "b"\nhub = "o/b"\nrevison = "step1000"\n',
         r"models\[1\] \(line 7\): unknown key 'revison' \(line 10\); did you mean 'revision'\?"),
        ('name = "x"\n[[models]]\nname = "a"\nhub = "o/a"\ncolour = "red"\n',
         r"models\[0\] \(line 2\): unknown key 'colour' \(line 5\); Known keys: name, hub, path, gguf, revision, revisions, dtype\.$"),
        ('name = "x"\n[[models]]\nname = "a"\nhub = "o/a"\nrevisions = {start = 0, stop = 9, stepp = 1}\n',
         r"models\[0\] \(line 2\) \(a\): revisions: unknown key 'stepp' \(line 5\); did you mean 'step'\?"),
        ('name = "x"\n[[models]]\nname = "a"\npath = "ckpt"\nrevision = "step1000"\n',
         r"\(a\): 'revision' needs 'hub': a local directory has no revisions"),
        ('name = "x"\n[[models]]\nname = "a"\ngguf = "m.gguf"\nrevisions = ["step1"]\n',
         r"\(a\): 'revisions' needs 'hub': a local GGUF file has no revisions"),
        ('name = "x"\n[[models]]\nname = "a"\nhub = "o/a"\nrevision = "main"\nrevisions = ["step1"]\n',
         r"give 'revision' \(one\) or 'revisions' \(a sweep\), not both"),
        ('name = "x"\n[[models]]\nname = "a"\nhub = "o/a"\npath = "here"\n',
         r"\(a\) needs exactly one of 'hub' \(a hub id\), 'path' \(a directory\) or 'gguf' \(a GGUF file\), not 'hub' and 'path'"),
        ('name = "x"\n[[models]]\nname = "a"\ngguf = "m.safetensors"\n', r"gguf = 'm.safetensors' must name a \.gguf file"),
        ('name = "x"\n[[models]]\nname = "a"\nhub = "o/a"\nrevisions = []\n', r"revisions must be a non-empty list of revision strings or a range"),
        ('name = "x"\n[[models]]\nname = "a"\nhub = "o/a"\nrevisions = {start = 0, stop = 10}\n', r"revisions has no key 'step'"),
        ('name = "x"\n[[models]]\nname = "a"\nhub = "o/a"\nrevisions = {stop = 10, step = 0}\n', r"needs step >= 1 and stop >= start"),
        ('name = "x"\n[[models]]\nname = "a"\nhub = "o/a"\nrevisions = {stop = 10, step = 1, format = "step"}\n', r"format = 'step' must be a string with one \{\}"),
        ('name = "x"\n[[models]]\nname = "a"\nhub = "o/a"\nrevisions = {stop = 143000, step = 1}\n', r"expands into 143,001 revisions, more than 1,000"),
        ('name = "x"\n[[models]]\nname = "a"\nhub = "o/a"\nrevisions = ["step1", "step1"]\n', r"'a@step1' appears twice"),
    ],
    ids=["top-level-typo", "model-typo", "unknown-no-match", "range-typo", "revision-with-path", "revisions-with-gguf",
         "both-revision-forms", "two-sources", "gguf-suffix", "empty-revisions", "range-no-step", "range-step-0",
         "range-format", "range-too-long", "sweep-duplicate"],
)
def test_suite_file_keys_and_sweeps_are_checked(tmp_path, text, message):
    path = tmp_path / "suite.toml"
    path.write_text(text)
    with pytest.raises(SuiteFileError, match=message) as raised:
        load_suite(path, tmp_path)
    assert str(raised.value).startswith(f"{path}: ") and "\n" not in str(raised.value)


def test_a_gguf_entry_is_a_local_file_relative_to_the_suite(tmp_path):
    suite = _suite(tmp_path, 'name = "g"\n[[models]]\nname = "q"\ngguf = "models/q.Q8_0.gguf"\n')
    spec = suite.model("q")
    assert (spec.source, spec.local, spec.gguf, spec.revision) == (str(tmp_path / "models" / "q.Q8_0.gguf"), True, True, None)


# ---------------------------------------------------------------------------- local weights for a built-in suite


def test_with_local_weights_points_the_models_found_at_their_directories(tmp_path):
    (tmp_path / "weights" / "pythia-70m").mkdir(parents=True)
    (tmp_path / "weights" / "pythia-1b").mkdir()
    pythia = load_suite("pythia", tmp_path)
    local = pythia.with_local_weights(tmp_path / "weights")
    assert local.model_names == pythia.model_names and local.device == "cuda" and local.dtype == "float16"
    p70 = local.model("pythia-70m")
    assert (p70.source, p70.local, p70.revision) == (str(tmp_path / "weights" / "pythia-70m"), True, None)
    assert p70.config == pythia.model("pythia-70m").config  # listed without loading, as before
    assert local.model("pythia-12b") == pythia.model("pythia-12b")
    assert local.origin.endswith(f"weights from {tmp_path / 'weights'}")


def test_with_local_weights_refuses_a_directory_without_any_model(tmp_path):
    (tmp_path / "weights" / "pythia-70").mkdir(parents=True)
    pythia = load_suite("pythia", tmp_path)
    with pytest.raises(OptionError, match=r"local weights directory .*weights has none of suite pythia's models; it needs one directory per model, named after it: pythia-70m, pythia-160m"):
        pythia.with_local_weights(tmp_path / "weights")
    with pytest.raises(OptionError, match=r"local weights directory .*nowhere does not exist"):
        pythia.with_local_weights(tmp_path / "nowhere")
