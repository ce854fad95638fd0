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
- Object Storage is reached through its port (:mod:`nimble_oke.ports_storage`): this module
  holds no SDK client and imports no ``oci``. The OCI adapter (SDK clients per thread and
  region, one signer, the PAR reader) is :mod:`nimble_oke.cloud.oci.object_storage`; its
  classes stay importable from here under their former names (``Storage``, ``SdkReader``,
  ``ParReader``).
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
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nimble_oke.cloud.oci import object_storage as _oci_storage
from nimble_oke.errors import ConfigError, NimbleError
from nimble_oke.ports_storage import ObjectNotFound, ObjectReader, ObjectStore

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


# The OCI adapter under its former names: callers build one and pass it as the port.
Storage = _oci_storage.OciObjectStorage
Reader = _oci_storage.Reader
SdkReader = _oci_storage.SdkReader
ParReader = _oci_storage.ParReader
NotFoundError = ObjectNotFound


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


def _ensure_bucket(storage: ObjectStore, bucket: str, region: str) -> None:
    if storage.bucket_exists(region, bucket):
        return
    if not storage.compartment_id:
        raise ConfigError(f"bucket {bucket} does not exist and no compartment is configured")
    storage.create_bucket(region, bucket, {"nimble-oke-created-by": "nimble models push"})
    log.info("created bucket %s (versioning enabled) in %s", bucket, region)


def _put(storage: ObjectStore, region: str, bucket: str, name: str, data: bytes) -> None:
    storage.put(region, bucket, name, data)


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
    storage: ObjectStore,
    pool: _Pool,
    region: str,
    bucket: str,
    name: str,
    path: Path,
    part_size: int,
) -> str | None:
    """Upload one file (multipart above ``part_size``); returns the MD5 the service checked
    (content-md5, sent with the body) or reported (opc-multipart-md5)."""
    size = path.stat().st_size
    if size <= part_size:
        data = path.read_bytes()
        _put(storage, region, bucket, name, data)  # the service refuses a wrong content-md5
        return base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324
    upload_id = storage.start_multipart(region, bucket, name)

    def part(num: int) -> tuple[int, str]:
        data = _read_range(path, (num - 1) * part_size, part_size)
        return num, storage.upload_part(region, bucket, name, upload_id, num, data)

    count = -(-size // part_size)
    try:
        etags = pool.run([functools.partial(part, n) for n in range(1, count + 1)])
        return storage.commit_multipart(region, bucket, name, upload_id, etags)
    except BaseException:
        with contextlib.suppress(Exception):
            storage.abort_multipart(region, bucket, name, upload_id)
        raise


def push(
    storage: ObjectStore,
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


def _put_json(storage: ObjectStore, region: str, bucket: str, name: str, data: Any) -> None:
    _put(storage, region, bucket, name, json.dumps(data, indent=1, sort_keys=True).encode())


def read_json(reader: ObjectReader, name: str) -> Any:
    """The JSON object ``name``, or None when it does not exist."""
    try:
        return _parse_json(name, reader.get(name))
    except ObjectNotFound:
        return None


def _get_json(storage: ObjectStore, region: str, bucket: str, name: str) -> Any:
    """The JSON object ``name`` read through the store's API, or None when it does not
    exist."""
    try:
        return _parse_json(name, storage.read(region, bucket, name))
    except ObjectNotFound:
        return None


def _parse_json(name: str, data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise ModelRepoError(f"{name}: not valid JSON") from exc


# --- list, promote ------------------------------------------------------------------------


def _list_names(
    storage: ObjectStore, region: str, bucket: str, prefix: str
) -> list[dict[str, Any]]:
    return [{"name": o.name, "size": o.size} for o in storage.list_objects(region, bucket, prefix)]


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
    storage: ObjectStore, bucket: str, *, region: str | None = None, root: str = ROOT
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


def _resolve_model(
    storage: ObjectStore, region: str, bucket: str, model: str | None, root: str
) -> str:
    if model:
        return _check_name("model", model)
    models = sorted({v.model for v in list_versions(storage, bucket, region=region, root=root)})
    if len(models) != 1:
        found = ", ".join(models) or "none"
        raise ConfigError(f"bucket {bucket} holds several or no models ({found}): name one")
    return models[0]


def _write_label(
    storage: ObjectStore, region: str, bucket: str, prefix: str, label: str, version: str
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
    storage: ObjectStore,
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


def resolve_version(
    reader: ObjectReader, prefix: str, version: str | None
) -> tuple[str, dict[str, Any]]:
    """A version name or a label (default ``latest``) → (version, manifest)."""
    ref = version or LATEST
    manifest = read_json(reader, f"{prefix}/{ref}/{MANIFEST}")
    if manifest is not None:
        return ref, manifest
    label = read_json(reader, f"{prefix}/{LABELS}/{ref}.json")
    if label is not None:
        manifest = read_json(reader, f"{prefix}/{label['version']}/{MANIFEST}")
        if manifest is not None:
            return str(label["version"]), manifest
    raise ModelRepoError(f"{prefix}: no version or label {ref!r} in the bucket{reader.hint}")


# --- pre-authenticated requests ----------------------------------------------------------------


def create_par(
    storage: ObjectStore,
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
    expires = datetime.fromtimestamp(now(), UTC) + timedelta(seconds=expires_in_s)
    return storage.create_read_par(
        region or storage.region,
        bucket,
        prefix,
        name=f"nimble-hydrate-{int(time.time())}",
        expires=expires,
    )


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
    reader: ObjectReader,
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


def _fetch_range(reader: ObjectReader, name: str, path: Path, start: int, end: int) -> int:
    data = reader.get(name, start, end)
    if len(data) != end - start + 1:
        raise ModelRepoError(f"{name}: got {len(data)} bytes for range {start}-{end}")
    with path.open("r+b") as fh:
        fh.seek(start)
        fh.write(data)
    return len(data)


def _fetch_whole(reader: ObjectReader, name: str, path: Path, size: int) -> int:
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
    reader: ObjectReader,
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
    storage: ObjectStore, bucket: str, region: str, to_region: str, dest_bucket: str
) -> str:
    for policy in storage.replication_policies(region, bucket):
        if policy.destination_region == to_region and policy.destination_bucket == dest_bucket:
            return policy.policy_id
    _ensure_bucket(storage, dest_bucket, to_region)
    policy_id = storage.create_replication_policy(
        region,
        bucket,
        name=f"nimble-{bucket}-to-{to_region}",
        to_region=to_region,
        to_bucket=dest_bucket,
    )
    log.info("replication policy %s → %s/%s created", bucket, to_region, dest_bucket)
    return policy_id


def replicate(
    storage: ObjectStore,
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
    version, manifest = resolve_version(storage.reader(bucket, region), prefix, None)
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
            reader = storage.reader(dest_bucket, to_region)

            def check(name: str, entry: dict[str, Any]) -> None:
                if hashlib.sha256(reader.get(name)).hexdigest() != entry["sha256"]:
                    raise ModelRepoError(f"replica {name}: sha256 mismatch")

        else:

            def check(name: str, entry: dict[str, Any]) -> None:
                reported = storage.checksums(to_region, dest_bucket, name)
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
