"""Settings from AWS: the RDS secret (DB_SECRET_ARN) and SSM parameters (WXHUB_SSM_PREFIX),
against moto's in-process fakes; the password from the secret never reaches a log line."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError, NoCredentialsError, NoRegionError
from botocore.stub import Stubber
from click.testing import Result

from tests.conftest import AWS_REGION, write_station
from wxhub import aws
from wxhub.config import ConfigError, load_settings
from wxhub.observability import MASK, configure_logging

pytestmark = pytest.mark.usefixtures("aws")

PASSWORD = 'Rds-g3n3rated:pa$$w0rd/"q"'
RDS_SECRET = {
    "engine": "mysql",
    "host": "wxhub-db.abc123.eu-west-1.rds.amazonaws.com",
    "port": 3306,
    "username": "admin",
    "password": PASSWORD,
    "dbname": "wxhub",
    "dbInstanceIdentifier": "wxhub-db",
}


# The secret's host is an RDS endpoint, which makes TLS with verification the default
# (wxhub.db.tls), and the RDS CA bundle is only in the image: these tests are about where the
# settings come from, so they ask for TLS without the CA check (tests/db/test_tls.py covers it).
NO_CA_CHECK = {"WXHUB_DB_TLS": "require"}


def create_secret(value: str | dict[str, Any] | bytes, name: str = "wxhub/db") -> str:
    """A secret in moto's Secrets Manager; returns its ARN."""
    sm = boto3.client("secretsmanager", region_name=AWS_REGION)
    if isinstance(value, bytes):
        return str(sm.create_secret(Name=name, SecretBinary=value)["ARN"])
    text = value if isinstance(value, str) else json.dumps(value)
    return str(sm.create_secret(Name=name, SecretString=text)["ARN"])


def put_parameters(parameters: dict[str, str], *, secure: tuple[str, ...] = ()) -> None:
    ssm = boto3.client("ssm", region_name=AWS_REGION)
    for name, value in parameters.items():
        kind = "SecureString" if name in secure else "String"
        ssm.put_parameter(Name=name, Value=value, Type=kind)


def failing_client(
    monkeypatch: pytest.MonkeyPatch, service: str, method: str, code: str, status: int = 400
) -> None:
    """Make every client of ``service`` that wxhub creates answer ``method`` with ``code``."""
    client = boto3.client(service, region_name=AWS_REGION)
    stubber = Stubber(client)
    stubber.add_client_error(method, service_error_code=code, http_status_code=status)
    stubber.activate()
    monkeypatch.setattr(aws, "client", lambda *_args, **_kwargs: client)


# --- DB_SECRET_ARN ---------------------------------------------------------------------------


def test_db_secret_arn_makes_a_mysql_url_from_the_rds_secret_fields() -> None:
    arn = create_secret(RDS_SECRET)

    settings = load_settings({"DB_SECRET_ARN": arn, **NO_CA_CHECK})

    url = settings.database_url
    assert url.drivername == "mysql+pymysql"
    assert (url.host, url.port, url.username, url.database) == (
        RDS_SECRET["host"],
        3306,
        "admin",
        "wxhub",
    )
    assert url.password == PASSWORD
    assert settings.database_url_source.startswith("DB_SECRET_ARN")


def test_db_read_host_reads_with_the_user_and_password_of_the_rds_secret() -> None:
    arn = create_secret(RDS_SECRET)
    reader = "wxhub-db.cluster-ro-abc123.eu-west-1.rds.amazonaws.com"

    settings = load_settings({"DB_SECRET_ARN": arn, "DB_READ_HOST": reader, **NO_CA_CHECK})

    read = settings.api_database_url
    assert (read.host, read.port, read.username, read.password, read.database) == (
        reader,
        3306,
        "admin",
        PASSWORD,
        "wxhub",
    )
    assert settings.database_url.host == RDS_SECRET["host"]  # the job's: the writer
    assert settings.api_db_tls.mode == "require"
    assert PASSWORD not in repr(settings)


def test_db_variables_set_in_the_environment_win_over_the_secret_fields() -> None:
    arn = create_secret(RDS_SECRET)

    settings = load_settings(
        {"DB_SECRET_ARN": arn, "DB_HOST": "proxy.internal", "DB_NAME": "weather", "DB_PORT": ""}
    )

    url = settings.database_url
    assert (url.host, url.database, url.port) == ("proxy.internal", "weather", 3306)
    assert (url.username, url.password) == ("admin", PASSWORD)


def test_a_password_set_in_the_environment_wins_and_the_secret_one_is_still_masked() -> None:
    arn = create_secret(RDS_SECRET)

    settings = load_settings({"DB_SECRET_ARN": arn, "DB_PASSWORD": "from-env", **NO_CA_CHECK})

    assert settings.database_url.password == "from-env"
    assert set(settings.secrets_to_redact()) == {"from-env", PASSWORD}


