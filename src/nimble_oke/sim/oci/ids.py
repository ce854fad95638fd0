"""Identifiers that look like OCI's: OCIDs, request ids, etags, availability domains."""

from __future__ import annotations

import random
import string

# Region name -> three-letter region key used inside OCIDs (OCI "Regions and AD" docs).
REGION_KEYS = {
    "us-ashburn-1": "iad",
    "us-phoenix-1": "phx",
    "us-chicago-1": "ord",
    "eu-frankfurt-1": "fra",
    "uk-london-1": "lhr",
    "ap-tokyo-1": "nrt",
}

_OCID_ALPHABET = string.ascii_lowercase + string.digits


class IdFactory:
    """Deterministic (seeded) generator of OCIDs and request ids."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)

    def _chars(self, n: int, alphabet: str = _OCID_ALPHABET) -> str:
        return "".join(self._rng.choice(alphabet) for _ in range(n))

    def ocid(self, kind: str, region: str | None = None) -> str:
        """``ocid1.<kind>.oc1.<region key>.<60 chars>``; regionless kinds omit the key."""
        key = REGION_KEYS.get(region, region) if region else ""
        return f"ocid1.{kind}.oc1.{key}.aaaaaaaa{self._chars(52)}"

    def request_id(self) -> str:
        """``opc-request-id`` as OCI formats it: three slash-separated hex groups."""
        hexd = string.hexdigits[:16].upper()
        return "/".join(self._chars(32, hexd) for _ in range(3))

    def token(self, n: int = 40) -> str:
        return self._chars(n, string.ascii_letters + string.digits)

    def etag(self) -> str:
        return self._chars(32, string.hexdigits[:16])


def region_key(region: str) -> str:
    return REGION_KEYS.get(region, region[:3])


def availability_domains(region: str, prefix: str = "Uocm") -> list[str]:
    """Three ADs per region, e.g. ``Uocm:US-ASHBURN-AD-1`` (tenancy prefix + region + AD)."""
    core = region.upper().rsplit("-", 1)[0]
    return [f"{prefix}:{core}-AD-{n}" for n in (1, 2, 3)]


def ad_matches(ad_name: str, pattern: str) -> bool:
    """Fault plans name ADs loosely: ``AD-1``, ``US-ASHBURN-AD-1`` or the full name."""
    return ad_name == pattern or ad_name.upper().endswith(pattern.upper())
