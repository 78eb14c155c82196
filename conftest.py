"""This repository's claims: the paper's fixtures (the gainscale plugin itself is installed as an entry point)."""

pytest_plugins = ["fixtures.paper"]
