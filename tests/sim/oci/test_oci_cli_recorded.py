"""Object Storage answers that oci-cli's own integration tests recorded from OCI (the VCR
cassettes under services/object_storage/tests/objectstorage_cassettes in oracle/oci-cli),
replayed against the simulator through the OCI SDK (the CLI's own client library; a CLI
process per check would cost 1-2 s each)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import oci
import pytest
from ocisim_helpers import client_kwargs

from nimble_oke.sim.oci import OciSimulator

OS = oci.object_storage.models


@pytest.fixture
def storage(sim: OciSimulator) -> Iterator[Any]:
    client = oci.object_storage.ObjectStorageClient(sim.oci_config(), **client_kwargs(sim))
    yield client
    client.base_client.session.close()


def _refused(call: Callable[[], Any]) -> tuple[int, str, str]:
    with pytest.raises(oci.exceptions.ServiceError) as info:
        call()
    return info.value.status, info.value.code, info.value.message


def _bucket(sim: OciSimulator, storage: Any, name: str) -> str:
    details = OS.CreateBucketDetails(name=name, compartment_id=sim.compartment_id)
    return str(storage.create_bucket(sim.world.namespace, details).headers["etag"])


def test_bucket_preconditions(sim: OciSimulator, storage: Any) -> None:
    ns = sim.world.namespace
    etag = _bucket(sim, storage, "opts")
    assert storage.get_bucket(ns, "opts", if_match=etag).status == 200
    assert _refused(lambda: storage.get_bucket(ns, "opts", if_match="blah")) == (
        412,
        "IfMatchFailed",
        f"The If-Match header is 'blah' but the current entity tag is '{etag}'",
    )
    assert storage.get_bucket(ns, "opts", if_none_match="blah").status == 200
    # if-none-match on the current etag: 304 Not Modified (the SDK raises it, without body)
    assert _refused(lambda: storage.get_bucket(ns, "opts", if_none_match=etag))[0] == 304
    assert _refused(lambda: storage.delete_bucket(ns, "opts", if_match="blah")) == (
        412,
        "IfMatchFailed",
        "FAILED_PRECONDITION: The current entity tag did not match",
    )
    assert storage.delete_bucket(ns, "opts", if_match=etag).status == 204


def test_object_preconditions(sim: OciSimulator, storage: Any) -> None:
    ns = sim.world.namespace
    _bucket(sim, storage, "objs")
    put = storage.put_object(ns, "objs", "a.txt", b"first", if_none_match="*")
    etag = put.headers["etag"]
    # if-none-match: * on an existing object refuses the write and keeps the object
    status, code, _ = _refused(
        lambda: storage.put_object(ns, "objs", "a.txt", b"second", if_none_match="*")
    )
    assert (status, code) == (412, "IfNoneMatchFailed")
    assert _refused(lambda: storage.put_object(ns, "objs", "a.txt", b"x", if_match="foo"))[:2] == (
        412,
        "IfMatchFailed",
    )
    assert _refused(lambda: storage.get_object(ns, "objs", "a.txt", if_none_match=etag))[0] == 304
    assert _refused(lambda: storage.head_object(ns, "objs", "a.txt", if_match="foo"))[0] == 412
    assert _refused(lambda: storage.delete_object(ns, "objs", "a.txt", if_match="foo"))[:2] == (
        412,
        "IfMatchFailed",
    )
    assert storage.get_object(ns, "objs", "a.txt").data.content == b"first"
    # a refused Content-MD5 stores nothing and bills nothing
    bucket = next(r for r in sim.world.find("bucket", name="objs"))
    billed = bucket.billing
    assert _refused(
        lambda: storage.put_object(ns, "objs", "b.txt", b"body", content_md5="bm90LW1kNQ==")
    )[:2] == (400, "InvalidParameter")
    assert bucket.billing is billed
    assert [o.name for o in storage.list_objects(ns, "objs").data.objects] == ["a.txt"]


def test_multipart_replication_and_par(sim: OciSimulator, storage: Any) -> None:
    ns = sim.world.namespace
    _bucket(sim, storage, "src")
    assert _refused(
        lambda: storage.list_multipart_upload_parts(ns, "src", "a", "UNKNOWN_UPLOAD_ID")
    ) == (404, "UploadNotFound", "No such upload")

    west = sim.world.regions[1]
    remote = oci.object_storage.ObjectStorageClient(
        sim.oci_config(west), **client_kwargs(sim, service_endpoint=sim.endpoints[west])
    )
    try:
        remote.create_bucket(
            ns, OS.CreateBucketDetails(name="dst", compartment_id=sim.compartment_id)
        )
    finally:
        remote.base_client.session.close()
    policy = OS.CreateReplicationPolicyDetails(
        name="dr", destination_region_name=west, destination_bucket_name="dst"
    )
    storage.create_replication_policy(ns, "src", policy)
    assert _refused(lambda: storage.create_replication_policy(ns, "src", policy)) == (
        409,
        "ReplicationPolicyConflict",
        f"Replication policy exists for bucket 'src' in namespace '{ns}'.",
    )
    assert _refused(lambda: storage.delete_bucket(ns, "src")) == (
        403,
        "BucketReplicationEnabled",
        "Bucket named 'src' has replication enabled. ",
    )

    par = storage.create_preauthenticated_request(
        ns,
        "src",
        OS.CreatePreauthenticatedRequestDetails(
            name="w", access_type="AnyObjectWrite", time_expires="2100-10-10T00:00:00Z"
        ),
    ).data
    assert par.bucket_listing_action is None and par.object_name is None
    got = storage.get_preauthenticated_request(ns, "src", par.id).data
    assert (got.name, got.access_type) == ("w", "AnyObjectWrite")
    storage.delete_preauthenticated_request(ns, "src", par.id)
    assert _refused(lambda: storage.get_preauthenticated_request(ns, "src", par.id))[:2] == (
        404,
        "NotAuthorizedOrNotFound",
    )
