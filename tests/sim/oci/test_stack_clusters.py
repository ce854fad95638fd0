"""The joined stack gives every OKE cluster its own Kubernetes API server (own port, CA,
store, nodes, namespaces, kubeconfig), created with the cluster and gone with it; a
cluster's OKE token opens only its own API. Driven with the OCI SDK, httpx and lightkube,
on the event clock."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import oci
import pytest
import yaml
from lightkube import Client, KubeConfig
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace, Node
from ocisim_helpers import client_kwargs, create_active_cluster, make_network, pool_details

from nimble_oke.cloud.oci.token import generate_token, signer_from_config
from nimble_oke.sim.stack import SimStack
from polling import wait_for


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[SimStack]:
    with SimStack(tmp_path / "sim", seed=13) as s:  # the event clock
        yield s


def _admin_client(stack: SimStack, cluster_id: str) -> Client:
    config = KubeConfig.from_file(str(stack.kubeconfig_for(cluster_id)))
    return Client(config=config, field_manager="t")


def _trusting(ca_data: str) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=base64.b64decode(ca_data).decode())


def _status_with_token(url: str, ca_data: str, token: str) -> int:
    resp = httpx.get(
        f"{url}/api/v1/namespaces",
        headers={"Authorization": f"Bearer {token}"},
        verify=_trusting(ca_data),
    )
    return resp.status_code


def test_each_cluster_has_its_own_api_server_and_only_its_tokens_open_it(
    stack: SimStack,
) -> None:
    kwargs = client_kwargs(stack.oci)
    config = stack.oci.oci_config()
    ce = oci.container_engine.ContainerEngineClient(config, **kwargs)
    vn = oci.core.VirtualNetworkClient(config, **kwargs)
    # two sessions: two VCNs with the same address plan, two clusters
    first = create_active_cluster(stack.oci, ce, make_network(stack.oci, vn))
    second = create_active_cluster(stack.oci, ce, make_network(stack.oci, vn))
    apis = {c["cluster_id"]: c for c in stack.clusters()}
    assert set(apis) == {first, second}
    assert apis[first]["url"] != apis[second]["url"]
    cas = {}
    for cid in (first, second):  # the kubeconfig users get: the cluster's own server and CA
        doc = yaml.safe_load(ce.create_kubeconfig(cid).data.text)
        entry = doc["clusters"][0]["cluster"]
        assert entry["server"] == apis[cid]["url"] and entry["server"].startswith("https://")
        assert ce.get_cluster(cid).data.endpoints.kubernetes == apis[cid]["url"].split("://")[1]
        cas[cid] = entry["certificate-authority-data"]
    assert cas[first] != cas[second]
    with pytest.raises(httpx.ConnectError):  # one cluster's CA does not vouch for the other
        httpx.get(f"{apis[second]['url']}/version", verify=_trusting(cas[first]))

    signer = signer_from_config(config)
    token = generate_token(signer, first, stack.oci.region)
    assert _status_with_token(apis[first]["url"], cas[first], token) == 200
    # another cluster's token, or a made-up one, is refused
    assert _status_with_token(apis[second]["url"], cas[second], token) == 401
    assert _status_with_token(apis[first]["url"], cas[first], "made-up") == 401

    # a node pool of the first cluster registers its node there only
    workers = _workers_subnet(vn, stack, ce, first)
    ce.create_node_pool(pool_details(stack.oci, ce, first, workers))
    a, b = _admin_client(stack, first), _admin_client(stack, second)
    try:
        wait_for(lambda: list(a.list(Node)), timeout=30.0, what="the first cluster's node")
        assert list(b.list(Node)) == []
        for client in (a, b):
            client.create(Namespace(metadata=ObjectMeta(name="nim")))

        ce.delete_cluster(first)  # OKE deletes its node pools with it
        wait_for(
            lambda: first not in {c["cluster_id"] for c in stack.clusters()},
            timeout=30.0,
            what="the first cluster's API server to go",
        )
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{apis[first]['url']}/version", verify=_trusting(cas[first]))
        assert "nim" in {n.metadata.name for n in b.list(Namespace)}  # untouched
        assert stack.leftovers()["kube_namespaces"] == 1
    finally:
        a.close()
        b.close()


def _workers_subnet(vn: Any, stack: SimStack, ce: Any, cluster_id: str) -> str:
    vcn = ce.get_cluster(cluster_id).data.vcn_id
    subnets = vn.list_subnets(stack.oci.compartment_id, vcn_id=vcn).data
    return str(next(s.id for s in subnets if s.cidr_block == "10.0.1.0/24"))
