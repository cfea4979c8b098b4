"""Real servers for tests: PostgreSQL, Redis, influxd 1.x and a Keycloak-shaped OIDC provider.

Each server runs as a foreground child process on a free loopback port in its own temporary
directory, and is stopped at the end of the session. Servers can be stopped and started again
on the same port and data directory (``stop()`` / ``start()``) for outage tests.

A missing server binary fails the test run with a message that says what to install; it is
never a silent skip.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
REALM_FILE = REPO_ROOT / "deploy" / "keycloak" / "clpm-realm.json"
OIDC_DIR = Path(__file__).resolve().parent / "oidc"
PG_BIN_CANDIDATES = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
T = TypeVar("T")


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (the kernel picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    check: Callable[[], T], process: subprocess.Popen[bytes] | None, timeout: float = 30
) -> T:
    """Poll ``check`` until it stops raising; fail fast if ``process`` died."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            return check()
        except Exception as exc:  # the check raises until the server is ready
            last = exc
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}: {last}") from exc
            time.sleep(0.05)
    raise TimeoutError(f"server not ready after {timeout}s: {last}")


def require_binary(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} not found: install the Debian package '{package}' "
            "(the README's test command does this)",
            pytrace=False,
        )
    return found


@dataclass
class ManagedServer:
    """A server child process that can be stopped and started again on the same port."""

    name: str
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    start_timeout_s: float = field(default=90.0, repr=False)
    """How long a start may take: generous, since a loaded CI machine can take tens of seconds
    to bring a Node or Java server up again; a healthy start returns as soon as it answers."""

    def command(self) -> list[str]:
        raise NotImplementedError

    def popen_kwargs(self) -> dict[str, Any]:
        return {}

    def ready(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        if self.running:
            return
        log = open(self.workdir / "server.log", "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, **self.popen_kwargs()
        )
        log.close()
        try:
            wait_for(self.ready, self.process, timeout=self.start_timeout_s)
        except Exception:
            self.stop()
            raise RuntimeError(f"{self.name} did not start; log:\n{self.log_tail()}") from None

    def stop_signal(self) -> int:
        return signal.SIGTERM

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal())
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        path = self.workdir / "server.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# --------------------------------------------------------------------------- PostgreSQL


