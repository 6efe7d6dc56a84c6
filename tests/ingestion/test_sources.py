"""SOURCE arguments resolve to station files; a file that cannot be read fails when read."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DATA_DIR, noaa_line, write_station
from wxhub.ingestion.sources import (
    LocalFile,
    SourceError,
    resolve_sources,
    select_shard,
    shard_of,
    station_id_for,
)

LINES = [noaa_line("20000101", 10, -20, 0), noaa_line("20000102", 20, -10, 5)]
CONTENT = ("\n".join(LINES) + "\n").encode()


def station_ids(specs: list[str | Path]) -> list[str]:
    return [f.station_id for f in resolve_sources([str(s) for s in specs])]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    write_station(data, "USC00000003", LINES)
    write_station(data, "USC00000001", LINES)
    write_station(data, "USC00000002", LINES, gz=True)
    (data / "notes.json").write_text("not a station\n")
    (data / "readme.txt").write_text("NOAA's notes beside the data\n")
    (data / "README").write_text("hello\n")
    (data / "bad name.txt").write_text("x\n")
    (data / "USC00000004.TXT").write_text("x\n")
    (data / "USC00000005.txt.bz2").write_text("x\n")
    write_station(data / "nested", "USC00000009", LINES)
    (data / "folder.txt").mkdir()
    return data


def test_folder_gives_its_station_files_sorted(folder: Path) -> None:
    files = resolve_sources([str(folder)])

    assert [f.station_id for f in files] == ["USC00000001", "USC00000002", "USC00000003"]
    assert [Path(f.uri).name for f in files] == [
        "USC00000001.txt",
        "USC00000002.txt.gz",
        "USC00000003.txt",
    ]
    assert all(Path(f.uri).is_absolute() for f in files)


def test_empty_folder_gives_no_files(tmp_path: Path) -> None:
    assert resolve_sources([str(tmp_path)]) == []


def test_single_file_gives_that_file(folder: Path) -> None:
    files = resolve_sources([str(folder / "USC00000003.txt")])

    assert len(files) == 1
    assert files[0].station_id == "USC00000003"
    assert files[0].uri == str((folder / "USC00000003.txt").resolve())
    assert files[0].read_bytes() == CONTENT


def test_single_gzip_file_gives_its_station_id_without_both_suffixes(folder: Path) -> None:
    assert station_ids([folder / "USC00000002.txt.gz"]) == ["USC00000002"]


def test_relative_path_resolves_to_an_absolute_uri(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(folder.parent)

    files = resolve_sources(["data/USC00000001.txt"])

    assert files[0].uri == str(folder / "USC00000001.txt")


def test_glob_gives_matching_station_files_sorted(folder: Path) -> None:
    assert station_ids([f"{folder}/*.txt"]) == ["USC00000001", "USC00000003"]
    assert station_ids([f"{folder}/USC*"]) == ["USC00000001", "USC00000002", "USC00000003"]


def test_glob_skips_folders_and_non_station_files(folder: Path) -> None:
    assert station_ids([f"{folder}/*"]) == ["USC00000001", "USC00000002", "USC00000003"]


def test_double_star_glob_descends_into_sub_folders(folder: Path) -> None:
    assert station_ids([f"{folder}/**/*.txt"]) == ["USC00000001", "USC00000003", "USC00000009"]


@pytest.mark.parametrize(
    "make_spec",
    [
        lambda root: str(root / "missing"),
        lambda root: str(root / "missing.txt"),
        lambda root: str(root / "data" / "USC99999999.txt"),
    ],
    ids=["folder", "file", "file-in-folder"],
)
def test_nonexistent_path_raises_source_error_naming_it(folder: Path, make_spec) -> None:
    spec = make_spec(folder.parent)

    with pytest.raises(SourceError, match="no such file or folder") as excinfo:
        resolve_sources([spec])

    assert spec in str(excinfo.value)


@pytest.mark.parametrize("pattern", ["*.dat", "**/*.nothing", "USC?????????.txt.xz"])
def test_glob_that_matches_nothing_raises_source_error_naming_it(
    folder: Path, pattern: str
) -> None:
    spec = f"{folder}/{pattern}"

    with pytest.raises(SourceError, match="matches no station file") as excinfo:
        resolve_sources([spec])

    assert spec in str(excinfo.value)


@pytest.mark.parametrize(
    "name", ["notes.json", "README", "bad name.txt", "USC00000004.TXT", "USC00000005.txt.bz2"]
)
def test_explicitly_named_non_station_file_raises_source_error_naming_it(
    folder: Path, name: str
) -> None:
    spec = str(folder / name)

    with pytest.raises(SourceError, match="not a station file") as excinfo:
        resolve_sources([spec])

    assert spec in str(excinfo.value)


@pytest.mark.parametrize(
    "name", ["caf\u00e9.txt", "a.b.txt", "x;drop.txt", "A" * 21 + ".txt", ".txt", "st*n.txt"]
)
def test_station_file_name_with_characters_outside_the_id_alphabet_is_refused(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    path.write_bytes(CONTENT)

    with pytest.raises(SourceError, match="not a station file"):
        resolve_sources([str(path)])
    assert resolve_sources([str(tmp_path)]) == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("USC00110072.txt", "USC00110072"),
        ("USC00110072.txt.gz", "USC00110072"),
        ("a-b_C9.txt", "a-b_C9"),
        ("A" * 20 + ".txt", "A" * 20),
        ("USC00110072.gz", None),
        ("USC00110072", None),
        ("USC00110072.txt.gz.bak", None),
    ],
)
def test_station_id_is_the_file_name_without_its_suffix(name: str, expected: str | None) -> None:
    assert station_id_for(name) == expected


@pytest.mark.parametrize(
    "spec", ["gs://bucket/prefix/", "https://example.com/a.txt", "data/ftp://x/USC1.txt"]
)
def test_a_scheme_other_than_s3_raises_source_error_naming_it(spec: str) -> None:
    with pytest.raises(SourceError, match="not supported") as excinfo:
        resolve_sources([spec])

    assert spec in str(excinfo.value)


def test_source_error_is_a_value_error() -> None:
    assert issubclass(SourceError, ValueError)


def test_bad_argument_fails_even_after_good_ones(folder: Path) -> None:
    with pytest.raises(SourceError, match="nope"):
        resolve_sources([str(folder), str(folder / "nope")])


def test_file_named_by_its_folder_and_by_itself_is_listed_once(folder: Path) -> None:
    files = resolve_sources([str(folder), str(folder / "USC00000001.txt")])

    assert [f.station_id for f in files] == ["USC00000001", "USC00000002", "USC00000003"]


def test_file_named_twice_in_different_spellings_is_listed_once(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(folder)
    specs = [
        "USC00000001.txt",
        str(folder / "USC00000001.txt"),
        f"{folder}/../data/./USC00000001.txt",
        f"{folder}/USC0000000[1].txt",
    ]

    assert station_ids(specs) == ["USC00000001"]


def test_argument_order_is_kept(folder: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    write_station(other, "AAA", LINES)
    write_station(other, "ZZZ", LINES)

    specs = [
        folder / "USC00000003.txt",
        other,
        folder / "USC00000001.txt",
        f"{folder}/*.gz",
    ]

    assert station_ids(specs) == ["USC00000003", "AAA", "ZZZ", "USC00000001", "USC00000002"]


def test_no_arguments_give_no_files() -> None:
    assert resolve_sources([]) == []


def test_read_bytes_returns_plain_content(folder: Path) -> None:
    [source] = resolve_sources([str(folder / "USC00000001.txt")])

    assert source.read_bytes() == CONTENT


def test_read_bytes_decompresses_gzip(folder: Path) -> None:
    [source] = resolve_sources([str(folder / "USC00000002.txt.gz")])

    assert source.read_bytes() == CONTENT


def test_read_bytes_of_a_gzip_file_with_crlf_and_bom_keeps_them(tmp_path: Path) -> None:
    raw = b"\xef\xbb\xbf" + CONTENT.replace(b"\n", b"\r\n")
    path = write_station(tmp_path, "X", [], gz=True, raw=raw)

    assert LocalFile(path, "X").read_bytes() == raw


@pytest.mark.parametrize(
    "raw",
    [
        b"this is not gzip at all",
        gzip.compress(CONTENT)[:20],  # truncated
        gzip.compress(CONTENT)[:-8] + b"\x00" * 8,  # wrong CRC and length
        b"\x1f\x8b\x08\x00" + b"\xff" * 40,  # a gzip header, then garbage
    ],
    ids=["not-gzip", "truncated", "bad-crc", "bad-deflate"],
)
def test_corrupt_gzip_raises_os_error_with_a_clear_message(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "USC00000001.txt.gz"
    path.write_bytes(raw)
    [source] = resolve_sources([str(tmp_path)])  # listing does not read

    with pytest.raises(OSError, match="not a valid gzip file"):
        source.read_bytes()


def test_file_deleted_after_listing_raises_os_error_when_read(folder: Path) -> None:
    files = resolve_sources([str(folder)])
    os.remove(folder / "USC00000001.txt")
    os.remove(folder / "USC00000002.txt.gz")

    with pytest.raises(FileNotFoundError):
        files[0].read_bytes()
    with pytest.raises(FileNotFoundError):
        files[1].read_bytes()
    assert files[2].read_bytes() == CONTENT


def test_folder_named_like_a_station_file_fails_when_read_not_when_listed(tmp_path: Path) -> None:
    path = tmp_path / "X.txt"
    path.mkdir()
    source = LocalFile(path, "X")

    assert source.station_id == "X"
    with pytest.raises(OSError, match=r"X\.txt"):
        source.read_bytes()


def test_folder_named_like_a_station_file_is_not_listed_as_a_file(tmp_path: Path) -> None:
    (tmp_path / "X.txt").mkdir()

    assert resolve_sources([str(tmp_path)]) == []


def test_glob_that_matches_only_folders_and_other_files_raises_source_error(tmp_path: Path) -> None:
    (tmp_path / "sub.txt").mkdir()
    (tmp_path / "notes.json").write_text("x")

    with pytest.raises(SourceError, match="matches no station file"):
        resolve_sources([f"{tmp_path}/*"])


# --- --shard K/N: each task a stable share of the files ----------------------------------------


@pytest.mark.parametrize("shards", [1, 2, 3, 4, 7])
def test_the_shards_are_disjoint_and_together_take_every_file(shards: int) -> None:
    files = resolve_sources([str(DATA_DIR)])

    shares = [select_shard(files, k, shards) for k in range(1, shards + 1)]

    uris = [f.uri for share in shares for f in share]
    assert sorted(uris) == sorted(f.uri for f in files)  # every file, none twice
    if shards > 1:
        assert all(len(share) < len(files) for share in shares)  # the work is really split


def test_a_station_lands_on_the_same_shard_whatever_the_order_or_the_listing() -> None:
    files = resolve_sources([str(DATA_DIR)])
    shuffled = files[7::2] + files[::-2] + files[1:7:2]
    some = files[::3]

    for k in (1, 2, 3):
        share = {f.station_id for f in select_shard(files, k, 3)}
        assert {f.station_id for f in select_shard(shuffled, k, 3)} == share
        assert {f.station_id for f in select_shard(some, k, 3)} == share & {
            f.station_id for f in some
        }


def test_every_file_of_a_station_goes_to_the_same_shard(tmp_path: Path) -> None:
    write_station(tmp_path / "a", "USC00110072", LINES)
    write_station(tmp_path / "b", "USC00110072", LINES, gz=True)
    files = resolve_sources([str(tmp_path / "a"), str(tmp_path / "b")])

    shares = [len(select_shard(files, k, 4)) for k in range(1, 5)]

    assert sorted(shares) == [0, 0, 0, 2]


def test_the_shard_of_a_station_is_the_same_in_every_process() -> None:
    # CRC-32 of the id, not Python's hash() (salted per process): fixed values.
    assert [shard_of("USC00110072", n) for n in (2, 3, 4, 7)] == [2, 3, 4, 6]
    assert [shard_of("USC00257715", n) for n in (2, 3, 4, 7)] == [1, 3, 1, 3]
    script = "from wxhub.ingestion.sources import shard_of; print(shard_of('USC00339312', 7))"
    for seed in ("1", "2"):
        result = subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        )
        assert result.stdout.strip() == str(shard_of("USC00339312", 7))


@pytest.mark.parametrize(("shard", "shards"), [(0, 2), (3, 2), (-1, 2), (1, 0)])
def test_a_shard_outside_one_to_n_is_refused(shard: int, shards: int) -> None:
    with pytest.raises(ValueError, match="not in"):
        select_shard([], shard, shards)
