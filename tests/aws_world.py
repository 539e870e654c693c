"""A healthy TAP environment built with boto3 against a local AWS API.

``build_world()`` creates, through whatever ``AWS_ENDPOINT_URL`` points at
(moto's server in the tests), the resources the stack would deploy and returns
the stack's outputs as a flat dict with every export key, the same shape as an
outputs file. Tests of verify, deploy, switch and rollback start from it and
break or change one thing at a time.

moto's server settles ECS services only when ``MOTO_ECS_SERVICE_RUNNING`` is
set in its process (otherwise every service stays at zero running tasks with
its rollout in progress); ```settled_services_env()`` gives that setting for
servers started in-process, as ``tests/conftest.py`` does.

``health_server()`` stands in for the load balancer's HTTP side: a server on
127.0.0.1 whose answer (status, delay) a test can change while it runs. Build
the world with ``alb_dns_name="127.0.0.1"`` and its port as a listener port.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3

REGION = "us-east-1"
DESIRED_COUNT = 2
MIN_CAPACITY = 1
MAX_CAPACITY = 4
CONTAINER_PORT = 8080
HEALTH_PATH = "/health"
CPU_POLICY = "ECSServiceAverageCPUUtilization"
REQUESTS_POLICY = "ALBRequestCountPerTarget"
TARGETS = ("10.0.10.11", "10.0.11.12")
COLORS = ("blue", "green")


def settled_services_env(running: int = DESIRED_COUNT) -> dict[str, str]:
    """The moto server setting that reports ``running`` tasks per new service."""
    return {"MOTO_ECS_SERVICE_RUNNING": str(running)}


_SESSIONS: dict[str | None, boto3.session.Session] = {}


def shared_session() -> boto3.session.Session:
    """One session per endpoint: each new session loads every service model
    again, which costs more than building the world itself."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint not in _SESSIONS:
        _SESSIONS[endpoint] = boto3.session.Session()
    return _SESSIONS[endpoint]


@dataclass(frozen=True)
class Network:
    vpc_id: str
    subnet_ids: list[str]
    security_group_id: str


def build_world(
    *,
    suffix: str = "test",
    prod_port: int = 80,
    test_port: int = 8443,
    alb_dns_name: str | None = None,
    session: boto3.session.Session | None = None,
) -> dict[str, Any]:
    """Create a healthy environment and return its stack outputs.

    ``alb_dns_name`` overrides the exported DNS name and ``prod_port`` /
    ``test_port`` set the listener ports, so that an HTTP check can be aimed
    at a server the test runs on 127.0.0.1.
    """
    session = session or shared_session()
    network = _network(session, suffix)
    outputs: dict[str, Any] = {"environment_suffix": suffix, "vpc_id": network.vpc_id}
    outputs |= _load_balancer(session, network, suffix, prod_port, test_port)
    if alb_dns_name is not None:
        outputs["alb_dns_name"] = alb_dns_name
    outputs |= _service(session, network, outputs, suffix)
    outputs |= _database(session, suffix)
    outputs |= _edge(session, suffix)
    outputs |= _audit(session, suffix)
    outputs["alarm_names"] = _alarms(session, outputs, suffix)
    return outputs


def _network(session: boto3.session.Session, suffix: str) -> Network:
    ec2 = session.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet_ids = [
        ec2.create_subnet(
            VpcId=vpc_id, CidrBlock=f"10.0.{10 + i}.0/24", AvailabilityZone=zone
        )["Subnet"]["SubnetId"]
        for i, zone in enumerate((f"{REGION}a", f"{REGION}b"))
    ]
    group_id = ec2.create_security_group(
        GroupName=f"tap-tasks-{suffix}", Description="tasks", VpcId=vpc_id
    )["GroupId"]
    return Network(vpc_id, subnet_ids, group_id)


def _load_balancer(
    session: boto3.session.Session,
    network: Network,
    suffix: str,
    prod_port: int,
    test_port: int,
) -> dict[str, Any]:
    elb = session.client("elbv2")
    balancer = elb.create_load_balancer(
        Name=f"tap-alb-{suffix}", Subnets=network.subnet_ids, Type="application"
    )["LoadBalancers"][0]
    groups = {color: _target_group(elb, network, suffix, color) for color in COLORS}
    prod = _listener(elb, balancer["LoadBalancerArn"], prod_port, groups, "blue", 100)
    test = _listener(elb, balancer["LoadBalancerArn"], test_port, groups, "green", 100)
    return {
        "alb_arn": balancer["LoadBalancerArn"],
        "alb_dns_name": balancer["DNSName"],
        "prod_listener_arn": prod,
        "test_listener_arn": test,
        "blue_target_group_arn": groups["blue"],
        "green_target_group_arn": groups["green"],
    }


