"""The load balancer: weighted production listener, a test listener on the
idle color, HTTPS when a certificate is configured."""

from __future__ import annotations

import pytest

from lib.tap_stack import TLS_POLICY
from tapctl.planner import PlannedResource, ProgramResult
from tests.unit.stack_fixtures import forward_weights, mock_arn, named, plan

LISTENER = "aws:lb/listener:Listener"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/abc"


def listener(result: ProgramResult, label: str) -> PlannedResource:
    return named(result, LISTENER, f"-lb-{label}")


def test_load_balancer_is_public_in_public_subnets_with_its_group() -> None:
    alb = named(plan("prod"), "aws:lb/loadBalancer:LoadBalancer", "-lb-alb")

    assert alb.inputs["name"] == "tap-prod-alb"
    assert alb.inputs["internal"] is False
    assert alb.inputs["loadBalancerType"] == "application"
    assert alb.inputs["dropInvalidHeaderFields"] is True
    assert len(alb.inputs["subnets"]) == 3
    assert all("-network-public-" in subnet for subnet in alb.inputs["subnets"])
    assert alb.inputs["securityGroups"] == ["tap-prod-network-alb-sg-id"]


@pytest.mark.parametrize("color", ["blue", "green"])
def test_target_groups_check_health_on_the_configured_path(color: str) -> None:
    group = named(plan("dev", healthCheckPath="/healthz"), TARGET_GROUP, f"-{color}")

    assert group.inputs["name"] == f"tap-dev-{color}"
    assert group.inputs["targetType"] == "ip"
    assert group.inputs["port"] == 80
    assert group.inputs["healthCheck"]["path"] == "/healthz"
    assert group.inputs["healthCheck"]["enabled"] is True
    assert group.inputs["deregistrationDelay"] <= 60


@pytest.mark.parametrize(
    ("active", "idle_weight"),
    [("blue", 0), ("blue", 30), ("blue", 100), ("green", 0), ("green", 10)],
)
def test_production_weights_add_to_100_and_test_listener_reaches_idle(
    active: str, idle_weight: int
) -> None:
    result = plan("dev", activeColor=active, idleWeight=idle_weight)
    idle = "green" if active == "blue" else "blue"

    assert forward_weights(result, listener(result, "prod")) == {
        f"tap-dev-lb-{active}": 100 - idle_weight,
        f"tap-dev-lb-{idle}": idle_weight,
    }
    assert forward_weights(result, listener(result, "test")) == {
        f"tap-dev-lb-{idle}": 100
    }


def test_without_certificate_production_is_plain_http_on_80() -> None:
    result = plan("dev")
    prod = listener(result, "prod")

    assert (prod.inputs["port"], prod.inputs["protocol"]) == (80, "HTTP")
    assert "certificateArn" not in prod.inputs
    assert {r.inputs["port"] for r in result.of_type(LISTENER)} == {80, 8080}
    assert result.outputs["prod_listener_arn"] == mock_arn(prod)


def test_with_certificate_production_is_https_and_80_redirects() -> None:
    result = plan("dev", certificateArn=CERTIFICATE)
    prod = listener(result, "prod")
    (redirect,) = listener(result, "http-redirect").inputs["defaultActions"]

    assert (prod.inputs["port"], prod.inputs["protocol"]) == (443, "HTTPS")
    assert prod.inputs["certificateArn"] == CERTIFICATE
    assert prod.inputs["sslPolicy"] == TLS_POLICY
    assert "TLS13-1-2" in TLS_POLICY
    assert redirect["type"] == "redirect"
    assert redirect["redirect"] == {
        "protocol": "HTTPS",
        "port": "443",
        "statusCode": "HTTP_301",
    }
    assert listener(result, "http-redirect").inputs["port"] == 80
    assert result.outputs["prod_listener_arn"] == mock_arn(prod)


def test_test_listener_uses_the_production_protocol_on_its_own_port() -> None:
    result = plan("dev", certificateArn=CERTIFICATE, testListenerPort=9443)
    test = listener(result, "test")

    assert (test.inputs["port"], test.inputs["protocol"]) == (9443, "HTTPS")
    assert test.inputs["certificateArn"] == CERTIFICATE
    assert result.outputs["test_listener_arn"] == mock_arn(test)
