"""TLS for MySQL connections: whether the app encrypts, how it checks the server, and what
it says when that fails. The API and the job both get their engine from
:func:`wxhub.db.engine.make_engine`, which takes the :class:`DbTls` decided here.

Three modes (``WXHUB_DB_TLS``):

* ``verify``: TLS, and the server's certificate must chain to ``WXHUB_DB_CA_FILE`` (the RDS
  CA bundle shipped in the image by default) and name the host connected to. The default for
  an RDS endpoint (``*.rds.amazonaws.com``): a password must never cross a network to a
  server nobody checked.
* ``require``: TLS without checking the certificate (encrypted, but open to a man in the
  middle); for a server whose CA is not at hand.
* ``off``: no TLS at all (PyMySQL would otherwise try TLS unverified whenever the server
  offers it); the default for every other host: a laptop, docker compose, the tests.

A URL with its own ``ssl_*`` arguments (``?ssl_ca=...``) decides for itself: wxhub then adds
nothing, whatever ``WXHUB_DB_TLS`` says, so an unusual set-up (client certificates) needs no
new setting.

A failed certificate check is not a database that is down: retrying cannot fix it. The engine
turns it into :class:`DatabaseTlsError`, one line naming the setting and the host to fix,
which the job does not retry and the API answers as 503.
"""

from __future__ import annotations

import functools
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.engine import URL

TlsMode = Literal["off", "require", "verify", "url"]
TLS_SETTING = "WXHUB_DB_TLS"
CA_FILE_SETTING = "WXHUB_DB_CA_FILE"
# Where the Dockerfile puts the RDS global CA bundle (every region's RDS certificates).
DEFAULT_CA_FILE = "/etc/ssl/certs/rds-global-bundle.pem"
RDS_CA_BUNDLE_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
_CHOICES: tuple[TlsMode, ...] = ("off", "require", "verify")
_RDS_HOST = re.compile(r"[^\s]+\.rds\.amazonaws\.com(\.cn)?", re.IGNORECASE)

# The server's answers that no retry can change: MySQL 8 refuses a plain connection to a
# server requiring TLS with 3159 (MariaDB says only 1045, access denied, like a wrong password);
# PyMySQL raises 2026 when asked for TLS by a server without it.
_INSECURE_TRANSPORT_REFUSED = {3159}
_SERVER_WITHOUT_TLS = 2026


class DatabaseTlsError(Exception):
    """The database connection failed for a TLS reason a retry cannot fix; the message is
    one line naming the setting to change and the server."""


@dataclass(frozen=True)
class DbTls:
    """How the MySQL connections use TLS, and which setting decided it (named in errors)."""

    mode: TlsMode = "off"
    ca_file: str = DEFAULT_CA_FILE
    decided_by: str = TLS_SETTING

    def connect_args(self) -> dict[str, Any]:
        """PyMySQL's connect arguments for this mode (none for ``url``: the URL has them)."""
        if self.mode == "off":
            return {"ssl_disabled": True}
        if self.mode == "url":
            return {}
        return {"ssl": _context(self.mode, self.ca_file)}

    def describe(self) -> str:
        """The mode in words, for the start-up log line."""
        if self.mode == "verify":
            return f"verify (CA {self.ca_file}; {self.decided_by})"
        return f"{self.mode} ({self.decided_by})"


def is_rds_host(host: str | None) -> bool:
    """Whether ``host`` is an Amazon RDS endpoint, whose certificates the RDS bundle signs."""
    return bool(host and _RDS_HOST.fullmatch(host.strip()))


