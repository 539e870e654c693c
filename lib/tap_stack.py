"""The TAP stack: typed settings and the components that build it.

``TapStackArgs`` turns the ``tap:`` stack config into checked, typed values.
``TapStack`` composes one ComponentResource per concern (network, data, edge,
load balancer, service, alarms, audit) so that each part reads on its own.

Every physical name is ``tap-<suffix>-...`` and every invoke is an ``_output``
form, so the program also runs offline under Pulumi's mocks (``tapctl plan``).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

COLORS = ("blue", "green")
DB_PORT = 5432
DB_NAME = "tap"
DB_USERNAME = "tapadmin"
CONTAINER_NAME = "app"
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
# CloudFront's managed "CachingOptimized" policy has this id in every account;
# a constant avoids an invoke at program time.
CACHING_OPTIMIZED_POLICY_ID = "658327ea-f89d-4fab-a63d-7e88639e58f6"
ANYWHERE = "0.0.0.0/0"
TIERS = ("public", "private", "isolated")
PRICE_CLASSES = ("PriceClass_100", "PriceClass_200", "PriceClass_All")

# Lowercase letters, digits and single inner hyphens: valid inside RDS
# identifiers (no "--", no trailing "-"), bucket, ALB and target group names.
_SUFFIX = re.compile(r"^[a-z](?:-?[a-z0-9])*$")
# "tap-" + suffix + "-green" must fit a target group name (32 characters).
MAX_SUFFIX_LENGTH = 20
_ENGINE_VERSION = re.compile(r"^\d+(?:\.\d+)?$")
# An image reference with an explicit tag or digest (no implicit "latest").
# tapctl's deploy checks --image with the same grammar; a unit test keeps the
# two in step, since tapctl cannot import this module without Pulumi.
_IMAGE_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_REGISTRY = (
    r"(?:(?:localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)(?::[0-9]+)?"
    r"|[A-Za-z0-9-]+:[0-9]+)/"
)
_IMAGE_DIGEST = r"sha256:[a-f0-9]{64}"
IMAGE_REFERENCE = re.compile(
    rf"^(?:{_IMAGE_REGISTRY})?{_IMAGE_PATH}(?:/{_IMAGE_PATH})*"
    rf"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}(?:@{_IMAGE_DIGEST})?|@{_IMAGE_DIGEST})\Z"
)
_LOG_RETENTION_DAYS = frozenset(
    (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827)
    + (2192, 2557, 2922, 3288, 3653)
)
# Task memory (MiB) Fargate accepts for each task CPU size.
_FARGATE_MEMORY: dict[int, Sequence[int]] = {
    256: (512, 1024, 2048),
    512: range(1024, 4097, 1024),
    1024: range(2048, 8193, 1024),
    2048: range(4096, 16385, 1024),
    4096: range(8192, 30721, 1024),
    8192: range(16384, 61441, 4096),
    16384: range(32768, 122881, 8192),
}


class StackConfigError(ValueError):
    """A stack config value that cannot build a working stack; ``key`` names it."""

    def __init__(self, key: str, value: object, reason: str) -> None:
        self.key = f"tap:{key}"
        super().__init__(f"{self.key}: {value!r} {reason}")


@dataclass(frozen=True)
class TapStackArgs:
    """Typed settings of one environment; ``from_config`` reads them."""

    environment_suffix: str
    vpc_cidr: str
    blue_image: str
    green_image: str
    tags: dict[str, str] = field(default_factory=dict)
    availability_zone_count: int = 2
    nat_gateway_per_az: bool = False
    container_port: int = 80
    health_check_path: str = "/"
    task_cpu: int = 256
    task_memory: int = 512
    min_capacity: int = 1
    max_capacity: int = 2
    cpu_target_percent: int = 70
    requests_per_target: int = 1000
    active_color: str = "blue"
    idle_weight: int = 0
    db_instance_class: str = "db.t4g.micro"
    db_allocated_storage: int = 20
    db_engine_version: str = "16"
    db_multi_az: bool = False
    db_backup_retention_days: int = 7
    db_deletion_protection: bool = True
    db_final_snapshot: bool = True
    log_retention_days: int = 30
    certificate_arn: str | None = None
    test_listener_port: int = 8080
    test_access_cidrs: tuple[str, ...] = ()
    cdn_price_class: str = "PriceClass_100"

    def __post_init__(self) -> None:
        _check_suffix(self.environment_suffix)
        _check_network(self)
        _check_service(self)
        _check_release(self)
        _check_database(self)
        _check_edge(self)

    @classmethod
    def from_config(cls, config: pulumi.Config, stack_name: str) -> TapStackArgs:
        """Read the ``tap:`` keys; unset optional keys keep the defaults above."""
        values: dict[str, Any] = {
            attribute: config.require(key) for attribute, key in _REQUIRED_KEYS
        }
        for attribute, key, kind in _OPTIONAL_KEYS:
            value = _read(config, key, kind)
            if value is not None:
                values[attribute] = value
        values["environment_suffix"] = config.get("environmentSuffix") or stack_name
        values["tags"] = _string_map(config.get_object("tags") or {})
        access = config.get_object("testAccessCidrs")
        if access is not None:
            values["test_access_cidrs"] = _string_list(access, "testAccessCidrs")
        return cls(**values)

    @property
    def prefix(self) -> str:
        """Start of every physical name: ``tap-<suffix>``."""
        return f"tap-{self.environment_suffix}"

    @property
    def idle_color(self) -> str:
        return "green" if self.active_color == "blue" else "blue"

    @property
    def weights(self) -> dict[str, int]:
        """Production listener weights by color; they always add up to 100."""
        return {
            self.active_color: 100 - self.idle_weight,
            self.idle_color: self.idle_weight,
        }

    @property
    def test_access_sources(self) -> tuple[str, ...]:
        """Who may reach the test listener: the VPC unless config says otherwise."""
        return self.test_access_cidrs or (self.vpc_cidr,)

    @property
    def images(self) -> dict[str, str]:
        return {"blue": self.blue_image, "green": self.green_image}

    def tags_for(self, name: str) -> dict[str, str]:
        """Config tags, then the tags every resource must carry, then a Name."""
        standard = {
            "Environment": self.environment_suffix,
            "ManagedBy": "pulumi",
            "Project": "tap",
        }
        return {**self.tags, **standard, "Name": f"{self.prefix}-{name}"}


_REQUIRED_KEYS = (
    ("vpc_cidr", "vpcCidr"),
    ("blue_image", "blueImage"),
    ("green_image", "greenImage"),
)
_OPTIONAL_KEYS = (
    ("availability_zone_count", "availabilityZoneCount", int),
    ("nat_gateway_per_az", "natGatewayPerAz", bool),
    ("container_port", "containerPort", int),
    ("health_check_path", "healthCheckPath", str),
    ("task_cpu", "taskCpu", int),
    ("task_memory", "taskMemory", int),
    ("min_capacity", "minCapacity", int),
    ("max_capacity", "maxCapacity", int),
    ("cpu_target_percent", "cpuTargetPercent", int),
    ("requests_per_target", "requestsPerTarget", int),
    ("active_color", "activeColor", str),
    ("idle_weight", "idleWeight", int),
    ("db_instance_class", "dbInstanceClass", str),
    ("db_allocated_storage", "dbAllocatedStorage", int),
    ("db_engine_version", "dbEngineVersion", str),
    ("db_multi_az", "dbMultiAz", bool),
    ("db_backup_retention_days", "dbBackupRetentionDays", int),
    ("db_deletion_protection", "dbDeletionProtection", bool),
    ("db_final_snapshot", "dbFinalSnapshot", bool),
    ("log_retention_days", "logRetentionDays", int),
    ("certificate_arn", "certificateArn", str),
    ("test_listener_port", "testListenerPort", int),
    ("cdn_price_class", "cdnPriceClass", str),
)


def _read(config: pulumi.Config, key: str, kind: type) -> Any:
    """One optional key through Pulumi's typed getter for its kind."""
    if kind is int:
        return config.get_int(key)
    if kind is bool:
        return config.get_bool(key)
    return config.get(key)


