"""The AWS calls wxhub makes, and their failures said in one line.

Three things come from AWS: the database secret (Secrets Manager, ``DB_SECRET_ARN``), non-secret
settings (SSM Parameter Store, ``WXHUB_SSM_PREFIX``) and station files (S3, ``s3://`` sources).
boto3 is imported inside these functions, never at module level: a laptop run, the tests and
``wxhub --help`` never load it (it costs a few hundred milliseconds).

Every failure is an :class:`AwsError` whose message says what went wrong in words an operator
can act on (access denied, not found, no credentials, ...). Callers add which setting or
source it was about; no message ever contains a secret value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The settings an SSM parameter may provide: named like environment variables.
_SETTING_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
_ARN_REGION = re.compile(r"arn:[^:]+:secretsmanager:([a-z0-9-]+):")


class AwsError(RuntimeError):
    """An AWS call failed; the message is one line, without any secret."""


@dataclass(frozen=True)
class DatabaseSecret:
    """The fields of the secret RDS generates (``engine`` and the rest are ignored)."""

    host: str
    port: str | None
    username: str | None
    password: str | None = None
    dbname: str | None = None

    def __repr__(self) -> str:  # never the password, even in a debugger or a traceback
        return (
            f"DatabaseSecret(host={self.host!r}, port={self.port!r}, "
            f"username={self.username!r}, dbname={self.dbname!r})"
        )


@dataclass(frozen=True)
class Parameters:
    """Settings read from SSM: name -> value, and the values that were SecureStrings."""

    values: dict[str, str]
    secure_values: tuple[str, ...] = ()


def client(service: str, region: str | None = None) -> Any:
    """A boto3 client; the region, credentials and endpoint come from the usual AWS settings."""
    import boto3  # noqa: PLC0415  (lazy: see the module docstring)

    return boto3.client(service, region_name=region or None)


def unsigned_client(service: str, region: str | None = None) -> Any:
    """A boto3 client that signs nothing: for public data, such as NOAA's bucket."""
    import boto3  # noqa: PLC0415  (lazy: see the module docstring)
    from botocore import UNSIGNED  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415

    return boto3.client(
        service, region_name=region or None, config=Config(signature_version=UNSIGNED)
    )


def has_credentials() -> bool:
    """Whether boto3 finds credentials (environment, profile, the ECS task role, ...)."""
    import boto3  # noqa: PLC0415  (lazy: see the module docstring)

    return boto3.Session().get_credentials() is not None


def region_from(env: Mapping[str, str]) -> str | None:
    """The region the environment names (ECS sets both variables), if any."""
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None


def fetch_database_secret(arn: str, region: str | None) -> DatabaseSecret:
    """Read the RDS secret ``arn`` (its own region, when the ARN names one)."""
    match = _ARN_REGION.match(arn)
    sm = client("secretsmanager", match.group(1) if match else region)
    try:
        response = sm.get_secret_value(SecretId=arn)
    except Exception as exc:
        raise AwsError(describe(exc, "the secret")) from None
    raw = response.get("SecretString")
    if raw is None:
        raise AwsError("the secret holds binary data, not the JSON that RDS writes")
    try:
        fields = json.loads(raw)
    except ValueError:
        raise AwsError("the secret is not JSON (expected the fields RDS writes)") from None
    if not isinstance(fields, dict):
        raise AwsError("the secret is not a JSON object (expected the fields RDS writes)")
    host = _field(fields, "host")
    if not host:
        raise AwsError("the secret has no 'host' field")
    return DatabaseSecret(
        host=host,
        port=_field(fields, "port"),
        username=_field(fields, "username"),
        password=_field(fields, "password"),
        dbname=_field(fields, "dbname"),
    )


def _field(fields: dict[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    return str(value)


def fetch_parameters(prefix: str, region: str | None) -> Parameters:
    """The parameters directly under ``prefix`` named like settings, decrypted.

    ``/wxhub/prod/WXHUB_API_DOCS`` gives ``WXHUB_API_DOCS``; deeper paths and other names
    are not settings and are left out.
    """
    path = prefix.rstrip("/") or "/"
    ssm = client("ssm", region)
    values: dict[str, str] = {}
    secure: list[str] = []
    try:
        pages = ssm.get_paginator("get_parameters_by_path").paginate(
            Path=path, Recursive=False, WithDecryption=True
        )
        for page in pages:
            for parameter in page.get("Parameters", []):
                name = str(parameter["Name"]).rsplit("/", 1)[-1]
                if not _SETTING_NAME.fullmatch(name):
                    continue
                values[name] = str(parameter.get("Value", ""))
                if parameter.get("Type") == "SecureString":
                    secure.append(values[name])
    except Exception as exc:
        raise AwsError(describe(exc, "the parameters")) from None
    return Parameters(values, tuple(secure))


# Error codes an operator can act on, in words; anything else is shown with its code.
_CODES = {
    "AccessDenied": "access denied (the task role needs permission to read {what})",
    "AccessDeniedException": "access denied (the task role needs permission to read {what})",
    "ResourceNotFoundException": "not found (check the name, the account and the region)",
    "NoSuchBucket": "the bucket does not exist (check the name, the account and the region)",
    "ParameterNotFound": "not found (check the name, the account and the region)",
    "DecryptionFailure": "cannot be decrypted (the task role needs kms:Decrypt on its key)",
    "AccessDeniedForDependencyException": "access denied to its KMS key",
}


def describe(exc: BaseException, what: str) -> str:
    """One line for a boto3/botocore failure (no trace, no request ids, no secret)."""
    from botocore.exceptions import (  # noqa: PLC0415  (lazy: see the module docstring)
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        NoRegionError,
    )

    if isinstance(exc, ClientError):
        return _client_error_text(exc.response, what)
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials (a task role in ECS, or AWS_PROFILE / AWS_ACCESS_KEY_ID)"
    if isinstance(exc, NoRegionError):
        return "no AWS region (set AWS_REGION or AWS_DEFAULT_REGION)"
    if isinstance(exc, BotoCoreError):
        return f"AWS cannot be reached: {exc}"
    return f"unexpected {type(exc).__name__}: {exc}"


def _client_error_text(response: dict[str, Any], what: str) -> str:
    error = response.get("Error", {})
    code = str(error.get("Code", "unknown"))
    if code in _CODES:
        return _CODES[code].format(what=what)
    if (
        code in ("403", "Forbidden")
        or response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 403
    ):
        return _CODES["AccessDenied"].format(what=what)
    return f"AWS refused the request: {code}: {error.get('Message', '')}".rstrip(": ")
