"""TLS to MySQL: the mode each setting gives, and a real server that requires TLS.

The server (tests/mariadb_server.py) has a certificate signed by a CA the test made and
``require_secure_transport=ON``: the API and the job connect to it verifying that
certificate, a plain connection is refused, and a CA that did not sign it fails at once
with one line naming the setting and the server.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Callable
from pathlib import Path

import pymysql
import pytest
from click.testing import Result
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from tests.conftest import noaa_line, write_station
from tests.mariadb_server import Certificates, MariadbServer, make_certificates
from wxhub.api.app import create_app
from wxhub.config import ConfigError, load_settings
from wxhub.db.engine import make_engine
from wxhub.db.tls import DEFAULT_CA_FILE, RDS_CA_BUNDLE_URL, DbTls, tls_failure

RDS_HOST = "wxhub-prod.abcdefghijkl.eu-west-1.rds.amazonaws.com"
RDS_URL = f"mysql+pymysql://wxhub_api@{RDS_HOST}:3306/wxhub"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


# --- which mode the settings give -----------------------------------------------------------------


def test_an_rds_host_is_verified_by_default(certificates: Certificates) -> None:
    settings = load_settings({"DATABASE_URL": RDS_URL, "WXHUB_DB_CA_FILE": str(certificates.ca)})

    assert settings.db_tls.mode == "verify"
    assert settings.db_tls.ca_file == str(certificates.ca)


def test_db_host_parts_of_an_rds_endpoint_are_verified_by_default(
    certificates: Certificates,
) -> None:
    env = {"DB_HOST": RDS_HOST, "DB_USER": "wxhub_job", "WXHUB_DB_CA_FILE": str(certificates.ca)}

    assert load_settings(env).db_tls.mode == "verify"


def test_another_host_has_no_tls_by_default() -> None:
    settings = load_settings({"DATABASE_URL": "mysql+pymysql://root@127.0.0.1:3306/wxhub"})

    assert settings.db_tls.mode == "off"
    assert settings.db_tls.connect_args() == {"ssl_disabled": True}


def test_sqlite_has_no_tls() -> None:
    assert load_settings({}).db_tls.mode == "off"


@pytest.mark.parametrize("mode", ["off", "require", "verify"])
def test_the_setting_chooses_the_mode_for_any_host(mode: str, certificates: Certificates) -> None:
    env = {"DATABASE_URL": RDS_URL, "WXHUB_DB_TLS": mode, "WXHUB_DB_CA_FILE": str(certificates.ca)}

    assert load_settings(env).db_tls.mode == mode


def test_the_urls_own_ssl_arguments_win_over_the_setting() -> None:
    url = f"{RDS_URL}?ssl_ca=/etc/my-ca.pem&ssl_check_hostname=true"

    tls = load_settings({"DATABASE_URL": url, "WXHUB_DB_TLS": "off"}).db_tls

    assert tls.mode == "url"
    assert tls.connect_args() == {}  # the URL's arguments reach the driver untouched
    assert "ssl_ca" in tls.decided_by


def test_an_unknown_mode_is_a_config_error_naming_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"WXHUB_DB_TLS='strict' is not one of off, require, "):
        load_settings({"DATABASE_URL": RDS_URL, "WXHUB_DB_TLS": "strict"})


def test_a_missing_ca_bundle_is_a_config_error_saying_where_to_get_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"

    with pytest.raises(ConfigError) as error:
        load_settings({"DATABASE_URL": RDS_URL, "WXHUB_DB_CA_FILE": str(missing)})

    message = str(error.value)
    assert f"WXHUB_DB_CA_FILE='{missing}' cannot be read" in message
    assert RDS_CA_BUNDLE_URL in message
    assert "\n" not in message


def test_without_the_setting_the_image_bundle_is_the_ca() -> None:
    assert DbTls("verify").ca_file == DEFAULT_CA_FILE == "/etc/ssl/certs/rds-global-bundle.pem"


def test_mysqls_refusal_of_a_plain_connection_says_which_setting_to_change() -> None:
    refusal = pymysql.err.OperationalError(3159, "insecure transport are prohibited")
    url = make_url("mysql+pymysql://wxhub_api@db.example:3306/x")

    failure = tls_failure(refusal, DbTls("off", decided_by="WXHUB_DB_TLS"), url)

    assert failure is not None
    assert "db.example:3306 refuses connections without TLS" in str(failure)
    assert "set WXHUB_DB_TLS=verify" in str(failure)


def test_a_certificate_for_another_name_says_to_connect_by_its_name() -> None:
    mismatch = ssl.SSLCertVerificationError(1, "certificate verify failed")
    mismatch.verify_message = "Hostname mismatch, certificate is not valid for '10.0.0.5'."
    error = pymysql.err.OperationalError(2003, "Can't connect to MySQL server")
    error.original_exception = mismatch  # as PyMySQL keeps it
    url = make_url("mysql+pymysql://wxhub_api@10.0.0.5:3306/x")

    failure = tls_failure(error, DbTls("verify"), url)

    assert failure is not None
    assert "10.0.0.5:3306 presented a TLS certificate for another name" in str(failure)
    assert "connect by the name the certificate carries" in str(failure)


def test_other_connection_errors_are_not_tls_failures() -> None:
    refused = pymysql.err.OperationalError(2003, "Can't connect (Connection refused)")
    url = make_url("mysql+pymysql://wxhub_api@db.example:3306/x")

    assert tls_failure(refused, DbTls("verify"), url) is None


# --- a real server that requires TLS --------------------------------------------------------------


def tls_env(server: MariadbServer, database: str, ca: Path, mode: str = "verify") -> dict[str, str]:
    return {
        "DATABASE_URL": server.url(database=database).render_as_string(hide_password=False),
        "WXHUB_DB_TLS": mode,
        "WXHUB_DB_CA_FILE": str(ca),
        # A refused connection would otherwise be retried for two minutes.
        "WXHUB_DB_RETRY_S": "0",
    }


def error_lines(result: Result) -> list[str]:
    """The messages of the run's ERROR log lines (JSON on stdout) and of stderr."""
    logged = [
        json.loads(line)["message"] for line in result.stdout.splitlines() if '"ERROR"' in line
    ]
    return logged + [line for line in (result.stderr or "").splitlines() if line.strip()]