@dataclass
class PostgresServer(ManagedServer):
    """PostgreSQL cluster run as the ``postgres`` user (initdb/postgres refuse to run as root)."""

    bin_dir: Path = Path("/usr/lib/postgresql/15/bin")
    template: str = "clpm_template"
    _databases: int = 0

    @property
    def _as_postgres(self) -> dict[str, Any]:
        if os.geteuid() == 0:
            return {"user": "postgres", "group": "postgres", "extra_groups": []}
        return {}

    def initdb(self) -> None:
        subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.workdir / "data"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale",
                "C",
            ],
            check=True,
            capture_output=True,
            cwd=self.workdir,
            **self._as_postgres,
        )

    def command(self) -> list[str]:
        return [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.workdir / "data"),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={self.workdir}",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=300",
        ]

    def popen_kwargs(self) -> dict[str, Any]:
        return {"cwd": self.workdir, **self._as_postgres}

    def stop_signal(self) -> int:
        return signal.SIGINT  # fast shutdown; SIGTERM waits for clients to leave

    def ready(self) -> None:
        self.psql("SELECT 1")

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            [
                str(self.bin_dir / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-Atc",
                sql,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(result.stderr.strip())
        return result.stdout.strip()

    def url(self, database: str = "postgres", driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "test", *, migrated: bool = True) -> str:
        """A new empty database, or a copy of the migrated template; returns its name."""
        self._databases += 1
        name = f"{prefix}_{self._databases}_{os.getpid()}"
        template = f" TEMPLATE {self.template}" if migrated else ""
        self.psql(f'CREATE DATABASE "{name}"{template}')
        return name

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_bin() -> Path:
    for candidate in PG_BIN_CANDIDATES:
        if (candidate / "initdb").exists():
            return candidate
    pytest.fail("PostgreSQL server binaries not found: apt-get install postgresql", pytrace=False)


def migrate(url: str) -> None:
    """Run ``alembic upgrade head`` against ``url`` (as the docker ``migrate`` service does)."""
    subprocess.run(
        [
            str(Path(sys.executable).with_name("alembic")),
            "-c",
            str(REPO_ROOT / "migrations" / "alembic.ini"),
            "-x",
            f"url={url}",
            "upgrade",
            "head",
        ],
        check=True,
        capture_output=True,
        cwd=REPO_ROOT,
    )


def start_postgres(prefix: str = "clpm-pg-") -> PostgresServer:
    """A started PostgreSQL cluster on a free port, in a new directory the ``postgres`` user can
    reach (not under pytest's tmp_path). The caller stops it and removes ``workdir``."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    workdir.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
    server = PostgresServer("postgresql", free_port(), workdir, bin_dir=_pg_bin())
    try:
        server.initdb()
        server.start()
    except BaseException:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server with a template database already at ``alembic upgrade head``."""
    server = start_postgres()
    workdir = server.workdir
    try:
        server.psql(f'CREATE DATABASE "{server.template}"')
        migrate(server.url(server.template))
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh migrated database per test module (isolation), as an asyncpg URL."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    if postgres_server.running:
        postgres_server.drop_database(name)


# --------------------------------------------------------------------------- Redis


@dataclass
class RedisServer(ManagedServer):
    def command(self) -> list[str]:
        return [
            require_binary("redis-server", "redis-server"),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
        ]

    def ready(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            if not sock.recv(64).startswith(b"+PONG"):
                raise RuntimeError("no PONG")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer("redis", free_port(), tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


# --------------------------------------------------------------------------- InfluxDB 1.x


@dataclass
class InfluxServer(ManagedServer):
    rpc_port: int = 0

    def write_config(self) -> None:
        (self.workdir / "influxdb.conf").write_text(
            f"""reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{self.workdir}/meta"
[data]
  dir = "{self.workdir}/data"
  wal-dir = "{self.workdir}/wal"
  query-log-enabled = false
  cache-max-memory-size = "2g"
  max-series-per-database = 0
  max-values-per-tag = 0
[http]
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
  max-body-size = 0
  max-row-limit = 0
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
"""
        )

    def command(self) -> list[str]:
        return [
            require_binary("influxd", "influxdb"),
            "run",
            "-config",
            str(self.workdir / "influxdb.conf"),
        ]

    def ready(self) -> None:
        with urllib.request.urlopen(f"{self.url}/ping", timeout=2) as response:
            if response.status != 204:
                raise RuntimeError(f"ping answered {response.status}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, q: str, database: str | None = None) -> dict[str, Any]:
        params = {"q": q, "epoch": "ns"}
        if database:
            params["db"] = database
        data = urllib.parse.urlencode(params).encode()
        with urllib.request.urlopen(f"{self.url}/query", data=data, timeout=30) as response:
            result: dict[str, Any] = json.load(response)
            return result

    def create_database(self, name: str) -> str:
        self.query(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        self.query(f'DROP DATABASE "{name}"')


@pytest.fixture(scope="session")
def influx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    workdir = tmp_path_factory.mktemp("influxdb")
    server = InfluxServer("influxd", free_port(), workdir, rpc_port=free_port())
    server.write_config()
    server.start()
    yield server
    server.stop()


_influx_databases = 0


@pytest.fixture(scope="module")
def influx_database(influx_server: InfluxServer) -> Iterator[str]:
    """A fresh InfluxDB database per test module."""
    global _influx_databases  # noqa: PLW0603 - a counter for unique names within the session
    _influx_databases += 1
    name = influx_server.create_database(f"clpm_test_{_influx_databases}")
    yield name
    if influx_server.running:
        influx_server.drop_database(name)


# --------------------------------------------------------------------------- OIDC provider


@dataclass
class OidcProvider(ManagedServer):
    """npm ``oidc-provider`` under Keycloak's paths; realm read from the deployment realm file."""

    def command(self) -> list[str]:
        return [require_binary("node", "nodejs"), str(OIDC_DIR / "server.mjs")]

    def popen_kwargs(self) -> dict[str, Any]:
        env = {
            "PATH": os.environ.get("PATH", ""),  # noqa: TID251 - test harness, not a service
            "PORT": str(self.port),
            "REALM_FILE": str(REALM_FILE),
            "ENABLE_TEST_SIGNING": "1",
        }
        return {"env": env, "cwd": OIDC_DIR}

    def ready(self) -> None:
        with urllib.request.urlopen(self.discovery_url, timeout=2) as response:
            json.load(response)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}/realms/clpm"

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/certs"

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/token"

    def password_token(self, username: str, password: str | None = None) -> str:
        """An access token for a realm user through Keycloak's direct access grant."""
        form = urllib.parse.urlencode(
            {
                "grant_type": "password",
                "client_id": "clpm-cli",
                "client_secret": "clpm-cli-secret",
                "username": username,
                "password": password if password is not None else username,
            }
        ).encode()
        with urllib.request.urlopen(self.token_endpoint, data=form, timeout=10) as response:
            return str(json.load(response)["access_token"])

    def sign(self, payload: dict[str, Any], header: dict[str, Any] | None = None) -> str:
        """Test-only: a token with any claims, signed with the provider's real key."""
        body = json.dumps({"payload": payload, "header": header or {}}).encode()
        request = urllib.request.Request(
            f"{self.issuer}/test-only/sign", data=body, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(json.load(response)["token"])

    def rotate_key(self) -> str:
        """Test-only: sign from now on with a new key, the only one the JWKS still publishes."""
        request = urllib.request.Request(f"{self.issuer}/test-only/rotate", data=b"")
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(json.load(response)["kid"])


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    if not (OIDC_DIR / "node_modules" / "oidc-provider").exists():
        pytest.fail(
            f"oidc-provider is not installed: run `npm ci --prefix {OIDC_DIR}` "
            "(the README's test command does this)",
            pytrace=False,
        )
    server = OidcProvider("oidc-provider", free_port(), tmp_path_factory.mktemp("oidc"))
    server.start()
    yield server
    server.stop()


def load_realm() -> dict[str, Any]:
    """The realm that both Keycloak (docker) and the test provider use."""
    realm: dict[str, Any] = json.loads(REALM_FILE.read_text())
    return realm


__all__ = [
    "InfluxServer",
    "OidcProvider",
    "PostgresServer",
    "RedisServer",
    "free_port",
    "influx_database",
    "influx_server",
    "load_realm",
    "migrate",
    "oidc_provider",
    "postgres_server",
    "postgres_url",
    "redis_server",
    "wait_for",
]
