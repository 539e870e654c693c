"""The service: ECS cluster, least-privilege roles, one task definition,
service and autoscaling per color, and the alarms a release watches."""

from __future__ import annotations

import pytest

from lib.tap_stack import COLORS
from tapctl.planner import PlannedResource, ProgramResult
from tests.unit.stack_fixtures import (
    build_stack,
    container,
    dev_args,
    mock_arn,
    named,
    plan,
    referenced,
    statements,
)

SERVICE = "aws:ecs/service:Service"
TASK = "aws:ecs/taskDefinition:TaskDefinition"
POLICY = "aws:appautoscaling/policy:Policy"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
SECRET_ARN = (
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-tap-dev-data-db"
)


def task(result: ProgramResult, color: str) -> PlannedResource:
    return named(result, TASK, f"-{color}-task")


def test_cluster_has_container_insights() -> None:
    cluster = named(plan("dev"), "aws:ecs/cluster:Cluster", "-cluster")

    assert cluster.inputs["name"] == "tap-dev"
    assert {"name": "containerInsights", "value": "enabled"} in cluster.inputs[
        "settings"
    ]


def test_execution_role_reads_only_the_db_secret_and_its_key() -> None:
    result = plan("dev")
    role = named(result, "aws:iam/role:Role", "-task-execution-role")
    inline = named(result, "aws:iam/rolePolicy:RolePolicy", "-task-execution-secret")
    managed = named(
        result,
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "-execution-managed",
    )

    assert statements(role, "assumeRolePolicy")[0]["Principal"] == {
        "Service": "ecs-tasks.amazonaws.com"
    }
    assert managed.inputs["role"] == role.inputs["name"]
    assert managed.inputs["policyArn"].endswith(
        ":iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
    )
    assert referenced(result, inline.inputs["role"]) == role
    assert {(s["Action"], s["Resource"]) for s in statements(inline)} == {
        ("secretsmanager:GetSecretValue", SECRET_ARN),
        ("kms:Decrypt", mock_arn(named(result, "aws:kms/key:Key", "-data-key"))),
    }


