"""Checks for .ci/security that the tools cannot make themselves.

    python .ci/security_findings.py audit-ignores .pip-audit-ignore
        Validates the ignore list of pip-audit (every entry: an advisory id, a review date that
        has not passed, a reason) and prints the matching ``--ignore-vuln ID`` arguments.

    python .ci/security_findings.py secrets SCANNED_BASELINE .secrets.reasons
        Given a fresh ``detect-secrets scan --baseline`` of a copy of .secrets.baseline, fails
        unless every finding is audited as a false positive (``"is_secret": false``) and has its
        reason in .secrets.reasons.

Exit status 0 when all is well, 1 with one line per problem on stderr otherwise.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path

ADVISORY_ID = re.compile(r"(PYSEC|GHSA|CVE|OSV)-[A-Za-z0-9-]+")
HASH_PREFIX_LENGTH = 12


def audit_ignores(path: Path, today: dt.date) -> tuple[list[str], list[str]]:
    """(pip-audit arguments, problems) for the ignore list at ``path`` (absent: none)."""
    if not path.exists():
        return [], []
    arguments: list[str] = []
    problems: list[str] = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{number}"
        fields = line.split(maxsplit=2)
        if len(fields) < 3 or not ADVISORY_ID.fullmatch(fields[0]):
            problems.append(f"{where}: expected 'ADVISORY-ID  YYYY-MM-DD  reason', got {line!r}")
            continue
        advisory, review_by, _reason = fields
        try:
            review_date = dt.date.fromisoformat(review_by)
        except ValueError:
            problems.append(f"{where}: review date {review_by!r} is not YYYY-MM-DD")
            continue
        if review_date < today:
            problems.append(
                f"{where}: {advisory} was to be reviewed by {review_by}: check whether a fix "
                "exists now (then raise the minimum version and delete the line) or set a new date"
            )
            continue
        arguments += ["--ignore-vuln", advisory]
    return arguments, problems


def read_reasons(path: Path) -> dict[tuple[str, str], str]:
    """{(file, hash prefix): reason} from .secrets.reasons."""
    reasons: dict[tuple[str, str], str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(maxsplit=2)
        if len(fields) == 3:
            filename, hash_prefix, reason = fields
            reasons[(filename, hash_prefix)] = reason
    return reasons


def secret_problems(scanned: dict[str, object], reasons: dict[tuple[str, str], str]) -> list[str]:
    """One line per finding that is not an audited false positive with its reason."""
    problems: list[str] = []
    results = scanned.get("results")
    if not isinstance(results, dict):
        return ["the scanned baseline has no 'results' object"]
    for filename, findings in sorted(results.items()):
        for finding in findings:
            where = f"{filename}:{finding.get('line_number', '?')}: {finding['type']}"
            key = (filename, str(finding["hashed_secret"])[:HASH_PREFIX_LENGTH])
            label = finding.get("is_secret")
            if label is True:
                problems.append(
                    f"{where}: audited as a REAL secret: remove it (and rotate it), then run "
                    "`detect-secrets scan --baseline .secrets.baseline`"
                )
            elif label is None:
                problems.append(
                    f"{where}: a new possible secret. If it is one, remove it and rotate it. If "
                    "not: `detect-secrets scan --baseline .secrets.baseline`, mark it false with "
                    "`detect-secrets audit .secrets.baseline`, and add "
                    f"'{key[0]}  {key[1]}  <why>' to .secrets.reasons"
                )
            elif key not in reasons:
                problems.append(
                    f"{where}: marked false in .secrets.baseline but has no reason: add "
                    f"'{key[0]}  {key[1]}  <why>' to .secrets.reasons"
                )
    return problems


def main(argv: list[str]) -> int:
    """Dispatch on the first argument; see the module docstring."""
    if len(argv) == 2 and argv[0] == "audit-ignores":
        arguments, problems = audit_ignores(Path(argv[1]), dt.date.today())
        print(" ".join(arguments))
    elif len(argv) == 3 and argv[0] == "secrets":
        scanned = json.loads(Path(argv[1]).read_text())
        problems = secret_problems(scanned, read_reasons(Path(argv[2])))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for problem in problems:
        print(f"security: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
