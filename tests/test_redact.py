from __future__ import annotations

import io
import json
import logging
import secrets

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from nimble_oke.log import configure
from nimble_oke.ngc_keys import NGC_KEY_PREFIX, throwaway_key
from nimble_oke.redact import redact, redact_obj

# Every secret is made at test time: no key-looking literal lives in the repository.
KEY = throwaway_key()
PAR_TOKEN = secrets.token_urlsafe(24)
PAR = (
    f"https://objectstorage.us-ashburn-1.oraclecloud.com/p/{PAR_TOKEN}/n/ns/b/models/o/weights.bin"
)
PEM = (
    rsa.generate_private_key(public_exponent=65537, key_size=1024)
    .private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    .decode()
)
PEM_BODY = PEM.splitlines()[1]  # a line of the key material itself
BEARER_TOKEN = secrets.token_urlsafe(32)
BEARER = f"Authorization: Bearer {BEARER_TOKEN}"


def test_each_secret_shape_is_masked() -> None:
    for secret, leaked in (
        (KEY, KEY[len(NGC_KEY_PREFIX) :]),
        (PAR, PAR_TOKEN),
        (PEM, PEM_BODY),
        (BEARER, BEARER_TOKEN),
        ('Signature version="1",signature="c2lnbmF0dXJlLWJ5dGVz"', "c2lnbmF0dXJlLWJ5dGVz"),
        ("https://user:hunter2secret@registry.example/v2/", "hunter2secret"),
        ("NGC_API_KEY=abcd1234efgh", "abcd1234efgh"),
    ):
        out = redact(f"before {secret} after")
        assert leaked not in out, out
        assert (out.startswith("before ") and out.endswith(" after")) or "PEM" in out


def test_unterminated_private_key_is_masked() -> None:
    cut_off = "\n".join(PEM.splitlines()[:3])  # header and two lines, no END marker
    assert PEM_BODY not in redact(cut_off)


def test_nested_json_is_redacted() -> None:
    data = {"a": [KEY, {"b": PAR}], "n": 3}
    text = json.dumps(redact_obj(data))
    assert KEY not in text and PAR_TOKEN not in text and '"n": 3' in text


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
        assert KEY not in out and PAR_TOKEN not in out
        assert NGC_KEY_PREFIX + "****" in out
        if fmt == "json":
            lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
            assert lines[0]["level"] == "INFO"
            assert "exception" in lines[1]
        else:
            assert out.startswith(f"[nimble][INFO] key {NGC_KEY_PREFIX}****")
    logging.getLogger("nimble").handlers.clear()
