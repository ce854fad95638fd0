"""Redaction of secrets wherever text leaves the process (logs, exceptions, JSON, store).

Patterns: NGC API keys (``nvapi-…``), OCI pre-authenticated request URLs (``/p/<token>/``),
PEM blocks (private keys, certificates), bearer tokens / Authorization headers, OCI
request signatures, and basic-auth passwords in URLs. Each is replaced by a marker that
keeps enough context to debug (``nvapi-****``), never the secret itself.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from nimble_oke.ngc_keys import NGC_KEY_PREFIX

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"-----BEGIN [A-Z0-9 ]+-----.*?-----END [A-Z0-9 ]+-----", re.S),
        "[REDACTED PEM BLOCK]",
    ),
    # An unterminated PEM block (e.g. cut-off output) is still a secret.
    (re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*"), "[REDACTED PEM BLOCK]"),
    (re.compile(re.escape(NGC_KEY_PREFIX) + r"[A-Za-z0-9_\-]{4,}"), NGC_KEY_PREFIX + "****"),
    (re.compile(r"(/p/)[A-Za-z0-9_\-+=:.%]{8,}(/)"), r"\1****\2"),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9_\-.~+/=]{8,}"), r"\1****"),
    (re.compile(r'(?i)(signature=")[^"]+(")'), r"\1****\2"),
    (
        re.compile(
            r"(?i)(\"?(?:authorization|x-api-key|ngc_api_key|password)\"?\s*[:=]\s*\"?)[^\s\",]{4,}"
        ),
        r"\1****",
    ),
    (re.compile(r"(://[^:/@\s]+:)[^@/\s]+(@)"), r"\1****\2"),
)


def redact(text: str) -> str:
    """Mask every secret pattern in ``text``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_obj(value: Any) -> Any:
    """Redact strings inside nested dicts/lists (for JSON output)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_obj(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_obj(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the formatted message and any exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            import traceback

            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)))
            record.exc_info = None
        return True
