"""A small reader for the Dockerfile, enough for the tests to check what the image promises.

Docker has no parser we can import here (no engine, no BuildKit), and the checks need only the
instructions of each stage with their arguments: comments dropped, continuation lines joined,
and the ``FROM`` image with the ``ARG`` defaults before it substituted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    """One instruction, e.g. ``Instruction("CMD", '["python", "-m", "wxhub.api"]')``."""

    keyword: str
    arguments: str

    def exec_form(self) -> list[str]:
        """The JSON array of an exec-form CMD/ENTRYPOINT/HEALTHCHECK ... CMD."""
        start = self.arguments.index("[")
        value = json.loads(self.arguments[start:])
        assert isinstance(value, list)
        return [str(part) for part in value]


@dataclass
class Stage:
    """The instructions from one ``FROM`` to the next."""

    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def every(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.every(keyword)
        assert found, f"stage {self.name or self.image} has no {keyword}"
        return found[-1]

    def env(self) -> dict[str, str]:
        """The stage's ENV settings (``KEY=value`` form only, the one this project uses)."""
        settings: dict[str, str] = {}
        for instruction in self.every("ENV"):
            for key, value in re.findall(r'(\w+)=("[^"]*"|\S+)', instruction.arguments):
                settings[key] = value.strip('"')
        return settings


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current.strip():
            lines.append(current.strip())
        current = ""
    return lines


def parse(path: Path) -> list[Stage]:
    """The Dockerfile's stages in order; the last one is the image that ships."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in _logical_lines(path.read_text()):
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        arguments = arguments.strip()
        if keyword == "ARG" and not stages:
            name, _, default = arguments.partition("=")
            global_args[name] = default
        elif keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+as\s+(\S+))?", arguments, flags=re.IGNORECASE)
            assert match, f"FROM {arguments!r}: expected 'FROM image [AS name]'"
            image, name = match.group(1), match.group(2)
            for arg, value in global_args.items():
                image = image.replace("${" + arg + "}", value).replace("$" + arg, value)
            stages.append(Stage(image=image, name=name))
        elif stages:
            stages[-1].instructions.append(Instruction(keyword, arguments))
    return stages
