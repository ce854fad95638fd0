"""Object Storage (multipart, PARs without signatures, replication) and Resource Search."""

from __future__ import annotations

import datetime as dt
import io
import urllib.error
import urllib.request
from typing import Any

import oci
import pytest
from ocisim_helpers import C, client_kwargs, create_cluster, make_network, settle

from nimble_oke.sim.oci import OciSimulator

OS = oci.object_storage.models


@pytest.fixture
def storage(sim: OciSimulator) -> Any:
    client = oci.object_storage.ObjectStorageClient(sim.oci_config(), **client_kwargs(sim))
    yield client
    client.base_client.session.close()


def _bucket(sim: OciSimulator, client: Any, name: str, versioning: str = "Disabled") -> str:
    ns = client.get_namespace().data
    client.create_bucket(
        ns,
        OS.CreateBucketDetails(
            name=name,
            compartment_id=sim.compartment_id,
            versioning=versioning,
            freeform_tags={"nimble-session": "t1"},
        ),
    )
    return str(ns)


def test_objects_versioning_and_listing(sim: OciSimulator, storage: Any) -> None:
    ns = _bucket(sim, storage, "models", versioning="Enabled")
    put = storage.put_object(
        ns,
        "models",
        "llama/config.json",
        b'{"a": 1}',
        content_type="application/json",
        opc_meta={"source": "ngc"},
    )
    assert put.headers["etag"] and put.headers["opc-content-md5"]
    got = storage.get_object(ns, "models", "llama/config.json")
    assert got.data.content == b'{"a": 1}'
    assert got.headers["opc-meta-source"] == "ngc"
    head = storage.head_object(ns, "models", "llama/config.json")
    assert head.headers["content-length"] == "8"
    storage.put_object(ns, "models", "llama/weights.bin", b"x" * 1000)
    storage.put_object(ns, "models", "readme", b"hi")
    listing = storage.list_objects(ns, "models", prefix="llama/", fields="name,size").data
    assert [o.name for o in listing.objects] == ["llama/config.json", "llama/weights.bin"]
    folders = storage.list_objects(ns, "models", delimiter="/").data
    assert folders.prefixes == ["llama/"] and [o.name for o in folders.objects] == ["readme"]
    storage.delete_object(ns, "models", "readme")
    with pytest.raises(oci.exceptions.ServiceError) as info:
        storage.get_object(ns, "models", "readme")
    assert (info.value.status, info.value.code) == (404, "ObjectNotFound")
    with pytest.raises(oci.exceptions.ServiceError) as info:
        storage.delete_bucket(ns, "models")
    assert info.value.code == "BucketNotEmpty"


def test_multipart_upload_through_upload_manager(sim: OciSimulator, storage: Any) -> None:
    ns = _bucket(sim, storage, "cache")
    payload = bytes(range(256)) * 4096 * 3  # 3 MiB
    manager = oci.object_storage.UploadManager(storage, allow_parallel_uploads=False)
    manager.upload_stream(ns, "cache", "blob.bin", io.BytesIO(payload), part_size=1024 * 1024)
    got = storage.get_object(ns, "cache", "blob.bin")
    assert got.data.content == payload
    assert got.headers["opc-multipart-md5"].endswith("-3")
    # explicit multipart API: abort leaves nothing behind
    upload = storage.create_multipart_upload(
        ns, "cache", OS.CreateMultipartUploadDetails(object="tmp")
    ).data
    storage.upload_part(ns, "cache", "tmp", upload.upload_id, 1, b"abc")
    assert [
        p.part_number
        for p in storage.list_multipart_upload_parts(ns, "cache", "tmp", upload.upload_id).data
    ] == [1]
    storage.abort_multipart_upload(ns, "cache", "tmp", upload.upload_id)
    assert [o.name for o in storage.list_objects(ns, "cache").data.objects] == ["blob.bin"]


