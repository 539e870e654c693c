"""The network: subnets per zone and tier, NAT, routes, flow logs and the
chained security groups."""

from __future__ import annotations

import ipaddress
from collections import Counter

import pytest

from tapctl.planner import PlannedResource, ProgramResult
from tests.unit.stack_fixtures import (
    ACCOUNT,
    mock_arn,
    named,
    plan,
    referenced,
    statements,
)

SUBNET = "aws:ec2/subnet:Subnet"
ROUTE = "aws:ec2/route:Route"
ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"


def subnets(result: ProgramResult, tier: str) -> list[PlannedResource]:
    return [r for r in result.of_type(SUBNET) if f"-network-{tier}-" in r.name]


def rules(result: ProgramResult, kind: str, group: str) -> list[PlannedResource]:
    """Rules of one security group, by its label (alb, tasks, db)."""
    group_id = f"{named(result, SECURITY_GROUP, f'-{group}-sg').name}-id"
    return [r for r in result.of_type(kind) if r.inputs["securityGroupId"] == group_id]


def source(rule: PlannedResource) -> str:
    """A rule's peer: a CIDR, or the label of the referenced security group."""
    if "cidrIpv4" in rule.inputs:
        return str(rule.inputs["cidrIpv4"])
    peer = rule.inputs["referencedSecurityGroupId"]
    return peer.removesuffix("-sg-id").rsplit("-", 1)[-1]


def openings(result: ProgramResult, kind: str, group: str) -> set[tuple[str, int, int]]:
    return {
        (source(rule), int(rule.inputs["fromPort"]), int(rule.inputs["toPort"]))
        for rule in rules(result, kind, group)
        if rule.inputs["ipProtocol"] == "tcp"
    }


def table_of(result: ProgramResult, subnet: PlannedResource) -> PlannedResource:
    (association,) = [
        a
        for a in result.of_type(ASSOCIATION)
        if a.inputs["subnetId"] == f"{subnet.name}-id"
    ]
    return referenced(result, association.inputs["routeTableId"])


def routes_of(result: ProgramResult, table: PlannedResource) -> list[PlannedResource]:
    return [
        r
        for r in result.of_type(ROUTE)
        if r.inputs["routeTableId"] == f"{table.name}-id"
    ]


def test_vpc_uses_configured_cidr_with_dns() -> None:
    vpc = named(plan("dev"), "aws:ec2/vpc:Vpc", "-vpc")

    assert vpc.inputs["cidrBlock"] == "10.20.0.0/16"
    assert vpc.inputs["enableDnsSupport"] is True
    assert vpc.inputs["enableDnsHostnames"] is True


@pytest.mark.parametrize(("env", "zones"), [("dev", 2), ("prod", 3)])
def test_each_tier_has_one_subnet_per_zone_inside_the_vpc(env: str, zones: int) -> None:
    result = plan(env)
    vpc = ipaddress.IPv4Network(
        named(result, "aws:ec2/vpc:Vpc", "-vpc").inputs["cidrBlock"]
    )

    for tier in ("public", "private", "isolated"):
        found = subnets(result, tier)
        assert len(found) == zones
        assert len({s.inputs["availabilityZone"] for s in found}) == zones
        for subnet in found:
            assert ipaddress.IPv4Network(subnet.inputs["cidrBlock"]).subnet_of(vpc)
            assert subnet.inputs["mapPublicIpOnLaunch"] is False
    cidrs = [s.inputs["cidrBlock"] for s in plan(env).of_type(SUBNET)]
    assert len(set(cidrs)) == len(cidrs) == 3 * zones


@pytest.mark.parametrize(("env", "gateways"), [("dev", 1), ("staging", 1), ("prod", 3)])
def test_nat_gateways_one_shared_or_one_per_zone(env: str, gateways: int) -> None:
    result = plan(env)
    nats = result.of_type("aws:ec2/natGateway:NatGateway")
    public_ids = {f"{s.name}-id" for s in subnets(result, "public")}

    assert len(nats) == gateways
    assert len(result.of_type("aws:ec2/eip:Eip")) == gateways
    eips = {f"eipalloc-{eip.name}" for eip in result.of_type("aws:ec2/eip:Eip")}
    assert sorted(nat.inputs["allocationId"] for nat in nats) == sorted(eips)
    assert {nat.inputs["subnetId"] for nat in nats} <= public_ids
    assert len({nat.inputs["subnetId"] for nat in nats}) == gateways


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_private_subnets_reach_out_through_a_nat_in_their_zone(env: str) -> None:
    result = plan(env)
    per_zone = env == "prod"

    for index, subnet in enumerate(subnets(result, "private")):
        (route,) = routes_of(result, table_of(result, subnet))
        assert route.inputs["destinationCidrBlock"] == "0.0.0.0/0"
        nat = referenced(result, route.inputs["natGatewayId"])
        assert nat.name.endswith(f"-nat-{index if per_zone else 0}")
        zone_subnet = referenced(result, nat.inputs["subnetId"])
        if per_zone:
            assert (
                zone_subnet.inputs["availabilityZone"]
                == subnet.inputs["availabilityZone"]
            )


