"""gainscale's plugins: the pytest plugin (options, markers, report) and the claims' fixtures."""

pytest_plugins = ["gainscale.plugin", "fixtures.claims"]