def test_pre_authenticated_request_without_signature(sim: OciSimulator, storage: Any) -> None:
    ns = _bucket(sim, storage, "reports")
    storage.put_object(ns, "reports", "r.json", b"{}")
    expires = dt.datetime.fromtimestamp(sim.clock.wall() + 3600, dt.UTC)
    par = storage.create_preauthenticated_request(
        ns,
        "reports",
        OS.CreatePreauthenticatedRequestDetails(
            name="read", object_name="r.json", access_type="ObjectRead", time_expires=expires
        ),
    ).data
    assert par.access_uri.startswith("/p/")
    with urllib.request.urlopen(sim.endpoint + par.access_uri, timeout=5) as resp:
        assert resp.read() == b"{}"
    other = sim.endpoint + par.access_uri.replace("r.json", "other.json")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(other, timeout=5)
    assert info.value.code == 404
    info.value.close()
    writer = storage.create_preauthenticated_request(
        ns,
        "reports",
        OS.CreatePreauthenticatedRequestDetails(
            name="write", access_type="AnyObjectWrite", time_expires=expires
        ),
    ).data
    req = urllib.request.Request(
        sim.endpoint + writer.access_uri + "new.txt", data=b"up", method="PUT"
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200
    assert storage.get_object(ns, "reports", "new.txt").data.content == b"up"
    settle(sim, 3700)  # past timeExpires on the simulated clock
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(sim.endpoint + par.access_uri, timeout=5)
    assert info.value.code == 404
    info.value.close()
    state = sim.state_dir / "oci-state.json"
    sim.save()
    assert par.access_uri.split("/")[2] not in state.read_text()  # PAR tokens are stored hashed


def test_replication_to_a_second_region(sim: OciSimulator, storage: Any) -> None:
    ns = _bucket(sim, storage, "models")
    west = oci.object_storage.ObjectStorageClient(
        sim.oci_config("us-phoenix-1"),
        **client_kwargs(sim, service_endpoint=sim.endpoints["us-phoenix-1"]),
    )
    try:
        west.create_bucket(
            ns, OS.CreateBucketDetails(name="models-dr", compartment_id=sim.compartment_id)
        )
        storage.put_object(ns, "models", "w.bin", b"weights")
        storage.create_replication_policy(
            ns,
            "models",
            OS.CreateReplicationPolicyDetails(
                name="dr",
                destination_region_name="us-phoenix-1",
                destination_bucket_name="models-dr",
            ),
        )
        assert west.list_objects(ns, "models-dr").data.objects == []
        settle(sim, 90)  # replication lag (assumed 60 s)
        assert west.get_object(ns, "models-dr", "w.bin").data.content == b"weights"
        with pytest.raises(oci.exceptions.ServiceError):
            west.put_object(ns, "models-dr", "x", b"no")  # a replication target is read-only
        # the same bucket name in another region is another bucket
        with pytest.raises(oci.exceptions.ServiceError) as info:
            west.get_object(ns, "models", "w.bin")
        assert info.value.status == 404
    finally:
        west.base_client.session.close()


def test_resource_search_by_freeform_tag(
    clients: dict[str, Any], sim: OciSimulator, storage: Any
) -> None:
    vn = clients["vn"]
    net = make_network(sim, vn)
    vn.update_vcn(net["vcn"], C.UpdateVcnDetails(freeform_tags={"nimble-session": "t1"}))
    cluster_id = create_cluster(sim, clients["ce"], net)
    _bucket(sim, storage, "tagged")
    vol = sim.api.create_volume(100, freeform_tags={"nimble-session": "t2"})
    search = oci.resource_search.ResourceSearchClient(sim.oci_config(), **client_kwargs(sim))
    try:
        query = (
            "query all resources where (freeformTags.key = 'nimble-session' "
            "&& freeformTags.value = 't1')"
        )
        items = search.search_resources(
            oci.resource_search.models.StructuredSearchDetails(query=query, type="Structured")
        ).data.items
        found = {(i.resource_type, i.identifier) for i in items}
        assert ("Vcn", net["vcn"]) in found
        assert ("ClustersCluster", cluster_id) in found
        assert "Bucket" in {t for t, _ in found}
        assert vol not in {i for _, i in found}
        vols = search.search_resources(
            oci.resource_search.models.StructuredSearchDetails(
                query="query volume resources where lifecycleState != 'TERMINATED'",
                type="Structured",
            )
        ).data.items
        assert [v.identifier for v in vols] == [vol]
    finally:
        search.base_client.session.close()
