"""Bearer-token validation: OIDC access tokens (Keycloak) checked locally against the JWKS.

:class:`TokenValidator` turns the compact JWT of an ``Authorization: Bearer`` header into a
:class:`Principal` (subject, username, roles) or raises:

* :class:`InvalidTokenError` - the token is not acceptable (HTTP 401 with ``WWW-Authenticate``);
* :class:`IdentityProviderUnavailableError` - the signing keys cannot be fetched right now
  (HTTP 503 with ``Retry-After``; never a 401, because the token may well be valid).

Checks, in order:

1. Header: ``alg`` must be in the allow-list (``OIDC_ALGORITHMS``, asymmetric only: RS256/ES256
   by default; ``none`` and every ``HS*`` are refused before any key is touched, which closes the
   RSA-public-key-as-HMAC-secret confusion).
2. Key: chosen by ``kid`` from the JWKS (``OIDC_JWKS_URI``, or ``jwks_uri`` from the discovery
   document of ``OIDC_ISSUER``), fetched with httpx and cached for ``OIDC_JWKS_CACHE_S``. An unknown
   ``kid`` triggers one refetch (the provider rotated its key), at most once per
   ``OIDC_JWKS_MIN_REFRESH_S`` so that tokens with made-up ``kid`` values cannot hammer the
   provider. The key's type and ``alg`` (when the JWK states one) must match the header.
3. Signature (python-jose, pinned to the header's already allowed algorithm). If the cached
   key for the ``kid`` does not verify it, the JWKS is refetched once (same rate limit) in case
   the provider replaced the key behind an unchanged ``kid``. Then the claims:
   ``iss`` equals ``OIDC_ISSUER``; ``exp`` is required; ``exp``/``nbf``/``iat`` are checked with
   ``OIDC_LEEWAY_S`` seconds of clock skew.
4. Audience: ``OIDC_AUDIENCE`` must appear in ``aud`` (string or list) **or** equal ``azp``.
   Keycloak puts the API in ``aud`` only when an audience mapper (the realm's
   ``clpm-api-audience`` client scope) is attached to the requesting client; a token that the
   ``clpm-api`` client obtained for itself carries ``azp=clpm-api`` and often no such ``aud``.
   Both mean "issued for this API"; any other token (for example one for the ``account``
   service, or an ID token of the frontend) is refused.
5. ``typ``, when present, must be ``Bearer`` (Keycloak marks ID and refresh tokens differently).

An accepted token is remembered (bounded LRU) for up to a minute and never past its ``exp``, so
the many requests of one session pay for the signature check once (about 150 us for RS256).
The memory never outlasts the key that verified the token: once a JWKS fetch no longer
publishes that key (the provider rotated it away), the token is validated afresh, which then
refuses it (:meth:`KeySource.publishes`, checked when the source's ``generation`` changes).

Roles are the union of ``realm_access.roles`` and ``resource_access[OIDC_AUDIENCE].roles``.
CLPM's roles are ordered: ``viewer`` < ``engineer`` < ``admin``; :meth:`Principal.has_role`
applies that order, so an ``admin`` token satisfies an ``engineer`` requirement.

``sub`` is the subject; recent Keycloak versions omit ``sub`` from access tokens when the client
lacks the ``basic`` scope, so ``preferred_username`` stands in for it then.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import httpx
from jose import jwk, jws, jwt
from jose.exceptions import ExpiredSignatureError, JOSEError

from clpm_shared.config import AuthSettings

logger = logging.getLogger(__name__)

#: Algorithms this module will ever verify, whatever the settings say (no ``none``, no ``HS*``).
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "ES512"})
_KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC"}
_JWKS_TIMEOUT_S = 5.0
#: How long an accepted token is remembered (at most; never past its ``exp``).
ACCEPTED_TOKEN_MEMORY_S = 60.0


class Role(StrEnum):
    """CLPM roles, lowest first; each includes the rights of the ones before it."""

    VIEWER = "viewer"  # read loops, data, KPIs and diagnoses
    ENGINEER = "engineer"  # + loop configuration, run diagnostics
    ADMIN = "admin"  # + create and delete loops

    @property
    def rank(self) -> int:
        return _ROLE_ORDER.index(self)


_ROLE_ORDER = (Role.VIEWER, Role.ENGINEER, Role.ADMIN)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller, as read from a validated access token."""

    subject: str
    username: str
    roles: frozenset[str]
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def highest_role(self) -> Role | None:
        """The highest CLPM role in the token, or ``None`` when it carries none."""
        held = [role for role in _ROLE_ORDER if role.value in self.roles]
        return held[-1] if held else None

    def has_role(self, required: Role | str) -> bool:
        """Whether the caller holds ``required`` or a higher CLPM role."""
        needed = Role(required)
        highest = self.highest_role
        return highest is not None and highest.rank >= needed.rank


