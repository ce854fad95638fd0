"""The model repository in OCI Object Storage: push, list, promote, replicate, hydrate.

Layout in the bucket (``root`` defaults to ``models``)::

    models/<model>/<version>/files/<path>     the model cache directory, file by file
    models/<model>/<version>/manifest.json    every file's size, sha256 and OCI MD5; written
                                              LAST, so a version without it is incomplete
    models/<model>/labels/<label>.json        a pointer {"version": ..., "previous": ...}

Decisions:
- The manifest is the source of truth: hydrate reads it (one GET, so a PAR needs no
  listing permission), downloads with parallel ranged GETs, verifies sha256 and the OCI
  MD5 (whole-object or multipart, recomputed with the manifest's part size) per file.
- ``push`` writes the label ``latest``; ``promote`` writes any other label and remembers the
  previous version, so a rollback is ``promote <previous> --to <label>``.
- Symbolic links (a Hugging-Face-style cache links snapshots to blobs) are recorded in the
  manifest and recreated, never uploaded twice; links must stay inside the tree.
- PAR URLs are credentials: returned to the caller only, never logged, stored or put in an
  exception (every message goes through :func:`nimble_oke.redact.redact`).
- One SDK client per thread (requests sessions are not shared across threads), all with
  one signer; the OCI SDK is imported lazily.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nimble_oke.errors import ConfigError, NimbleError, ProviderError
from nimble_oke.redact import redact

log = logging.getLogger(__name__)

MiB = 1024 * 1024
ROOT = "models"
MANIFEST = "manifest.json"
FILES = "files"
LABELS = "labels"
LATEST = "latest"
LOCAL_MANIFEST = ".nimble/manifest.json"
STAGING = ".nimble/staging"
SCHEMA = 1
# OCI multipart limits (docs.oracle.com, Object Storage "Using Multipart Uploads"): at most
# 10,000 parts per object; every part but the last at least 10 MiB on OCI. Tests use
# smaller parts on the simulator, which does not enforce the minimum.
MAX_PARTS = 10_000
DEFAULT_PART_SIZE = 64 * MiB  # the chart's cache.objectStorage.partSizeMiB default
DEFAULT_PARALLELISM = 8  # the chart's cache.objectStorage.parallelism default
PAR_TTL_S = 3600.0


class ModelRepoError(NimbleError):
    """A model repository operation failed (missing version, checksum mismatch, ...): an
    Object Storage problem, so the cloud API's exit code."""

    exit_code = 5


# --- the connection ---------------------------------------------------------------------


