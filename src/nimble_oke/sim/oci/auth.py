"""Request signing as OCI checks it: draft-cavage HTTP signatures, rsa-sha256.

The SDK (``oci.signer.Signer``) signs ``date (request-target) host`` on every request and
adds ``content-length content-type x-content-sha256`` on POST/PUT/PATCH -- except calls
made with ``enforce_content_headers=False`` (Object Storage ``put_object`` /
``upload_part``), which sign only the three generic headers so bodies can stream.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import os
import re
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from nimble_oke.sim.oci.api_error import ApiError

# OCI rejects requests whose Date header is more than 5 minutes off (API signing docs).
MAX_CLOCK_SKEW_S = 300
_PARAM_RE = re.compile(r'(\w+)="([^"]*)"')


def _unauthenticated(reason: str) -> ApiError:
    return ApiError(
        "NotAuthenticated",
        f"The required information to complete authentication was not provided "
        f"or was incorrect. ({reason})",
        401,
    )


def fingerprint(public_key: rsa.RSAPublicKey) -> str:
    """OCI's key fingerprint: MD5 of the DER SubjectPublicKeyInfo, colon-separated hex."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashlib.md5(der).hexdigest()  # noqa: S324 - OCI's fingerprint format is MD5
    return ":".join(digest[i : i + 2] for i in range(0, 32, 2))


@dataclass(frozen=True)
class ApiKey:
    """A user's API signing key pair as the simulator issued it."""

    tenancy: str
    user: str
    private_pem: bytes
    public_key: rsa.RSAPublicKey

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)

    @property
    def key_id(self) -> str:
        return f"{self.tenancy}/{self.user}/{self.fingerprint}"

    @classmethod
    def generate(cls, tenancy: str, user: str) -> ApiKey:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        return cls(tenancy, user, pem, private.public_key())

    @classmethod
    def from_pem(cls, tenancy: str, user: str, pem: bytes) -> ApiKey:
        private = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(private, rsa.RSAPrivateKey):
            raise ValueError("API signing keys must be RSA")
        return cls(tenancy, user, pem, private.public_key())

    def write_private_key(self, path: Path) -> None:
        """Write the PEM with mode 0600 from the start (never world-readable)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.unlink()
        with open(path, "xb", opener=lambda p, flags: os.open(p, flags, 0o600)) as fh:
            fh.write(self.private_pem)


class KeyRing:
    """Public keys the simulated IAM knows, by signature keyId."""

    def __init__(self) -> None:
        self._keys: dict[str, rsa.RSAPublicKey] = {}

    def add(self, key_id: str, public_key: rsa.RSAPublicKey) -> None:
        self._keys[key_id] = public_key

    def verify(
        self,
        method: str,
        path_and_query: str,
        headers: Mapping[str, str],
        body: bytes,
        now: float | None = None,
        body_signed: bool = True,
    ) -> str:
        """Check the Authorization signature; return the keyId or raise 401 NotAuthenticated."""
        auth = headers.get("authorization", "")
        if not auth.startswith("Signature "):
            raise _unauthenticated("missing signature")
        params = dict(_PARAM_RE.findall(auth))
        key_id, signature = params.get("keyId", ""), params.get("signature", "")
        signed = params.get("headers", "date").split()
        if params.get("algorithm") != "rsa-sha256" or not signature:
            raise _unauthenticated("unsupported signature algorithm")
        public_key = self._keys.get(key_id)
        if public_key is None:
            raise _unauthenticated("unknown keyId")
        required = {"date", "(request-target)", "host"}
        if method.upper() in {"POST", "PUT", "PATCH"} and body_signed:
            required |= {"content-length", "content-type", "x-content-sha256"}
        if not required <= set(signed):
            raise _unauthenticated("required headers not signed")
        lines = []
        for name in signed:
            if name == "(request-target)":
                lines.append(f"(request-target): {method.lower()} {path_and_query}")
            elif name in headers:
                lines.append(f"{name}: {headers[name]}")
            else:
                raise _unauthenticated(f"signed header {name} missing")
        try:
            public_key.verify(
                base64.b64decode(signature),
                "\n".join(lines).encode("ascii"),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (InvalidSignature, ValueError) as exc:
            raise _unauthenticated("signature mismatch") from exc
        if "x-content-sha256" in signed:
            digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
            if headers.get("x-content-sha256") != digest:
                raise _unauthenticated("x-content-sha256 does not match the body")
        self._check_date(headers.get("date", ""), now)
        return str(key_id)

    @staticmethod
    def _check_date(date: str, now: float | None) -> None:
        try:
            sent = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError) as exc:
            raise _unauthenticated("bad date header") from exc
        if abs((time.time() if now is None else now) - sent) > MAX_CLOCK_SKEW_S:
            raise _unauthenticated("date header too far from server time")


def verify_cluster_token(keys: KeyRing, token: str, now: float | None = None) -> tuple[str, str]:
    """Check an OKE bearer token as ``oci ce cluster generate-token`` makes it (oke.md):
    base64url of ``https://containerengine.<region>.oraclecloud.com/cluster_request/<id>``
    with the SDK signer's ``authorization`` and ``date`` as query parameters.
    Returns (cluster_id, region); raises ``PermissionError``."""
    try:
        padded = token + "=" * (-len(token) % 4)
        url = urllib.parse.urlsplit(base64.urlsafe_b64decode(padded).decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise PermissionError("malformed cluster token") from exc
    match = re.fullmatch(r"containerengine\.([\w-]+)\.oraclecloud\.com", url.netloc)
    parts = url.path.split("/")
    if url.scheme != "https" or not match or len(parts) != 3 or parts[1] != "cluster_request":
        raise PermissionError("not an OKE cluster token")
    params = dict(urllib.parse.parse_qsl(url.query))
    headers = {
        "authorization": params.get("authorization", ""),
        "date": params.get("date", ""),
        "host": url.netloc,
    }
    try:
        keys.verify("GET", url.path, headers, b"", now=now)
    except ApiError as exc:
        raise PermissionError(f"cluster token rejected: {exc.message}") from exc
    return parts[2], match.group(1)
