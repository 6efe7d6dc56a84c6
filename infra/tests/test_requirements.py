"""infra/requirements.txt: the aws-cdk-lib floor is a release that has what the app uses."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_rds as rds

REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements.txt"
# The oldest aws-cdk-lib these tests pass on (2.257.0 fails: no MysqlEngineVersion.VER_8_4_9).
# Raise it when the app starts using something newer: run the tests on older releases to find
# the first that passes.
OLDEST_WORKING = (2, 258, 0)


def _floor() -> tuple[int, ...]:
    (line,) = [
        line for line in REQUIREMENTS.read_text().splitlines() if line.startswith("aws-cdk-lib")
    ]
    match = re.search(r">=([\d.]+)", line)
    assert match, line
    numbers = tuple(int(part) for part in match.group(1).split("."))
    return numbers + (0,) * (3 - len(numbers))


def test_the_aws_cdk_lib_floor_is_a_release_with_every_construct_the_app_uses() -> None:
    assert _floor() >= OLDEST_WORKING


def test_the_installed_aws_cdk_lib_is_within_the_requirements() -> None:
    installed = tuple(int(part) for part in version("aws-cdk-lib").split(".")[:3])
    assert installed >= _floor()


def test_the_newest_members_the_app_uses_exist_in_the_installed_release() -> None:
    # The ones that set the floor; a missing one fails here with its name.
    assert rds.MysqlEngineVersion.VER_8_4_9
    assert ecs.AvailabilityZoneRebalancing.ENABLED
    assert ecs.ContainerInsights.ENABLED
