"""The OCI simulator driven by the real oci-cli (a second real client next to the SDK): the
surfaces the product uses, and OCI's refusals as the CLI prints them (status, code,
message). About 40 ``oci`` invocations in all (1-2 s of start-up each): independent ones run
at once (``OciCli.many``). oci-cli comes from ``make tools`` (tests/ocicli.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import oci
import pytest
import yaml
from ocisim_helpers import client_kwargs, create_active_cluster, make_network

from nimble_oke.sim.oci import FaultPlan, FaultRule, OciSimulator
from ocicli import CliResult, OciCli, needs_oci_cli

pytestmark = needs_oci_cli

NOT_FOUND = (
    404,
    "NotAuthorizedOrNotFound",
    "Authorization failed or requested resource not found.",
)
WAIT = ("--wait-interval-seconds", "1", "--max-wait-seconds", "120")


@pytest.fixture
def cli(sim: OciSimulator, tmp_path: Path) -> OciCli:
    return OciCli(sim, tmp_path / "home")


def _refusal(result: CliResult) -> tuple[int, str, str]:
    err = result.error()
    return err["status"], err["code"], err["message"]


def _create(cli: OciCli, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = cli.ok(*args, "--wait-for-state", "AVAILABLE", *WAIT)
    assert data["lifecycle-state"] == "AVAILABLE", data
    return data


def test_identity_reads(cli: OciCli, sim: OciSimulator) -> None:
    comp, tenancy = sim.compartment_id, sim.tenancy_id
    ads, own, gpus, bogus = cli.many(
        ("iam", "availability-domain", "list", "-c", comp),
        ("iam", "compartment", "get", "--compartment-id", comp),
        (
            *("limits", "resource-availability", "get", "--service-name", "compute"),
            *("--limit-name", "gpu-a10-count", "-c", tenancy),
            *("--availability-domain", sim.world.ads()[0]),
        ),
        ("iam", "compartment", "get", "--compartment-id", "ocid1.compartment.oc1..nosuch"),
    )
    assert [ad["name"] for ad in ads.data()] == sim.world.ads()
    # an AD's OCID is fixed, as in OCI: the SDK sees the ids the CLI saw
    identity = oci.identity.IdentityClient(sim.oci_config(), **client_kwargs(sim))
    again = identity.list_availability_domains(comp).data
    assert [ad.id for ad in again] == [ad["id"] for ad in ads.data()]
    assert own.data()["name"] == "nimble-sim" and own.data()["lifecycle-state"] == "ACTIVE"
    assert {"used", "available"} <= set(gpus.data())
    assert _refusal(bogus) == NOT_FOUND
    assert bogus.error()["operation_name"] == "get_compartment"
    assert bogus.error()["opc-request-id"]  # (oci-cli prints the id it sent)


def test_network_lifecycle_and_refusals(cli: OciCli, sim: OciSimulator) -> None:
    comp = sim.compartment_id
    vcn = _create(cli, "network", "vcn", "create", "-c", comp, "--cidr-block", "10.0.0.0/16")
    on_vcn = ("-c", comp, "--vcn-id", vcn["id"])
    egress = json.dumps([{"destination": "0.0.0.0/0", "protocol": "all"}])
    ig, nat, sl = (
        r.data()
        for r in cli.many(
            ("network", "internet-gateway", "create", *on_vcn, "--is-enabled", "true"),
            ("network", "nat-gateway", "create", *on_vcn),
            (
                *("network", "security-list", "create", *on_vcn),
                *("--ingress-security-rules", "[]", "--egress-security-rules", egress),
            ),
        )
    )
    assert (ig["lifecycle-state"], nat["vcn-id"], sl["egress-security-rules"][0]["protocol"]) == (
        "PROVISIONING",
        vcn["id"],
        "all",
    )
    rules = json.dumps([{"destination": "0.0.0.0/0", "networkEntityId": ig["id"]}])
    rt = _create(cli, "network", "route-table", "create", *on_vcn, "--route-rules", rules)
    subnet = _create(
        cli,
        *("network", "subnet", "create", *on_vcn, "--cidr-block", "10.0.1.0/24"),
        *("--route-table-id", rt["id"], "--security-list-ids", json.dumps([sl["id"]])),
    )
    assert subnet["virtual-router-ip"] == "10.0.1.1"

    listed, overlap, vcn_busy, ig_busy, missing = cli.many(
        # two security lists (the VCN's default and ours), one per page: --all follows
        # opc-next-page
        ("network", "security-list", "list", *on_vcn, "--all", "--page-size", "1"),
        ("network", "subnet", "create", *on_vcn, "--cidr-block", "10.0.1.128/25"),
        ("network", "vcn", "delete", "--vcn-id", vcn["id"], "--force"),
        ("network", "internet-gateway", "delete", "--ig-id", ig["id"], "--force"),
        ("network", "vcn", "get", "--vcn-id", "ocid1.vcn.oc1.iad.nosuch"),
    )
    assert {s["id"] for s in listed.data()} == {sl["id"], vcn["default-security-list-id"]}
    assert _refusal(overlap)[:2] == (400, "InvalidParameter")
    assert _refusal(vcn_busy) == (
        409,
        "Conflict",
        f"The Vcn {vcn['id']} references the Subnet {subnet['id']}. "
        "You must remove the reference to proceed with this operation.",
    )
    assert _refusal(ig_busy) == (
        409,
        "Conflict",
        f"The Route Table {rt['id']} references the Internet Gateway {ig['id']}. "
        "You must remove the reference to proceed with this operation.",
    )
    assert _refusal(missing) == NOT_FOUND

    gone = ("--force", "--wait-for-state", "TERMINATED", *WAIT)
    cli.ok("network", "subnet", "delete", "--subnet-id", subnet["id"], *gone)
    cli.many(
        ("network", "route-table", "delete", "--rt-id", rt["id"], *gone),
        ("network", "security-list", "delete", "--security-list-id", sl["id"], *gone),
    )
    # only gateways left: OCI's generic 409 IncorrectState, which the CLI (like the SDK)
    # treats as transient and retries; --no-retry shows it as OCI sends it
    gateways = cli.run("--no-retry", "network", "vcn", "delete", "--vcn-id", vcn["id"], "--force")
    assert _refusal(gateways) == (
        409,
        "IncorrectState",
        f"{vcn['id']} is associated with Gateway that is in use",
    )
    assert gateways.error()["kind"] == "TransientServiceError"
    cli.many(
        ("network", "internet-gateway", "delete", "--ig-id", ig["id"], *gone),
        ("network", "nat-gateway", "delete", "--nat-gateway-id", nat["id"], *gone),
    )
    cli.ok("network", "vcn", "delete", "--vcn-id", vcn["id"], *gone)
    assert sim.world.resources[vcn["id"]].wire["lifecycleState"] == "TERMINATED"


def test_block_volume_load_balancer_and_search(cli: OciCli, sim: OciSimulator) -> None:
    comp, ad = sim.compartment_id, sim.world.ads()[0]
    tags = json.dumps({"nimble-session": "cli"})
    volume = _create(
        cli,
        *("bv", "volume", "create", "-c", comp, "--availability-domain", ad),
        *("--size-in-gbs", "50", "--vpus-per-gb", "10", "--freeform-tags", tags),
    )
    lb_id = sim.api.create_load_balancer("nimble-lb", freeform_tags={"nimble-session": "cli"})
    query = (
        "query all resources where freeformTags.key = 'nimble-session' "
        "&& freeformTags.value = 'cli'"
    )
    faster, odd_vpus, lbs, lb, found, missing = cli.many(
        ("bv", "volume", "update", "--volume-id", volume["id"], "--vpus-per-gb", "20"),
        ("bv", "volume", "update", "--volume-id", volume["id"], "--vpus-per-gb", "25"),
        ("lb", "load-balancer", "list", "-c", comp, "--all"),
        ("lb", "load-balancer", "get", "--load-balancer-id", lb_id),
        ("search", "resource", "structured-search", "--query-text", query),
        ("bv", "volume", "get", "--volume-id", "ocid1.volume.oc1.iad.nosuch"),
    )
    assert faster.data()["vpus-per-gb"] == 20
    assert _refusal(odd_vpus)[:2] == (400, "InvalidParameter")
    assert [x["id"] for x in lbs.data()] == [lb_id]
    assert lb.data()["shape-name"] == "flexible"
    hits = {(h["resource-type"], h["identifier"]) for h in found.data()["items"]}
    assert hits == {("Volume", volume["id"]), ("LoadBalancer", lb_id)}
    assert _refusal(missing) == NOT_FOUND
    cli.ok(
        *("bv", "volume", "delete", "--volume-id", volume["id"], "--force"),
        *("--wait-for-state", "TERMINATED", *WAIT),
    )


def test_object_storage(cli: OciCli, sim: OciSimulator, tmp_path: Path) -> None:
    comp, ns = sim.compartment_id, sim.world.namespace
    src = tmp_path / "weights.bin"
    src.write_bytes(b"nimble" * 1000)
    assert cli.ok("os", "bucket", "create", "-c", comp, "--name", "models")["name"] == "models"
    bucket = ("-bn", "models")
    put = ("os", "object", "put", *bucket, "--name", "m/weights.bin", "--file", str(src))
    first = cli.run(*put)
    assert first.returncode == 0, first.stderr
    again, kept, stale_etag, listed, par, dup, not_empty, missing = cli.many(
        ("os", "bucket", "create", "-c", comp, "--name", "models"),
        (*put, "--no-overwrite"),
        (*put, "--force", "--if-match", "not-the-etag"),
        ("os", "object", "list", *bucket, "--all", "--prefix", "m/"),
        (
            *("os", "preauth-request", "create", *bucket, "--name", "read"),
            *("--access-type", "ObjectRead", "--object-name", "m/weights.bin"),
            *("--time-expires", "2099-01-01T00:00:00Z"),
        ),
        (*put, "--force", "--content-md5", "bm90LXRoZS1tZDU="),
        ("os", "bucket", "delete", *bucket, "--force"),
        ("os", "bucket", "get", "-bn", "nosuch"),
    )
    assert _refusal(again) == (
        409,
        "BucketAlreadyExists",
        f"Either the bucket 'models' in namespace '{ns}' already exists or you are not "
        "authorized to create it",
    )
    assert "The object already exists and was not overwritten" in kept.stderr
    status, code, message = _refusal(stale_etag)
    assert (status, code) == (412, "IfMatchFailed")
    assert message.startswith("The If-Match header is 'not-the-etag'")
    assert [o["name"] for o in listed.data()] == ["m/weights.bin"]
    assert listed.data()[0]["size"] == 6000
    created = par.data()
    assert created["access-uri"].startswith("/p/") and created["object-name"] == "m/weights.bin"
    assert _refusal(dup)[:2] == (400, "InvalidParameter")
    assert _refusal(dup)[2].startswith("The value of the Content-MD5 header")
    assert _refusal(not_empty)[:2] == (409, "BucketNotEmpty")

    out = tmp_path / "out.bin"
    get = ("os", "object", "get", *bucket, "--name", "m/weights.bin")
    fetched, ranged, got_par = cli.many(
        (*get, "--file", str(out)),
        (*get, "--file", "-", "--range", "bytes=2-7"),
        ("os", "preauth-request", "get", *bucket, "--par-id", created["id"]),
    )
    assert ranged.stdout == "mbleni"  # bytes 2-7 of "nimblenimble..."
    assert fetched.returncode == 0, fetched.stderr
    assert out.read_bytes() == src.read_bytes()
    assert got_par.data()["name"] == "read" and "access-uri" not in got_par.data()
    # without ``fields`` OCI lists names only (the CLI always asks for the fields it shows)
    storage = oci.object_storage.ObjectStorageClient(sim.oci_config(), **client_kwargs(sim))
    (bare,) = storage.list_objects(ns, "models").data.objects
    assert (bare.name, bare.size, bare.etag) == ("m/weights.bin", None, None)
    assert _refusal(missing) == (
        404,
        "BucketNotFound",
        f"Either the bucket named 'nosuch' does not exist in the namespace '{ns}' or you are "
        "not authorized to access it",
    )


def test_container_engine_reads(
    cli: OciCli, sim: OciSimulator, clients: dict[str, Any], tmp_path: Path
) -> None:
    comp = sim.compartment_id
    net = make_network(sim, clients["vn"])
    cluster_id = create_active_cluster(sim, clients["ce"], net)
    (wr_id,) = [w.id for w in clients["ce"].list_work_requests(comp).data]
    kubeconfig = tmp_path / "kubeconfig"
    clusters, cluster, pools, wrs, wr, made, token = cli.many(
        ("ce", "cluster", "list", "-c", comp, "--all"),
        ("ce", "cluster", "get", "--cluster-id", cluster_id),
        ("ce", "node-pool", "list", "-c", comp, "--cluster-id", cluster_id, "--all"),
        ("ce", "work-request", "list", "-c", comp, "--cluster-id", cluster_id, "--all"),
        ("ce", "work-request", "get", "--work-request-id", wr_id),
        (
            *("ce", "cluster", "create-kubeconfig", "--cluster-id", cluster_id),
            *("--file", str(kubeconfig), "--token-version", "2.0.0"),
        ),
        ("ce", "cluster", "generate-token", "--cluster-id", cluster_id, "--region", sim.region),
    )
    assert [c["id"] for c in clusters.data()] == [cluster_id]
    assert cluster.data()["lifecycle-state"] == "ACTIVE"
    assert pools.data() is None  # the CLI prints nothing for an empty list
    assert [(w["id"], w["operation-type"], w["status"]) for w in wrs.data()] == [
        (wr_id, "CLUSTER_CREATE", "SUCCEEDED")
    ]
    assert wr.data()["resources"][0]["identifier"] == cluster_id
    # the kubeconfig runs `oci ce cluster generate-token`; the token that command makes
    # (signed by the CLI, no call to the simulator) is one the simulated cluster accepts
    assert made.returncode == 0, made.stderr
    user = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["exec"]
    assert user["command"] == "oci" and cluster_id in user["args"]
    assert sim.verify_cluster_token(json.loads(token.stdout)["status"]["token"]) == cluster_id
    # OCI answers with the caller's opc-request-id as the first of three groups
    sent = clients["ce"].list_clusters(comp, opc_request_id="nimble-test-1")
    client_part, *server_parts = sent.request_id.split("/")
    assert client_part == "nimble-test-1" and len(server_parts) == 2


def test_throttling_as_the_cli_sees_it(tmp_path: Path, tenancy_identity: Path) -> None:
    """429 TooManyRequests: the CLI retries it by default (the first call is refused, the
    command still succeeds) and prints it as a transient error with --no-retry."""
    import shutil

    shutil.copytree(tenancy_identity, tmp_path / "state" / "oci")
    rule = FaultRule(operation="ListVcns", error="TooManyRequests", nth=[1, 3])
    plan = FaultPlan(rules=[rule])
    with OciSimulator(state_dir=tmp_path / "state", time_scale=60, seed=1, faults=plan) as sim:
        cli = OciCli(sim, tmp_path / "home")
        listing = ("network", "vcn", "list", "-c", sim.compartment_id)
        assert cli.run(*listing).returncode == 0  # calls 1 (429) and 2
        throttled = cli.run("--no-retry", *listing)  # call 3
    assert _refusal(throttled) == (429, "TooManyRequests", "Too many requests for the user")
    assert throttled.error()["kind"] == "TransientServiceError"
