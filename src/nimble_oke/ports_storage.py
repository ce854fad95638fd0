"""The Object Storage port: what the model repository (``services/models.py``) needs from a
bucket store, so it holds no SDK client and reads no private attribute of a provider.

Two ways in, as on OCI: :class:`ObjectStore`, the signed API of one tenancy in any of its
regions (push, list, promote, replicate, PARs), and :class:`ObjectReader`, reads of one
bucket's objects (the signed API, or a pre-authenticated request for the hydrate init
container, which has no credentials at all). The OCI adapter is
:mod:`nimble_oke.cloud.oci.object_storage`; the OCI simulator serves it in tests.

Errors: a missing object is :class:`ObjectNotFound` (the repository turns it into None or a
clear message); anything else the service refuses is a
:class:`~nimble_oke.errors.ProviderError` naming what was tried, without any PAR URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class ObjectNotFound(Exception):  # noqa: N818 - a condition, read as "object not found"
    """The object does not exist (through a PAR: or the PAR is invalid or expired)."""


@dataclass(frozen=True)
class ObjectInfo:
    name: str
    size: int


@dataclass(frozen=True)
class ReplicationPolicy:
    policy_id: str
    destination_region: str
    destination_bucket: str


class ObjectReader(Protocol):
    """Reads objects of one bucket."""

    hint: str  # appended to "not found" messages (e.g. "or the PAR is expired")

    def get(self, name: str, start: int | None = None, end: int | None = None) -> bytes:
        """The object, or exactly bytes ``start``..``end`` (inclusive) of it; raises
        :class:`ObjectNotFound`."""
        ...


class ObjectStore(Protocol):
    """One tenancy's Object Storage through its signed API, in any of its regions."""

    compartment_id: str  # where new buckets go ("" → buckets cannot be created)

    @property
    def region(self) -> str:
        """The default region (the config's)."""
        ...

    def namespace(self) -> str: ...

    def bucket_exists(self, region: str, bucket: str) -> bool: ...

    def create_bucket(self, region: str, bucket: str, tags: dict[str, str]) -> None:
        """A versioned bucket in :attr:`compartment_id`."""
        ...

    def put(self, region: str, bucket: str, name: str, data: bytes) -> None:
        """One PUT with its content-MD5 (the service refuses a body that does not match)."""
        ...

    def read(self, region: str, bucket: str, name: str) -> bytes:
        """The whole object; raises :class:`ObjectNotFound`."""
        ...

    def list_objects(self, region: str, bucket: str, prefix: str) -> list[ObjectInfo]:
        """Every object under ``prefix`` (all pages)."""
        ...

    def start_multipart(self, region: str, bucket: str, name: str) -> str:
        """A multipart upload's id."""
        ...

    def upload_part(
        self, region: str, bucket: str, name: str, upload_id: str, num: int, data: bytes
    ) -> str:
        """Part ``num`` (from 1) with its content-MD5; returns its ETag."""
        ...

    def commit_multipart(
        self, region: str, bucket: str, name: str, upload_id: str, etags: list[tuple[int, str]]
    ) -> str | None:
        """Commit the (part number, ETag) list; returns the MD5 the service reports."""
        ...

    def abort_multipart(self, region: str, bucket: str, name: str, upload_id: str) -> None: ...

    def create_read_par(
        self, region: str, bucket: str, prefix: str, *, name: str, expires: datetime
    ) -> str:
        """A read-only PAR for the objects under ``prefix`` (no listing); its URL is a
        credential."""
        ...

    def replication_policies(self, region: str, bucket: str) -> list[ReplicationPolicy]: ...

    def create_replication_policy(
        self, region: str, bucket: str, *, name: str, to_region: str, to_bucket: str
    ) -> str:
        """The new policy's id."""
        ...

    def checksums(self, region: str, bucket: str, name: str) -> set[str]:
        """The MD5s the service reports for an object (content-md5, opc-multipart-md5)."""
        ...

    def reader(self, bucket: str, region: str | None = None) -> ObjectReader: ...

    def close(self) -> None: ...
