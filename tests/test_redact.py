from __future__ import annotations

import io
import json
import logging

from nimble_oke.log import configure
from nimble_oke.redact import redact, redact_obj

KEY = "nvapi-" + "Zx9_" * 15
PAR = "https://objectstorage.us-ashburn-1.oraclecloud.com/p/Qw3rTy-Uiop_AsdfGhjk+lZx=/n/ns/b/models/o/weights.bin"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAx\nabc\n-----END RSA PRIVATE KEY-----"
BEARER = "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.sig-part_1"


def test_each_secret_shape_is_masked() -> None:
    for secret, leaked in (
        (KEY, KEY[6:]),
        (PAR, "Qw3rTy-Uiop_AsdfGhjk"),
        (PEM, "MIIEpAIBAAKCAQEAx"),
        (BEARER, "eyJhbGciOiJSUzI1NiJ9"),
        ('Signature version="1",signature="c2lnbmF0dXJlLWJ5dGVz"', "c2lnbmF0dXJlLWJ5dGVz"),
        ("https://user:hunter2secret@registry.example/v2/", "hunter2secret"),
        ("NGC_API_KEY=abcd1234efgh", "abcd1234efgh"),
    ):
        out = redact(f"before {secret} after")
        assert leaked not in out, out
        assert (out.startswith("before ") and out.endswith(" after")) or "PEM" in out


def test_unterminated_private_key_is_masked() -> None:
    assert "MIIE" not in redact("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq")


def test_nested_json_is_redacted() -> None:
    data = {"a": [KEY, {"b": PAR}], "n": 3}
    text = json.dumps(redact_obj(data))
    assert KEY not in text and "Qw3rTy" not in text and '"n": 3' in text


def test_log_messages_and_exceptions_are_redacted_human_and_json() -> None:
    for fmt in ("human", "json"):
        stream = io.StringIO()
        logger = configure("INFO", fmt, stream)
        logger.info("key %s at %s", KEY, PAR)
        try:
            raise RuntimeError(f"pull failed with {KEY}")
        except RuntimeError:
            logger.exception("failure")
        out = stream.getvalue()
        assert KEY not in out and "Qw3rTy" not in out
        assert "nvapi-****" in out
        if fmt == "json":
            lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
            assert lines[0]["level"] == "INFO"
            assert "exception" in lines[1]
        else:
            assert out.startswith("[nimble][INFO] key nvapi-****")
    logging.getLogger("nimble").handlers.clear()
