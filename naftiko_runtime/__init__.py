"""naftiko-runtime: serve Naftiko capability YAML as REST and MCP, with no endpoint code."""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("naftiko-runtime")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