def _target_group(elb: Any, network: Network, suffix: str, color: str) -> str:
    arn: str = elb.create_target_group(
        Name=f"tap-{color}-{suffix}",
        Protocol="HTTP",
        Port=CONTAINER_PORT,
        VpcId=network.vpc_id,
        TargetType="ip",
        HealthCheckPath=HEALTH_PATH,
    )["TargetGroups"][0]["TargetGroupArn"]
    elb.register_targets(
        TargetGroupArn=arn,
        Targets=[{"Id": ip, "Port": CONTAINER_PORT} for ip in TARGETS],
    )
    return arn


def _listener(
    elb: Any, alb_arn: str, port: int, groups: dict[str, str], color: str, weight: int
) -> str:
    """A listener forwarding ``weight`` percent to ``color``, the rest to the other."""
    weights = [
        {
            "TargetGroupArn": groups[name],
            "Weight": weight if name == color else 100 - weight,
        }
        for name in COLORS
    ]
    action = {"Type": "forward", "ForwardConfig": {"TargetGroups": weights}}
    listener = elb.create_listener(
        LoadBalancerArn=alb_arn, Protocol="HTTP", Port=port, DefaultActions=[action]
    )
    return str(listener["Listeners"][0]["ListenerArn"])


def _service(
    session: boto3.session.Session,
    network: Network,
    outputs: dict[str, Any],
    suffix: str,
) -> dict[str, Any]:
    ecs = session.client("ecs")
    cluster = ecs.create_cluster(clusterName=f"tap-{suffix}")["cluster"]
    log_group = f"/tap/{suffix}"
    session.client("logs").create_log_group(logGroupName=log_group)
    result: dict[str, Any] = {
        "ecs_cluster_name": cluster["clusterName"],
        "ecs_cluster_arn": cluster["clusterArn"],
        "active_color": "blue",
        "log_group_name": log_group,
    }
    for color in COLORS:
        name = f"tap-{color}-{suffix}"
        result |= {
            f"{color}_service_name": name,
            f"{color}_image": f"public.ecr.aws/nginx/nginx:{color}",
        }
        start_service(session, outputs | result, network, color)
        scale_service(session, outputs | result, color)
    return result


def start_service(
    session: boto3.session.Session,
    outputs: dict[str, Any],
    network: Network,
    color: str,
) -> None:
    """Register the color's task definition and (re)create its service on it.

    moto replaces an existing service of the same name, which is how a test
    restarts one with a different ``MOTO_ECS_SERVICE_RUNNING``.
    """
    ecs = session.client("ecs")
    name = outputs[f"{color}_service_name"]
    ecs.register_task_definition(
        family=name,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": "app",
                "image": outputs[f"{color}_image"],
                "portMappings": [{"containerPort": CONTAINER_PORT}],
            }
        ],
    )
    ecs.create_service(
        cluster=outputs["ecs_cluster_name"],
        serviceName=name,
        taskDefinition=name,
        desiredCount=DESIRED_COUNT,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": network.subnet_ids,
                "securityGroups": [network.security_group_id],
            }
        },
        loadBalancers=[
            {
                "targetGroupArn": outputs[f"{color}_target_group_arn"],
                "containerName": "app",
                "containerPort": CONTAINER_PORT,
            }
        ],
    )


def world_network(session: boto3.session.Session, outputs: dict[str, Any]) -> Network:
    """The network of a built world, for recreating a service in it."""
    ec2 = session.client("ec2")
    vpc_filter = [{"Name": "vpc-id", "Values": [outputs["vpc_id"]]}]
    subnets = ec2.describe_subnets(Filters=vpc_filter)["Subnets"]
    groups = ec2.describe_security_groups(
        Filters=[*vpc_filter, {"Name": "group-name", "Values": ["tap-tasks-*"]}]
    )["SecurityGroups"]
    return Network(
        outputs["vpc_id"],
        sorted(subnet["SubnetId"] for subnet in subnets),
        groups[0]["GroupId"],
    )


def scale_service(
    session: boto3.session.Session, outputs: dict[str, Any], color: str
) -> None:
    """Register the service's scalable target with a CPU and a request policy."""
    scaling = session.client("application-autoscaling")
    service = outputs[f"{color}_service_name"]
    resource_id = f"service/{outputs['ecs_cluster_name']}/{service}"
    common = {
        "ServiceNamespace": "ecs",
        "ResourceId": resource_id,
        "ScalableDimension": "ecs:service:DesiredCount",
    }
    scaling.register_scalable_target(
        **common, MinCapacity=MIN_CAPACITY, MaxCapacity=MAX_CAPACITY
    )
    label = _resource_label(outputs["alb_arn"], outputs[f"{color}_target_group_arn"])
    for metric, extra in (
        (CPU_POLICY, {}),
        (REQUESTS_POLICY, {"ResourceLabel": label}),
    ):
        scaling.put_scaling_policy(
            **common,
            PolicyName=f"{service}-{metric}",
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": 60.0,
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": metric,
                    **extra,
                },
            },
        )


