"""naftiko-runtime: serve Naftiko capability YAML as REST and MCP, with no endpoint code."""

# The one place the version is written (pyproject.toml reads it): asking importlib.metadata instead
# costs ~20-60 ms of every start (it imports email, zipfile, csv...) for one string.
__version__ = "0.1.0"

__all__ = ["__version__"]
