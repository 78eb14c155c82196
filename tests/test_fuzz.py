"""Fuzzing the readers of user input: whatever they are fed, they raise only gainscale's own
errors, with a message, or succeed; they never crash otherwise."""

from __future__ import annotations

import json

import pytest
from helpers import synthetic_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gainscale.cache import read_entry
from gainscale.errors import CorruptEntryError, NotebookImportError, SuiteFileError
from gainscale.notebook import parse_notebook
from gainscale.suites import read_suite_file

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)
_ROW_KEYS = ["model", "n_params", "n_layers", "hidden_dim", "attn_gains", "mlp_gains", "last_layer_mlp_gain",
             "attn_contracting_pct", "mlp_contracting_pct", "source"]


@st.composite
def mutated_notebooks(draw):
    """A valid notebook file with some of its fields replaced, dropped or added."""
    rows = synthetic_rows()
    for _ in range(draw(st.integers(1, 4))):
        row = rows[draw(st.integers(0, len(rows) - 1))]
        key = draw(st.sampled_from(_ROW_KEYS))
        if draw(st.booleans()):
            row.pop(key, None)
        else:
            row[key] = draw(json_values)
    return json.dumps({"models": rows, "scaling_law": draw(json_values)}).encode()


def _expect_only(error_type, call):
    try:
        call()
    except error_type as error:
        assert str(error), "an error must say what went wrong"


@FUZZ
@given(data=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()) | mutated_notebooks())
def test_notebook_importer_raises_only_its_own_error(data):
    _expect_only(NotebookImportError, lambda: parse_notebook(data, "nb", "fuzz.json"))


toml_fragments = st.sampled_from([
    'name = "x"\n', "[[models]]\n", 'name = "a"\n', 'hub = "o/a"\n', 'path = "d"\n', 'dtype = "float16"\n',
    'dtype = 3\n', 'revision = 5\n', 'device = "cuda:1"\n', 'device = "tpu"\n', "[models]\n", "models = 3\n",
    'name = ""\n', "= =\n", '"\n', "[[models]\nname", "\x00", "é\n", 'description = ["a"]\n',
])


@FUZZ
@given(text=st.lists(toml_fragments, max_size=12).map("".join) | st.text(max_size=200))
def test_suite_reader_raises_only_its_own_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("suite") / "suite.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass") if "\ud800" not in text else path.write_bytes(b"\xff")
    _expect_only(SuiteFileError, lambda: read_suite_file(path))


@pytest.fixture(scope="module")
def valid_entry(tmp_path_factory, small_model_dir) -> bytes:
    from conftest import local_spec

    from gainscale.measurer import Measurer
    from gainscale.settings import Settings

    cache = tmp_path_factory.mktemp("cache")
    prompts = cache / "p.txt"
    prompts.write_text("one prompt here\nand another one\n")
    Measurer(None, Settings(cache=cache, device="cpu", prompts=str(prompts), progress=False)).get(local_spec(small_model_dir))
    return next((cache / "measurements").glob("*.json")).read_bytes()


@FUZZ
@given(cut=st.integers(0, 10_000), flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=4))
def test_cache_reader_raises_only_its_own_error(tmp_path_factory, valid_entry, cut, flips):
    data = bytearray(valid_entry[: max(1, len(valid_entry) - cut)] if cut % 3 == 0 else valid_entry)
    for position, mask in flips:
        data[position % len(data)] ^= mask
    path = tmp_path_factory.mktemp("entry") / "e.json"
    path.write_bytes(bytes(data))
    original = tmp_path_factory.mktemp("entry") / "e.json"
    original.write_bytes(valid_entry)
    try:
        entry = read_entry(path)
    except CorruptEntryError as error:
        assert "e.json" in str(error)
    else:  # only a change that leaves the content as it was (whitespace, say) may be read
        assert entry.measurement == read_entry(original).measurement


@FUZZ
@given(value=json_values)
def test_cache_reader_refuses_any_other_json(tmp_path_factory, value):
    path = tmp_path_factory.mktemp("entry") / "e.json"
    path.write_text(json.dumps(value))
    with pytest.raises(CorruptEntryError, match=r"e\.json"):
        read_entry(path)
