"""Logging, configured once by the entry points (the CLI, the service); never at import."""

import logging

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    """Send the project's log records to stderr at `level`, and quieten chatty dependencies."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, datefmt="%H:%M:%S", force=True)
    for noisy in (
        "urllib3",
        "git",
        "alembic",
        "matplotlib",
        "filelock",
        "asyncio",
        "great_expectations",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