def test_the_job_connects_verifying_the_servers_certificate(
    tls_server: MariadbServer,
    tls_database: str,
    wxhub_in_process: Callable[..., Result],
    tmp_path: Path,
) -> None:
    write_station(tmp_path / "in", "USC00110072", [noaa_line("19850101", -22, -128, 94)])
    env = tls_env(tls_server, tls_database, tls_server.certificates.ca)

    result = wxhub_in_process("run", str(tmp_path / "in"), env=env)

    assert result.exit_code == 0, result.output
    engine = make_engine(load_settings(env).database_url, tls=load_settings(env).db_tls)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM weather_observations")).scalar() == 1
        cipher = conn.execute(text("SHOW SESSION STATUS LIKE 'Ssl_cipher'")).one()[1]
    engine.dispose()
    assert cipher  # the session is encrypted


def test_the_api_connects_verifying_the_servers_certificate(
    tls_server: MariadbServer, tls_database: str, wxhub_in_process: Callable[..., Result]
) -> None:
    env = tls_env(tls_server, tls_database, tls_server.certificates.ca)
    assert wxhub_in_process("migrate", env=env).exit_code == 0

    client = create_app(load_settings(env)).test_client()

    assert client.get("/readyz").status_code == 200
    assert client.get("/api/weather?station_id=USC00110072").status_code == 200


def test_a_plain_connection_is_refused(tls_server: MariadbServer, tls_database: str) -> None:
    plain = make_engine(tls_server.url(database=tls_database), tls=DbTls("off"))

    with pytest.raises(OperationalError, match="Access denied"), plain.connect():
        pass  # MariaDB answers a plain login to a TLS-only server as a refused one
    plain.dispose()


def test_the_urls_own_ssl_arguments_connect(tls_server: MariadbServer, tls_database: str) -> None:
    url = tls_server.url(database=tls_database).update_query_dict(
        {"ssl_ca": str(tls_server.certificates.ca), "ssl_check_hostname": "true"}
    )
    settings = load_settings({"DATABASE_URL": url.render_as_string(hide_password=False)})
    engine = make_engine(settings.database_url, tls=settings.db_tls)

    with engine.connect() as conn:
        assert conn.execute(text("SHOW SESSION STATUS LIKE 'Ssl_cipher'")).one()[1]
    engine.dispose()


def test_a_wrong_ca_stops_the_job_at_once_with_one_line_naming_setting_and_server(
    tls_server: MariadbServer, tls_database: str, wxhub_in_process: Callable[..., Result]
) -> None:
    wrong_ca = tls_server.certificates.other_ca
    env = {**tls_env(tls_server, tls_database, wrong_ca), "WXHUB_DB_RETRY_S": "120"}

    result = wxhub_in_process("migrate", env=env)

    assert result.exit_code == 2  # a setting to fix: no retry for two minutes
    (line,) = error_lines(result)
    assert f"the database server 127.0.0.1:{tls_server.port} presented a TLS certificate" in line
    assert f"WXHUB_DB_CA_FILE={wrong_ca} does not verify" in line
    assert "certificate verify failed" in line or "self-signed" in line
    assert "WXHUB_DB_TLS=require" in line


def test_a_wrong_ca_makes_the_api_unready_with_one_line(
    tls_server: MariadbServer, tls_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    env = tls_env(tls_server, tls_database, tls_server.certificates.other_ca)
    client = create_app(load_settings(env)).test_client()

    with caplog.at_level(logging.WARNING):
        response = client.get("/readyz")

    assert response.status_code == 503
    (record,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert record.levelno == logging.ERROR
    assert f"127.0.0.1:{tls_server.port}" in record.getMessage()
    assert f"WXHUB_DB_CA_FILE={tls_server.certificates.other_ca}" in record.getMessage()
    assert record.exc_info is None  # one line, no trace
