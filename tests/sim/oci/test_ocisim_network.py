"""Networking lifecycle and OCI's dependency rules."""

from __future__ import annotations

from typing import Any

import oci
import pytest
from ocisim_helpers import C, create_cluster, make_network, settle

from nimble_oke.sim.oci import OciSimulator


def test_vcn_lifecycle_and_defaults(clients: dict[str, Any], sim: OciSimulator) -> None:
    vn = clients["vn"]
    vcn = vn.create_vcn(
        C.CreateVcnDetails(
            cidr_block="10.0.0.0/16", compartment_id=sim.compartment_id, dns_label="nimble"
        )
    ).data
    assert vcn.lifecycle_state == "PROVISIONING"
    assert vcn.vcn_domain_name == "nimble.oraclevcn.com"
    settle(sim, 5)
    assert vn.get_vcn(vcn.id).data.lifecycle_state == "AVAILABLE"
    assert vn.get_route_table(vcn.default_route_table_id).data.vcn_id == vcn.id
    vn.delete_vcn(vcn.id)
    assert vn.get_vcn(vcn.id).data.lifecycle_state == "TERMINATING"
    settle(sim, 5)
    assert vn.get_vcn(vcn.id).data.lifecycle_state == "TERMINATED"
    assert vn.get_security_list(vcn.default_security_list_id).data.lifecycle_state == "TERMINATED"
    assert not [r for r in sim.inventory() if r["kind"] != "compartment"]


def test_vcn_with_subnets_cannot_be_deleted(clients: dict[str, Any], sim: OciSimulator) -> None:
    vn = clients["vn"]
    net = make_network(sim, vn)
    with pytest.raises(oci.exceptions.ServiceError) as info:
        vn.delete_vcn(net["vcn"])
    assert (info.value.status, info.value.code) == (409, "Conflict")
    # a gateway a route rule targets, and a route table a subnet uses, are protected too
    with pytest.raises(oci.exceptions.ServiceError):
        vn.delete_internet_gateway(net["ig"])
    with pytest.raises(oci.exceptions.ServiceError):
        vn.delete_route_table(net["rt"])
    # teardown in dependency order works
    vn.delete_subnet(net["api"])
    vn.delete_subnet(net["workers"])
    settle(sim, 5)  # a TERMINATING subnet still holds its route table
    vn.delete_route_table(net["rt"])
    settle(sim, 5)
    vn.delete_internet_gateway(net["ig"])
    settle(sim, 5)
    vn.delete_vcn(net["vcn"])
    settle(sim, 5)
    assert vn.get_vcn(net["vcn"]).data.lifecycle_state == "TERMINATED"


def test_subnet_in_use_by_cluster_cannot_be_deleted(
    clients: dict[str, Any], sim: OciSimulator
) -> None:
    net = make_network(sim, clients["vn"])
    create_cluster(sim, clients["ce"], net)
    with pytest.raises(oci.exceptions.ServiceError) as info:
        clients["vn"].delete_subnet(net["api"])
    assert info.value.status == 409


def test_subnet_cidr_rules(clients: dict[str, Any], sim: OciSimulator) -> None:
    vn = clients["vn"]
    net = make_network(sim, vn)
    for cidr in ("10.0.1.128/25", "192.168.0.0/24"):  # overlaps workers / outside the VCN
        with pytest.raises(oci.exceptions.ServiceError) as info:
            vn.create_subnet(
                C.CreateSubnetDetails(
                    cidr_block=cidr, compartment_id=sim.compartment_id, vcn_id=net["vcn"]
                )
            )
        assert (info.value.status, info.value.code) == (400, "InvalidParameter")


def test_service_gateway_targets_all_services(clients: dict[str, Any], sim: OciSimulator) -> None:
    vn = clients["vn"]
    net = make_network(sim, vn)
    services = vn.list_services().data
    osn = [s for s in services if s.name.lower() == "all iad services in oracle services network"]
    assert len(osn) == 1
    sgw = vn.create_service_gateway(
        C.CreateServiceGatewayDetails(
            compartment_id=sim.compartment_id,
            vcn_id=net["vcn"],
            services=[C.ServiceIdRequestDetails(service_id=osn[0].id)],
        )
    ).data
    assert sgw.services[0].service_name == osn[0].name
    nat = vn.create_nat_gateway(
        C.CreateNatGatewayDetails(compartment_id=sim.compartment_id, vcn_id=net["vcn"])
    ).data
    rt = vn.create_route_table(
        C.CreateRouteTableDetails(
            compartment_id=sim.compartment_id,
            vcn_id=net["vcn"],
            route_rules=[
                C.RouteRule(destination="0.0.0.0/0", network_entity_id=nat.id),
                C.RouteRule(
                    destination=osn[0].cidr_block,
                    destination_type="SERVICE_CIDR_BLOCK",
                    network_entity_id=sgw.id,
                ),
            ],
        )
    ).data
    assert [r.network_entity_id for r in rt.route_rules] == [nat.id, sgw.id]
    sl = vn.create_security_list(
        C.CreateSecurityListDetails(
            compartment_id=sim.compartment_id,
            vcn_id=net["vcn"],
            ingress_security_rules=[
                C.IngressSecurityRule(
                    protocol="6",
                    source="10.0.1.0/24",
                    tcp_options=C.TcpOptions(
                        destination_port_range=C.PortRange(min=6443, max=6443)
                    ),
                )
            ],
            egress_security_rules=[],
        )
    ).data
    assert (
        vn.get_security_list(sl.id)
        .data.ingress_security_rules[0]
        .tcp_options.destination_port_range.max
        == 6443
    )