def test_task_role_may_only_read_static_objects() -> None:
    result = plan("dev")
    role = named(result, "aws:iam/role:Role", "-task-role")
    (grant,) = statements(
        named(result, "aws:iam/rolePolicy:RolePolicy", "-static-read")
    )
    policies = [
        p
        for p in result.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.inputs["role"] == f"{role.name}-id"
    ]

    assert len(policies) == 1
    assert grant == {
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::tap-dev-static-123456789012/*",
    }


def test_log_group_keeps_logs_for_the_configured_days() -> None:
    group = named(plan("prod"), "aws:cloudwatch/logGroup:LogGroup", "-service-logs")

    assert group.inputs == {
        **group.inputs,
        "name": "/ecs/tap-prod",
        "retentionInDays": 365,
    }


@pytest.mark.parametrize("color", COLORS)
def test_task_definition_runs_its_color_image_on_fargate(color: str) -> None:
    result = plan("dev", greenImage="example/app:2")
    definition = task(result, color)
    app = container(definition)

    assert definition.inputs["family"] == f"tap-dev-{color}"
    assert definition.inputs["requiresCompatibilities"] == ["FARGATE"]
    assert definition.inputs["networkMode"] == "awsvpc"
    assert (definition.inputs["cpu"], definition.inputs["memory"]) == ("256", "512")
    assert (
        app["image"]
        == {
            "blue": "public.ecr.aws/nginx/nginx:1.27-alpine",
            "green": "example/app:2",
        }[color]
    )
    assert app["portMappings"] == [{"containerPort": 80, "protocol": "tcp"}]
    assert referenced(result, definition.inputs["executionRoleArn"]).name.endswith(
        "-task-execution-role"
    )
    assert referenced(result, definition.inputs["taskRoleArn"]).name.endswith(
        "-task-role"
    )


@pytest.mark.parametrize("color", COLORS)
def test_database_credentials_come_only_through_secrets(color: str) -> None:
    app = container(task(plan("dev"), color))
    environment = {e["name"]: e["value"] for e in app["environment"]}

    assert {s["name"]: s["valueFrom"] for s in app["secrets"]} == {
        "DB_USERNAME": f"{SECRET_ARN}:username::",
        "DB_PASSWORD": f"{SECRET_ARN}:password::",
    }
    assert environment == {
        "APP_COLOR": color,
        "DB_HOST": "tap-dev-data-db.abc123.us-east-1.rds.amazonaws.com",
        "DB_PORT": "5432",
        "DB_NAME": "tap",
    }
    for name, value in environment.items():
        assert not any(word in name for word in ("PASSWORD", "SECRET", "TOKEN"))
        assert "secretsmanager" not in value


@pytest.mark.parametrize("color", COLORS)
def test_container_logs_go_to_the_one_log_group(color: str) -> None:
    app = container(task(plan("dev"), color))

    assert app["logConfiguration"] == {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": "/ecs/tap-dev",
            "awslogs-region": "us-east-1",
            "awslogs-stream-prefix": color,
        },
    }


@pytest.mark.parametrize("color", COLORS)
def test_service_runs_privately_behind_its_own_target_group(color: str) -> None:
    result = plan("dev")
    service = named(result, SERVICE, f"-service-{color}")
    network = service.inputs["networkConfiguration"]
    (balancer,) = service.inputs["loadBalancers"]

    assert service.inputs["name"] == f"tap-dev-{color}"
    assert service.inputs["launchType"] == "FARGATE"
    assert network["assignPublicIp"] is False
    assert all("-network-private-" in subnet for subnet in network["subnets"])
    assert [referenced(result, g).name for g in network["securityGroups"]] == [
        "tap-dev-network-tasks-sg"
    ]
    assert referenced(result, balancer["targetGroupArn"]).name == f"tap-dev-lb-{color}"
    assert (balancer["containerName"], balancer["containerPort"]) == ("app", 80)
    assert referenced(result, service.inputs["taskDefinition"]) == task(result, color)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_services_roll_back_failed_deployments_and_start_at_min_capacity(
    env: str,
) -> None:
    result = plan(env)
    minimum = {"dev": 1, "prod": 3}[env]

    for service in result.of_type(SERVICE):
        assert service.inputs["deploymentCircuitBreaker"] == {
            "enable": True,
            "rollback": True,
        }
        assert service.inputs["healthCheckGracePeriodSeconds"] > 0
        assert service.inputs["desiredCount"] == minimum


def test_services_leave_desired_count_to_autoscaling_and_wait_for_listeners() -> None:
    services = [r for r in build_stack(dev_args()) if r.type == SERVICE]

    assert len(services) == 2
    for service in services:
        assert service.opts.ignore_changes == ["desiredCount"]
        waits_for = {dependency._name for dependency in service.opts.depends_on or []}
        assert waits_for == {"tap-dev-lb-prod", "tap-dev-lb-test"}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_each_service_scales_on_cpu_and_requests_per_target(env: str) -> None:
    result = plan(env)
    settings = {"dev": (1, 2, 70, 1000), "prod": (3, 12, 55, 600)}[env]
    minimum, maximum, cpu, requests = settings

    for color in COLORS:
        target = named(result, "aws:appautoscaling/target:Target", f"-{color}-scaling")
        resource_id = f"service/tap-{env}/tap-{env}-{color}"
        assert target.inputs["resourceId"] == resource_id
        assert target.inputs["scalableDimension"] == "ecs:service:DesiredCount"
        assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (
            minimum,
            maximum,
        )
        policies = {
            p.inputs["targetTrackingScalingPolicyConfiguration"][
                "predefinedMetricSpecification"
            ]["predefinedMetricType"]: p
            for p in result.of_type(POLICY)
            if p.inputs["resourceId"] == resource_id
        }
        assert set(policies) == {
            "ECSServiceAverageCPUUtilization",
            "ALBRequestCountPerTarget",
        }
        cpu_policy = policies["ECSServiceAverageCPUUtilization"]
        request_policy = policies["ALBRequestCountPerTarget"]
        tracking = request_policy.inputs["targetTrackingScalingPolicyConfiguration"]
        assert cpu_policy.inputs["policyType"] == "TargetTrackingScaling"
        assert (
            cpu_policy.inputs["targetTrackingScalingPolicyConfiguration"]["targetValue"]
            == cpu
        )
        assert tracking["targetValue"] == requests
        assert tracking["predefinedMetricSpecification"]["resourceLabel"] == (
            f"app/tap-{env}-alb/0123456789abcdef/"
            f"targetgroup/tap-{env}-{color}/0123456789abcdef"
        )


def test_alarms_cover_error_rate_unhealthy_hosts_and_cpu() -> None:
    result = plan("dev")
    alarms = {a.inputs["name"]: a for a in result.of_type(ALARM)}

    assert sorted(result.outputs["alarm_names"]) == sorted(alarms)
    assert set(alarms) == {
        "tap-dev-target-5xx-rate",
        "tap-dev-blue-unhealthy-hosts",
        "tap-dev-green-unhealthy-hosts",
        "tap-dev-blue-cpu-high",
        "tap-dev-green-cpu-high",
    }


def test_error_rate_alarm_divides_target_5xx_by_requests() -> None:
    alarm = named(plan("dev"), ALARM, "-target-5xx-rate")
    queries = {q["id"]: q for q in alarm.inputs["metricQueries"]}

    assert queries["errors"]["metric"]["metricName"] == "HTTPCode_Target_5XX_Count"
    assert queries["requests"]["metric"]["metricName"] == "RequestCount"
    assert "/ requests" in queries["rate"]["expression"]
    assert [q["id"] for q in queries.values() if q.get("returnData")] == ["rate"]
    assert queries["errors"]["metric"]["dimensions"] == {
        "LoadBalancer": "app/tap-dev-alb/0123456789abcdef"
    }
    assert alarm.inputs["threshold"] == 5


@pytest.mark.parametrize("color", COLORS)
def test_per_color_alarms_watch_their_own_target_group_and_service(color: str) -> None:
    result = plan("dev")
    unhealthy = named(result, ALARM, f"-{color}-unhealthy-hosts")
    cpu = named(result, ALARM, f"-{color}-cpu-high")

    assert unhealthy.inputs["metricName"] == "UnHealthyHostCount"
    assert unhealthy.inputs["dimensions"]["TargetGroup"] == (
        f"targetgroup/tap-dev-{color}/0123456789abcdef"
    )
    assert unhealthy.inputs["threshold"] == 0
    assert cpu.inputs["metricName"] == "CPUUtilization"
    assert cpu.inputs["dimensions"] == {
        "ClusterName": "tap-dev",
        "ServiceName": f"tap-dev-{color}",
    }