def test_database_url_wins_over_the_secret_which_is_then_not_read() -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:does-not-exist-AbCdEf"

    settings = load_settings({"DB_SECRET_ARN": arn, "DATABASE_URL": "sqlite:///x.db"})

    assert settings.database_url.database == "x.db"
    assert settings.database_url_source == "DATABASE_URL"


def test_a_secret_without_port_or_dbname_uses_3306_and_wxhub() -> None:
    arn = create_secret({"host": "db.internal", "username": "wx", "password": PASSWORD})

    url = load_settings({"DB_SECRET_ARN": arn}).database_url

    assert (url.port, url.database) == (3306, "wxhub")


def test_the_secret_is_read_in_the_region_its_arn_names() -> None:
    arn = create_secret(RDS_SECRET)

    # The environment names another region: the ARN's own region is the one asked.
    settings = load_settings({"DB_SECRET_ARN": arn, "AWS_REGION": "us-east-1", **NO_CA_CHECK})

    assert settings.database_url.host == RDS_SECRET["host"]


@pytest.mark.parametrize(
    ("secret", "words"),
    [
        pytest.param("not json {" + PASSWORD, "is not JSON", id="not-json"),
        pytest.param(json.dumps([PASSWORD]), "not a JSON object", id="not-an-object"),
        pytest.param({"username": "wx", "password": PASSWORD}, "no 'host' field", id="no-host"),
        pytest.param({"host": "", "password": PASSWORD}, "no 'host' field", id="empty-host"),
        pytest.param(PASSWORD.encode(), "binary", id="binary"),
    ],
)
def test_a_malformed_secret_is_one_config_error_naming_the_setting_and_the_arn(
    secret: str | dict[str, Any] | bytes, words: str
) -> None:
    arn = create_secret(secret)

    with pytest.raises(ConfigError) as excinfo:
        load_settings({"DB_SECRET_ARN": arn})

    message = str(excinfo.value)
    assert message.startswith(f"DB_SECRET_ARN={arn}: ")
    assert words in message
    assert "\n" not in message
    assert PASSWORD not in message
    assert excinfo.value.__cause__ is None


def test_a_secret_that_does_not_exist_is_a_config_error_saying_not_found() -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:wxhub-nope-AbCdEf"

    with pytest.raises(ConfigError, match="not found") as excinfo:
        load_settings({"DB_SECRET_ARN": arn})

    assert str(excinfo.value).startswith(f"DB_SECRET_ARN={arn}: ")


def test_access_denied_to_the_secret_is_a_config_error_saying_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    failing_client(monkeypatch, "secretsmanager", "get_secret_value", "AccessDeniedException")
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:wxhub-db-AbCdEf"

    with pytest.raises(ConfigError) as excinfo:
        load_settings({"DB_SECRET_ARN": arn})

    assert str(excinfo.value) == (
        f"DB_SECRET_ARN={arn}: cannot read the database secret: access denied "
        "(the task role needs permission to read the secret)"
    )


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (NoCredentialsError(), "no AWS credentials"),
        (NoRegionError(), "no AWS region"),
        (EndpointConnectionError(endpoint_url="https://x"), "cannot be reached"),
        (ValueError("odd"), "unexpected ValueError"),
    ],
)
def test_failures_before_any_answer_are_described_in_words(error: Exception, words: str) -> None:
    assert words in aws.describe(error, "the secret")


# --- WXHUB_SSM_PREFIX ------------------------------------------------------------------------


def test_ssm_parameters_under_the_prefix_give_settings() -> None:
    put_parameters(
        {
            "/wxhub/prod/WXHUB_API_DOCS": "off",
            "/wxhub/prod/WXHUB_METRICS": "emf",
            "/wxhub/prod/WXHUB_METRICS_NAMESPACE": "wxhub/prod",
            "/wxhub/prod/DATABASE_URL": "sqlite:///from-ssm.db",
        }
    )

    settings = load_settings({"WXHUB_SSM_PREFIX": "/wxhub/prod/"})

    assert settings.api_docs is False
    assert (settings.metrics, settings.metrics_namespace) == ("emf", "wxhub/prod")
    assert settings.database_url.database == "from-ssm.db"


def test_the_environment_wins_over_ssm_parameters() -> None:
    put_parameters({"/wxhub/prod/WXHUB_API_DOCS": "off", "/wxhub/prod/WXHUB_LOG_FORMAT": "text"})

    settings = load_settings(
        {"WXHUB_SSM_PREFIX": "/wxhub/prod", "WXHUB_API_DOCS": "on", "WXHUB_LOG_FORMAT": ""}
    )

    assert settings.api_docs is True  # the environment's value
    assert settings.log_format == "text"  # an empty variable is not set: SSM's value


def test_deeper_paths_other_prefixes_and_names_unlike_settings_are_ignored() -> None:
    put_parameters(
        {
            "/wxhub/prod/nested/WXHUB_API_DOCS": "off",
            "/wxhub/dev/WXHUB_API_DOCS": "off",
            "/wxhub/prod/api-docs": "off",
        }
    )

    parameters = aws.fetch_parameters("/wxhub/prod/", AWS_REGION)

    assert parameters.values == {}
    assert load_settings({"WXHUB_SSM_PREFIX": "/wxhub/prod/"}).api_docs is True