def resolve_tls(env: Mapping[str, str], url: URL) -> DbTls:
    """The TLS mode for ``url`` from ``WXHUB_DB_TLS``, ``WXHUB_DB_CA_FILE`` and the URL.

    Raises ValueError (one line naming the setting) for an unknown mode or, in ``verify``
    mode, a CA file that cannot be read: better at start-up than at the first connection.
    """
    if url.get_backend_name() not in ("mysql", "mariadb"):
        return DbTls("off", decided_by="not a MySQL URL")
    url_ssl = sorted(key for key in url.query if key.startswith("ssl"))
    if url_ssl:
        return DbTls("url", decided_by=f"the URL's own {', '.join(url_ssl)}")
    raw = env.get(TLS_SETTING, "").strip().lower()
    if raw and raw not in _CHOICES:
        raise ValueError(f"{TLS_SETTING}={raw!r} is not one of {', '.join(_CHOICES)}")
    if raw:
        mode: TlsMode = "verify" if raw == "verify" else "require" if raw == "require" else "off"
        decided_by = TLS_SETTING
    elif is_rds_host(url.host):
        mode, decided_by = "verify", f"{TLS_SETTING} unset: verify for an RDS host"
    else:
        mode, decided_by = "off", f"{TLS_SETTING} unset: off for a host that is not RDS"
    ca_file = env.get(CA_FILE_SETTING, "").strip() or DEFAULT_CA_FILE
    tls = DbTls(mode, ca_file, decided_by)
    if mode == "verify":
        _check_ca_file(ca_file)
    return tls


def _check_ca_file(ca_file: str) -> None:
    try:
        _context("verify", ca_file)
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValueError(
            f"{CA_FILE_SETTING}={ca_file!r} cannot be read as a CA bundle ({reason}); "
            f"{TLS_SETTING}=verify needs it: point {CA_FILE_SETTING} at the CA that signed the "
            f"database server's certificate (for RDS: {RDS_CA_BUNDLE_URL})"
        ) from None


@functools.lru_cache(maxsize=8)
def _context(mode: TlsMode, ca_file: str) -> ssl.SSLContext:
    """One context per mode and CA file: the bundle is parsed once, not per connection."""
    if mode == "require":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    context = ssl.create_default_context(cafile=ca_file)
    # As PyMySQL does for its own contexts: Python 3.13's strict X.509 checks refuse
    # certificates MySQL servers commonly present, without making the check any safer here.
    context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    return context


def tls_failure(error: BaseException, tls: DbTls, url: URL) -> DatabaseTlsError | None:
    """The one-line explanation of ``error`` (a driver error) when TLS is why it failed."""
    server = f"{url.host}:{url.port or 3306}"
    code = error.args[0] if error.args and isinstance(error.args[0], int) else None
    cause = getattr(error, "original_exception", None)
    if isinstance(cause, ssl.SSLCertVerificationError):
        reason = cause.verify_message or str(cause)
        if "mismatch" in reason:  # the CA is right, the name is not
            return DatabaseTlsError(
                f"the database server {server} presented a TLS certificate for another name "
                f"({reason}): connect by the name the certificate carries (for RDS, the "
                f"instance endpoint, not an IP address or an alias), or set {TLS_SETTING}=require"
            )
        return DatabaseTlsError(
            f"the database server {server} presented a TLS certificate that {_ca_of(tls)} "
            f"does not verify ({reason}): {_ca_fix(tls)}"
        )
    if code in _INSECURE_TRANSPORT_REFUSED:
        return DatabaseTlsError(
            f"the database server {server} refuses connections without TLS "
            f"(require_secure_transport=ON) and TLS is {tls.describe()}: set {TLS_SETTING}=verify "
            f"(with {CA_FILE_SETTING}, default {DEFAULT_CA_FILE}) or {TLS_SETTING}=require"
        )
    if code == _SERVER_WITHOUT_TLS and tls.mode in ("require", "verify"):
        return DatabaseTlsError(
            f"the database server {server} does not offer TLS, which {TLS_SETTING}={tls.mode} "
            f"needs ({tls.decided_by}): enable TLS on the server, or set {TLS_SETTING}=off"
        )
    return None


def _ca_of(tls: DbTls) -> str:
    if tls.mode == "url":
        return tls.decided_by
    return f"{CA_FILE_SETTING}={tls.ca_file}"


def _ca_fix(tls: DbTls) -> str:
    if tls.mode == "url":
        return "correct the ssl_* arguments of the database URL"
    return (
        f"set {CA_FILE_SETTING} to the CA bundle that signed it (for RDS: {RDS_CA_BUNDLE_URL}), "
        f"or {TLS_SETTING}=require to encrypt without verifying the server"
    )