def test_public_subnets_route_to_the_internet_gateway() -> None:
    result = plan("dev")

    for subnet in subnets(result, "public"):
        (route,) = routes_of(result, table_of(result, subnet))
        assert route.inputs["destinationCidrBlock"] == "0.0.0.0/0"
        assert referenced(result, route.inputs["gatewayId"]).type == (
            "aws:ec2/internetGateway:InternetGateway"
        )


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_isolated_subnets_have_no_route_out(env: str) -> None:
    result = plan(env)

    tables = {table_of(result, s).name for s in subnets(result, "isolated")}

    assert len(tables) == 1
    (table,) = tables
    assert (
        routes_of(result, named(result, "aws:ec2/routeTable:RouteTable", table)) == []
    )


def test_flow_logs_capture_all_traffic_into_the_log_group() -> None:
    result = plan("dev")
    flow = named(result, "aws:ec2/flowLog:FlowLog", "-flow-log")
    group = named(result, "aws:cloudwatch/logGroup:LogGroup", "-flow-logs")

    assert flow.inputs["trafficType"] == "ALL"
    assert flow.inputs["vpcId"] == f"{named(result, 'aws:ec2/vpc:Vpc', '-vpc').name}-id"
    assert flow.inputs["logDestinationType"] == "cloud-watch-logs"
    assert flow.inputs["logDestination"] == mock_arn(group)
    assert group.inputs["retentionInDays"] == 7
    assert referenced(result, flow.inputs["iamRoleArn"]).type == "aws:iam/role:Role"


def test_flow_log_role_is_limited_to_its_log_group_and_account() -> None:
    result = plan("dev")
    role = named(result, "aws:iam/role:Role", "-flow-log-role")
    group_arn = mock_arn(
        named(result, "aws:cloudwatch/logGroup:LogGroup", "-flow-logs")
    )

    (trust,) = statements(role, "assumeRolePolicy")
    (grant,) = statements(
        named(result, "aws:iam/rolePolicy:RolePolicy", "-flow-log-policy")
    )

    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    assert sorted(grant["Resource"]) == [group_arn, f"{group_arn}:*"]
    assert all(action.startswith("logs:") for action in grant["Action"])


def test_load_balancer_is_open_on_web_ports_and_test_port_only_to_the_vpc() -> None:
    result = plan("dev")

    assert openings(result, INGRESS, "alb") == {
        ("0.0.0.0/0", 80, 80),
        ("0.0.0.0/0", 443, 443),
        ("10.20.0.0/16", 8080, 8080),
    }
    assert openings(result, EGRESS, "alb") == {("tasks", 80, 80)}


def test_test_listener_port_is_open_only_to_configured_cidrs() -> None:
    result = plan("dev", testAccessCidrs=["192.0.2.0/24"], testListenerPort=9000)

    test_rules = {o for o in openings(result, INGRESS, "alb") if o[1] == 9000}

    assert test_rules == {("192.0.2.0/24", 9000, 9000)}


def test_tasks_admit_only_the_load_balancer_on_the_container_port() -> None:
    result = plan("dev", containerPort=8000)

    assert openings(result, INGRESS, "tasks") == {("alb", 8000, 8000)}
    assert openings(result, EGRESS, "tasks") == {
        ("0.0.0.0/0", 443, 443),
        ("db", 5432, 5432),
    }


def test_database_admits_only_the_tasks_on_5432_and_sends_nothing() -> None:
    result = plan("prod")

    assert openings(result, INGRESS, "db") == {("tasks", 5432, 5432)}
    assert rules(result, EGRESS, "db") == []


def test_security_group_rules_use_one_style_only() -> None:
    """Standalone rule resources only: no inline rules that would fight them."""
    groups = plan("dev").of_type(SECURITY_GROUP)

    assert len(groups) == 3
    for group in groups:
        assert "ingress" not in group.inputs and "egress" not in group.inputs


def test_every_subnet_tier_and_zone_gets_its_own_route_table_association() -> None:
    result = plan("prod")

    counts = Counter(a.inputs["subnetId"] for a in result.of_type(ASSOCIATION))

    assert len(counts) == len(result.of_type(SUBNET))
    assert set(counts.values()) == {1}
