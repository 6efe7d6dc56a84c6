"""Settings come from the environment in a fixed order, and a password never leaks."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

import certifi
import pytest
from click.testing import Result
from sqlalchemy.engine import make_url

from wxhub.config import ConfigError, Settings, load_settings
from wxhub.observability import (
    MASK,
    JsonFormatter,
    RedactingFormatter,
    _Redactor,
    configure_logging,
)

PASSWORD = "s3cr3t-Pa55"
# Everything that must be escaped in a URL, and more.
ODD_PASSWORD = "p@ss:w/rd?#%&=+ ;[]$!'~"
PARTS = {
    "DB_HOST": "db.example.com",
    "DB_PORT": "3307",
    "DB_USER": "wx",
    "DB_PASSWORD": PASSWORD,
    "DB_NAME": "weather",
}


def settings_with_password(password: str = PASSWORD) -> Settings:
    return load_settings({**PARTS, "DB_PASSWORD": password})


# --- where the database URL comes from ------------------------------------------------------------


def test_override_wins_over_everything() -> None:
    env = {**PARTS, "DATABASE_URL": "sqlite:///from-env.db"}

    settings = load_settings(env, database_url_override="sqlite:///from-flag.db")

    assert settings.database_url.database == "from-flag.db"
    assert settings.database_url_source == "--database-url"


def test_database_url_wins_over_db_parts() -> None:
    settings = load_settings({**PARTS, "DATABASE_URL": "sqlite:///from-env.db"})

    assert settings.database_url.database == "from-env.db"
    assert settings.database_url_source == "DATABASE_URL"


@pytest.mark.parametrize("empty", ["", None])
def test_empty_override_falls_through_to_the_environment(empty: str | None) -> None:
    settings = load_settings({"DATABASE_URL": "sqlite:///env.db"}, database_url_override=empty)

    assert settings.database_url.database == "env.db"


def test_empty_database_url_falls_through_to_db_parts() -> None:
    settings = load_settings({**PARTS, "DATABASE_URL": ""})

    assert settings.database_url_source.startswith("DB_HOST")


def test_db_parts_make_a_pymysql_url() -> None:
    settings = load_settings(PARTS)
    url = settings.database_url

    assert url.drivername == "mysql+pymysql"
    assert (url.host, url.port, url.username, url.password, url.database) == (
        "db.example.com",
        3307,
        "wx",
        PASSWORD,
        "weather",
    )
    assert settings.database_url_source == "DB_HOST/DB_PORT/DB_USER/DB_PASSWORD/DB_NAME"
    assert not settings.is_sqlite


def test_db_parts_default_to_port_3306_and_database_wxhub() -> None:
    url = load_settings({"DB_HOST": "db", "DB_USER": "wx", "DB_PASSWORD": PASSWORD}).database_url

    assert (url.host, url.port, url.database) == ("db", 3306, "wxhub")


def test_db_parts_with_empty_port_and_name_use_the_defaults() -> None:
    url = load_settings({"DB_HOST": "db", "DB_PORT": " ", "DB_NAME": ""}).database_url

    assert (url.port, url.database) == (3306, "wxhub")


def test_db_parts_without_user_or_password_leave_them_out() -> None:
    url = load_settings({"DB_HOST": "db"}).database_url

    assert (url.username, url.password) == (None, None)


@pytest.mark.parametrize("password", [ODD_PASSWORD, "caf\u00e9\u00df", "a%20b", "x" * 200])
def test_special_characters_in_db_password_survive(password: str) -> None:
    settings = settings_with_password(password)

    assert settings.database_url.password == password
    rendered = settings.database_url.render_as_string(hide_password=False)
    assert make_url(rendered).password == password


def test_without_any_setting_the_default_is_a_local_sqlite_file() -> None:
    settings = load_settings({})

    assert settings.database_url.render_as_string() == "sqlite:///wxhub.db"
    assert settings.database_url_source == "default"
    assert settings.is_sqlite


def test_defaults_for_the_other_settings() -> None:
    settings = load_settings({})

    assert settings.log_format == "auto"
    assert settings.parse_workers is None  # the job decides
    assert settings.api_cache_mb == 32


def test_process_environment_is_read_when_none_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite:///from-process.db")

    assert load_settings().database_url.database == "from-process.db"


@pytest.mark.parametrize(
    "raw",
    ["mysql://wx:pw@db:3306/wxhub", "mysql+mysqldb://wx:pw@db:3306/wxhub"],
)
def test_mysql_url_is_rewritten_to_use_pymysql(raw: str) -> None:
    url = load_settings({"DATABASE_URL": raw}).database_url

    assert url.drivername == "mysql+pymysql"
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "wx",
        "pw",
        "db",
        3306,
        "wxhub",
    )


@pytest.mark.parametrize(
    "raw",
    [
        "mysql+pymysql://wx:pw@db/wxhub",
        "sqlite:///wxhub.db",
        "sqlite:////abs/path.db",
        "sqlite://",
        "mariadb+pymysql://wx:pw@db/wxhub",
    ],
)
def test_supported_urls_are_kept_as_given(raw: str) -> None:
    url = load_settings({}, database_url_override=raw).database_url

    assert url == make_url(raw)


def test_surrounding_whitespace_in_the_url_is_ignored() -> None:
    url = load_settings({"DATABASE_URL": "  sqlite:///x.db\n"}).database_url

    assert url.database == "x.db"


# --- errors name the setting, never the password --------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        f"postgresql://wx:{PASSWORD}@db/wxhub",
        f"postgresql+psycopg://wx:{PASSWORD}@db/wxhub",
        f"oracle://wx:{PASSWORD}@db/wxhub",
        f"mssql+pyodbc://wx:{PASSWORD}@db/wxhub",
    ],
)
@pytest.mark.parametrize("setting", ["DATABASE_URL", "--database-url"])
def test_unsupported_backend_raises_config_error_naming_the_setting(raw: str, setting: str) -> None:
    env, override = ({"DATABASE_URL": raw}, None) if setting == "DATABASE_URL" else ({}, raw)

    with pytest.raises(ConfigError, match="backend") as excinfo:
        load_settings(env, database_url_override=override)

    message = str(excinfo.value)
    assert message.startswith(setting)
    assert PASSWORD not in message


@pytest.mark.parametrize(
    "raw",
    [
        f"not a url {PASSWORD}",
        f"wx:{PASSWORD}@db/wxhub",
        f"://wx:{PASSWORD}@db/wxhub",
        f"mysql:/wx:{PASSWORD}@db",
    ],
)
@pytest.mark.parametrize("setting", ["DATABASE_URL", "--database-url"])
def test_malformed_url_raises_config_error_without_the_password(raw: str, setting: str) -> None:
    env, override = ({"DATABASE_URL": raw}, None) if setting == "DATABASE_URL" else ({}, raw)

    with pytest.raises(ConfigError, match="not a valid SQLAlchemy URL") as excinfo:
        load_settings(env, database_url_override=override)

    message = str(excinfo.value)
    assert message.startswith(setting)
    assert PASSWORD not in message
    assert excinfo.value.__cause__ is None
    assert excinfo.value.__suppress_context__


@pytest.mark.parametrize(
    "raw",
    [f"mysql://wx:{PASSWORD}@db:notaport/wxhub", f"mysql://wx:{PASSWORD}@[::1/wxhub"],
    ids=["port", "ipv6"],
)
def test_malformed_port_raises_config_error_naming_the_setting(raw: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_settings({"DATABASE_URL": raw})

    assert "DATABASE_URL" in str(excinfo.value)
    assert PASSWORD not in str(excinfo.value)


@pytest.mark.parametrize("port", ["abc", "3306.0", "33 06", "0x10"])
def test_non_integer_db_port_raises_config_error_naming_it(port: str) -> None:
    with pytest.raises(ConfigError, match="DB_PORT") as excinfo:
        load_settings({**PARTS, "DB_PORT": port})

    assert PASSWORD not in str(excinfo.value)


@pytest.mark.parametrize("port", ["0", "-1"])
def test_db_port_below_one_raises_config_error(port: str) -> None:
    with pytest.raises(ConfigError, match="DB_PORT"):
        load_settings({**PARTS, "DB_PORT": port})


def test_db_port_is_ignored_when_db_host_is_not_set() -> None:
    assert load_settings({"DB_PORT": "abc"}).database_url_source == "default"


@pytest.mark.parametrize("value", ["xml", "JSONL", "yes"])
def test_bad_log_format_raises_config_error_naming_it(value: str) -> None:
    with pytest.raises(ConfigError, match="WXHUB_LOG_FORMAT"):
        load_settings({"WXHUB_LOG_FORMAT": value})


@pytest.mark.parametrize(
    ("value", "expected"),
    [("json", "json"), ("TEXT", "text"), (" auto ", "auto"), ("", "auto")],
)
def test_log_format_is_read_case_insensitively(value: str, expected: str) -> None:
    assert load_settings({"WXHUB_LOG_FORMAT": value}).log_format == expected


@pytest.mark.parametrize("value", ["-1", "-8"])
def test_negative_parse_workers_raises_config_error_naming_it(value: str) -> None:
    with pytest.raises(ConfigError, match="WXHUB_PARSE_WORKERS"):
        load_settings({"WXHUB_PARSE_WORKERS": value})


@pytest.mark.parametrize("value", ["two", "1.5"])
def test_non_integer_parse_workers_raises_config_error_naming_it(value: str) -> None:
    with pytest.raises(ConfigError, match="WXHUB_PARSE_WORKERS"):
        load_settings({"WXHUB_PARSE_WORKERS": value})


@pytest.mark.parametrize(
    ("value", "expected"), [("0", 0), ("4", 4), (" 16 ", 16), ("", None), ("  ", None)]
)
def test_parse_workers_is_read_as_an_integer(value: str, expected: int | None) -> None:
    assert load_settings({"WXHUB_PARSE_WORKERS": value}).parse_workers == expected


@pytest.mark.parametrize("value", ["-1", "lots"])
def test_a_bad_api_cache_size_raises_config_error_naming_it(value: str) -> None:
    with pytest.raises(ConfigError, match="WXHUB_API_CACHE_MB"):
        load_settings({"WXHUB_API_CACHE_MB": value})


def test_an_api_cache_size_of_zero_turns_the_cache_off() -> None:
    assert load_settings({"WXHUB_API_CACHE_MB": "0"}).api_cache_mb == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", True),
        ("on", True),
        ("OFF", False),
        (" yes ", True),
        ("no", False),
        ("true", True),
        ("False", False),
        ("1", True),
        ("0", False),
    ],
)
def test_api_docs_takes_each_on_off_spelling_in_any_case(value: str, expected: bool) -> None:
    assert load_settings({"WXHUB_API_DOCS": value}).api_docs is expected


@pytest.mark.parametrize("value", ["maybe", "2", "enabled", "of", "-1"])
def test_an_invalid_api_docs_value_is_one_error_naming_it_and_the_allowed_values(
    value: str,
) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_settings({"WXHUB_API_DOCS": value})

    assert str(excinfo.value) == (
        f"WXHUB_API_DOCS={value!r} is not one of on/off, true/false, yes/no, 1/0"
    )


@pytest.mark.parametrize(
    ("value", "expected"), [("", 120.0), ("0", 0.0), ("30", 30.0), (" 600 ", 600.0)]
)
def test_db_retry_is_read_as_whole_seconds(value: str, expected: float) -> None:
    assert load_settings({"WXHUB_DB_RETRY_S": value}).db_retry_s == expected


@pytest.mark.parametrize("value", ["-1", "-120", "soon", "2m", "1.5", "1e3", "inf"])
def test_an_invalid_db_retry_value_is_one_error_naming_it_and_the_allowed_values(
    value: str,
) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_settings({"WXHUB_DB_RETRY_S": value})

    assert str(excinfo.value) == (
        f"WXHUB_DB_RETRY_S={value!r} is not a whole number of seconds, 0 or more"
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "WXHUB_API_DOCS",
            "maybe",
            "WXHUB_API_DOCS='maybe' is not one of on/off, true/false, yes/no, 1/0",
        ),
        (
            "WXHUB_DB_RETRY_S",
            "2m",
            "WXHUB_DB_RETRY_S='2m' is not a whole number of seconds, 0 or more",
        ),
    ],
)
def test_an_invalid_setting_stops_a_command_with_one_line_and_exit_2(
    wxhub_in_process: Callable[..., Result], tmp_path: Path, name: str, value: str, message: str
) -> None:
    database = tmp_path / "wxhub.db"

    result = wxhub_in_process("migrate", env={"DATABASE_URL": f"sqlite:///{database}", name: value})

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"error: {message}"]
    assert result.stdout == ""
    assert not database.exists()


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


# --- the password stays hidden --------------------------------------------------------------------


@pytest.mark.parametrize("password", [PASSWORD, ODD_PASSWORD])
def test_repr_and_safe_url_never_contain_the_password(password: str) -> None:
    settings = settings_with_password(password)

    for text in (repr(settings), str(settings), settings.database_url_safe):
        assert password not in text
        assert "***" in text
        assert "db.example.com" in text


def test_repr_and_safe_url_hide_a_password_given_in_database_url() -> None:
    settings = load_settings({"DATABASE_URL": f"mysql://wx:{PASSWORD}@db/wxhub"})

    assert PASSWORD not in repr(settings)
    assert settings.database_url_safe == "mysql+pymysql://wx:***@db/wxhub"


def test_secrets_to_redact_returns_the_password() -> None:
    assert settings_with_password(ODD_PASSWORD).secrets_to_redact() == (ODD_PASSWORD,)


def test_secrets_to_redact_is_empty_without_a_password() -> None:
    assert load_settings({}).secrets_to_redact() == ()


# --- log formatters mask the password -------------------------------------------------------------


def make_record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("wxhub.test", logging.WARNING, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def json_formatter(password: str = PASSWORD) -> JsonFormatter:
    return JsonFormatter(_Redactor(settings_with_password(password).secrets_to_redact()))


def test_json_formatter_masks_the_password_in_message_and_extras() -> None:
    record = make_record(
        "connecting with %s",
        PASSWORD,
        event="db_connect",
        url=f"mysql://wx:{PASSWORD}@db/wxhub",
        detail={"password": PASSWORD},
    )

    line = json_formatter().format(record)

    assert PASSWORD not in line
    payload = json.loads(line)
    assert payload["message"] == f"connecting with {MASK}"
    assert payload["url"] == f"mysql://wx:{MASK}@db/wxhub"
    assert payload["detail"] == {"password": MASK}


def test_json_formatter_puts_extras_at_the_top_level() -> None:
    record = make_record("loaded %d rows", 12, event="file_loaded", station_id="USC1", rows=12)

    payload = json.loads(json_formatter().format(record))

    assert payload["event"] == "file_loaded"
    assert payload["station_id"] == "USC1"
    assert payload["rows"] == 12
    assert payload["message"] == "loaded 12 rows"
    assert payload["level"] == "WARNING"
    assert payload["logger"] == "wxhub.test"
    assert payload["time"].endswith("Z")
    assert "args" not in payload
    assert "msg" not in payload


def test_json_formatter_output_is_one_valid_json_line_even_with_newlines() -> None:
    record = make_record('line one\nline two "quoted" caf\u00e9', event="x")

    line = json_formatter().format(record)

    assert "\n" not in line
    assert json.loads(line)["message"] == 'line one\nline two "quoted" caf\u00e9'


def test_json_formatter_masks_the_password_in_an_exception() -> None:
    try:
        raise RuntimeError(f"login failed for {PASSWORD}")
    except RuntimeError:
        record = logging.LogRecord(
            "wxhub.test", logging.ERROR, __file__, 1, "boom", None, sys.exc_info()
        )

    line = json_formatter().format(record)

    assert PASSWORD not in line
    payload = json.loads(line)
    assert "RuntimeError: login failed for ***" in payload["exception"]


@pytest.mark.parametrize("password", ['pa"ss', "pa\\ss"], ids=["quote", "backslash"])
def test_json_formatter_masks_a_password_with_json_escaped_characters(password: str) -> None:
    record = make_record("connecting with %s", password, event="db_connect")

    line = json_formatter(password).format(record)

    assert json.loads(line)["message"] == f"connecting with {MASK}"


def test_json_formatter_masks_a_password_beyond_ascii_with_an_escaped_quote() -> None:
    password = 'p\u00e4"ss'
    record = make_record("connecting with %s", password, event="db_connect")

    line = json_formatter(password).format(record)

    assert json.loads(line)["message"] == f"connecting with {MASK}"


def test_json_formatter_writes_the_time_in_utc_whatever_the_local_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record = make_record("x", event="x")
    record.created, record.msecs = 1_700_000_000.25, 250.0  # 2023-11-14 22:13:20.250 UTC
    monkeypatch.setenv("TZ", "America/Chicago")
    time.tzset()
    try:
        payload = json.loads(json_formatter().format(record))
    finally:
        monkeypatch.undo()
        time.tzset()

    assert payload["time"] == "2023-11-14T22:13:20.250Z"


def test_json_formatter_writes_dates_as_text_and_keeps_a_value_orjson_refuses() -> None:
    record = make_record(
        "x", event="x", day=dt.date(2024, 2, 29), at=dt.datetime(2024, 2, 29, 1, 2), big=2**70
    )

    payload = json.loads(json_formatter().format(record))

    assert payload["day"] == "2024-02-29"
    assert payload["at"] == "2024-02-29 01:02:00"
    assert payload["big"] == 2**70


def test_redacting_formatter_masks_the_password_in_message_and_extras() -> None:
    formatter = RedactingFormatter(
        _Redactor(settings_with_password().secrets_to_redact()),
        "%(levelname)s %(message)s url=%(url)s",
    )
    record = make_record("password is %s", PASSWORD, url=f"mysql://wx:{PASSWORD}@db/x")

    line = formatter.format(record)

    assert line == f"WARNING password is {MASK} url=mysql://wx:{MASK}@db/x"


def test_redacting_formatter_masks_the_password_in_an_exception() -> None:
    formatter = RedactingFormatter(_Redactor([PASSWORD]))
    try:
        raise RuntimeError(f"login failed for {PASSWORD}")
    except RuntimeError:
        record = logging.LogRecord(
            "wxhub.test", logging.ERROR, __file__, 1, "boom", None, sys.exc_info()
        )

    text = formatter.format(record)

    assert PASSWORD not in text
    assert "login failed for ***" in text


def test_configured_json_logging_masks_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stream)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    settings = load_settings({**PARTS, "WXHUB_LOG_FORMAT": "json"})
    try:
        configure_logging(settings)
        logging.getLogger("wxhub.test").info(
            "using %s", PASSWORD, extra={"event": "start", "secret": PASSWORD}
        )
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)

    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    payload = json.loads(lines[0])
    assert payload["event"] == "start"
    assert payload["message"] == f"using {MASK}"
    assert payload["secret"] == MASK
    assert PASSWORD not in stream.getvalue()


# --- the API's read-only copy (DATABASE_READ_URL, DB_READ_HOST) ----------------------------------


def test_without_a_read_setting_the_api_reads_from_the_database_itself() -> None:
    settings = load_settings(PARTS)

    assert settings.database_read_url is None
    assert settings.api_database_url == settings.database_url
    assert settings.api_db_tls == settings.db_tls


def test_db_read_host_is_the_writer_url_on_another_host() -> None:
    settings = load_settings({**PARTS, "DB_READ_HOST": " reader.example.com "})

    read = settings.api_database_url
    assert settings.database_url.host == "db.example.com"  # the job's, unchanged
    assert read.host == "reader.example.com"
    assert (read.drivername, read.port, read.username, read.password, read.database) == (
        "mysql+pymysql",
        3307,
        "wx",
        PASSWORD,
        "weather",
    )
    assert read.query == settings.database_url.query
    assert settings.database_read_url_source == (
        "DB_READ_HOST with the other parts of DB_HOST/DB_PORT/DB_USER/DB_PASSWORD/DB_NAME"
    )


def test_db_read_host_takes_the_other_parts_of_database_url_too() -> None:
    settings = load_settings(
        {"DATABASE_URL": f"mysql://wx:{PASSWORD}@writer:3310/wxhub", "DB_READ_HOST": "reader"}
    )

    assert settings.api_database_url.render_as_string(hide_password=False) == (
        f"mysql+pymysql://wx:{PASSWORD}@reader:3310/wxhub"
    )


def test_database_read_url_is_a_url_of_its_own_and_wins_over_db_read_host() -> None:
    settings = load_settings(
        {
            **PARTS,
            "DB_READ_HOST": "ignored.example.com",
            "DATABASE_READ_URL": "mysql://reader_user@replica:3306/weather",
        }
    )

    read = settings.api_database_url
    assert (read.drivername, read.username, read.host) == (
        "mysql+pymysql",
        "reader_user",
        "replica",
    )
    assert settings.database_read_url_source == "DATABASE_READ_URL"
    assert settings.database_url.host == "db.example.com"


def test_a_read_host_on_rds_verifies_tls_like_the_writer_would() -> None:
    writer_host = "wxhub.cluster-abc.eu-west-1.rds.amazonaws.com"
    reader_host = "wxhub.cluster-ro-abc.eu-west-1.rds.amazonaws.com"
    # Any readable bundle will do: verify mode checks at start-up that it can be read.
    settings = load_settings(
        {
            **PARTS,
            "DB_HOST": writer_host,
            "DB_READ_HOST": reader_host,
            "WXHUB_DB_CA_FILE": certifi.where(),
        }
    )

    assert settings.db_tls.mode == "verify"
    assert settings.api_db_tls.mode == "verify"
    assert settings.api_database_url.host == reader_host


def test_the_read_url_decides_its_tls_by_its_own_host() -> None:
    settings = load_settings(
        {"DATABASE_URL": "mysql://wx@writer/wxhub", "DATABASE_READ_URL": "mysql://wx@r/wxhub"}
    )
    off = load_settings(
        {
            "DATABASE_URL": "mysql://wx@writer/wxhub",
            "DATABASE_READ_URL": "mysql://wx@r/wxhub?ssl_ca=/etc/ca.pem",
        }
    )

    assert settings.api_db_tls.mode == "off"
    assert off.api_db_tls.mode == "url"
    assert off.db_tls.mode == "off"


def test_database_read_url_to_a_sqlite_file_serves_a_sqlite_writer(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'writer.db'}",
            "DATABASE_READ_URL": f"sqlite:///{tmp_path / 'copy.db'}",
        }
    )

    assert settings.api_database_url.database == str(tmp_path / "copy.db")
    assert settings.api_db_tls.mode == "off"


@pytest.mark.parametrize(
    "env",
    [
        {"DB_READ_HOST": "reader.example.com"},
        {"DATABASE_URL": "sqlite:///wxhub.db", "DB_READ_HOST": "reader.example.com"},
    ],
    ids=["default", "DATABASE_URL"],
)
def test_db_read_host_on_sqlite_is_one_error_naming_the_variable(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_settings(env)

    message = str(excinfo.value)
    assert message.startswith("DB_READ_HOST='reader.example.com' needs a MySQL database")
    assert "SQLite" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("writer", "reader"),
    [
        ("sqlite:///w.db", f"mysql://wx:{PASSWORD}@r/wxhub"),
        ("mysql://wx@w/wxhub", "sqlite:///r.db"),
    ],
)
def test_a_reader_of_another_kind_than_the_writer_is_refused(writer: str, reader: str) -> None:
    with pytest.raises(ConfigError, match=r"^DATABASE_READ_URL is a .* the reader must be a copy"):
        load_settings({"DATABASE_URL": writer, "DATABASE_READ_URL": reader})


@pytest.mark.parametrize("raw", [f"postgresql://wx:{PASSWORD}@db/wxhub", f"not a url {PASSWORD}"])
def test_a_bad_read_url_is_an_error_naming_it_without_the_password(raw: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_settings({**PARTS, "DATABASE_READ_URL": raw})

    assert str(excinfo.value).startswith("DATABASE_READ_URL")
    assert PASSWORD not in str(excinfo.value)


def test_the_read_password_is_hidden_and_redacted() -> None:
    read_password = "r34d-0nly-Pa55"
    settings = load_settings(
        {**PARTS, "DATABASE_READ_URL": f"mysql://ro:{read_password}@replica/weather"}
    )

    assert read_password not in repr(settings)
    assert "mysql+pymysql://ro:***@replica/weather" in repr(settings)
    assert settings.secrets_to_redact() == (PASSWORD, read_password)


def test_db_read_host_shares_the_writer_password_and_redacts_it_once() -> None:
    settings = load_settings({**PARTS, "DB_READ_HOST": "reader"})

    assert settings.secrets_to_redact() == (PASSWORD,)
    assert PASSWORD not in repr(settings)


def test_the_job_commands_ignore_the_read_url(
    wxhub_in_process: Callable[..., Result], tmp_path: Path
) -> None:
    database = tmp_path / "wxhub.db"
    # A reader the job could not use at all: a file in a folder that does not exist.
    unusable = f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'r.db'}"

    result = wxhub_in_process(
        "migrate", env={"DATABASE_URL": f"sqlite:///{database}", "DATABASE_READ_URL": unusable}
    )

    assert result.exit_code == 0, result.output
    assert database.exists()