@dataclass
class Storage:
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
    def from_provider(cls, provider: Any, endpoints: dict[str, str] | None = None) -> Storage:
        """From an :class:`~nimble_oke.cloud.oci.provider.OciProvider` (same config,
        compartment and retry policy); ``endpoints`` maps region → endpoint on the sim."""
        client = provider.ce  # any of its SDK clients: they share the policy and signer
        return cls(
            config=dict(provider.config),
            compartment_id=provider.compartment_id,
            endpoints=dict(endpoints or {}),
            retry_strategy=getattr(client, "retry_strategy", None),
            signer=getattr(getattr(client, "base_client", None), "signer", None),
        )

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

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def call(action: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the SDK; translate its errors (``action`` names what we tried)."""
    from nimble_oke.cloud.oci import errors as oe

    try:
        return fn(*args, **kwargs).data
    except oe.service_error_types() as exc:
        oe.translate(exc, action)


def _missing(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.status == 404


# --- naming -------------------------------------------------------------------------------


def repo_model_name(model: str) -> str:
    """The repository name of a NIM model (``meta/llama-3.1-8b-instruct`` →
    ``meta--llama-3.1-8b-instruct``): object prefixes use one path segment per model."""
    return model.replace("/", "--")


def model_prefix(model: str, root: str = ROOT) -> str:
    return f"{root.strip('/')}/{model}"


def version_prefix(prefix: str, version: str) -> str:
    return f"{prefix.rstrip('/')}/{version}"


def _check_name(kind: str, value: str) -> str:
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    if not value or value in (".", "..", LABELS) or set(value) - allowed:
        raise ConfigError(
            f"{kind} {value!r}: use letters, digits, '.', '_' or '-' (and not {LABELS!r})"
        )
    return value


def _safe_relpath(path: str) -> str:
    """A manifest path must stay inside the destination (a manifest is remote input)."""
    parts = Path(path).parts
    if not parts or Path(path).is_absolute() or ".." in parts or parts[0] == ".nimble":
        raise ModelRepoError(f"manifest entry {path!r} points outside the model directory")
    return path


# --- checksums ------------------------------------------------------------------------------


@dataclass
class Digest:
    sha256: str
    md5: str  # base64, as OCI's content-md5
    multipart_md5: str | None  # OCI's opc-multipart-md5 for this part size, if multipart


def digest_file(path: Path, part_size: int) -> Digest:
    """sha256, whole MD5 and the multipart MD5 OCI reports (MD5 of the parts' MD5s, ``-N``)."""
    sha, md5, part_digests = hashlib.sha256(), hashlib.md5(), []  # noqa: S324 - OCI's MD5
    with path.open("rb") as fh:
        while chunk := fh.read(part_size):
            sha.update(chunk)
            md5.update(chunk)
            part_digests.append(hashlib.md5(chunk).digest())  # noqa: S324
    multipart = None
    if len(part_digests) > 1:
        joined = hashlib.md5(b"".join(part_digests)).digest()  # noqa: S324
        multipart = f"{base64.b64encode(joined).decode()}-{len(part_digests)}"
    return Digest(sha.hexdigest(), base64.b64encode(md5.digest()).decode(), multipart)


# --- push -----------------------------------------------------------------------------------


@dataclass
class PushResult:
    model: str
    version: str
    prefix: str
    files: int
    links: int
    bytes: int
    seconds: float


def _walk(directory: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    files: list[Path] = []
    links: list[tuple[Path, str]] = []
    for root, dirs, names in os.walk(directory):
        base = Path(root)
        dirs[:] = sorted(d for d in dirs if not (base == directory and d == ".nimble"))
        for d in list(dirs):
            if (base / d).is_symlink():
                dirs.remove(d)
                names.append(d)
        for name in sorted(names):
            path = base / name
            if path.is_symlink():
                target = os.readlink(path)
                resolved = (path.parent / target).resolve()
                if Path(target).is_absolute() or not resolved.is_relative_to(directory.resolve()):
                    raise ModelRepoError(
                        f"{path.relative_to(directory)}: a link outside the directory "
                        "cannot be pushed"
                    )
                links.append((path, target))
            elif path.is_file():
                files.append(path)
    return files, links


def _ensure_bucket(storage: Storage, bucket: str, region: str) -> None:
    import oci

    client = storage.client(region)
    try:
        call(f"reading bucket {bucket}", client.get_bucket, storage.namespace(), bucket)
        return
    except ProviderError as exc:
        if not _missing(exc):
            raise
    if not storage.compartment_id:
        raise ConfigError(f"bucket {bucket} does not exist and no compartment is configured")
    details = oci.object_storage.models.CreateBucketDetails(
        name=bucket,
        compartment_id=storage.compartment_id,
        versioning="Enabled",
        freeform_tags={"nimble-oke-created-by": "nimble models push"},
    )
    call(f"creating bucket {bucket}", client.create_bucket, storage.namespace(), details)
    log.info("created bucket %s (versioning enabled) in %s", bucket, region)


def _put(storage: Storage, region: str, bucket: str, name: str, data: bytes) -> None:
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324
    call(
        f"uploading {name}",
        storage.client(region).put_object,
        storage.namespace(),
        bucket,
        name,
        data,
        content_md5=md5,
        content_length=len(data),
    )


def _read_range(path: Path, offset: int, length: int) -> bytes:
    with path.open("rb") as fh:
        fh.seek(offset)
        return fh.read(length)


class _Pool:
    """A bounded thread pool that stops at the first failure and re-raises it."""

    def __init__(self, workers: int) -> None:
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max(1, workers), thread_name_prefix="nimble-models"
        )

    def run(self, tasks: list[Callable[[], Any]]) -> list[Any]:
        futures = [self.executor.submit(t) for t in tasks]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise

    def __enter__(self) -> _Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def _upload_file(
    storage: Storage, pool: _Pool, region: str, bucket: str, name: str, path: Path, part_size: int
) -> str | None:
    """Upload one file (multipart above ``part_size``); returns the MD5 the service checked
    (content-md5, sent with the body) or reported (opc-multipart-md5)."""
    import oci

    size = path.stat().st_size
    if size <= part_size:
        data = path.read_bytes()
        _put(storage, region, bucket, name, data)  # the service refuses a wrong content-md5
        return base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324
    ns, client = storage.namespace(), storage.client(region)
    upload = call(
        f"starting the multipart upload of {name}",
        client.create_multipart_upload,
        ns,
        bucket,
        oci.object_storage.models.CreateMultipartUploadDetails(object=name),
    )

    def part(num: int) -> Any:
        data = _read_range(path, (num - 1) * part_size, part_size)
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324
        from nimble_oke.cloud.oci import errors as oe

        try:
            resp = storage.client(region).upload_part(
                ns, bucket, name, upload.upload_id, num, data, content_md5=md5
            )
        except oe.service_error_types() as exc:
            oe.translate(exc, f"uploading part {num} of {name}")
        return oci.object_storage.models.CommitMultipartUploadPartDetails(
            part_num=num, etag=resp.headers["etag"]
        )

    count = -(-size // part_size)
    try:
        parts = pool.run([functools.partial(part, n) for n in range(1, count + 1)])
        from nimble_oke.cloud.oci import errors as oe

        try:
            resp = client.commit_multipart_upload(
                ns,
                bucket,
                name,
                upload.upload_id,
                oci.object_storage.models.CommitMultipartUploadDetails(parts_to_commit=parts),
            )
        except oe.service_error_types() as exc:
            oe.translate(exc, f"committing the multipart upload of {name}")
    except BaseException:
        with contextlib.suppress(Exception):
            client.abort_multipart_upload(ns, bucket, name, upload.upload_id)
        raise
    reported = resp.headers.get("opc-multipart-md5")
    return str(reported) if reported else None


def push(
    storage: Storage,
    directory: str | Path,
    bucket: str,
    version: str,
    region: str | None = None,
    *,
    model: str | None = None,
    root: str = ROOT,
    part_size: int = DEFAULT_PART_SIZE,
    parallelism: int = DEFAULT_PARALLELISM,
) -> PushResult:
    """Upload a model cache directory as ``<root>/<model>/<version>/``, manifest last.

    Files are uploaded in parallel (``parallelism`` threads; parts of big files too); each
    file's MD5 as computed here must equal what the service reports, or the push fails
    before the manifest is written (the version then stays invisible)."""
    started = time.monotonic()
    src = Path(directory)
    if not src.is_dir():
        raise ConfigError(f"{src}: not a directory")
    model = _check_name("model", model or src.resolve().name)
    version = _check_name("version", version)
    region = region or storage.region
    prefix = version_prefix(model_prefix(model, root), version)
    files, links = _walk(src)
    if not files:
        raise ConfigError(f"{src}: no files to push")
    if any(-(-p.stat().st_size // part_size) > MAX_PARTS for p in files):
        raise ConfigError(f"part size {part_size} B: a file would need more than {MAX_PARTS} parts")
    _ensure_bucket(storage, bucket, region)
    if _get_json(storage, region, bucket, f"{prefix}/{MANIFEST}") is not None:
        raise ModelRepoError(
            f"{model} version {version} already exists in {bucket}; versions are immutable"
        )
    entries: list[dict[str, Any]] = []
    with _Pool(parallelism) as pool, _Pool(parallelism) as part_pool:

        def one(path: Path) -> dict[str, Any]:
            rel = path.relative_to(src).as_posix()
            digest = digest_file(path, part_size)
            name = f"{prefix}/{FILES}/{rel}"
            reported = _upload_file(storage, part_pool, region, bucket, name, path, part_size)
            if reported and reported != (digest.multipart_md5 or digest.md5):
                raise ModelRepoError(f"{rel}: changed while uploading, or stored differently")
            return {
                "path": rel,
                "size": path.stat().st_size,
                "sha256": digest.sha256,
                "md5": digest.md5,
                "multipart_md5": digest.multipart_md5,
            }

        entries = pool.run([functools.partial(one, p) for p in files])
    manifest = {
        "schema": SCHEMA,
        "model": model,
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "part_size": part_size,
        "total_bytes": sum(e["size"] for e in entries),
        "files": entries,
        "links": [{"path": p.relative_to(src).as_posix(), "target": target} for p, target in links],
    }
    _put_json(storage, region, bucket, f"{prefix}/{MANIFEST}", manifest)
    _write_label(storage, region, bucket, model_prefix(model, root), LATEST, version)
    log.info(
        "pushed %s %s: %d files, %d bytes", model, version, len(entries), manifest["total_bytes"]
    )
    return PushResult(
        model,
        version,
        prefix,
        len(entries),
        len(links),
        int(manifest["total_bytes"]),
        time.monotonic() - started,
    )


def _put_json(storage: Storage, region: str, bucket: str, name: str, data: Any) -> None:
    _put(storage, region, bucket, name, json.dumps(data, indent=1, sort_keys=True).encode())


def _get_json(storage: Storage, region: str, bucket: str, name: str) -> Any:
    """The JSON object ``name``, or None when it does not exist."""
    client = storage.client(region)
    try:
        resp = call(f"reading {name}", client.get_object, storage.namespace(), bucket, name)
    except ProviderError as exc:
        if _missing(exc) and exc.code == "ObjectNotFound":
            return None
        raise
    try:
        return json.loads(resp.content)
    except ValueError as exc:
        raise ModelRepoError(f"{name}: not valid JSON") from exc


# --- list, promote ------------------------------------------------------------------------


def _list_names(storage: Storage, region: str, bucket: str, prefix: str) -> list[dict[str, Any]]:
    client, ns = storage.client(region), storage.namespace()
    items: list[dict[str, Any]] = []
    start: str | None = None
    while True:
        kwargs: dict[str, Any] = {"prefix": prefix, "fields": "name,size", "limit": 1000}
        if start:
            kwargs["start"] = start
        page = call(f"listing {bucket}/{prefix}", client.list_objects, ns, bucket, **kwargs)
        items += [{"name": o.name, "size": o.size} for o in page.objects]
        start = page.next_start_with
        if not start:
            return items


@dataclass
class VersionInfo:
    model: str
    version: str
    size_bytes: int
    files: int
    labels: list[str]
    created: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "size_bytes": self.size_bytes,
            "files": self.files,
            "labels": self.labels,
            "created": self.created,
        }


def list_versions(
    storage: Storage, bucket: str, *, region: str | None = None, root: str = ROOT
) -> list[VersionInfo]:
    """Complete versions (with a manifest) of every model in the bucket, with their labels."""
    region = region or storage.region
    names = _list_names(storage, region, bucket, f"{root.strip('/')}/")
    labels: dict[tuple[str, str], list[str]] = {}
    manifests = []
    for item in names:
        parts = item["name"].split("/")
        if len(parts) == 4 and parts[2] == LABELS and parts[3].endswith(".json"):
            label = _get_json(storage, region, bucket, item["name"]) or {}
            key = (parts[1], str(label.get("version", "")))
            labels.setdefault(key, []).append(parts[3][: -len(".json")])
        elif len(parts) == 4 and parts[3] == MANIFEST:
            manifests.append(item["name"])
    out = []
    for name in manifests:
        m = _get_json(storage, region, bucket, name) or {}
        model, version = str(m.get("model", "")), str(m.get("version", ""))
        out.append(
            VersionInfo(
                model,
                version,
                int(m.get("total_bytes", 0)),
                len(m.get("files", [])),
                sorted(labels.get((model, version), [])),
                str(m.get("created", "")),
            )
        )
    return sorted(out, key=lambda v: (v.model, v.created, v.version))


def _resolve_model(storage: Storage, region: str, bucket: str, model: str | None, root: str) -> str:
    if model:
        return _check_name("model", model)
    models = sorted({v.model for v in list_versions(storage, bucket, region=region, root=root)})
    if len(models) != 1:
        found = ", ".join(models) or "none"
        raise ConfigError(f"bucket {bucket} holds several or no models ({found}): name one")
    return models[0]


def _write_label(
    storage: Storage, region: str, bucket: str, prefix: str, label: str, version: str
) -> dict[str, Any]:
    name = f"{prefix}/{LABELS}/{label}.json"
    previous = _get_json(storage, region, bucket, name) or {}
    pointer = {
        "label": label,
        "version": version,
        "previous": previous.get("version"),
        "promoted": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _put_json(storage, region, bucket, name, pointer)
    return pointer


def promote(
    storage: Storage,
    version: str,
    bucket: str,
    label: str,
    *,
    model: str | None = None,
    region: str | None = None,
    root: str = ROOT,
) -> dict[str, Any]:
    """Point ``label`` at ``version`` (which must be complete); returns the pointer with the
    previous version, so rolling back is promoting that one again."""
    region = region or storage.region
    label = _check_name("label", label)
    model = _resolve_model(storage, region, bucket, model, root)
    prefix = model_prefix(model, root)
    if _get_json(storage, region, bucket, f"{prefix}/{version}/{MANIFEST}") is None:
        raise ModelRepoError(f"{model} version {version} is not in {bucket} (or is incomplete)")
    return {"model": model, **_write_label(storage, region, bucket, prefix, label, version)}


def resolve_version(reader: Reader, prefix: str, version: str | None) -> tuple[str, dict[str, Any]]:
    """A version name or a label (default ``latest``) → (version, manifest)."""
    ref = version or LATEST
    manifest = reader.get_json(f"{prefix}/{ref}/{MANIFEST}")
    if manifest is not None:
        return ref, manifest
    label = reader.get_json(f"{prefix}/{LABELS}/{ref}.json")
    if label is not None:
        manifest = reader.get_json(f"{prefix}/{label['version']}/{MANIFEST}")
        if manifest is not None:
            return str(label["version"]), manifest
    raise ModelRepoError(f"{prefix}: no version or label {ref!r} in the bucket{reader.hint}")


# --- pre-authenticated requests ----------------------------------------------------------------


def create_par(
    storage: Storage,
    bucket: str,
    prefix: str,
    expires_in_s: float = PAR_TTL_S,
    *,
    region: str | None = None,
    now: Callable[[], float] = time.time,
) -> str:
    """A read-only PAR for the objects under ``prefix``; returns its URL (a secret: give it
    to a Kubernetes Secret, never to a log or a file).

    ``now`` is the clock the service expires PARs by: on the sim target pass the simulated
    wall clock (``Target.now``), or a one-hour PAR lasts six real seconds at scale 600."""
    import oci

    expires = datetime.fromtimestamp(now(), UTC) + timedelta(seconds=expires_in_s)
    details = oci.object_storage.models.CreatePreauthenticatedRequestDetails(
        name=f"nimble-hydrate-{int(time.time())}",
        access_type="AnyObjectRead",  # with object_name: restricted to that prefix on OCI
        object_name=prefix.rstrip("/") + "/",
        bucket_listing_action="Deny",
        time_expires=expires,
    )
    par = call(
        f"creating a read PAR for {bucket}/{prefix}",
        storage.client(region).create_preauthenticated_request,
        storage.namespace(),
        bucket,
        details,
    )
    return str(par.full_path)


# --- readers: the SDK (signed) or a PAR (no signature) ---------------------------------------


class NotFoundError(Exception):
    """The object does not exist (internal: turned into None or a ModelRepoError)."""


class Reader:
    """Reads objects of one bucket; ``get`` returns exactly the requested byte range."""

    hint = ""  # appended to "not found" messages

    def get(self, name: str, start: int | None = None, end: int | None = None) -> bytes:
        raise NotImplementedError

    def get_json(self, name: str) -> Any:
        try:
            data = self.get(name)
        except NotFoundError:
            return None
        try:
            return json.loads(data)
        except ValueError as exc:
            raise ModelRepoError(f"{name}: not valid JSON") from exc

    @staticmethod
    def _slice(body: bytes, status: int, start: int | None, end: int | None) -> bytes:
        """A server may ignore Range and send the whole object (200): cut the range out."""
        if start is None or status == 206:
            return body
        return body[start : (end + 1 if end is not None else None)]


class SdkReader(Reader):
    def __init__(self, storage: Storage, bucket: str, region: str | None = None) -> None:
        self.storage, self.bucket, self.region = storage, bucket, region or storage.region

    def get(self, name: str, start: int | None = None, end: int | None = None) -> bytes:
        from nimble_oke.cloud.oci import errors as oe

        kwargs: dict[str, Any] = {}
        if start is not None:
            kwargs["range"] = f"bytes={start}-{'' if end is None else end}"
        client = self.storage.client(self.region)
        try:
            resp = client.get_object(self.storage.namespace(), self.bucket, name, **kwargs)
        except oe.service_error_types() as exc:
            if getattr(exc, "status", None) == 404 and getattr(exc, "code", "") == "ObjectNotFound":
                raise NotFoundError(name) from None
            oe.translate(exc, f"downloading {name}")
        return self._slice(resp.data.content, resp.status, start, end)


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
        headers = {}
        if start is not None:
            headers["range"] = f"bytes={start}-{'' if end is None else end}"
        request = urllib.request.Request(url, headers=headers)  # noqa: S310 - http(s) checked
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
            raise NotFoundError(name)
        raise ProviderError(f"downloading {name} through the PAR: {problem}")


# --- hydrate --------------------------------------------------------------------------------


@dataclass
class Source:
    bucket: str
    namespace: str
    prefix: str

    @classmethod
    def parse(cls, uri: str) -> Source:
        """``oci://<bucket>@<namespace>/<prefix>`` (the chart's --source)."""
        rest = uri.removeprefix("oci://")
        head, _, prefix = rest.partition("/")
        bucket, _, namespace = head.partition("@")
        if rest == uri or not bucket or not namespace or not prefix.strip("/"):
            raise ConfigError(f"--source {uri!r}: expected oci://<bucket>@<namespace>/<prefix>")
        return cls(bucket, namespace, prefix.strip("/"))

    def __str__(self) -> str:
        return f"oci://{self.bucket}@{self.namespace}/{self.prefix}"


@dataclass
class HydrateResult:
    version: str
    skipped: bool
    files: int
    bytes_downloaded: int
    seconds: float


def _entries(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {k: f.get(k) for k in ("path", "size", "sha256", "md5", "multipart_md5")}
        for f in manifest.get("files", [])
    ]


def _local_matches(dest: Path, source: Source, version: str, manifest: dict[str, Any]) -> bool:
    try:
        local = json.loads((dest / LOCAL_MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    same = (
        local.get("source") == str(source)
        and local.get("version") == version
        and _entries(local.get("manifest", {})) == _entries(manifest)
        and local.get("manifest", {}).get("links") == manifest.get("links")
    )
    # Cheap sanity check of the volume itself (a file deleted by hand forces a hydrate).
    return same and all(
        (dest / f["path"]).is_file() and (dest / f["path"]).stat().st_size == f["size"]
        for f in manifest.get("files", [])
    )


def _ranges(size: int, part_size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, size, part_size):
        yield start, min(size, start + part_size) - 1


def _verify(path: Path, entry: dict[str, Any], part_size: int, name: str) -> None:
    digest = digest_file(path, part_size)
    if digest.sha256 != entry["sha256"]:
        raise ModelRepoError(f"{name}: sha256 mismatch (object corrupted or changed)")
    if entry.get("md5") and digest.md5 != entry["md5"]:
        raise ModelRepoError(f"{name}: MD5 mismatch (object corrupted or changed)")


def _download(
    reader: Reader,
    pool: _Pool,
    files: list[tuple[str, Path, int]],
    part_size: int,
) -> None:
    """Download each (object, staging path, size) with ranged GETs of ``part_size``."""
    for _name, path, size in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            fh.truncate(size)

    tasks: list[Callable[[], int]] = []
    for name, path, size in files:
        if size <= part_size:  # one plain GET (also for empty files)
            tasks.append(functools.partial(_fetch_whole, reader, name, path, size))
            continue
        for start, end in _ranges(size, part_size):
            tasks.append(functools.partial(_fetch_range, reader, name, path, start, end))
    pool.run(tasks)


def _fetch_range(reader: Reader, name: str, path: Path, start: int, end: int) -> int:
    data = reader.get(name, start, end)
    if len(data) != end - start + 1:
        raise ModelRepoError(f"{name}: got {len(data)} bytes for range {start}-{end}")
    with path.open("r+b") as fh:
        fh.seek(start)
        fh.write(data)
    return len(data)


def _fetch_whole(reader: Reader, name: str, path: Path, size: int) -> int:
    data = reader.get(name) if size else b""
    if len(data) != size:
        raise ModelRepoError(f"{name}: expected {size} bytes, got {len(data)}")
    path.write_bytes(data)
    return size


def _install(dest: Path, staging: Path, manifest: dict[str, Any], old: dict[str, Any]) -> None:
    """Move verified files into place, recreate links, drop files of the previous version."""
    for entry in manifest["files"]:
        target = dest / entry["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.is_dir():
            _remove(target)
        os.replace(staging / entry["path"], target)
    for link in manifest.get("links", []):
        path = dest / _safe_relpath(link["path"])
        resolved = (path.parent / link["target"]).resolve()
        if Path(link["target"]).is_absolute() or not resolved.is_relative_to(dest.resolve()):
            raise ModelRepoError(f"manifest link {link['path']!r} points outside the directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            _remove(path)
        path.symlink_to(link["target"])
    keep = {e["path"] for e in manifest["files"]} | {e["path"] for e in manifest.get("links", [])}
    for entry in [*old.get("files", []), *old.get("links", [])]:
        stale = entry.get("path", "")
        if stale and stale not in keep:
            with contextlib.suppress(ModelRepoError, OSError):
                _remove(dest / _safe_relpath(stale))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _write_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def hydrate(
    reader: Reader,
    source: Source,
    dest: str | Path,
    version: str | None = None,
    *,
    parallelism: int = DEFAULT_PARALLELISM,
    part_size: int = DEFAULT_PART_SIZE,
    skip_if_manifest_matches: bool = True,
) -> HydrateResult:
    """Download ``version`` (a version or a label; default ``latest``) of ``source`` into
    ``dest``: parallel ranged GETs into ``dest/.nimble/staging``, sha256 + MD5 checked
    against the manifest, files moved into place, ``dest/.nimble/manifest.json`` last.

    A warm ``dest`` (same source, version and object list) returns at once."""
    started = time.monotonic()
    dest = Path(dest)
    resolved, manifest = resolve_version(reader, source.prefix, version)
    files = manifest.get("files", [])
    if skip_if_manifest_matches and _local_matches(dest, source, resolved, manifest):
        log.info("%s %s: cache already matches the manifest, nothing to download", source, resolved)
        return HydrateResult(resolved, True, len(files), 0, time.monotonic() - started)
    for entry in files:
        _safe_relpath(entry["path"])
    local = dest / LOCAL_MANIFEST
    try:
        old = json.loads(local.read_text()).get("manifest", {})
    except (OSError, ValueError):
        old = {}
    local.unlink(missing_ok=True)  # from now on the cache claims nothing
    staging = dest / STAGING
    _remove(staging)
    prefix = version_prefix(source.prefix, resolved)
    plan = [(f"{prefix}/{FILES}/{e['path']}", staging / e["path"], int(e["size"])) for e in files]
    check_size = int(manifest.get("part_size") or part_size)
    try:
        with _Pool(parallelism) as pool:
            _download(reader, pool, plan, part_size)
            pool.run(
                [
                    functools.partial(_verify, p, e, check_size, n)
                    for e, (n, p, _s) in zip(files, plan, strict=True)
                ]
            )
        _install(dest, staging, manifest, old)
    finally:
        _remove(staging)
    _write_atomic(local, {"source": str(source), "version": resolved, "manifest": manifest})
    total = sum(int(e["size"]) for e in files)
    log.info("%s %s: hydrated %d files, %d bytes", source, resolved, len(files), total)
    return HydrateResult(resolved, False, len(files), total, time.monotonic() - started)


# --- replication ------------------------------------------------------------------------------


@dataclass
class ReplicationResult:
    destination_region: str
    destination_bucket: str
    policy_id: str
    model: str
    version: str
    objects: int
    verified: str  # "md5" (HEAD checksums) or "sha256" (downloaded and hashed)
    seconds: float


def _ensure_policy(
    storage: Storage, bucket: str, region: str, to_region: str, dest_bucket: str
) -> str:
    import oci

    client, ns = storage.client(region), storage.namespace()
    for policy in call(
        "listing replication policies", client.list_replication_policies, ns, bucket
    ):
        if (
            policy.destination_region_name == to_region
            and policy.destination_bucket_name == dest_bucket
        ):
            return str(policy.id)
    _ensure_bucket(storage, dest_bucket, to_region)
    details = oci.object_storage.models.CreateReplicationPolicyDetails(
        name=f"nimble-{bucket}-to-{to_region}",
        destination_region_name=to_region,
        destination_bucket_name=dest_bucket,
    )
    policy = call(
        f"creating the replication policy {bucket} → {to_region}",
        client.create_replication_policy,
        ns,
        bucket,
        details,
    )
    log.info("replication policy %s → %s/%s created", bucket, to_region, dest_bucket)
    return str(policy.id)


def _head_md5(storage: Storage, region: str, bucket: str, name: str) -> set[str]:
    resp = storage.client(region).head_object(storage.namespace(), bucket, name)
    return {
        str(resp.headers.get(h))
        for h in ("content-md5", "opc-multipart-md5")
        if resp.headers.get(h)
    }


def replicate(
    storage: Storage,
    bucket: str,
    to_region: str,
    *,
    model: str | None = None,
    region: str | None = None,
    dest_bucket: str | None = None,
    root: str = ROOT,
    deep: bool = False,
    timeout_s: float = 1800.0,
    poll_s: float = 10.0,
    parallelism: int = DEFAULT_PARALLELISM,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplicationResult:
    """Replicate ``bucket`` to the bucket of the same name in ``to_region`` (an OCI
    replication policy; the destination becomes read-only), wait until the replica holds
    every object of the model's latest version, then verify each object's checksum against
    the manifest: OCI's MD5 from HEAD, or with ``deep`` the bytes' sha256."""
    started = time.monotonic()
    region = region or storage.region
    if to_region == region:
        raise ConfigError(f"--to {to_region}: the bucket is already in that region")
    dest_bucket = dest_bucket or bucket
    model = _resolve_model(storage, region, bucket, model, root)
    prefix = model_prefix(model, root)
    version, manifest = resolve_version(SdkReader(storage, bucket, region), prefix, None)
    policy_id = _ensure_policy(storage, bucket, region, to_region, dest_bucket)
    vprefix = version_prefix(prefix, version)
    wanted = {f"{vprefix}/{FILES}/{f['path']}": int(f["size"]) for f in manifest["files"]}
    wanted[f"{vprefix}/{MANIFEST}"] = -1
    deadline = time.monotonic() + timeout_s
    while True:
        present = {
            o["name"]: o["size"] for o in _list_names(storage, to_region, dest_bucket, vprefix)
        }
        missing = [
            n for n, size in wanted.items() if n not in present or size not in (-1, present[n])
        ]
        if not missing:
            break
        if time.monotonic() > deadline:
            raise ModelRepoError(
                f"replica {to_region}/{dest_bucket} still misses {len(missing)} objects of "
                f"{model} {version} after {timeout_s:.0f}s (first: {missing[0]})"
            )
        sleep(poll_s)
    entries = {f"{vprefix}/{FILES}/{f['path']}": f for f in manifest["files"]}
    with _Pool(parallelism) as pool:
        if deep:
            reader = SdkReader(storage, dest_bucket, to_region)

            def check(name: str, entry: dict[str, Any]) -> None:
                if hashlib.sha256(reader.get(name)).hexdigest() != entry["sha256"]:
                    raise ModelRepoError(f"replica {name}: sha256 mismatch")

        else:

            def check(name: str, entry: dict[str, Any]) -> None:
                from nimble_oke.cloud.oci import errors as oe

                try:
                    reported = _head_md5(storage, to_region, dest_bucket, name)
                except oe.service_error_types() as exc:
                    oe.translate(exc, f"reading replica {name}")
                expected = {entry.get("md5"), entry.get("multipart_md5")} - {None}
                if not reported & expected:
                    raise ModelRepoError(f"replica {name}: MD5 does not match the manifest")

        pool.run([functools.partial(check, n, e) for n, e in entries.items()])
    return ReplicationResult(
        to_region,
        dest_bucket,
        policy_id,
        model,
        version,
        len(wanted),
        "sha256" if deep else "md5",
        time.monotonic() - started,
    )
