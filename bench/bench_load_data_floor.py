"""The floor for MariaDB/MySQL: the server's own LOAD DATA LOCAL INFILE of every row.

Writes each station's rows, already clean, to a TSV file, then times LOAD DATA of all of them
into a bare table shaped like weather_observations (same key, types and CHECKs), once with a
commit per file (as wxhub commits) and once in a single transaction. Whatever the job adds on
top of this (parsing, counting, the ledger, the aggregation) is wxhub's own cost.

    python bench/bench_load_data_floor.py [--mysql-url mysql+pymysql://root@127.0.0.1:3306/]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path

import pymysql
from sqlalchemy.engine import make_url

from wxhub.ingestion.formats.wx import parse
from wxhub.ingestion.rows import tsv_rows

DATA = Path(__file__).resolve().parent.parent / "data" / "wx_data"
TABLE = """CREATE TABLE obs (
  station_id VARCHAR(20) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  obs_date DATE NOT NULL,
  max_temp_tenths_c SMALLINT, min_temp_tenths_c SMALLINT, precipitation_tenths_mm SMALLINT,
  PRIMARY KEY (station_id, obs_date),
  CHECK (max_temp_tenths_c BETWEEN -900 AND 600),
  CHECK (min_temp_tenths_c BETWEEN -900 AND 600),
  CHECK (precipitation_tenths_mm BETWEEN 0 AND 20000)
) ENGINE=InnoDB"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--mysql-url",
        default=os.environ.get("WXHUB_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/"),
    )
    url = make_url(parser.parse_args().mysql_url)
    workdir = Path(tempfile.mkdtemp(prefix="wxhub-floor-"))
    files = []
    for path in sorted(DATA.glob("*.txt")):
        station_id = path.name.removesuffix(".txt")
        tsv = workdir / f"{station_id}.tsv"
        tsv.write_bytes(tsv_rows(parse(path.read_bytes(), station_id).body) + b"\n")
        files.append((station_id, tsv))

    database = f"wxhub_floor_{uuid.uuid4().hex[:8]}"
    conn = pymysql.connect(
        host=url.host,
        port=url.port or 3306,
        user=url.username,
        password=url.password or "",
        local_infile=True,
        autocommit=False,
    )
    cursor = conn.cursor()
    try:
        for label, commit_each in (("a commit per file", True), ("one transaction", False)):
            cursor.execute(f"DROP DATABASE IF EXISTS {database}")
            cursor.execute(f"CREATE DATABASE {database}")
            cursor.execute(f"USE {database}")
            cursor.execute(TABLE)
            started = time.perf_counter()
            for station_id, tsv in files:
                cursor.execute(
                    f"LOAD DATA LOCAL INFILE '{tsv}' INTO TABLE obs CHARACTER SET ascii "
                    "FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n' "
                    "(obs_date, max_temp_tenths_c, min_temp_tenths_c, precipitation_tenths_mm) "
                    "SET station_id = %s",
                    (station_id,),
                )
                if commit_each:
                    conn.commit()
            conn.commit()
            print(f"LOAD DATA of every row, {label}: {time.perf_counter() - started:.2f} s")
    finally:
        cursor.execute(f"DROP DATABASE IF EXISTS {database}")
        conn.close()
        for _, tsv in files:
            tsv.unlink()
        workdir.rmdir()


if __name__ == "__main__":
    main()
