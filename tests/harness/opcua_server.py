"""A real OPC UA server for tests: asyncua's own server on a free loopback port.

It runs in the test's event loop (it is asyncio code), listens on TCP like any plant server
and can be stopped and started again on the same port (a server restart mid-stream). Its
variables are strings node ids in namespace 2 (``ns=2;s=FIC101.PV``); tests write their
values (e.g. from the project's simulator) with :meth:`OpcUaTestServer.write`. With
``users`` set, only those user names and passwords are accepted (no anonymous sessions).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asyncua import Node, Server, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.internal_server import InternalServer
from asyncua.server.user_managers import UserManager
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.harness.servers import free_port

NAMESPACE = "urn:clpm:test-plant"

# asyncua logs every request at INFO; keep the test output readable
for _name in ("asyncua", "asyncua.server", "asyncua.client"):
    logging.getLogger(_name).setLevel(logging.WARNING)


class PasswordUsers(UserManager):
    """Accepts exactly the given user names and passwords; refuses anonymous sessions."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self.users = dict(users)

    def get_user(
        self,
        iserver: InternalServer,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        if username is not None and self.users.get(username) == password:
            return User(role=UserRole.User)
        return None


@dataclass
class OpcUaTestServer:
    """asyncua server with one variable per name (typed by its initial value); restartable."""

    initial: Mapping[str, Any]
    port: int = field(default_factory=free_port)
    users: Mapping[str, str] | None = None
    certificate_dir: Path | None = None
    """When set: only Basic256Sha256 SignAndEncrypt, with a self-signed certificate made here."""
    server: Server | None = field(default=None, repr=False)
    nodes: dict[str, Node] = field(default_factory=dict, repr=False)
    values: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/clpm/"

    @staticmethod
    def node_id(name: str) -> str:
        return f"ns=2;s={name}"

    @property
    def running(self) -> bool:
        return self.server is not None

    async def start(self) -> None:
        """Start (again) on the same port with the last written values."""
        if self.server is not None:
            return
        manager = PasswordUsers(self.users) if self.users is not None else None
        server = Server(user_manager=manager)
        await server.init()
        server.set_endpoint(self.endpoint)
        if self.certificate_dir is None:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        else:
            cert, key = await make_certificate(
                self.certificate_dir, "server", "urn:clpm:test-plant:server", server=True
            )
            await server.load_certificate(cert)
            await server.load_private_key(key)
            server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
        if self.users is not None:
            server.set_security_IDs(["Username"])
        index = await server.register_namespace(NAMESPACE)
        assert index == 2, index
        plant = await server.nodes.objects.add_object(ua.NodeId("Plant", index), "Plant")
        self.nodes = {}
        for name, first in self.initial.items():
            value = self.values.get(name, first)
            node = await plant.add_variable(
                ua.NodeId(name, index), name, ua.Variant(value, _variant_type(first))
            )
            self.nodes[name] = node
        await server.start()
        self.server = server

    async def stop(self) -> None:
        if self.server is None:
            return
        server, self.server = self.server, None
        await server.stop()

    async def write(self, values: Mapping[str, Any]) -> None:
        """Set variables by name (the values survive a restart)."""
        self.values.update(values)
        if self.server is None:
            return
        for name, value in values.items():
            await self.server.write_attribute_value(
                self.nodes[name].nodeid,
                ua.DataValue(ua.Variant(value, _variant_type(self.initial[name]))),
            )

    async def write_bad(self, names: Iterable[str]) -> None:
        """Mark variables as bad quality (BadSensorFailure), as a failed transmitter does."""
        assert self.server is not None
        for name in names:
            await self.server.write_attribute_value(
                self.nodes[name].nodeid,
                ua.DataValue(
                    ua.Variant(0.0, ua.VariantType.Double),
                    StatusCode_=ua.StatusCode(ua.StatusCodes.BadSensorFailure),
                ),
            )


def _variant_type(value: Any) -> ua.VariantType:
    if isinstance(value, bool):
        return ua.VariantType.Boolean
    if isinstance(value, int):
        return ua.VariantType.Int32
    if isinstance(value, str):
        return ua.VariantType.String
    return ua.VariantType.Double


async def make_certificate(
    directory: Path, name: str, app_uri: str, *, server: bool = False
) -> tuple[Path, Path]:
    """A self-signed application certificate (DER) and its key (PEM); kept if they exist."""
    directory.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - a test directory
    cert, key = directory / f"{name}-cert.der", directory / f"{name}-key.pem"
    use = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    await setup_self_signed_certificate(
        key, cert, app_uri, socket.gethostname(), [use], {"commonName": f"clpm test {name}"}
    )
    return cert, key
