"""A throwaway MariaDB server of the tests' own: its own data directory, port and certificates.

The shared development server (``WXHUB_TEST_MYSQL_URL``) cannot be restarted with TLS or with
``require_secure_transport=ON``, and its users are server-wide, so the TLS and database-user
tests start one of these instead: ``mariadb-install-db`` into a temporary folder, then
``mariadbd`` on a free loopback port with a certificate signed by a CA the test made with the
``openssl`` command, requiring TLS of every TCP client. Administration goes through the unix
socket, which MariaDB counts as secure.

Start and stop wait on events (the socket answering a ping, the process exiting), never on a
fixed sleep. Needs ``mariadbd``, ``mariadb-install-db`` (Debian's ``mariadb-server-core``) and
``openssl``: :func:`missing_tools` says which are absent.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql
from sqlalchemy.engine import URL

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
POLL_S = 0.05
_TOOL_DIRS = ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin")


def _tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in _TOOL_DIRS:  # /usr/sbin is not on every user's PATH
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def missing_tools() -> list[str]:
    """The programs this module needs that are not installed."""
    return [name for name in ("mariadbd", "mariadb-install-db", "openssl") if _tool(name) is None]


@dataclass(frozen=True)
class Certificates:
    """The server's certificate, the CA that signed it, and a CA that did not."""

    ca: Path
    server_cert: Path
    server_key: Path
    other_ca: Path


def make_certificates(folder: Path) -> Certificates:
    """A CA, a server certificate it signs for 127.0.0.1 and localhost, and an unrelated CA."""
    folder.mkdir(parents=True, exist_ok=True)
    openssl = _tool("openssl") or "openssl"
    ec_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, cwd=folder)

    for name in ("ca", "other-ca"):
        run(
            "req", "-x509", *ec_key, "-days", "2", "-subj", f"/CN=wxhub test {name}",
            "-keyout", f"{name}.key", "-out", f"{name}.pem",
        )  # fmt: skip
    run("req", *ec_key, "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr")
    (folder / "server.ext").write_text(
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectAltName = IP:127.0.0.1, DNS:localhost\n"
    )
    run(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.pem",
    )  # fmt: skip
    return Certificates(
        ca=folder / "ca.pem",
        server_cert=folder / "server.pem",
        server_key=folder / "server.key",
        other_ca=folder / "other-ca.pem",
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class MariadbServer:
    """A running throwaway server: TCP on 127.0.0.1:``port`` (TLS required), and its socket."""

    folder: Path
    port: int
    certificates: Certificates
    process: subprocess.Popen[bytes]

    @property
    def socket_path(self) -> Path:
        return self.folder / "mariadbd.sock"

    def url(self, user: str = "root", password: str | None = None, database: str = "") -> URL:
        """A TCP URL to this server (TLS is for the caller to ask for)."""
        return URL.create(
            "mysql+pymysql",
            username=user,
            password=password,
            host="127.0.0.1",
            port=self.port,
            database=database or None,
        )

    def admin(self) -> pymysql.connections.Connection:
        """root over the unix socket (secure transport by MariaDB's rules), autocommit."""
        return pymysql.connect(
            unix_socket=str(self.socket_path), user="root", autocommit=True, connect_timeout=5
        )

    def execute(self, *statements: str) -> None:
        """Run ``statements`` as root."""
        with contextlib.closing(self.admin()) as conn, conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)

    def log_tail(self) -> str:
        log = self.folder / "error.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else "(no error log)"


@contextlib.contextmanager
def running_mariadb(folder: Path) -> Iterator[MariadbServer]:
    """A fresh server in ``folder`` requiring TLS of TCP clients, stopped when the block ends."""
    certificates = make_certificates(folder / "certs")
    datadir = folder / "data"
    user = ["--user=root"] if os.geteuid() == 0 else []  # mariadbd refuses root unless told
    small = ["--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M"]
    subprocess.run(
        [
            _tool("mariadb-install-db") or "mariadb-install-db",
            "--no-defaults",
            f"--datadir={datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            *user,
            *small,
        ],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    command = [
        _tool("mariadbd") or "mariadbd",
        "--no-defaults",
        f"--datadir={datadir}",
        f"--socket={folder / 'mariadbd.sock'}",
        f"--pid-file={folder / 'mariadbd.pid'}",
        f"--log-error={folder / 'error.log'}",
        "--bind-address=127.0.0.1",
        f"--port={port}",
        "--skip-name-resolve",
        "--skip-log-bin",
        "--local-infile=1",
        f"--ssl-ca={certificates.ca}",
        f"--ssl-cert={certificates.server_cert}",
        f"--ssl-key={certificates.server_key}",
        "--require-secure-transport=ON",
        *user,
        *small,
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = MariadbServer(folder, port, certificates, process)
    try:
        _wait_until_ready(server)
        yield server
    finally:
        _stop(process)


def _wait_until_ready(server: MariadbServer) -> None:
    """Ping over the socket until the server answers; fail at once if it exits."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if server.socket_path.exists():
            try:
                server.admin().close()
                return
            except pymysql.err.OperationalError:
                pass  # the socket exists a moment before the server accepts on it
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"mariadbd did not answer in {START_TIMEOUT_S:g} s: {server.log_tail()}"
            )
        # Waiting on the process: returns at once if the server died, else after POLL_S.
        with contextlib.suppress(subprocess.TimeoutExpired):
            code = server.process.wait(timeout=POLL_S)
            raise RuntimeError(f"mariadbd exited with {code}: {server.log_tail()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # a clean shutdown
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