def _string_map(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(v, str) for v in value.values()
    ):
        raise StackConfigError("tags", value, "must map tag names to strings")
    return {str(key): item for key, item in value.items()}


def _string_list(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise StackConfigError(key, value, "must be a non-empty list")
    return tuple(str(item) for item in value)


# -- validation --------------------------------------------------------------
def _require(ok: bool, key: str, value: object, reason: str) -> None:
    if not ok:
        raise StackConfigError(key, value, reason)


def _check_suffix(suffix: str) -> None:
    _require(
        bool(_SUFFIX.match(suffix)) and len(suffix) <= MAX_SUFFIX_LENGTH,
        "environmentSuffix",
        suffix,
        "cannot form AWS names: use 1 to 20 lowercase letters, digits and single"
        " hyphens, starting with a letter and not ending with a hyphen",
    )


def _ipv4_network(key: str, value: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(value)
    except ValueError:
        raise StackConfigError(key, value, "is not a valid IPv4 network") from None


def _check_network(args: TapStackArgs) -> None:
    vpc = _ipv4_network("vpcCidr", args.vpc_cidr)
    _require(
        16 <= vpc.prefixlen <= 23,
        "vpcCidr",
        args.vpc_cidr,
        "must be between /16 and /23 to hold a /28 or larger subnet per tier and zone",
    )
    _require(
        2 <= args.availability_zone_count <= 6,
        "availabilityZoneCount",
        args.availability_zone_count,
        "must be between 2 and 6",
    )
    for cidr in args.test_access_cidrs:
        _ipv4_network("testAccessCidrs", cidr)
    _check_port("containerPort", args.container_port)
    _check_port("testListenerPort", args.test_listener_port)
    _require(
        args.test_listener_port not in (80, 443),
        "testListenerPort",
        args.test_listener_port,
        "must differ from the production ports 80 and 443",
    )


def _check_port(key: str, port: int) -> None:
    _require(1 <= port <= 65535, key, port, "is not a TCP port (1 to 65535)")


def _check_service(args: TapStackArgs) -> None:
    _require(
        args.health_check_path.startswith("/"),
        "healthCheckPath",
        args.health_check_path,
        "must start with '/'",
    )
    _require(
        args.task_memory in _FARGATE_MEMORY.get(args.task_cpu, ()),
        "taskMemory",
        args.task_memory,
        f"is not a Fargate memory size for taskCpu {args.task_cpu}",
    )
    _require(args.min_capacity >= 1, "minCapacity", args.min_capacity, "must be >= 1")
    _require(
        args.max_capacity >= args.min_capacity,
        "maxCapacity",
        args.max_capacity,
        f"must be >= minCapacity ({args.min_capacity})",
    )
    _check_scaling_targets(args)


def _check_scaling_targets(args: TapStackArgs) -> None:
    _require(
        1 <= args.cpu_target_percent <= 100,
        "cpuTargetPercent",
        args.cpu_target_percent,
        "must be between 1 and 100",
    )
    _require(
        args.requests_per_target >= 1,
        "requestsPerTarget",
        args.requests_per_target,
        "must be >= 1",
    )


def _check_release(args: TapStackArgs) -> None:
    _require(
        args.active_color in COLORS,
        "activeColor",
        args.active_color,
        "is not a color: use blue or green",
    )
    _require(
        0 <= args.idle_weight <= 100,
        "idleWeight",
        args.idle_weight,
        "must be between 0 and 100",
    )
    for color, image in args.images.items():
        _require(
            bool(IMAGE_REFERENCE.match(image)),
            f"{color}Image",
            image,
            "must be an image reference with a tag or digest, such as "
            "public.ecr.aws/nginx/nginx:1.27-alpine",
        )


def _check_database(args: TapStackArgs) -> None:
    _require(
        bool(_ENGINE_VERSION.match(args.db_engine_version)),
        "dbEngineVersion",
        args.db_engine_version,
        "must be a PostgreSQL version such as '16' or '16.4'",
    )
    _require(
        20 <= args.db_allocated_storage <= 65536,
        "dbAllocatedStorage",
        args.db_allocated_storage,
        "must be between 20 and 65536 GiB",
    )
    _require(
        0 <= args.db_backup_retention_days <= 35,
        "dbBackupRetentionDays",
        args.db_backup_retention_days,
        "must be between 0 and 35",
    )
    _require(
        args.log_retention_days in _LOG_RETENTION_DAYS,
        "logRetentionDays",
        args.log_retention_days,
        f"is not a CloudWatch retention; use one of {sorted(_LOG_RETENTION_DAYS)}",
    )


def _check_edge(args: TapStackArgs) -> None:
    _require(
        args.certificate_arn is None or args.certificate_arn.startswith("arn:"),
        "certificateArn",
        args.certificate_arn,
        "must be an ACM certificate ARN (arn:aws:acm:...)",
    )
    _require(
        args.cdn_price_class in PRICE_CLASSES,
        "cdnPriceClass",
        args.cdn_price_class,
        f"must be one of {', '.join(PRICE_CLASSES)}",
    )


def subnet_layout(vpc_cidr: str, zone_count: int) -> dict[str, list[str]]:
    """Carve the VPC into tiers (a quarter each; the last quarter stays free
    for growth) and each tier into eight zone slots, of which the first
    ``zone_count`` are used."""
    quarters = ipaddress.IPv4Network(vpc_cidr).subnets(prefixlen_diff=2)
    return {
        tier: [str(slot) for slot in list(quarter.subnets(prefixlen_diff=3))][
            :zone_count
        ]
        for tier, quarter in zip(TIERS, quarters, strict=False)
    }


def _policy(*statements: Mapping[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _policy_output(*statements: Mapping[str, Any]) -> pulumi.Output[str]:
    """A policy document whose statements hold Outputs (ARNs not known yet)."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements})


def _assume_role_policy(service: str) -> str:
    return _policy(
        {
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
        }
    )


def _deny_insecure_transport(bucket_arn: pulumi.Output[str]) -> dict[str, Any]:
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


@dataclass(frozen=True)
class Account:
    """Where the stack runs, from ``_output`` invokes (never synchronous ones)."""

    account_id: pulumi.Output[str]
    region: pulumi.Output[str]
    partition: pulumi.Output[str]

    @classmethod
    def lookup(cls, parent: pulumi.Resource) -> Account:
        opts = pulumi.InvokeOutputOptions(parent=parent)
        return cls(
            account_id=aws.get_caller_identity_output(opts=opts).account_id,
            region=aws.get_region_output(opts=opts).region,
            partition=aws.get_partition_output(opts=opts).partition,
        )


class PrivateBucket(pulumi.ComponentResource):
    """An S3 bucket nobody reaches in public: all four public access flags,
    default encryption, versioning, owner-enforced objects, TLS only.

    ``statements`` are added to the TLS-only bucket policy.
    """

    def __init__(
        self,
        name: str,
        bucket_name: pulumi.Input[str],
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tap:storage:PrivateBucket", name, None, opts)
        self._name = name
        self.bucket = aws.s3.Bucket(
            name, bucket=bucket_name, tags=dict(tags), opts=self._child()
        )
        self.access_block = self._create_access_block()
        self._create_encryption()
        self._create_versioning()
        self._create_ownership()
        self.register_outputs({"bucket": self.bucket.bucket, "arn": self.bucket.arn})

    def _child(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kwargs)

    def _create_access_block(self) -> aws.s3.BucketPublicAccessBlock:
        return aws.s3.BucketPublicAccessBlock(
            f"{self._name}-public-access",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=self._child(),
        )

    def _create_encryption(self) -> None:
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{self._name}-encryption",
            bucket=self.bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "AES256"
                    },
                    "bucket_key_enabled": True,
                }
            ],
            opts=self._child(),
        )

    def _create_versioning(self) -> None:
        aws.s3.BucketVersioning(
            f"{self._name}-versioning",
            bucket=self.bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                status="Enabled"
            ),
            opts=self._child(),
        )

    def _create_ownership(self) -> None:
        aws.s3.BucketOwnershipControls(
            f"{self._name}-ownership",
            bucket=self.bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(
                object_ownership="BucketOwnerEnforced"
            ),
            opts=self._child(),
        )

    def attach_policy(self, *statements: Mapping[str, Any]) -> aws.s3.BucketPolicy:
        """The bucket policy: TLS only, plus the given statements. It waits for
        the public access block so AWS judges it with the block in place."""
        document = _policy_output(
            _deny_insecure_transport(self.bucket.arn), *statements
        )
        return aws.s3.BucketPolicy(
            f"{self._name}-policy",
            bucket=self.bucket.id,
            policy=document,
            opts=self._child(depends_on=[self.access_block]),
        )


class Network(pulumi.ComponentResource):
    """VPC with public, private and isolated subnets per zone, NAT, flow logs
    and the chained security groups (load balancer -> tasks -> database)."""

    def __init__(
        self,
        name: str,
        args: TapStackArgs,
        account: Account,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tap:network:Network", name, None, opts)
        self._name = name
        self._args = args
        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.vpc_cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags=args.tags_for("vpc"),
            opts=self._child(),
        )
        self.subnets = self._create_subnets()
        self._create_public_routes()
        self._create_private_routes(self._create_nat_gateways())
        self._create_isolated_routes()
        self.flow_log_group = self._create_flow_logs(account)
        self._create_security_groups()
        self.register_outputs(
            {
                "vpc_id": self.vpc.id,
                "public_subnet_ids": self.subnet_ids("public"),
                "private_subnet_ids": self.subnet_ids("private"),
                "isolated_subnet_ids": self.subnet_ids("isolated"),
            }
        )

    def _child(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kwargs)

    def subnet_ids(self, tier: str) -> list[pulumi.Output[str]]:
        return [subnet.id for subnet in self.subnets[tier]]

    def _create_subnets(self) -> dict[str, list[aws.ec2.Subnet]]:
        zones = aws.get_availability_zones_output(
            state="available", opts=pulumi.InvokeOutputOptions(parent=self)
        )
        layout = subnet_layout(self._args.vpc_cidr, self._args.availability_zone_count)
        return {
            tier: [
                aws.ec2.Subnet(
                    f"{self._name}-{tier}-{index}",
                    vpc_id=self.vpc.id,
                    cidr_block=cidr,
                    availability_zone=zones.names.apply(
                        _zone_picker(index, self._args.availability_zone_count)
                    ),
                    map_public_ip_on_launch=False,
                    tags=self._args.tags_for(f"{tier}-{index}"),
                    opts=self._child(),
                )
                for index, cidr in enumerate(cidrs)
            ]
            for tier, cidrs in layout.items()
        }

    def _route_table(self, label: str) -> aws.ec2.RouteTable:
        return aws.ec2.RouteTable(
            f"{self._name}-{label}-rt",
            vpc_id=self.vpc.id,
            tags=self._args.tags_for(f"{label}-rt"),
            opts=self._child(),
        )

    def _associate(self, table: aws.ec2.RouteTable, tier: str, index: int) -> None:
        aws.ec2.RouteTableAssociation(
            f"{self._name}-{tier}-{index}-rta",
            route_table_id=table.id,
            subnet_id=self.subnets[tier][index].id,
            opts=self._child(),
        )

    def _create_public_routes(self) -> None:
        self.internet_gateway = aws.ec2.InternetGateway(
            f"{self._name}-igw",
            vpc_id=self.vpc.id,
            tags=self._args.tags_for("igw"),
            opts=self._child(),
        )
        table = self._route_table("public")
        aws.ec2.Route(
            f"{self._name}-public-default",
            route_table_id=table.id,
            destination_cidr_block=ANYWHERE,
            gateway_id=self.internet_gateway.id,
            opts=self._child(),
        )
        for index in range(len(self.subnets["public"])):
            self._associate(table, "public", index)

    def _create_nat_gateways(self) -> list[aws.ec2.NatGateway]:
        """One NAT gateway per zone when config asks (a zone outage then
        spares the others), else one shared in the first zone."""
        count = (
            self._args.availability_zone_count if self._args.nat_gateway_per_az else 1
        )
        gateways = []
        for index in range(count):
            address = aws.ec2.Eip(
                f"{self._name}-nat-eip-{index}",
                domain="vpc",
                tags=self._args.tags_for(f"nat-eip-{index}"),
                opts=self._child(),
            )
            gateways.append(
                aws.ec2.NatGateway(
                    f"{self._name}-nat-{index}",
                    allocation_id=address.allocation_id,
                    subnet_id=self.subnets["public"][index].id,
                    tags=self._args.tags_for(f"nat-{index}"),
                    opts=self._child(depends_on=[self.internet_gateway]),
                )
            )
        return gateways

    def _create_private_routes(self, gateways: list[aws.ec2.NatGateway]) -> None:
        tables = []
        for index, gateway in enumerate(gateways):
            table = self._route_table(f"private-{index}")
            aws.ec2.Route(
                f"{self._name}-private-{index}-default",
                route_table_id=table.id,
                destination_cidr_block=ANYWHERE,
                nat_gateway_id=gateway.id,
                opts=self._child(),
            )
            tables.append(table)
        for index in range(len(self.subnets["private"])):
            self._associate(tables[index % len(tables)], "private", index)

    def _create_isolated_routes(self) -> None:
        """Isolated subnets get a table with no route out of the VPC."""
        table = self._route_table("isolated")
        for index in range(len(self.subnets["isolated"])):
            self._associate(table, "isolated", index)

    def _create_flow_logs(self, account: Account) -> aws.cloudwatch.LogGroup:
        group = aws.cloudwatch.LogGroup(
            f"{self._name}-flow-logs",
            name=f"/tap/{self._args.environment_suffix}/vpc-flow-logs",
            retention_in_days=self._args.log_retention_days,
            tags=self._args.tags_for("vpc-flow-logs"),
            opts=self._child(),
        )
        role = self._create_flow_log_role(group, account)
        aws.ec2.FlowLog(
            f"{self._name}-flow-log",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            tags=self._args.tags_for("vpc-flow-log"),
            opts=self._child(),
        )
        return group

    def _create_flow_log_role(
        self, group: aws.cloudwatch.LogGroup, account: Account
    ) -> aws.iam.Role:
        """A role the flow log service may assume for this account only, able
        to write to this one log group and nothing else."""
        trust = _policy_output(
            {
                "Effect": "Allow",
                "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account.account_id}
                },
            }
        )
        role = aws.iam.Role(
            f"{self._name}-flow-log-role",
            name=f"{self._args.prefix}-vpc-flow-logs",
            assume_role_policy=trust,
            tags=self._args.tags_for("vpc-flow-logs"),
            opts=self._child(),
        )
        aws.iam.RolePolicy(
            f"{self._name}-flow-log-policy",
            name=f"{self._args.prefix}-vpc-flow-logs-write",
            role=role.id,
            policy=_policy_output(
                {
                    "Effect": "Allow",
                    "Action": [
                        "logs:CreateLogStream",
                        "logs:PutLogEvents",
                        "logs:DescribeLogStreams",
                    ],
                    "Resource": [group.arn, pulumi.Output.concat(group.arn, ":*")],
                }
            ),
            opts=self._child(),
        )
        return role

    def _security_group(self, label: str, description: str) -> aws.ec2.SecurityGroup:
        return aws.ec2.SecurityGroup(
            f"{self._name}-{label}-sg",
            name=f"{self._args.prefix}-{label}",
            description=description,
            vpc_id=self.vpc.id,
            tags=self._args.tags_for(f"{label}-sg"),
            opts=self._child(),
        )

    def _create_security_groups(self) -> None:
        self.alb_security_group = self._security_group(
            "alb", "Load balancer: web traffic in, container port out to tasks"
        )
        self.task_security_group = self._security_group(
            "tasks", "Tasks: only the load balancer in, HTTPS and database out"
        )
        self.db_security_group = self._security_group(
            "db", "Database: only the tasks, on PostgreSQL"
        )
        self._create_alb_rules()
        self._create_task_rules()
        self._create_db_rules()

    def _ingress(
        self, label: str, group: aws.ec2.SecurityGroup, port: int, **source: Any
    ) -> None:
        aws.vpc.SecurityGroupIngressRule(
            f"{self._name}-{label}",
            security_group_id=group.id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            tags=self._args.tags_for(label),
            opts=self._child(),
            **source,
        )

    def _egress(
        self, label: str, group: aws.ec2.SecurityGroup, port: int, **target: Any
    ) -> None:
        aws.vpc.SecurityGroupEgressRule(
            f"{self._name}-{label}",
            security_group_id=group.id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            tags=self._args.tags_for(label),
            opts=self._child(),
            **target,
        )

    def _create_alb_rules(self) -> None:
        alb = self.alb_security_group
        self._ingress("alb-http-in", alb, 80, cidr_ipv4=ANYWHERE)
        self._ingress("alb-https-in", alb, 443, cidr_ipv4=ANYWHERE)
        port = self._args.test_listener_port
        for index, cidr in enumerate(self._args.test_access_sources):
            self._ingress(f"alb-test-in-{index}", alb, port, cidr_ipv4=cidr)
        self._egress(
            "alb-to-tasks",
            alb,
            self._args.container_port,
            referenced_security_group_id=self.task_security_group.id,
        )

    def _create_task_rules(self) -> None:
        tasks = self.task_security_group
        self._ingress(
            "tasks-from-alb",
            tasks,
            self._args.container_port,
            referenced_security_group_id=self.alb_security_group.id,
        )
        # Image pulls and AWS APIs (Secrets Manager, logs) go out over HTTPS.
        self._egress("tasks-https-out", tasks, 443, cidr_ipv4=ANYWHERE)
        self._egress(
            "tasks-to-db",
            tasks,
            DB_PORT,
            referenced_security_group_id=self.db_security_group.id,
        )

    def _create_db_rules(self) -> None:
        self._ingress(
            "db-from-tasks",
            self.db_security_group,
            DB_PORT,
            referenced_security_group_id=self.task_security_group.id,
        )


def _zone_picker(index: int, wanted: int) -> Callable[[Sequence[str]], str]:
    """The zone of subnet ``index``; a region with too few zones is a config error."""

    def pick(names: Sequence[str]) -> str:
        if wanted > len(names):
            raise StackConfigError(
                "availabilityZoneCount",
                wanted,
                f"exceeds the {len(names)} available zones of this region",
            )
        return names[index]

    return pick


class Data(pulumi.ComponentResource):
    """PostgreSQL on RDS in the isolated subnets, encrypted with a customer
    KMS key; RDS creates and rotates the master password in Secrets Manager."""

    def __init__(
        self,
        name: str,
        args: TapStackArgs,
        network: Network,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tap:data:Data", name, None, opts)
        self._name = name
        self._args = args
        self.key = self._create_key()
        self.instance = self._create_instance(
            network, self._create_subnet_group(network), self._create_parameter_group()
        )
        self.secret_arn: pulumi.Output[str] = self.instance.master_user_secrets.apply(
            _first_secret_arn
        )
        self.register_outputs(
            {
                "address": self.instance.address,
                "port": self.instance.port,
                "secret_arn": self.secret_arn,
                "key_arn": self.key.arn,
            }
        )

    def _child(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kwargs)

    def _create_key(self) -> aws.kms.Key:
        key = aws.kms.Key(
            f"{self._name}-key",
            description=f"{self._args.prefix}: database storage and its secret",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=self._args.tags_for("data-key"),
            opts=self._child(),
        )
        aws.kms.Alias(
            f"{self._name}-key-alias",
            name=f"alias/{self._args.prefix}-data",
            target_key_id=key.key_id,
            opts=self._child(),
        )
        return key

    def _create_subnet_group(self, network: Network) -> aws.rds.SubnetGroup:
        return aws.rds.SubnetGroup(
            f"{self._name}-subnets",
            name=f"{self._args.prefix}-db",
            description=f"{self._args.prefix}: isolated subnets, no route out",
            subnet_ids=network.subnet_ids("isolated"),
            tags=self._args.tags_for("db-subnets"),
            opts=self._child(),
        )

    def _create_parameter_group(self) -> aws.rds.ParameterGroup:
        """Family from the engine's major version; the major is in the name so a
        major upgrade creates a new group beside the old one."""
        major = self._args.db_engine_version.split(".")[0]
        return aws.rds.ParameterGroup(
            f"{self._name}-params",
            name=f"{self._args.prefix}-postgres{major}",
            family=f"postgres{major}",
            description=f"{self._args.prefix}: TLS required for every connection",
            parameters=[
                aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1")
            ],
            tags=self._args.tags_for("db-params"),
            opts=self._child(),
        )

    def _create_instance(
        self,
        network: Network,
        subnet_group: aws.rds.SubnetGroup,
        parameters: aws.rds.ParameterGroup,
    ) -> aws.rds.Instance:
        args = self._args
        return aws.rds.Instance(
            f"{self._name}-db",
            identifier=f"{args.prefix}-db",
            engine="postgres",
            engine_version=args.db_engine_version,
            instance_class=args.db_instance_class,
            allocated_storage=args.db_allocated_storage,
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=self.key.arn,
            db_name=DB_NAME,
            username=DB_USERNAME,
            manage_master_user_password=True,
            master_user_secret_kms_key_id=self.key.arn,
            port=DB_PORT,
            db_subnet_group_name=subnet_group.name,
            parameter_group_name=parameters.name,
            vpc_security_group_ids=[network.db_security_group.id],
            publicly_accessible=False,
            multi_az=args.db_multi_az,
            backup_retention_period=args.db_backup_retention_days,
            deletion_protection=args.db_deletion_protection,
            skip_final_snapshot=not args.db_final_snapshot,
            final_snapshot_identifier=(
                f"{args.prefix}-db-final" if args.db_final_snapshot else None
            ),
            copy_tags_to_snapshot=True,
            auto_minor_version_upgrade=True,
            enabled_cloudwatch_logs_exports=["postgresql", "upgrade"],
            tags=args.tags_for("db"),
            opts=self._child(),
        )


def _first_secret_arn(secrets: Sequence[Any] | None) -> str:
    """RDS reports its managed secret as a one-item list."""
    if not secrets:
        return ""
    return str(secrets[0].secret_arn)


class Edge(pulumi.ComponentResource):
    """Static assets: a private bucket served only through CloudFront, which
    signs its requests with an origin access control."""

    def __init__(
        self,
        name: str,
        args: TapStackArgs,
        account: Account,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tap:edge:Edge", name, None, opts)
        self._name = name
        self._args = args
        self.static = PrivateBucket(
            f"{name}-static",
            pulumi.Output.concat(args.prefix, "-static-", account.account_id),
            args.tags_for("static"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.distribution = self._create_distribution(self._create_access_control())
        self.static.attach_policy(self._cloudfront_read())
        self.register_outputs(
            {
                "bucket": self.static.bucket.bucket,
                "domain_name": self.distribution.domain_name,
                "distribution_id": self.distribution.id,
            }
        )

    def _create_access_control(self) -> aws.cloudfront.OriginAccessControl:
        return aws.cloudfront.OriginAccessControl(
            f"{self._name}-oac",
            name=f"{self._args.prefix}-static",
            description=f"{self._args.prefix}: CloudFront reads the static bucket",
            origin_access_control_origin_type="s3",
            signing_behavior="always",
            signing_protocol="sigv4",
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_distribution(
        self, access: aws.cloudfront.OriginAccessControl
    ) -> aws.cloudfront.Distribution:
        origin_id = "static"
        return aws.cloudfront.Distribution(
            f"{self._name}-cdn",
            enabled=True,
            is_ipv6_enabled=True,
            http_version="http2and3",
            comment=f"{self._args.prefix} static assets",
            default_root_object="index.html",
            price_class=self._args.cdn_price_class,
            origins=[
                aws.cloudfront.DistributionOriginArgs(
                    origin_id=origin_id,
                    domain_name=self.static.bucket.bucket_regional_domain_name,
                    origin_access_control_id=access.id,
                )
            ],
            default_cache_behavior=aws.cloudfront.DistributionDefaultCacheBehaviorArgs(
                target_origin_id=origin_id,
                viewer_protocol_policy="redirect-to-https",
                allowed_methods=["GET", "HEAD", "OPTIONS"],
                cached_methods=["GET", "HEAD"],
                cache_policy_id=CACHING_OPTIMIZED_POLICY_ID,
                compress=True,
            ),
            restrictions=aws.cloudfront.DistributionRestrictionsArgs(
                geo_restriction=aws.cloudfront.DistributionRestrictionsGeoRestrictionArgs(
                    restriction_type="none"
                )
            ),
            viewer_certificate=aws.cloudfront.DistributionViewerCertificateArgs(
                cloudfront_default_certificate=True
            ),
            tags=self._args.tags_for("cdn"),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _cloudfront_read(self) -> dict[str, Any]:
        """Only this distribution may read objects, and only through CloudFront."""
        return {
            "Sid": "AllowCloudFrontRead",
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": pulumi.Output.concat(self.static.bucket.arn, "/*"),
            "Condition": {"StringEquals": {"AWS:SourceArn": self.distribution.arn}},
        }


class LoadBalancer(pulumi.ComponentResource):
    """The ALB, a target group per color, the weighted production listener and
    the test listener that reaches only the idle color."""

    def __init__(
        self,
        name: str,
        args: TapStackArgs,
        network: Network,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tap:service:LoadBalancer", name, None, opts)
        self._name = name
        self._args = args
        self.alb = aws.lb.LoadBalancer(
            f"{name}-alb",
            name=f"{args.prefix}-alb",
            load_balancer_type="application",
            internal=False,
            security_groups=[network.alb_security_group.id],
            subnets=network.subnet_ids("public"),
            drop_invalid_header_fields=True,
            tags=args.tags_for("alb"),
            opts=self._child(),
        )
        self.target_groups = {
            color: self._create_target_group(color, network) for color in COLORS
        }
        self.listeners = self._create_listeners()
        self.register_outputs(
            {
                "dns_name": self.alb.dns_name,
                "prod_listener_arn": self.prod_listener.arn,
                "test_listener_arn": self.test_listener.arn,
            }
        )

    def _child(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kwargs)

    @property
    def prod_listener(self) -> aws.lb.Listener:
        return self.listeners["prod"]

    @property
    def test_listener(self) -> aws.lb.Listener:
        return self.listeners["test"]

    def _create_target_group(self, color: str, network: Network) -> aws.lb.TargetGroup:
        return aws.lb.TargetGroup(
            f"{self._name}-{color}",
            name=f"{self._args.prefix}-{color}",
            port=self._args.container_port,
            protocol="HTTP",
            target_type="ip",
            vpc_id=network.vpc.id,
            deregistration_delay=30,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                enabled=True,
                path=self._args.health_check_path,
                matcher="200-399",
                interval=15,
                timeout=5,
                healthy_threshold=2,
                unhealthy_threshold=3,
            ),
            tags=self._args.tags_for(f"{color}-tg"),
            opts=self._child(),
        )

    def _tls(self) -> dict[str, Any]:
        """Listener protocol settings: HTTPS with a certificate, else HTTP."""
        if self._args.certificate_arn is None:
            return {"protocol": "HTTP"}
        return {
            "protocol": "HTTPS",
            "certificate_arn": self._args.certificate_arn,
            "ssl_policy": TLS_POLICY,
        }

    def _listener(
        self,
        label: str,
        port: int,
        action: aws.lb.ListenerDefaultActionArgs,
        **tls: Any,
    ) -> aws.lb.Listener:
        return aws.lb.Listener(
            f"{self._name}-{label}",
            load_balancer_arn=self.alb.arn,
            port=port,
            default_actions=[action],
            tags=self._args.tags_for(f"{label}-listener"),
            opts=self._child(),
            **tls,
        )

    def _create_listeners(self) -> dict[str, aws.lb.Listener]:
        tls = self._tls()
        weighted = self._forward(self._args.weights)
        idle_only = self._forward({self._args.idle_color: 100})
        listeners = {
            "test": self._listener(
                "test", self._args.test_listener_port, idle_only, **tls
            )
        }
        if self._args.certificate_arn is None:
            listeners["prod"] = self._listener("prod", 80, weighted, **tls)
            return listeners
        listeners["prod"] = self._listener("prod", 443, weighted, **tls)
        listeners["redirect"] = self._listener(
            "http-redirect", 80, _redirect_to_https(), protocol="HTTP"
        )
        return listeners

    def _forward(self, weights: Mapping[str, int]) -> aws.lb.ListenerDefaultActionArgs:
        return aws.lb.ListenerDefaultActionArgs(
            type="forward",
            forward=aws.lb.ListenerDefaultActionForwardArgs(
                target_groups=[
                    aws.lb.ListenerDefaultActionForwardTargetGroupArgs(
                        arn=self.target_groups[color].arn, weight=weight
                    )
                    for color, weight in weights.items()
                ]
            ),
        )


def _redirect_to_https() -> aws.lb.ListenerDefaultActionArgs:
    return aws.lb.ListenerDefaultActionArgs(
        type="redirect",
        redirect=aws.lb.ListenerDefaultActionRedirectArgs(
            protocol="HTTPS", port="443", status_code="HTTP_301"
        ),
    )


class Service(pulumi.ComponentResource):
    """The ECS cluster and, per color, a Fargate task definition, a service
    behind that color's target group, and its autoscaling."""

    def __init__(
        self,
        name: str,
        args: TapStackArgs,
        deps: ServiceDependencies,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tap:service:Service", name, None, opts)
        self._name = name
        self._args = args
        self._deps = deps
        self.cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            name=args.prefix,
            settings=[
                aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")
            ],
            tags=args.tags_for("cluster"),
            opts=self._child(),
        )
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/ecs/{args.prefix}",
            retention_in_days=args.log_retention_days,
            tags=args.tags_for("logs"),
            opts=self._child(),
        )
        self.execution_role = self._create_execution_role()
        self.task_role = self._create_task_role()
        self.services = {color: self._create_color(color) for color in COLORS}
        self.register_outputs(
            {
                "cluster_name": self.cluster.name,
                "service_names": {c: s.name for c, s in self.services.items()},
            }
        )

    def _child(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kwargs)

    def _role(self, label: str, purpose: str) -> aws.iam.Role:
        return aws.iam.Role(
            f"{self._name}-{label}-role",
            name=f"{self._args.prefix}-{label}",
            description=f"{self._args.prefix}: {purpose}",
            assume_role_policy=_assume_role_policy("ecs-tasks.amazonaws.com"),
            tags=self._args.tags_for(f"{label}-role"),
            opts=self._child(),
        )

    def _create_execution_role(self) -> aws.iam.Role:
        """ECS pulls images and writes logs with the managed policy; the inline
        policy adds reading this database secret and decrypting with its key."""
        role = self._role(
            "task-execution", "ECS agent pulls, logs, reads the DB secret"
        )
        aws.iam.RolePolicyAttachment(
            f"{self._name}-task-execution-managed",
            role=role.name,
            policy_arn=pulumi.Output.concat(
                "arn:",
                self._deps.account.partition,
                ":iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy",
            ),
            opts=self._child(),
        )
        aws.iam.RolePolicy(
            f"{self._name}-task-execution-secret",
            name=f"{self._args.prefix}-read-db-secret",
            role=role.id,
            policy=_policy_output(
                {
                    "Effect": "Allow",
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": self._deps.data.secret_arn,
                },
                {
                    "Effect": "Allow",
                    "Action": "kms:Decrypt",
                    "Resource": self._deps.data.key.arn,
                },
            ),
            opts=self._child(),
        )
        return role

    def _create_task_role(self) -> aws.iam.Role:
        """The application may read static assets and nothing else."""
        role = self._role("task", "the application reads static assets")
        bucket = self._deps.edge.static.bucket
        aws.iam.RolePolicy(
            f"{self._name}-task-static-read",
            name=f"{self._args.prefix}-read-static",
            role=role.id,
            policy=_policy_output(
                {
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": pulumi.Output.concat(bucket.arn, "/*"),
                }
            ),
            opts=self._child(),
        )
        return role

    def _container(self, color: str) -> dict[str, Any]:
        """The container: plain settings in ``environment``, the database
        credentials only as ``secrets`` that ECS resolves at start."""
        data = self._deps.data
        secret = data.secret_arn
        return {
            "name": CONTAINER_NAME,
            "image": self._args.images[color],
            "essential": True,
            "portMappings": [
                {"containerPort": self._args.container_port, "protocol": "tcp"}
            ],
            "environment": [
                {"name": "APP_COLOR", "value": color},
                {"name": "DB_HOST", "value": data.instance.address},
                {"name": "DB_PORT", "value": data.instance.port.apply(str)},
                {"name": "DB_NAME", "value": DB_NAME},
            ],
            "secrets": [
                {
                    "name": "DB_USERNAME",
                    "valueFrom": pulumi.Output.concat(secret, ":username::"),
                },
                {
                    "name": "DB_PASSWORD",
                    "valueFrom": pulumi.Output.concat(secret, ":password::"),
                },
            ],
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": self.log_group.name,
                    "awslogs-region": self._deps.account.region,
                    "awslogs-stream-prefix": color,
                },
            },
        }

    def _create_task_definition(self, color: str) -> aws.ecs.TaskDefinition:
        return aws.ecs.TaskDefinition(
            f"{self._name}-{color}-task",
            family=f"{self._args.prefix}-{color}",
            cpu=str(self._args.task_cpu),
            memory=str(self._args.task_memory),
            network_mode="awsvpc",
            requires_compatibilities=["FARGATE"],
            execution_role_arn=self.execution_role.arn,
            task_role_arn=self.task_role.arn,
            container_definitions=pulumi.Output.json_dumps([self._container(color)]),
            tags=self._args.tags_for(f"{color}-task"),
            opts=self._child(),
        )

    def _create_color(self, color: str) -> aws.ecs.Service:
        """One color's service. Autoscaling owns the desired count after the
        first deploy, so later updates leave it alone."""
        network = self._deps.network
        balancer = self._deps.load_balancer
        service = aws.ecs.Service(
            f"{self._name}-{color}",
            name=f"{self._args.prefix}-{color}",
            cluster=self.cluster.arn,
            task_definition=self._create_task_definition(color).arn,
            launch_type="FARGATE",
            platform_version="LATEST",
            desired_count=self._args.min_capacity,
            deployment_minimum_healthy_percent=100,
            deployment_maximum_percent=200,
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(
                enable=True, rollback=True
            ),
            health_check_grace_period_seconds=60,
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=network.subnet_ids("private"),
                security_groups=[network.task_security_group.id],
                assign_public_ip=False,
            ),
            load_balancers=[
                aws.ecs.ServiceLoadBalancerArgs(
                    target_group_arn=balancer.target_groups[color].arn,
                    container_name=CONTAINER_NAME,
                    container_port=self._args.container_port,
                )
            ],
            propagate_tags="SERVICE",
            enable_ecs_managed_tags=True,
            tags=self._args.tags_for(color),
            # A target group must sit behind a listener before a service uses it.
            opts=self._child(
                ignore_changes=["desiredCount"],
                depends_on=list(balancer.listeners.values()),
            ),
        )
        self._create_scaling(color, service)
        return service

    def _create_scaling(self, color: str, service: aws.ecs.Service) -> None:
        target = aws.appautoscaling.Target(
            f"{self._name}-{color}-scaling",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=pulumi.Output.concat(
                "service/", self.cluster.name, "/", service.name
            ),
            min_capacity=self._args.min_capacity,
            max_capacity=self._args.max_capacity,
            tags=self._args.tags_for(f"{color}-scaling"),
            opts=self._child(),
        )
        balancer = self._deps.load_balancer
        requests_label = pulumi.Output.concat(
            balancer.alb.arn_suffix, "/", balancer.target_groups[color].arn_suffix
        )
        self._tracking(
            color,
            "cpu",
            target,
            "ECSServiceAverageCPUUtilization",
            self._args.cpu_target_percent,
        )
        self._tracking(
            color,
            "requests",
            target,
            "ALBRequestCountPerTarget",
            self._args.requests_per_target,
            requests_label,
        )

    def _tracking(
        self,
        color: str,
        label: str,
        target: aws.appautoscaling.Target,
        metric: str,
        value: int,
        resource_label: pulumi.Input[str] | None = None,
    ) -> None:
        aws.appautoscaling.Policy(
            f"{self._name}-{color}-{label}",
            name=f"{self._args.prefix}-{color}-{label}",
            policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace,
            scalable_dimension=target.scalable_dimension,
            resource_id=target.resource_id,
            target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                target_value=value,
                predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                    predefined_metric_type=metric, resource_label=resource_label
                ),
                scale_in_cooldown=300,
                scale_out_cooldown=60,
            ),
            opts=self._child(),
        )


@dataclass(frozen=True)
class ServiceDependencies:
    """What the service needs from the other components."""

    account: Account
    network: Network
    data: Data
    edge: Edge
    load_balancer: LoadBalancer


class Alarms(pulumi.ComponentResource):
    """The gates a release watches: target 5xx rate, unhealthy hosts per
    color and CPU per service."""

    def __init__(
        self,
        name: str,
        args: TapStackArgs,
        load_balancer: LoadBalancer,
        service: Service,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tap:service:Alarms", name, None, opts)
        self._name = name
        self._args = args
        alb_dimension = load_balancer.alb.arn_suffix
        alarms = [self._error_rate(alb_dimension)]
        for color in COLORS:
            group = load_balancer.target_groups[color].arn_suffix
            alarms.append(self._unhealthy_hosts(color, alb_dimension, group))
            alarms.append(self._service_cpu(color, service))
        self.names: list[pulumi.Output[str]] = [alarm.name for alarm in alarms]
        self.register_outputs({"alarm_names": self.names})

    def _alarm(self, label: str, **settings: Any) -> aws.cloudwatch.MetricAlarm:
        return aws.cloudwatch.MetricAlarm(
            f"{self._name}-{label}",
            name=f"{self._args.prefix}-{label}",
            comparison_operator="GreaterThanThreshold",
            evaluation_periods=3,
            datapoints_to_alarm=2,
            treat_missing_data="notBreaching",
            tags=self._args.tags_for(f"{label}-alarm"),
            opts=pulumi.ResourceOptions(parent=self),
            **settings,
        )

    def _error_rate(self, alb: pulumi.Output[str]) -> aws.cloudwatch.MetricAlarm:
        """Percent of requests answered 5xx by targets; no traffic is no alarm."""
        return self._alarm(
            "target-5xx-rate",
            alarm_description="Targets answer more than 5% of requests with 5xx",
            threshold=5,
            metric_queries=[
                _alb_metric("errors", "HTTPCode_Target_5XX_Count", alb),
                _alb_metric("requests", "RequestCount", alb),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="rate",
                    expression="IF(requests > 0, 100 * FILL(errors, 0) / requests, 0)",
                    label="Target 5xx rate (%)",
                    return_data=True,
                ),
            ],
        )

    def _unhealthy_hosts(
        self, color: str, alb: pulumi.Output[str], group: pulumi.Output[str]
    ) -> aws.cloudwatch.MetricAlarm:
        return self._alarm(
            f"{color}-unhealthy-hosts",
            alarm_description=f"The {color} target group has unhealthy targets",
            namespace="AWS/ApplicationELB",
            metric_name="UnHealthyHostCount",
            statistic="Maximum",
            period=60,
            threshold=0,
            dimensions={"LoadBalancer": alb, "TargetGroup": group},
        )

    def _service_cpu(self, color: str, service: Service) -> aws.cloudwatch.MetricAlarm:
        return self._alarm(
            f"{color}-cpu-high",
            alarm_description=f"The {color} service runs above 85% CPU",
            namespace="AWS/ECS",
            metric_name="CPUUtilization",
            statistic="Average",
            period=60,
            threshold=85,
            dimensions={
                "ClusterName": service.cluster.name,
                "ServiceName": service.services[color].name,
            },
        )


def _alb_metric(
    query_id: str, metric: str, alb: pulumi.Output[str]
) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
    return aws.cloudwatch.MetricAlarmMetricQueryArgs(
        id=query_id,
        return_data=False,
        metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
            namespace="AWS/ApplicationELB",
            metric_name=metric,
            stat="Sum",
            period=60,
            dimensions={"LoadBalancer": alb},
        ),
    )


class Audit(pulumi.ComponentResource):
    """A multi-region CloudTrail trail with log file validation, writing to
    its own private bucket under the policy CloudTrail requires."""

    def __init__(
        self,
        name: str,
        args: TapStackArgs,
        account: Account,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("tap:audit:Audit", name, None, opts)
        self._name = name
        trail_name = f"{args.prefix}-trail"
        self.logs = PrivateBucket(
            f"{name}-trail-logs",
            pulumi.Output.concat(args.prefix, "-trail-", account.account_id),
            args.tags_for("trail-logs"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        policy = self.logs.attach_policy(
            *self._cloudtrail_statements(account, trail_name)
        )
        self.trail = aws.cloudtrail.Trail(
            f"{name}-trail",
            name=trail_name,
            s3_bucket_name=self.logs.bucket.id,
            is_multi_region_trail=True,
            include_global_service_events=True,
            enable_log_file_validation=True,
            enable_logging=True,
            tags=args.tags_for("trail"),
            # CloudTrail checks the bucket policy when the trail is created.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        self.register_outputs(
            {"trail_arn": self.trail.arn, "bucket": self.logs.bucket.bucket}
        )

    def _cloudtrail_statements(
        self, account: Account, trail_name: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """CloudTrail may read the ACL and write its logs, for this trail only
        (the trail's ARN is built, as the trail does not exist yet)."""
        trail_arn = pulumi.Output.concat(
            "arn:",
            account.partition,
            ":cloudtrail:",
            account.region,
            ":",
            account.account_id,
            ":trail/",
            trail_name,
        )
        bucket_arn = self.logs.bucket.arn
        principal = {"Service": "cloudtrail.amazonaws.com"}
        only_this_trail = {"AWS:SourceArn": trail_arn}
        read_acl = {
            "Sid": "CloudTrailAclCheck",
            "Effect": "Allow",
            "Principal": principal,
            "Action": "s3:GetBucketAcl",
            "Resource": bucket_arn,
            "Condition": {"StringEquals": only_this_trail},
        }
        write_logs = {
            "Sid": "CloudTrailWrite",
            "Effect": "Allow",
            "Principal": principal,
            "Action": "s3:PutObject",
            "Resource": pulumi.Output.concat(
                bucket_arn, "/AWSLogs/", account.account_id, "/*"
            ),
            "Condition": {
                "StringEquals": {
                    "s3:x-amz-acl": "bucket-owner-full-control",
                    **only_this_trail,
                }
            },
        }
        return read_acl, write_logs


class TapStack(pulumi.ComponentResource):
    """The whole environment. ``exports`` holds the stack's outputs by name."""

    def __init__(
        self, name: str, args: TapStackArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("tap:index:TapStack", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = Account.lookup(self)
        self.network = Network(f"{name}-network", args, account, child)
        self.data = Data(f"{name}-data", args, self.network, child)
        self.edge = Edge(f"{name}-edge", args, account, child)
        self.load_balancer = LoadBalancer(f"{name}-lb", args, self.network, child)
        self.service = Service(
            f"{name}-service",
            args,
            ServiceDependencies(
                account, self.network, self.data, self.edge, self.load_balancer
            ),
            child,
        )
        self.alarms = Alarms(
            f"{name}-alarms", args, self.load_balancer, self.service, child
        )
        self.audit = Audit(f"{name}-audit", args, account, child)
        self.exports = self._exports(args)
        self.register_outputs(self.exports)

    def _exports(self, args: TapStackArgs) -> dict[str, Any]:
        balancer = self.load_balancer
        services = self.service.services
        return {
            "environment_suffix": args.environment_suffix,
            "vpc_id": self.network.vpc.id,
            "alb_arn": balancer.alb.arn,
            "alb_dns_name": balancer.alb.dns_name,
            "prod_listener_arn": balancer.prod_listener.arn,
            "test_listener_arn": balancer.test_listener.arn,
            "blue_target_group_arn": balancer.target_groups["blue"].arn,
            "green_target_group_arn": balancer.target_groups["green"].arn,
            "ecs_cluster_name": self.service.cluster.name,
            "ecs_cluster_arn": self.service.cluster.arn,
            "blue_service_name": services["blue"].name,
            "green_service_name": services["green"].name,
            "active_color": args.active_color,
            "blue_image": args.blue_image,
            "green_image": args.green_image,
            "rds_endpoint": self.data.instance.address,
            "rds_port": self.data.instance.port,
            "db_secret_arn": self.data.secret_arn,
            "static_bucket_name": self.edge.static.bucket.bucket,
            "cloudfront_domain_name": self.edge.distribution.domain_name,
            "cloudfront_distribution_id": self.edge.distribution.id,
            "cloudtrail_arn": self.audit.trail.arn,
            "cloudtrail_bucket_name": self.audit.logs.bucket.bucket,
            "log_group_name": self.service.log_group.name,
            "alarm_names": self.alarms.names,
        }