def test_every_page_of_parameters_is_read() -> None:
    # GetParametersByPath answers at most 10 parameters a page.
    put_parameters({f"/wxhub/prod/SETTING_{n:02d}": str(n) for n in range(25)})

    parameters = aws.fetch_parameters("/wxhub/prod/", AWS_REGION)

    assert parameters.values == {f"SETTING_{n:02d}": str(n) for n in range(25)}


def test_secure_string_parameters_are_decrypted_and_masked_in_logs() -> None:
    put_parameters(
        {"/wxhub/prod/DB_HOST": "db.internal", "/wxhub/prod/DB_PASSWORD": PASSWORD},
        secure=("/wxhub/prod/DB_PASSWORD",),
    )

    settings = load_settings({"WXHUB_SSM_PREFIX": "/wxhub/prod/"})

    assert settings.database_url.password == PASSWORD
    assert PASSWORD in settings.secrets_to_redact()


def test_an_ssm_parameter_can_name_the_database_secret() -> None:
    arn = create_secret(RDS_SECRET)
    put_parameters({"/wxhub/prod/DB_SECRET_ARN": arn})

    settings = load_settings({"WXHUB_SSM_PREFIX": "/wxhub/prod/", **NO_CA_CHECK})

    assert settings.database_url.host == RDS_SECRET["host"]


def test_a_prefix_that_is_not_a_path_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"^WXHUB_SSM_PREFIX='wxhub/prod' is not a parameter"):
        load_settings({"WXHUB_SSM_PREFIX": "wxhub/prod"})


def test_access_denied_to_the_parameters_is_a_config_error_naming_the_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    failing_client(monkeypatch, "ssm", "get_parameters_by_path", "AccessDeniedException")

    with pytest.raises(ConfigError) as excinfo:
        load_settings({"WXHUB_SSM_PREFIX": "/wxhub/prod/"})

    assert str(excinfo.value) == (
        "WXHUB_SSM_PREFIX='/wxhub/prod/': cannot read the parameters: access denied "
        "(the task role needs permission to read the parameters)"
    )


# --- the password never reaches a log line -------------------------------------------------------


def test_the_password_from_the_secret_is_masked_in_every_json_log_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    arn = create_secret(RDS_SECRET)
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stream)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    settings = load_settings({"DB_SECRET_ARN": arn, "WXHUB_LOG_FORMAT": "json", **NO_CA_CHECK})
    try:
        configure_logging(settings)
        logging.getLogger("wxhub.test").error(
            "connect as %s failed", settings.database_url.render_as_string(hide_password=False)
        )
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)

    assert PASSWORD not in stream.getvalue()
    assert MASK in json.loads(stream.getvalue())["message"]


def test_a_job_on_the_secret_s_unreachable_database_never_shows_its_password(
    wxhub_in_process: Callable[..., Result], tmp_path: Path
) -> None:
    write_station(tmp_path / "in", "USC00000001", "20000101\t10\t-20\t0\n")
    arn = create_secret({**RDS_SECRET, "host": "127.0.0.1", "port": 1})

    result = wxhub_in_process(
        "run", str(tmp_path / "in"), env={"DB_SECRET_ARN": arn, **NO_CA_CHECK}
    )

    assert result.exit_code == 1
    assert PASSWORD not in result.output
    assert PASSWORD not in (result.stderr or "")
    errors = [json.loads(line) for line in result.stdout.splitlines() if '"ERROR"' in line]
    assert len(errors) == 1
    assert "127.0.0.1" in errors[0]["message"]


def test_a_bad_secret_is_a_usage_error_with_one_line_on_stderr(
    wxhub_in_process: Callable[..., Result],
) -> None:
    arn = create_secret({"password": PASSWORD})

    result = wxhub_in_process("migrate", env={"DB_SECRET_ARN": arn})

    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: DB_SECRET_ARN={arn}: cannot read the database secret: "
        "the secret has no 'host' field"
    ]
    assert PASSWORD not in result.output


# --- boto3 only when asked for -------------------------------------------------------------------


def test_local_start_up_and_help_never_import_boto3(tmp_path: Path) -> None:
    write_station(tmp_path / "in", "USC00000001", "20000101\t10\t-20\t0\n")
    script = (
        "import sys\n"
        "from wxhub.cli import main\n"
        "from wxhub.config import load_settings\n"
        "from wxhub.ingestion.sources import resolve_sources\n"
        "load_settings({'DB_HOST': 'db', 'WXHUB_METRICS': 'emf'})\n"
        f"resolve_sources([{str(tmp_path / 'in')!r}])\n"
        "main.main(['--help'], standalone_mode=False)\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore'))\n"
        "assert not loaded, loaded\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout
