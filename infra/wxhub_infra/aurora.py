"""Aurora MySQL 3 in the isolated subnets: a writer, readers behind a reader endpoint that the
API reads from, and the same secrets, TLS and parameters as the RDS instance (database.py).

Chosen by ``db_engine = "aurora-mysql"``. It is what the database becomes past one instance:
the API's reads spread over up to 15 replicas that share the writer's storage (no copy to
wait for, a lag of milliseconds to seconds), the job and the migration task keep the writer
(the cluster endpoint, in their secrets as ``host``), and storage grows by itself.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from constructs import Construct

from wxhub_infra.database import (
    DATABASE_NAME,
    EXPORTED_LOGS,
    MYSQL_PORT,
    MysqlDatabase,
)
from wxhub_infra.monitoring import notifying_alarm
from wxhub_infra.settings import EnvironmentSettings

# The version a new cluster starts at: Aurora MySQL 3.10, the long-term-support release of
# version 3 (MySQL 8.0 compatible; the RDS instance runs 8.4, and wxhub's SQL runs on both).
# RDS applies minor upgrades in the maintenance window. As with the RDS pin, raise it to the
# running minor or later, never lower.
AURORA_VERSION = rds.AuroraMysqlEngineVersion.VER_3_10_4
# Application Auto Scaling's name for the number of Aurora replicas of a cluster.
READ_REPLICA_COUNT = "rds:cluster:ReadReplicaCount"
# Scale out at once when readers run hot; scale in slowly, as a new reader takes minutes.
READER_SCALE_OUT_COOLDOWN = Duration.minutes(5)
READER_SCALE_IN_COOLDOWN = Duration.minutes(15)
CPU_PERCENT_THRESHOLD = 80
# Nightly data: a reader a minute behind the writer is still right for every request but the
# few minutes after a run; longer means replication is in trouble.
REPLICA_LAG_MS_THRESHOLD = 60_000
ACU_PERCENT_THRESHOLD = 90

# Cluster-wide: TLS only (what the RDS parameter group sets), the slow query log for every
# instance, those Application Auto Scaling adds included.
CLUSTER_PARAMETERS = {
    "require_secure_transport": "ON",
    "slow_query_log": "1",
    "long_query_time": "2",
}
# Per instance: the loader's LOAD DATA LOCAL INFILE (on the writer, where the job loads).
INSTANCE_PARAMETERS = {"local_infile": "1"}


class AuroraDatabase(MysqlDatabase):
    """The Aurora cluster and the three secrets its users log in with, as :class:`Database`.

    ``secret``, ``job_secret`` and ``api_secret`` hold the writer's endpoint as ``host``: the
    migration task and the job write there, and the API reads there too unless it is given
    ``read_host``, the cluster's reader endpoint (its DB_READ_HOST, wxhub.config). Aurora
    spreads the reader endpoint's connections over the readers; with none available it
    answers from the writer.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
    ):
        super().__init__(scope, construct_id)
        self._settings = settings
        self.security_group = self._security_group(vpc)
        credentials_secret = self._master_credentials()
        self.cluster_identifier = f"wxhub-{settings.name}"
        log_groups = self._log_groups(settings, f"/aws/rds/cluster/{self.cluster_identifier}")
        engine = rds.DatabaseClusterEngine.aurora_mysql(version=AURORA_VERSION)
        self.parameter_group = rds.ParameterGroup(
            self,
            "ClusterParameters",
            engine=engine,
            description="wxhub: TLS only, slow query log",
            parameters=CLUSTER_PARAMETERS,
        )
        self.instance_parameter_group = rds.ParameterGroup(
            self,
            "InstanceParameters",
            engine=engine,
            description="wxhub: LOAD DATA LOCAL INFILE for the loader",
            parameters=INSTANCE_PARAMETERS,
        )
        serverless = settings.db_aurora_capacity == "serverless-v2"
        self.cluster = rds.DatabaseCluster(
            self,
            "Cluster",
            cluster_identifier=self.cluster_identifier,
            engine=engine,
            writer=self._instance("Writer", serverless=serverless),
            readers=[
                # The first reader is the failover target: it scales with the writer (Serverless
                # v2) so that a failover lands on an instance of the writer's size.
                self._instance(f"Reader{number}", serverless=serverless, failover=number == 1)
                for number in range(1, settings.db_min_readers + 1)
            ],
            serverless_v2_min_capacity=settings.db_serverless_min_acu if serverless else None,
            serverless_v2_max_capacity=settings.db_serverless_max_acu if serverless else None,
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[self.security_group],
            port=MYSQL_PORT,
            default_database_name=DATABASE_NAME,
            credentials=rds.Credentials.from_secret(credentials_secret),
            parameter_group=self.parameter_group,
            storage_encrypted=True,
            deletion_protection=settings.deletion_protection,
            backup=rds.BackupProps(
                retention=Duration.days(settings.db_backup_retention_days),
                preferred_window="03:00-03:30",
            ),
            preferred_maintenance_window="sun:04:00-sun:04:30",
            cloudwatch_logs_exports=list(EXPORTED_LOGS),
            monitoring_interval=Duration.seconds(60),
            copy_tags_to_snapshot=True,
            removal_policy=RemovalPolicy.SNAPSHOT,
        )
        self._attach_secrets(self.cluster, settings, log_groups)
        # What the API task gets as DB_READ_HOST: not a secret, an address.
        self.read_host: str | None = self.cluster.cluster_read_endpoint.hostname
        self.reader_scaling: appscaling.ScalableTarget | None = None
        if settings.scales_readers:
            self.reader_scaling = self._scale_readers()

    def _instance(
        self, construct_id: str, *, serverless: bool, failover: bool = False
    ) -> rds.IClusterInstance:
        """One instance of the cluster, with the loader's parameters, never public."""
        if serverless:
            return rds.ClusterInstance.serverless_v2(
                construct_id,
                scale_with_writer=failover,
                parameter_group=self.instance_parameter_group,
                auto_minor_version_upgrade=True,
                publicly_accessible=False,
            )
        return rds.ClusterInstance.provisioned(
            construct_id,
            instance_type=ec2.InstanceType(self._settings.db_instance_class.removeprefix("db.")),
            parameter_group=self.instance_parameter_group,
            auto_minor_version_upgrade=True,
            publicly_accessible=False,
        )

    def _scale_readers(self) -> appscaling.ScalableTarget:
        """Between db_min_readers and db_max_readers Aurora replicas, on their average CPU.

        Aurora Auto Scaling removes only the replicas it added, never the template's.
        """
        target = appscaling.ScalableTarget(
            self,
            "ReaderScaling",
            service_namespace=appscaling.ServiceNamespace.RDS,
            scalable_dimension=READ_REPLICA_COUNT,
            resource_id=f"cluster:{self.cluster.cluster_identifier}",
            min_capacity=self._settings.db_min_readers,
            max_capacity=self._settings.db_max_readers,
        )
        # Registered once the template's readers exist: a cluster still creating them is not
        # in the "available" state Aurora Auto Scaling needs.
        target.node.add_dependency(self.cluster)
        target.scale_to_track_metric(
            "ReaderCpu",
            target_value=self._settings.db_reader_cpu_target_percent,
            predefined_metric=appscaling.PredefinedMetric.RDS_READER_AVERAGE_CPU_UTILIZATION,
            scale_out_cooldown=READER_SCALE_OUT_COOLDOWN,
            scale_in_cooldown=READER_SCALE_IN_COOLDOWN,
        )
        return target

    def watch(self, topic: sns.ITopic) -> list[cloudwatch.Alarm]:
        """Alarms on the cluster, sent to ``topic`` with their recoveries: the writer's CPU,
        the readers' lag, and (Serverless v2) a writer at its capacity ceiling.

        Monitoring.watch_database covers the RDS instance; these are the cluster's own
        counterparts (Aurora's storage grows by itself, so no free-storage alarm).
        """
        writer = {"DBClusterIdentifier": self.cluster_identifier, "Role": "WRITER"}
        action = cloudwatch_actions.SnsAction(topic)
        alarms = [
            self._alarm(
                "DatabaseCpu",
                "CPUUtilization",
                writer,
                CPU_PERCENT_THRESHOLD,
                f"database writer CPU above {CPU_PERCENT_THRESHOLD}% for 15 minutes",
                action=action,
            ),
            self._alarm(
                "DatabaseReplicaLag",
                "AuroraReplicaLagMaximum",
                writer,
                REPLICA_LAG_MS_THRESHOLD,
                "an Aurora reader more than a minute behind the writer for 15 minutes",
                action=action,
                statistic="Maximum",
                missing=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        ]
        if self._settings.db_aurora_capacity == "serverless-v2":
            alarms.append(
                self._alarm(
                    "DatabaseCapacity",
                    "ACUUtilization",
                    writer,
                    ACU_PERCENT_THRESHOLD,
                    f"database writer above {ACU_PERCENT_THRESHOLD}% of its maximum capacity "
                    "(db_serverless_max_acu) for 15 minutes",
                    action=action,
                )
            )
        return alarms

    def _alarm(
        self,
        construct_id: str,
        metric_name: str,
        dimensions: dict[str, str],
        threshold: float,
        description: str,
        *,
        action: cloudwatch.IAlarmAction,
        statistic: str = "Average",
        missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.BREACHING,
    ) -> cloudwatch.Alarm:
        metric = cloudwatch.Metric(
            namespace="AWS/RDS",
            metric_name=metric_name,
            dimensions_map=dimensions,
            statistic=statistic,
            period=Duration.minutes(5),
        )
        return notifying_alarm(
            self,
            construct_id,
            metric,
            action=action,
            description=description,
            threshold=threshold,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=3,
            missing_data=missing,
        )