class AuthError(Exception):
    """Base class of the errors raised while authenticating a request."""


class InvalidTokenError(AuthError):
    """The bearer token is missing, malformed, forged, expired or not for this API (HTTP 401)."""


class _BadSignatureError(InvalidTokenError):
    """No candidate key verifies the signature (maybe only because the key was rotated)."""


class IdentityProviderUnavailableError(AuthError):
    """The signing keys cannot be fetched now (HTTP 503); retry after ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)


class KeySource(Protocol):
    """Where verification keys come from (the provider's JWKS, or the local issuer's key)."""

    async def key_for(self, kid: str | None, *, refresh: bool = False) -> list[dict[str, Any]]:
        """JWKs that may have signed a token with this ``kid`` (all keys when ``kid`` is None).

        ``refresh=True`` asks for a refetch first (the cached key failed to verify a
        signature: the provider may have replaced the key behind the same ``kid``); sources
        may ignore or rate-limit it.
        """
        ...

    @property
    def generation(self) -> int:
        """A number that changes whenever the set of published keys changes."""
        ...

    def publishes(self, key: Mapping[str, Any]) -> bool:
        """Whether ``key`` is among the keys currently published (no I/O)."""
        ...

    async def aclose(self) -> None: ...


def _fingerprint(key: Mapping[str, Any]) -> str:
    return json.dumps(key, sort_keys=True, default=str)


class StaticKeySource:
    """A fixed JWK set (the embedded local issuer's public key)."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self._keys = [dict(key) for key in jwks.get("keys", [])]
        self._published = frozenset(_fingerprint(key) for key in self._keys)

    @property
    def generation(self) -> int:
        return 0

    def publishes(self, key: Mapping[str, Any]) -> bool:
        return _fingerprint(key) in self._published

    async def key_for(self, kid: str | None, *, refresh: bool = False) -> list[dict[str, Any]]:
        if kid is None:
            return list(self._keys)
        return [key for key in self._keys if key.get("kid") == kid]

    async def aclose(self) -> None:
        return None


class JwksKeySource:
    """The identity provider's JWKS over HTTP, cached, refetched on expiry or on an unknown kid.

    * Cached keys are used for ``cache_s`` seconds.
    * An unknown ``kid`` refetches at once unless the last fetch is younger than
      ``min_refresh_s`` (rate limit); then the kid stays unknown (401).
    * A failed fetch keeps serving the stale keys it still has (the provider being briefly down
      must not log everyone out) and waits ``min_refresh_s`` before the next attempt; when a key
      is needed that only the provider could supply, :class:`IdentityProviderUnavailableError`.
    * Concurrent requests share one fetch (a lock), never one fetch each.
    """

    def __init__(
        self,
        *,
        issuer: str,
        jwks_uri: str | None,
        cache_s: float,
        min_refresh_s: float,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._issuer = issuer.rstrip("/")
        self._jwks_uri = jwks_uri
        self._cache_s = cache_s
        self._min_refresh_s = min_refresh_s
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(timeout=_JWKS_TIMEOUT_S)
        self._keys: list[dict[str, Any]] = []
        self._published: frozenset[str] = frozenset()
        self._generation = 0
        self._fetched_at: float | None = None  # monotonic time of the last successful fetch
        self._attempted_at: float | None = None  # monotonic time of the last attempt
        self._last_failed = False
        self._lock = asyncio.Lock()
        self.fetch_count = 0  # successful fetches, for tests and metrics

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    @property
    def generation(self) -> int:
        return self._generation

    def publishes(self, key: Mapping[str, Any]) -> bool:
        return _fingerprint(key) in self._published

    def _matching(self, kid: str | None) -> list[dict[str, Any]]:
        if kid is None:
            return list(self._keys)
        return [key for key in self._keys if key.get("kid") == kid]

    def _fresh(self, now: float) -> bool:
        return self._fetched_at is not None and now - self._fetched_at < self._cache_s

    def _refresh_allowed(self, now: float) -> bool:
        return self._attempted_at is None or now - self._attempted_at >= self._min_refresh_s

    def _retry_after(self, now: float) -> int:
        if self._attempted_at is None:
            return 1
        return int(max(1.0, self._min_refresh_s - (now - self._attempted_at)) + 0.999)

    async def key_for(self, kid: str | None, *, refresh: bool = False) -> list[dict[str, Any]]:
        now = time.monotonic()
        found = self._matching(kid)
        if found and self._fresh(now) and not refresh:
            return found
        async with self._lock:
            now = time.monotonic()
            found = self._matching(kid)  # another request may have refreshed meanwhile
            if found and self._fresh(now) and not refresh:
                return found
            if self._refresh_allowed(now):
                if refresh:
                    logger.info("signature check failed, refetching the JWKS", extra={"kid": kid})
                elif found or self._fetched_at is None:
                    logger.debug("fetching the JWKS")
                else:
                    logger.info("unknown key id, refetching the JWKS", extra={"kid": kid})
                await self._try_fetch(now)
            found = self._matching(kid)
            if found:
                return found
            if self._last_failed:
                raise IdentityProviderUnavailableError(
                    "the identity provider's signing keys cannot be fetched",
                    self._retry_after(time.monotonic()),
                )
            return []

    async def _try_fetch(self, now: float) -> None:
        self._attempted_at = now
        try:
            keys = await self._fetch()
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            self._last_failed = True
            logger.warning(
                "JWKS fetch failed; using %d cached keys",
                len(self._keys),
                extra={"error": f"{type(exc).__name__}: {exc}"},
            )
            return
        published = frozenset(_fingerprint(key) for key in keys)
        if published != self._published:
            self._generation += 1
        self._keys = keys
        self._published = published
        self._fetched_at = time.monotonic()
        self._last_failed = False
        self.fetch_count += 1

    async def _fetch(self) -> list[dict[str, Any]]:
        uri = self._jwks_uri
        if not uri:
            discovery = await self._client.get(f"{self._issuer}/.well-known/openid-configuration")
            discovery.raise_for_status()
            uri = str(discovery.json()["jwks_uri"])
            self._jwks_uri = uri
        response = await self._client.get(uri)
        response.raise_for_status()
        keys = response.json()["keys"]
        if not isinstance(keys, list):
            raise TypeError("JWKS 'keys' is not a list")
        return [dict(key) for key in keys if isinstance(key, dict) and key.get("use") != "enc"]


def _check_time_claims(claims: Mapping[str, Any]) -> None:
    """``exp`` (required), ``nbf`` and ``iat`` must be NumericDate values (RFC 7519 section 2):
    numbers, not strings, lists, booleans or null."""
    for name in ("exp", "nbf", "iat"):
        if name not in claims and name != "exp":
            continue
        value = claims.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidTokenError(f"token rejected: claim {name!r} must be a number")


@dataclass(slots=True)
class _Accepted:
    """A remembered token: whom it names, until when, which key verified it, and the key
    source's generation when that key was last seen published."""

    principal: Principal
    until: float
    key: Mapping[str, Any]
    generation: int


class TokenValidator:
    """Validates bearer access tokens against the settings (see the module docstring)."""

    def __init__(
        self,
        settings: AuthSettings,
        keys: KeySource,
        *,
        remember_s: float = ACCEPTED_TOKEN_MEMORY_S,
        remember_max: int = 4096,
    ) -> None:
        self._settings = settings
        self._keys = keys
        self._algorithms = frozenset(settings.oidc_algorithms) & ASYMMETRIC_ALGORITHMS
        # Tokens already accepted, until min(exp + leeway, accepted + remember_s) and while the
        # key that verified them is published: a repeated token (every request of a session)
        # skips the RSA/EC verification.
        self._accepted: OrderedDict[str, _Accepted] = OrderedDict()
        self._remember_s = remember_s
        self._remember_max = remember_max

    @classmethod
    def for_oidc(
        cls,
        settings: AuthSettings,
        client: httpx.AsyncClient | None = None,
        *,
        remember_s: float = ACCEPTED_TOKEN_MEMORY_S,
    ) -> TokenValidator:
        """A validator that reads keys from the provider (``OIDC_JWKS_URI`` or discovery)."""
        source = JwksKeySource(
            issuer=settings.oidc_issuer,
            jwks_uri=settings.oidc_jwks_uri,
            cache_s=settings.oidc_jwks_cache_s,
            min_refresh_s=settings.oidc_jwks_min_refresh_s,
            client=client,
        )
        return cls(settings, source, remember_s=remember_s)

    @property
    def key_source(self) -> KeySource:
        return self._keys

    async def aclose(self) -> None:
        await self._keys.aclose()

    async def validate(self, token: str) -> Principal:
        """The principal of a valid token; :class:`InvalidTokenError` otherwise."""
        principal = self.remembered(token)
        if principal is None:
            principal, key = await self._validate(token)
            self._remember(token, principal, key)
        return principal

    def remembered(self, token: str) -> Principal | None:
        """The principal of ``token`` if it was accepted before and its memory has not run out.

        ``None`` says nothing about the token: it may be valid but not (or no longer)
        remembered; :meth:`validate` decides. No I/O, no signature check: for fast paths.
        """
        remembered = self._accepted.get(token)
        if remembered is None:
            return None
        if time.time() >= remembered.until:
            self._accepted.pop(token, None)
            return None
        generation = self._keys.generation
        if remembered.generation != generation:  # the keys changed since: is its key still out?
            if not self._keys.publishes(remembered.key):
                self._accepted.pop(token, None)
                return None
            remembered.generation = generation
        return remembered.principal

    def _remember(self, token: str, principal: Principal, key: Mapping[str, Any]) -> None:
        if self._remember_s <= 0:
            return
        now = time.time()
        expires = float(principal.claims["exp"]) + self._settings.oidc_leeway_s
        self._accepted[token] = _Accepted(
            principal, min(expires, now + self._remember_s), key, self._keys.generation
        )
        while len(self._accepted) > self._remember_max:
            self._accepted.popitem(last=False)

    async def _validate(self, token: str) -> tuple[Principal, Mapping[str, Any]]:
        """The principal of a valid token and the JWK that verified its signature."""
        try:
            header = jwt.get_unverified_header(token)
        except JOSEError as exc:
            raise InvalidTokenError("malformed token") from exc
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise InvalidTokenError(f"token algorithm {alg!r} is not allowed")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidTokenError("token key id is not a string")
        candidates = [key for key in await self._keys.key_for(kid) if _key_fits(key, alg)]
        if not candidates:
            raise InvalidTokenError("token signed with an unknown key")
        try:
            claims, key = self._decode(token, alg, candidates)
        except _BadSignatureError as exc:
            # The provider may have replaced the key behind the same kid: refetch (rate-limited)
            # and try again only if the keys actually changed.
            fresh = [
                key for key in await self._keys.key_for(kid, refresh=True) if _key_fits(key, alg)
            ]
            if not fresh or fresh == candidates:
                raise InvalidTokenError("token signature is invalid") from exc
            try:
                claims, key = self._decode(token, alg, fresh)
            except _BadSignatureError as again:
                raise InvalidTokenError("token signature is invalid") from again
        return self._principal(claims), key

    def _decode(
        self, token: str, alg: str, candidates: Iterable[dict[str, Any]]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Claims after signature and claim checks, and the candidate that verified the
        signature; :class:`_BadSignatureError` if no key fits."""
        options = {
            "leeway": self._settings.oidc_leeway_s,
            "verify_aud": False,  # checked below: aud or azp
            "require_exp": True,
            "require_iss": True,
        }
        last: JOSEError | None = None
        for candidate in candidates:
            try:
                key = jwk.construct(candidate, alg)
                jws.verify(token, key, algorithms=[alg])
            except JOSEError as exc:  # JWSError, JWKError ...: not signed with this key
                last = exc
                continue
            # The signature is good: from here on every error is about the claims.
            _check_time_claims(jwt.get_unverified_claims(token))
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    key,
                    algorithms=[alg],
                    issuer=self._settings.oidc_issuer,
                    options=options,
                )
            except ExpiredSignatureError as exc:
                raise InvalidTokenError("token expired") from exc
            except (JOSEError, TypeError, ValueError, OverflowError) as exc:
                raise InvalidTokenError(f"token rejected: {exc}") from exc
            return claims, candidate
        raise _BadSignatureError("token signature is invalid") from last

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        audience = self._settings.oidc_audience
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else list(aud) if isinstance(aud, list) else []
        if audience not in audiences and claims.get("azp") != audience:
            raise InvalidTokenError(f"token is not issued for audience {audience!r}")
        typ = claims.get("typ")
        if typ is not None and str(typ).lower() != "bearer":
            raise InvalidTokenError(f"token type {typ!r} is not an access token")
        username = claims.get("preferred_username")
        subject = claims.get("sub") or username
        if not isinstance(subject, str) or not subject:
            raise InvalidTokenError("token has neither sub nor preferred_username")
        return Principal(
            subject=subject,
            username=username if isinstance(username, str) and username else subject,
            roles=frozenset(roles_from_claims(claims, audience)),
            claims=dict(claims),
        )


def roles_from_claims(claims: Mapping[str, Any], client_id: str) -> set[str]:
    """Realm roles plus the roles of ``client_id`` (Keycloak's two role claims)."""
    roles: set[str] = set()
    realm_access = claims.get("realm_access")
    if isinstance(realm_access, Mapping):
        roles.update(_strings(realm_access.get("roles")))
    resource_access = claims.get("resource_access")
    if isinstance(resource_access, Mapping):
        client = resource_access.get(client_id)
        if isinstance(client, Mapping):
            roles.update(_strings(client.get("roles")))
    return roles


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, str)]


def _key_fits(key: Mapping[str, Any], alg: str) -> bool:
    """The JWK's type suits ``alg`` and its own ``alg`` (if stated) is the same."""
    if key.get("kty") != _KEY_TYPES.get(alg[:2]):
        return False
    stated = key.get("alg")
    return stated is None or stated == alg


__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "AuthError",
    "IdentityProviderUnavailableError",
    "InvalidTokenError",
    "JwksKeySource",
    "KeySource",
    "Principal",
    "Role",
    "StaticKeySource",
    "TokenValidator",
    "roles_from_claims",
]
