"""push → list → promote → hydrate (by label, verified, warm skip) → replicate, against the
OCI simulator through the real OCI SDK; corruption is detected; PAR hydrate is unsigned and
never leaks the URL."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from model_helpers import PART, make_model, tree

from nimble_oke.errors import ProviderError
from nimble_oke.services.models import (
    ModelRepoError,
    ParReader,
    SdkReader,
    Source,
    Storage,
    create_par,
    hydrate,
    list_versions,
    promote,
    push,
    replicate,
)
from nimble_oke.sim.oci import OciSimulator


def _source(storage: Storage, bucket: str) -> Source:
    return Source(bucket, storage.namespace(), "models/llama-tiny")


def test_push_list_promote_hydrate_by_label_then_skip(
    storage: Storage, bucket: str, tmp_path: Path
) -> None:
    v1 = make_model(tmp_path / "v1")
    v2 = make_model(tmp_path / "v2", seed=1)
    (v2 / "tokenizer.json").unlink()  # v2 drops a file: hydrating v2 over v1 removes it
    r1 = push(storage, v1, bucket, "v1", part_size=PART, parallelism=4)
    assert (r1.files, r1.links) == (6, 1)
    push(storage, v2, bucket, "v2", part_size=PART, parallelism=4)
    with pytest.raises(ModelRepoError, match="already exists"):
        push(storage, v2, bucket, "v2", part_size=PART)

    versions = {v.version: v for v in list_versions(storage, bucket)}
    assert set(versions) == {"v1", "v2"}
    assert versions["v1"].files == 6 and versions["v2"].files == 5
    assert versions["v1"].size_bytes == sum(
        p.stat().st_size for p in v1.rglob("*") if p.is_file() and not p.is_symlink()
    )
    assert versions["v2"].labels == ["latest"] and versions["v1"].labels == []

    pointer = promote(storage, "v1", bucket, "prod")
    assert (pointer["version"], pointer["previous"]) == ("v1", None)
    assert [v.labels for v in list_versions(storage, bucket)] == [["prod"], ["latest"]]
    with pytest.raises(ModelRepoError, match="v9"):
        promote(storage, "v9", bucket, "prod")

    dest = tmp_path / "cache"
    reader = SdkReader(storage, bucket)
    src = _source(storage, bucket)
    first = hydrate(reader, src, dest, "prod", parallelism=4, part_size=PART // 2)
    assert (first.version, first.skipped) == ("v1", False)
    assert tree(dest) == tree(v1)
    local = json.loads((dest / ".nimble" / "manifest.json").read_text())
    assert local["source"] == str(src) and local["version"] == "v1"
    assert not (dest / ".nimble" / "staging").exists()

    again = hydrate(reader, src, dest, "prod", parallelism=4, part_size=PART // 2)
    assert again.skipped and again.bytes_downloaded == 0

    # Roll forward, then back: one promote each; the cache follows the label.
    assert promote(storage, "v2", bucket, "prod")["previous"] == "v1"
    assert hydrate(reader, src, dest, "prod", part_size=PART).version == "v2"
    assert tree(dest) == tree(v2) and not (dest / "tokenizer.json").exists()
    promote(storage, "v1", bucket, "prod")
    assert hydrate(reader, src, dest, "prod", part_size=PART).version == "v1"
    assert tree(dest) == tree(v1)

    # A file deleted on the volume is noticed: the next hydrate downloads again.
    (dest / "config.json").unlink()
    assert not hydrate(reader, src, dest, "prod", part_size=PART).skipped
    assert tree(dest) == tree(v1)


def test_corrupted_object_is_detected_and_the_cache_claims_nothing(
    storage: Storage, bucket: str, tmp_path: Path
) -> None:
    model = make_model(tmp_path / "m")
    push(storage, model, bucket, "v1", part_size=PART)
    name = "models/llama-tiny/v1/files/model-00001.safetensors"
    good = (model / "model-00001.safetensors").read_bytes()
    bad = bytes([good[0] ^ 0xFF]) + good[1:]  # same size, one flipped byte
    storage.client().put_object(storage.namespace(), bucket, name, bad)

    dest = tmp_path / "cache"
    with pytest.raises(ModelRepoError, match=r"model-00001\.safetensors: sha256 mismatch"):
        hydrate(SdkReader(storage, bucket), _source(storage, bucket), dest, "v1", part_size=PART)
    assert not (dest / ".nimble" / "manifest.json").exists()
    assert not (dest / "model-00001.safetensors").exists()
    assert not (dest / ".nimble" / "staging").exists()


def test_par_hydrate_needs_no_signature_and_never_shows_the_url(
    sim: OciSimulator,
    storage: Storage,
    bucket: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    model = make_model(tmp_path / "m")
    push(storage, model, bucket, "v1", part_size=PART)
    url = create_par(storage, bucket, "models/llama-tiny", 6 * 3600, now=sim.clock.wall)
    token = url.split("/p/", 1)[1].split("/", 1)[0]
    assert len(token) > 20

    dest = tmp_path / "cache"
    reader = ParReader(url)  # plain urllib GETs: no OCI signature at all
    result = hydrate(reader, _source(storage, bucket), dest, None, parallelism=3, part_size=PART)
    assert (result.version, result.skipped) == ("v1", False)
    assert tree(dest) == tree(model)
    assert hydrate(reader, _source(storage, bucket), dest, "latest").skipped

    expired = create_par(storage, bucket, "models/llama-tiny", -1.0, now=sim.clock.wall)
    with pytest.raises(ModelRepoError) as info:
        hydrate(ParReader(expired), _source(storage, bucket), tmp_path / "other", "v1")
    assert "expired" in str(info.value)
    # A connection failure names the object, not the URL.
    dead = url.replace(url.split("/p/")[0], "http://127.0.0.1:9")
    with pytest.raises(ProviderError) as conn:
        hydrate(ParReader(dead), _source(storage, bucket), tmp_path / "x", "v1")

    leaked = [caplog.text, str(info.value), repr(info.value), str(conn.value), repr(conn.value)]
    for cause in (info.value.__cause__, info.value.__context__, conn.value.__cause__):
        leaked.append(repr(cause))
    assert not any(token in text or url in text for text in leaked)
    assert not any(token in p.read_text(errors="replace") for p in dest.rglob("*.json"))


def test_replicate_to_the_other_region_and_verify(
    sim: OciSimulator, storage: Storage, bucket: str, tmp_path: Path
) -> None:
    model = make_model(tmp_path / "m")
    push(storage, model, bucket, "v1", part_size=PART, parallelism=4)
    other = next(r for r in sim.endpoints if r != storage.region)

    result = replicate(storage, bucket, other, deep=True, poll_s=0.02, timeout_s=30)
    assert (result.model, result.version, result.verified) == ("llama-tiny", "v1", "sha256")
    assert result.objects == 7  # six files + the manifest
    again = replicate(storage, bucket, other, poll_s=0.02, timeout_s=30)  # idempotent, MD5
    assert again.policy_id == result.policy_id and again.verified == "md5"

    replica = [v.as_dict() for v in list_versions(storage, bucket, region=other)]
    assert [(v["version"], v["labels"]) for v in replica] == [("v1", ["latest"])]
    dest = tmp_path / "from-replica"
    hydrate(SdkReader(storage, bucket, other), _source(storage, bucket), dest, "v1")
    assert tree(dest) == tree(model)
    with pytest.raises(ProviderError, match="read-only"):
        push(storage, model, bucket, "v2", region=other, part_size=PART)


def test_storage_from_an_oci_provider_shares_its_signer_and_retry_policy(
    sim: OciSimulator, bucket: str, tmp_path: Path
) -> None:
    from nimble_oke.cloud.oci.provider import OciProvider, fast_retry_strategy

    retry = fast_retry_strategy()
    provider = OciProvider(
        sim.oci_config(),
        compartment_id=sim.compartment_id,
        service_endpoint=sim.endpoint,
        retry_strategy=retry,
    )
    try:
        with Storage.from_provider(provider, dict(sim.endpoints)) as storage:
            assert storage.retry_strategy is retry
            assert storage.signer is provider.ce.base_client.signer
            push(storage, make_model(tmp_path / "m"), bucket, "v1", part_size=PART)
            assert [v.version for v in list_versions(storage, bucket)] == ["v1"]
    finally:
        provider.close()


def test_the_repository_reaches_object_storage_through_the_port_only() -> None:
    """services/models.py holds no SDK client: no oci import, no provider internals (the
    OCI adapter is cloud/oci/object_storage.py, behind ports_storage.ObjectStore)."""
    import ast

    import nimble_oke.services.models as repo

    tree = ast.parse(Path(repo.__file__).read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {m for m in imported if m and (m == "oci" or m.startswith("oci."))}
    attributes = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert not attributes & {"ce", "base_client", "signer"}
