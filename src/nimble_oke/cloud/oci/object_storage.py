"""OCI Object Storage behind :mod:`nimble_oke.ports_storage`: the SDK (signed requests, one
client per thread and region) and a reader over a bucket PAR (plain HTTPS, no signature).

- One SDK client per thread (requests sessions are not shared across threads), all with
  one signer; the OCI SDK is imported lazily (CLI start-up does not pay for it).
- PAR URLs are credentials: kept in memory only, never in a log or an exception (every
  message goes through :func:`nimble_oke.redact.redact`; urllib's errors are not chained).
"""

from __future__ import annotations

import base64
import hashlib
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nimble_oke.errors import ConfigError, ProviderError
from nimble_oke.ports_storage import ObjectInfo, ObjectNotFound, ReplicationPolicy
from nimble_oke.redact import redact

# The old name, kept for callers of nimble_oke.services.models.
NotFoundError = ObjectNotFound


def call(action: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the SDK; translate its errors (``action`` names what we tried)."""
    return _response(action, fn, *args, **kwargs).data


def _response(action: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    from nimble_oke.cloud.oci import errors as oe

    try:
        return fn(*args, **kwargs)
    except oe.service_error_types() as exc:
        oe.translate(exc, action)


def _content_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324 - OCI's MD5


@dataclass
class OciObjectStorage:
    """How to reach Object Storage: an OCI config (or a signer for workload identity), the
    compartment for new buckets, and per-region endpoints (the simulator's; empty on OCI).

    Use as a context manager: the SDK clients' connection pools are closed at the end."""

    config: dict[str, Any]
    compartment_id: str = ""
    endpoints: dict[str, str] = field(default_factory=dict)
    retry_strategy: Any = None
    signer: Any = None
    namespace_name: str | None = None  # known already (e.g. from oci://bucket@ns/...)
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _clients: list[Any] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def region(self) -> str:
        return str(self.config.get("region", ""))

    @classmethod
    def from_provider(
        cls, provider: Any, endpoints: dict[str, str] | None = None
    ) -> OciObjectStorage:
        """From an :class:`~nimble_oke.cloud.oci.provider.OciProvider`: same config,
        compartment, retry policy and signer (one RSA signer for every client: loading
        the key is the slow part of start-up); ``endpoints`` maps region → endpoint on
        the sim. Both are the OCI adapter, so this is the one place that knows the
        provider's SDK clients."""
        client = provider.ce  # any of its SDK clients: they share the policy and signer
        return cls(
            config=dict(provider.config),
            compartment_id=provider.compartment_id,
            endpoints=dict(endpoints or {}),
            retry_strategy=getattr(client, "retry_strategy", None),
            signer=getattr(getattr(client, "base_client", None), "signer", None),
        )

    @classmethod
    def with_workload_identity(cls, region: str) -> OciObjectStorage:
        """Inside an OKE pod: the workload-identity resource principal (no config file)."""
        import oci

        signer = oci.auth.signers.get_oke_workload_identity_resource_principal_signer()
        return cls(config={"region": region}, signer=signer)

    # --- clients ------------------------------------------------------------------------------
    def client(self, region: str | None = None) -> Any:
        """This thread's ObjectStorageClient for ``region`` (default: the config's)."""
        region = region or self.region
        cache: dict[str, Any] = self._local.__dict__.setdefault("clients", {})
        if region not in cache:
            cache[region] = self._new_client(region)
        return cache[region]

    def _new_client(self, region: str) -> Any:
        import oci

        from nimble_oke.cloud.oci import errors as oe
        from nimble_oke.cloud.oci.provider import default_retry_strategy

        with self._lock:
            if self.signer is None and ("key_file" in self.config or "key_content" in self.config):
                from nimble_oke.cloud.oci.token import signer_from_config

                self.signer = signer_from_config(self.config)
        kwargs: dict[str, Any] = {
            "retry_strategy": self.retry_strategy or default_retry_strategy(),
            "circuit_breaker_strategy": oci.circuit_breaker.NoCircuitBreakerStrategy(),
        }
        if self.signer is not None:
            kwargs["signer"] = self.signer
        if region in self.endpoints:
            kwargs["service_endpoint"] = self.endpoints[region]
        elif self.endpoints:
            raise ConfigError(f"region {region}: not one of {sorted(self.endpoints)}")
        config_errors: tuple[type[BaseException], ...] = (
            *oe.service_error_types(),
            ValueError,
            KeyError,
        )
        try:
            client = oci.object_storage.ObjectStorageClient(
                {**self.config, "region": region}, **kwargs
            )
        except config_errors as exc:
            oe.translate(exc, "configuring the Object Storage client")
        with self._lock:
            self._clients.append(client)
        return client

    def namespace(self) -> str:
        if self.namespace_name is None:
            self.namespace_name = str(call("reading the namespace", self.client().get_namespace))
        return self.namespace_name

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            session = getattr(getattr(client, "base_client", None), "session", None)
            if session is not None:
                session.close()
        self._local = threading.local()

    def __enter__(self) -> OciObjectStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- buckets and objects ---------------------------------------------------------------
    def bucket_exists(self, region: str, bucket: str) -> bool:
        client = self.client(region)
        try:
            call(f"reading bucket {bucket}", client.get_bucket, self.namespace(), bucket)
        except ProviderError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def create_bucket(self, region: str, bucket: str, tags: dict[str, str]) -> None:
        import oci

        details = oci.object_storage.models.CreateBucketDetails(
            name=bucket,
            compartment_id=self.compartment_id,
            versioning="Enabled",
            freeform_tags=dict(tags),
        )
        client = self.client(region)
        call(f"creating bucket {bucket}", client.create_bucket, self.namespace(), details)

    def put(self, region: str, bucket: str, name: str, data: bytes) -> None:
        client, ns = self.client(region), self.namespace()
        call(
            f"uploading {name}",
            client.put_object,
            *(ns, bucket, name, data),
            content_md5=_content_md5(data),
            content_length=len(data),
        )

    def read(self, region: str, bucket: str, name: str) -> bytes:
        return _get_object(self, region, bucket, name, f"reading {name}", {})[0]

    def list_objects(self, region: str, bucket: str, prefix: str) -> list[ObjectInfo]:
        client, ns = self.client(region), self.namespace()
        items: list[ObjectInfo] = []
        start: str | None = None
        while True:
            kwargs: dict[str, Any] = {"prefix": prefix, "fields": "name,size", "limit": 1000}
            if start:
                kwargs["start"] = start
            page = call(f"listing {bucket}/{prefix}", client.list_objects, ns, bucket, **kwargs)
            items += [ObjectInfo(o.name, o.size) for o in page.objects]
            start = page.next_start_with
            if not start:
                return items

    def checksums(self, region: str, bucket: str, name: str) -> set[str]:
        client, ns = self.client(region), self.namespace()
        resp = _response(f"reading replica {name}", client.head_object, ns, bucket, name)
        return {
            str(resp.headers.get(h))
            for h in ("content-md5", "opc-multipart-md5")
            if resp.headers.get(h)
        }

    def reader(self, bucket: str, region: str | None = None) -> SdkReader:
        return SdkReader(self, bucket, region)

    # --- multipart uploads -------------------------------------------------------------------
    def start_multipart(self, region: str, bucket: str, name: str) -> str:
        import oci

        details = oci.object_storage.models.CreateMultipartUploadDetails(object=name)
        client, ns = self.client(region), self.namespace()
        upload = call(
            f"starting the multipart upload of {name}",
            client.create_multipart_upload,
            *(ns, bucket, details),
        )
        return str(upload.upload_id)

    def upload_part(
        self, region: str, bucket: str, name: str, upload_id: str, num: int, data: bytes
    ) -> str:
        client, ns = self.client(region), self.namespace()
        resp = _response(
            f"uploading part {num} of {name}",
            client.upload_part,
            *(ns, bucket, name, upload_id, num, data),
            content_md5=_content_md5(data),
        )
        return str(resp.headers["etag"])

    def commit_multipart(
        self, region: str, bucket: str, name: str, upload_id: str, etags: list[tuple[int, str]]
    ) -> str | None:
        from oci.object_storage.models import (
            CommitMultipartUploadDetails,
            CommitMultipartUploadPartDetails,
        )

        parts = [CommitMultipartUploadPartDetails(part_num=n, etag=e) for n, e in etags]
        client, ns = self.client(region), self.namespace()
        resp = _response(
            f"committing the multipart upload of {name}",
            client.commit_multipart_upload,
            *(ns, bucket, name, upload_id),
            CommitMultipartUploadDetails(parts_to_commit=parts),
        )
        reported = resp.headers.get("opc-multipart-md5")
        return str(reported) if reported else None

    def abort_multipart(self, region: str, bucket: str, name: str, upload_id: str) -> None:
        self.client(region).abort_multipart_upload(self.namespace(), bucket, name, upload_id)

    # --- PARs and replication ----------------------------------------------------------------
    def create_read_par(
        self, region: str, bucket: str, prefix: str, *, name: str, expires: datetime
    ) -> str:
        import oci

        details = oci.object_storage.models.CreatePreauthenticatedRequestDetails(
            name=name,
            access_type="AnyObjectRead",  # with object_name: restricted to that prefix on OCI
            object_name=prefix.rstrip("/") + "/",
            bucket_listing_action="Deny",
            time_expires=expires,
        )
        par = call(
            f"creating a read PAR for {bucket}/{prefix}",
            self.client(region).create_preauthenticated_request,
            *(self.namespace(), bucket, details),
        )
        return str(par.full_path)

    def replication_policies(self, region: str, bucket: str) -> list[ReplicationPolicy]:
        client, ns = self.client(region), self.namespace()
        found = call("listing replication policies", client.list_replication_policies, ns, bucket)
        return [
            ReplicationPolicy(
                str(p.id), str(p.destination_region_name), str(p.destination_bucket_name)
            )
            for p in found
        ]

    def create_replication_policy(
        self, region: str, bucket: str, *, name: str, to_region: str, to_bucket: str
    ) -> str:
        import oci

        details = oci.object_storage.models.CreateReplicationPolicyDetails(
            name=name, destination_region_name=to_region, destination_bucket_name=to_bucket
        )
        policy = call(
            f"creating the replication policy {bucket} → {to_region}",
            self.client(region).create_replication_policy,
            *(self.namespace(), bucket, details),
        )
        return str(policy.id)


def _get_object(
    storage: OciObjectStorage,
    region: str,
    bucket: str,
    name: str,
    action: str,
    kwargs: dict[str, Any],
) -> tuple[bytes, int]:
    """(body, HTTP status) of a GET; a missing object is :class:`ObjectNotFound`."""
    from nimble_oke.cloud.oci import errors as oe

    client = storage.client(region)
    try:
        resp = client.get_object(storage.namespace(), bucket, name, **kwargs)
    except oe.service_error_types() as exc:
        if getattr(exc, "status", None) == 404 and getattr(exc, "code", "") == "ObjectNotFound":
            raise ObjectNotFound(name) from None
        oe.translate(exc, action)
    return resp.data.content, int(resp.status)


# --- readers: the SDK (signed) or a PAR (no signature) ---------------------------------------


class Reader:
    """Reads objects of one bucket; ``get`` returns exactly the requested byte range."""

    hint = ""  # appended to "not found" messages

    def get(self, name: str, start: int | None = None, end: int | None = None) -> bytes:
        raise NotImplementedError

    @staticmethod
    def _slice(body: bytes, status: int, start: int | None, end: int | None) -> bytes:
        """A server may ignore Range and send the whole object (200): cut the range out."""
        if start is None or status == 206:
            return body
        return body[start : (end + 1 if end is not None else None)]


def _range(start: int | None, end: int | None) -> dict[str, str]:
    if start is None:
        return {}
    return {"range": f"bytes={start}-{'' if end is None else end}"}


class SdkReader(Reader):
    def __init__(self, storage: OciObjectStorage, bucket: str, region: str | None = None) -> None:
        self.storage, self.bucket, self.region = storage, bucket, region or storage.region

    def get(self, name: str, start: int | None = None, end: int | None = None) -> bytes:
        action = f"downloading {name}"
        body, status = _get_object(
            self.storage, self.region, self.bucket, name, action, _range(start, end)
        )
        return self._slice(body, status, start, end)


class ParReader(Reader):
    """Plain HTTPS GETs under a bucket PAR (``.../p/<token>/n/<ns>/b/<bucket>/o/``).

    The URL is a credential: it is kept in memory only and every error message is built
    without it (urllib's exceptions are not chained)."""

    def __init__(self, par_url: str, timeout_s: float = 300.0) -> None:
        if not par_url.startswith(("https://", "http://")) or "/o/" not in par_url:
            raise ConfigError("the PAR URL is not a bucket PAR URL (…/p/…/n/…/b/…/o/)")
        self._base = par_url[: par_url.index("/o/") + 3]
        self.hint = " (or the PAR is invalid or expired)"
        self.timeout_s = timeout_s

    def get(self, name: str, start: int | None = None, end: int | None = None) -> bytes:
        url = self._base + urllib.parse.quote(name, safe="/")
        request = urllib.request.Request(url, headers=_range(start, end))  # noqa: S310
        status, problem = 0, ""
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:  # noqa: S310
                return self._slice(resp.read(), resp.status, start, end)
        except urllib.error.HTTPError as exc:
            status, problem = exc.code, f"HTTP {exc.code}"
            exc.close()
        except (urllib.error.URLError, OSError) as exc:
            problem = redact(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}")
        # Raised outside the except blocks: urllib's exception (it holds the URL) is never
        # chained to ours.
        if status == 404:
            # OCI answers 404 for a missing object and for an invalid/expired PAR alike.
            raise ObjectNotFound(name)
        raise ProviderError(f"downloading {name} through the PAR: {problem}")
