"""Logging: ``[nimble][LEVEL] message`` for people, one JSON object per line with
``--log-format json``; every handler redacts secrets (see :mod:`nimble_oke.redact`)."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TextIO

from nimble_oke.redact import RedactingFilter

LOGGER_NAME = "nimble"


class HumanFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = f"[nimble][{record.levelname}] {record.getMessage()}"
        if record.exc_text:
            text += "\n" + record.exc_text
        return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            payload["exception"] = record.exc_text
        return json.dumps(payload)


def configure(
    level: str = "INFO", fmt: str = "human", stream: TextIO | None = None
) -> logging.Logger:
    """(Re)configure the ``nimble`` logger; idempotent."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else HumanFormatter())
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger


def get_logger(name: str | None = None) -> logging.Logger:
    return logging.getLogger(LOGGER_NAME if not name else f"{LOGGER_NAME}.{name}")
