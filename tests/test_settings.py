"""One declaration of every option: pytest flags, ini keys, CLI flags and the README all follow it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gainscale.errors import OptionError
from gainscale.settings import INI, MEASURE, OPTIONS, PYTEST, Settings, option, options_for

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_pytest_option_is_a_flag_and_an_ini_key_of_the_plugin(pytester):
    help_text = pytester.runpytest("--help").stdout.str()
    for opt in options_for(PYTEST):
        assert opt.flag in help_text, opt.flag
    for opt in options_for(INI):
        assert opt.ini_key in help_text, opt.ini_key


def test_every_measuring_option_is_a_flag_of_gainscale_measure():
    help_text = subprocess.run([sys.executable, "-m", "gainscale.cli", "measure", "--help"], capture_output=True, text=True, check=True).stdout
    for opt in options_for(MEASURE):
        assert opt.cli_flag in help_text, opt.cli_flag


def test_the_readme_documents_every_option():
    for opt in OPTIONS:
        named = opt.flag if PYTEST in opt.where else opt.ini_key
        # the tolerances are listed together: gainscale_tolerance_gain, `_alpha`, ...
        assert named in README or f"`_{named.removeprefix('gainscale_tolerance_')}`" in README, named


def test_settings_parse_through_the_same_table():
    assert Settings(batch_size="4", gain="residual").batch_size == 4
    with pytest.raises(OptionError, match=r"threads: must be at least 1, not 0"):
        Settings(threads=0)
    with pytest.raises(OptionError, match=r"gain: 'resid' is not one of paper, residual, token_mean, skip_first"):
        Settings(gain="resid")
    assert option("device").parse("cuda:3") == "cuda:3"
