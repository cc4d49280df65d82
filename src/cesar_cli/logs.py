"""Where library logs go when the CLI runs."""

from __future__ import annotations

import logging
import sys


def configure_logging(verbose: int, quiet: bool) -> None:
    """Library logs to stderr: errors only by default, info with -v, debug with -vv."""
    level = (
        logging.ERROR if quiet or not verbose else (logging.INFO if verbose == 1 else logging.DEBUG)
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    for name in ("cesar_core", "faster_whisper"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
