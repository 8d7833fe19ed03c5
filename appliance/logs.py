"""Log format for the server: one line per record, to standard error."""

import logging
import os


def setup_logging() -> None:
    level = os.environ.get("VITRINE_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