def _resource_label(alb_arn: str, target_group_arn: str) -> str:
    """The ``app/.../targetgroup/...`` label a request-count policy names."""
    balancer = alb_arn.split(":loadbalancer/")[1]
    group = target_group_arn.split(":")[-1]
    return f"{balancer}/{group}"


def _database(session: boto3.session.Session, suffix: str) -> dict[str, Any]:
    """RDS creates and manages the master secret itself (moto does the same)."""
    instance = session.client("rds").create_db_instance(
        DBInstanceIdentifier=f"tap-db-{suffix}",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        AllocatedStorage=20,
        MasterUsername="tap",
        ManageMasterUserPassword=True,
        StorageEncrypted=True,
        PubliclyAccessible=False,
    )["DBInstance"]
    return {
        "rds_endpoint": instance["Endpoint"]["Address"],
        "rds_port": instance["Endpoint"]["Port"],
        "db_secret_arn": instance["MasterUserSecret"]["SecretArn"],
    }


def _edge(session: boto3.session.Session, suffix: str) -> dict[str, Any]:
    bucket = f"tap-static-{suffix}"
    _private_bucket(session, bucket)
    cloudfront = session.client("cloudfront")
    control = cloudfront.create_origin_access_control(
        OriginAccessControlConfig={
            "Name": f"tap-static-{suffix}",
            "SigningProtocol": "sigv4",
            "SigningBehavior": "always",
            "OriginAccessControlOriginType": "s3",
        }
    )["OriginAccessControl"]
    origin = {
        "Id": "static",
        "DomainName": f"{bucket}.s3.{REGION}.amazonaws.com",
        "OriginAccessControlId": control["Id"],
        "S3OriginConfig": {"OriginAccessIdentity": ""},
    }
    distribution = cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": f"tap-{suffix}",
            "Comment": f"tap static {suffix}",
            "Enabled": True,
            "Origins": {"Quantity": 1, "Items": [origin]},
            "DefaultCacheBehavior": {
                "TargetOriginId": "static",
                "ViewerProtocolPolicy": "redirect-to-https",
                # AWS's managed CachingOptimized policy.
                "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
            },
        }
    )["Distribution"]
    return {
        "static_bucket_name": bucket,
        "cloudfront_domain_name": distribution["DomainName"],
        "cloudfront_distribution_id": distribution["Id"],
    }


def _private_bucket(session: boto3.session.Session, bucket: str) -> None:
    s3 = session.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
            ]
        },
    )
    s3.put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
    )


def _audit(session: boto3.session.Session, suffix: str) -> dict[str, Any]:
    bucket = f"tap-trail-{suffix}"
    _private_bucket(session, bucket)
    cloudtrail = session.client("cloudtrail")
    trail = cloudtrail.create_trail(
        Name=f"tap-trail-{suffix}",
        S3BucketName=bucket,
        IsMultiRegionTrail=True,
        EnableLogFileValidation=True,
    )
    cloudtrail.start_logging(Name=trail["TrailARN"])
    return {"cloudtrail_arn": trail["TrailARN"], "cloudtrail_bucket_name": bucket}


def _alarms(
    session: boto3.session.Session, outputs: dict[str, Any], suffix: str
) -> list[str]:
    cloudwatch = session.client("cloudwatch")
    balancer = outputs["alb_arn"].split(":loadbalancer/")[1]
    specs = [
        ("5xx-rate", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "LoadBalancer"),
        ("unhealthy-hosts", "AWS/ApplicationELB", "UnHealthyHostCount", "LoadBalancer"),
        ("cpu-high", "AWS/ECS", "CPUUtilization", "ClusterName"),
    ]
    names = []
    for label, namespace, metric, dimension in specs:
        name = f"tap-{label}-{suffix}"
        value = balancer if dimension == "LoadBalancer" else f"tap-{suffix}"
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            Namespace=namespace,
            MetricName=metric,
            Dimensions=[{"Name": dimension, "Value": value}],
            Statistic="Sum" if label == "5xx-rate" else "Maximum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=80.0 if label == "cpu-high" else 1.0,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
        names.append(name)
    return names


class HealthServer(ThreadingHTTPServer):
    """Answers every GET with ``status`` after ``delay`` seconds."""

    daemon_threads = True
    status = 200
    delay = 0.0
    paths: list[str]

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _HealthHandler(BaseHTTPRequestHandler):
    server: HealthServer

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        time.sleep(self.server.delay)
        body = b"ok" if self.server.status < 300 else b"failing"
        try:
            self.send_response(self.server.status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up waiting, which is what a timeout test wants

    def log_message(self, format: str, *args: Any) -> None:
        return None


@contextmanager
def health_server() -> Iterator[HealthServer]:
    """An HTTP server on 127.0.0.1 at a free port, for the duration."""
    server = HealthServer(("127.0.0.1", 0), _HealthHandler)
    server.paths = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
