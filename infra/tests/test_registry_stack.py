"""``Wxhub-<env>-registry``: the ECR repository and its two outputs."""

from __future__ import annotations

import json

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from tests.conftest import dev, resources
from wxhub_infra.registry_stack import IMAGES_KEPT, RegistryStack


@pytest.fixture(scope="module")
def registry() -> Template:
    return Template.from_stack(RegistryStack(App(), "Wxhub-dev-registry", settings=dev()))


def test_the_repository_is_named_for_the_environment_and_scans_every_push(
    registry: Template,
) -> None:
    registry.has_resource_properties(
        "AWS::ECR::Repository",
        {
            "RepositoryName": "wxhub-dev",
            "ImageScanningConfiguration": {"ScanOnPush": True},
        },
    )


def test_tags_are_immutable_so_a_commit_tag_always_names_the_same_image(
    registry: Template,
) -> None:
    registry.has_resource_properties("AWS::ECR::Repository", {"ImageTagMutability": "IMMUTABLE"})


def test_images_are_encrypted_with_kms(registry: Template) -> None:
    registry.has_resource_properties(
        "AWS::ECR::Repository", {"EncryptionConfiguration": {"EncryptionType": "KMS"}}
    )


def test_the_lifecycle_keeps_the_newest_images_and_drops_untagged_ones(
    registry: Template,
) -> None:
    (repository,) = resources(registry, "AWS::ECR::Repository").values()
    policy = json.loads(repository["Properties"]["LifecyclePolicy"]["LifecyclePolicyText"])
    selections = [rule["selection"] for rule in policy["rules"]]
    assert {
        "tagStatus": "untagged",
        "countType": "sinceImagePushed",
        "countNumber": 7,
        "countUnit": "days",
    } in selections
    assert {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": IMAGES_KEPT} in (
        selections
    )


def test_the_repository_outlives_the_stack(registry: Template) -> None:
    (repository,) = resources(registry, "AWS::ECR::Repository").values()
    assert repository["DeletionPolicy"] == "Retain"


def test_the_outputs_are_the_repository_uri_and_name(registry: Template) -> None:
    outputs = registry.to_json()["Outputs"]
    assert set(outputs) == {"EcrRepositoryUri", "EcrRepositoryName"}
    assert all("Export" not in output for output in outputs.values())


def test_the_registry_stack_holds_nothing_but_the_repository(registry: Template) -> None:
    assert {r["Type"] for r in registry.to_json()["Resources"].values()} == {"AWS::ECR::Repository"}
