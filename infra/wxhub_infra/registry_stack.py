"""``Wxhub-<env>-registry``: the ECR repository alone, so the first image exists before the
services that run it."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ecr as ecr
from constructs import Construct

from wxhub_infra.settings import EnvironmentSettings

# Every deploy pushes one image tagged with its commit; this many stay available to roll
# back to (docs/deployment.md).
IMAGES_KEPT = 50
UNTAGGED_IMAGE_DAYS = 7


class RegistryStack(Stack):
    """The image repository of one environment.

    Tags are immutable: an image is tagged with the git commit it was built from, so a tag
    always names the same bytes, a rollback to an old tag runs exactly what ran before, and a
    scan result stays true of the tag it was made for. (A deploy never re-pushes a tag; the
    deploy flow retags nothing.)
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: EnvironmentSettings, **kwargs: Any
    ):
        super().__init__(scope, construct_id, **kwargs)
        self.repository = ecr.Repository(
            self,
            "Repository",
            repository_name=settings.repository_name,
            image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            encryption=ecr.RepositoryEncryption.KMS,
            # The images are what a rollback needs: they outlive the stack.
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.repository.add_lifecycle_rule(
            description="untagged layers left by interrupted pushes",
            tag_status=ecr.TagStatus.UNTAGGED,
            max_image_age=Duration.days(UNTAGGED_IMAGE_DAYS),
        )
        self.repository.add_lifecycle_rule(
            description=f"keep the newest {IMAGES_KEPT} images to roll back to",
            tag_status=ecr.TagStatus.ANY,
            max_image_count=IMAGES_KEPT,
        )
        CfnOutput(self, "EcrRepositoryUri", value=self.repository.repository_uri)
        CfnOutput(self, "EcrRepositoryName", value=self.repository.repository_name)
