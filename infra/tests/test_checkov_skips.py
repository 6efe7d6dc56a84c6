"""The checkov suppression file: every skipped check says why."""

from __future__ import annotations

import re
from pathlib import Path

import yaml  # type: ignore[import-untyped]  # PyYAML ships no hints

SKIPS = Path(__file__).parent.parent / "checkov-skips.yaml"


def test_every_skipped_checkov_check_has_an_id_and_a_reason() -> None:
    skips = yaml.safe_load(SKIPS.read_text())["skips"]
    assert skips
    for skip in skips:
        assert set(skip) == {"id", "reason"}, skip
        assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), skip
        assert len(skip["reason"].split()) >= 10, skip


def test_no_check_is_skipped_twice() -> None:
    ids = [skip["id"] for skip in yaml.safe_load(SKIPS.read_text())["skips"]]
    assert len(ids) == len(set(ids))
