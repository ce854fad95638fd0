"""Signatures, request ids, retry tokens, pagination and etags, through the real SDK."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import oci
import pytest
from ocisim_helpers import C, client_kwargs, settle

from nimble_oke.sim.oci import OciSimulator
from nimble_oke.sim.oci.auth import ApiKey


def test_unsigned_request_is_refused_with_oci_error_shape(sim: OciSimulator) -> None:
    url = f"{sim.endpoint}/20160918/availabilityDomains?compartmentId={sim.compartment_id}"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url, timeout=5)
    err = info.value
    body = json.loads(err.read())
    err.close()
    assert err.code == 401
    assert body["code"] == "NotAuthenticated"
    assert err.headers["opc-request-id"]


def test_request_signed_with_an_unknown_key_is_refused(sim: OciSimulator, tmp_path: Path) -> None:
    cfg = sim.oci_config()
    stranger = ApiKey.generate(cfg["tenancy"], cfg["user"])
    stranger.write_private_key(tmp_path / "other.pem")
    # same keyId as the real user (tenancy/user/fingerprint) but a different private key
    forged = {**cfg, "key_file": str(tmp_path / "other.pem")}
    client = oci.identity.IdentityClient(forged, **client_kwargs(sim))
    try:
        with pytest.raises(oci.exceptions.ServiceError) as info:
            client.list_availability_domains(sim.compartment_id)
        assert info.value.status == 401
        assert info.value.code == "NotAuthenticated"
        assert info.value.request_id
    finally:
        client.base_client.session.close()


def test_signed_request_succeeds_and_carries_request_id(
    clients: dict[str, Any], sim: OciSimulator
) -> None:
    resp = clients["identity"].list_availability_domains(sim.compartment_id)
    assert [ad.name for ad in resp.data] == [
        "Uocm:US-ASHBURN-AD-1",
        "Uocm:US-ASHBURN-AD-2",
        "Uocm:US-ASHBURN-AD-3",
    ]
    assert resp.request_id
    comp = clients["identity"].get_compartment(sim.compartment_id).data
    assert comp.name == "nimble-sim" and comp.compartment_id == sim.tenancy_id


def test_body_hash_mismatch_is_refused(sim: OciSimulator) -> None:
    """A signed POST whose body was altered after signing fails x-content-sha256."""
    from oci._vendor import requests  # the SDK's own vendored requests

    signer = oci.signer.Signer.from_config(sim.oci_config())
    body = json.dumps({"compartmentId": sim.compartment_id, "cidrBlock": "10.0.0.0/16"})
    req = requests.Request(
        "POST",
        f"{sim.endpoint}/20160918/vcns",
        data=body,
        headers={"content-type": "application/json"},
    )
    prepared = signer(req.prepare())
    prepared.body = body.replace("10.0.0.0", "10.9.0.0").encode()
    with requests.Session() as session:
        resp = session.send(prepared, timeout=5)
    assert resp.status_code == 401
    assert resp.json()["code"] == "NotAuthenticated"


def test_retry_token_replays_and_detects_conflicts(
    clients: dict[str, Any], sim: OciSimulator
) -> None:
    vn = clients["vn"]
    details = C.CreateVcnDetails(cidr_block="10.0.0.0/16", compartment_id=sim.compartment_id)
    first = vn.create_vcn(details, opc_retry_token="tok-1").data
    again = vn.create_vcn(details, opc_retry_token="tok-1").data
    assert first.id == again.id
    assert len(vn.list_vcns(sim.compartment_id).data) == 1
    other = C.CreateVcnDetails(cidr_block="10.1.0.0/16", compartment_id=sim.compartment_id)
    with pytest.raises(oci.exceptions.ServiceError) as info:
        vn.create_vcn(other, opc_retry_token="tok-1")
    assert (info.value.status, info.value.code) == (409, "InvalidatedRetryToken")


def test_pagination_with_limit_and_page(clients: dict[str, Any], sim: OciSimulator) -> None:
    vn = clients["vn"]
    for n in range(5):
        vn.create_vcn(
            C.CreateVcnDetails(
                cidr_block=f"10.{n}.0.0/16", compartment_id=sim.compartment_id, display_name=f"v{n}"
            )
        )
    first = vn.list_vcns(sim.compartment_id, limit=2)
    assert len(first.data) == 2 and first.has_next_page
    every = oci.pagination.list_call_get_all_results(vn.list_vcns, sim.compartment_id, limit=2).data
    assert sorted(v.display_name for v in every) == [f"v{n}" for n in range(5)]


def test_if_match_etag(clients: dict[str, Any], sim: OciSimulator) -> None:
    vn = clients["vn"]
    resp = vn.create_vcn(
        C.CreateVcnDetails(cidr_block="10.0.0.0/16", compartment_id=sim.compartment_id)
    )
    settle(sim, 10)  # PROVISIONING -> AVAILABLE changes the etag too
    etag = vn.get_vcn(resp.data.id).headers["etag"]
    with pytest.raises(oci.exceptions.ServiceError) as info:
        vn.update_vcn(resp.data.id, C.UpdateVcnDetails(display_name="x"), if_match="stale")
    assert info.value.status == 412
    updated = vn.update_vcn(resp.data.id, C.UpdateVcnDetails(display_name="x"), if_match=etag)
    assert updated.data.display_name == "x" and updated.headers["etag"] != etag


def test_unknown_resource_is_not_authorized_or_not_found(clients: dict[str, Any]) -> None:
    with pytest.raises(oci.exceptions.ServiceError) as info:
        clients["ce"].get_cluster("ocid1.cluster.oc1.iad.nope")
    assert (info.value.status, info.value.code) == (404, "NotAuthorizedOrNotFound")


@pytest.mark.parametrize(
    ("method", "path", "status", "code", "message"),
    [
        (
            "GET",
            "/20160918/nosuchthing",
            404,
            "NotFound",
            "There is no operation supported at the URI path and HTTP method you specified "
            "in the request.",
        ),
        (
            "PATCH",
            "/20160918/vcns",
            405,
            "MethodNotAllowed",
            "The target resource does not support the HTTP method.",
        ),
    ],
)
def test_a_path_or_method_with_no_operation_gets_ocis_words(
    sim: OciSimulator, method: str, path: str, status: int, code: str, message: str
) -> None:
    """OCI's API errors page: no operation at that path → 404 NotFound, a method the
    resource does not support → 405 MethodNotAllowed (not a resource that is missing)."""
    request = urllib.request.Request(f"{sim.endpoint}{path}", method=method)
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    err = info.value
    body = json.loads(err.read())
    err.close()
    assert (err.code, body["code"], body["message"]) == (status, code, message)
