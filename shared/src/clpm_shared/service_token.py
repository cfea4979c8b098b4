"""The shared secret with which the gateway and the workers call the diagnostics service.

The diagnostics service answers only callers that send ``Authorization: Bearer <token>`` with
this token (its liveness and readiness probes excepted); users reach it only through the
gateway, which checks their role and never lets them choose the ``trigger`` of a run.

The token is ``DIAG_SERVICE_TOKEN``; when it is unset, every process of one installation reads
it from ``CLPM_DATA_DIR/service-token``, which the first of them creates (32 random bytes,
mode 0600). Docker and Kubernetes set the variable, as their containers share no data directory.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
from pathlib import Path

from clpm_shared.config import Settings

TOKEN_FILE = "service-token"  # noqa: S105 - a file name


def service_token(settings: Settings) -> str:
    """``DIAG_SERVICE_TOKEN``, else the installation's token file (created on first use)."""
    configured = settings.diagnostics.diag_service_token
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value()
    return _token_file(settings.runtime.clpm_data_dir / TOKEN_FILE)


def _token_file(path: Path) -> str:
    if path.is_file():
        return _read_token(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # written in full beside it, then linked into place: a process starting at the same time
    # either wins the link or reads the winner's complete file
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(secrets.token_urlsafe(32) + "\n")
        with contextlib.suppress(FileExistsError):  # another process was first: use theirs
            os.link(draft, path)
    finally:
        draft.unlink(missing_ok=True)
    return _read_token(path)


def _read_token(path: Path) -> str:
    token = path.read_text(encoding="ascii").strip()
    if not token:
        raise RuntimeError(f"{path} is empty: delete it or set DIAG_SERVICE_TOKEN")
    return token


def service_headers(token: str) -> dict[str, str]:
    """The headers a service sends with every call to the diagnostics service."""
    return {"Authorization": f"Bearer {token}"}


def is_service_token(authorization: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``token`` (constant-time comparison)."""
    if not authorization:
        return False
    scheme, _, presented = authorization.partition(" ")
    if scheme.lower() != "bearer" or not presented:
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())
