"""The project's package: one module per pipeline step, the CLI that runs them, and settings."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version(__package__ or __name__)
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
