"""Bearer-token validation against the real Keycloak-shaped OIDC provider of the test harness.

Every token here is either issued by the provider (password grant) or signed with its real key
through its test-only signing endpoint, except the attacks that need another key (unknown kid,
HS256 with the public key, alg none), which are built here from scratch.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwk, jwt

from clpm_shared.auth import (
    IdentityProviderUnavailableError,
    InvalidTokenError,
    JwksKeySource,
    Principal,
    Role,
    TokenValidator,
)
from clpm_shared.config import AuthSettings, load_settings
from tests.harness.servers import OidcProvider, free_port


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def auth_settings(provider: OidcProvider, **overrides: Any) -> AuthSettings:
    values: dict[str, Any] = {
        "oidc_issuer": provider.issuer,
        "oidc_jwks_uri": provider.jwks_uri,
        "oidc_audience": "clpm-api",
        "oidc_leeway_s": 30,
        "oidc_jwks_cache_s": 600,
        "oidc_jwks_min_refresh_s": 10,
    }
    values.update(overrides)
    return load_settings(auth=values).auth


@pytest.fixture
async def validator(oidc_provider: OidcProvider) -> AsyncIterator[TokenValidator]:
    checker = TokenValidator.for_oidc(auth_settings(oidc_provider))
    yield checker
    await checker.aclose()


def claims_like(
    provider: OidcProvider, username: str = "engineer", **changes: Any
) -> dict[str, Any]:
    """The claims of a real token of ``username``, with ``changes`` applied (None deletes)."""
    claims: dict[str, Any] = jwt.get_unverified_claims(provider.password_token(username))
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def rsa_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


async def rejected(validator: TokenValidator, token: str) -> str:
    with pytest.raises(InvalidTokenError) as caught:
        await validator.validate(token)
    return str(caught.value)


# --------------------------------------------------------------------------- accepted


@pytest.mark.parametrize(
    ("username", "expected_roles", "highest"),
    [
        ("viewer", {"viewer"}, Role.VIEWER),
        ("engineer", {"viewer", "engineer"}, Role.ENGINEER),
        ("admin", {"viewer", "engineer", "admin"}, Role.ADMIN),
        ("norole", set(), None),
    ],
)
async def test_real_tokens_give_the_users_roles(
    validator: TokenValidator,
    oidc_provider: OidcProvider,
    username: str,
    expected_roles: set[str],
    highest: Role | None,
) -> None:
    principal = await validator.validate(oidc_provider.password_token(username))
    assert principal.username == username
    assert principal.subject
    assert set(principal.roles) >= expected_roles
    assert principal.highest_role is highest


def test_role_order_viewer_engineer_admin() -> None:
    admin = Principal("s", "a", frozenset({"admin"}))
    engineer = Principal("s", "e", frozenset({"engineer"}))
    viewer = Principal("s", "v", frozenset({"viewer", "offline_access"}))
    nobody = Principal("s", "n", frozenset({"uma_authorization"}))
    assert all(admin.has_role(role) for role in Role)
    assert engineer.has_role("viewer")
    assert engineer.has_role("engineer")
    assert not engineer.has_role("admin")
    assert viewer.has_role(Role.VIEWER)
    assert not viewer.has_role(Role.ENGINEER)
    assert not any(nobody.has_role(role) for role in Role)
    with pytest.raises(ValueError, match="superuser"):
        admin.has_role("superuser")


async def test_client_roles_of_the_api_count_too(
    validator: TokenValidator, oidc_provider: OidcProvider
) -> None:
    claims = claims_like(
        oidc_provider,
        "norole",
        realm_access={"roles": ["offline_access"]},
        resource_access={"clpm-api": {"roles": ["engineer"]}, "other": {"roles": ["admin"]}},
    )
    principal = await validator.validate(oidc_provider.sign(claims))
    assert principal.highest_role is Role.ENGINEER  # "admin" of another client does not count


async def test_audience_only_in_azp_is_accepted(
    validator: TokenValidator, oidc_provider: OidcProvider
) -> None:
    # Keycloak: a token the clpm-api client obtained for itself, without an audience mapper.
    claims = claims_like(oidc_provider, "viewer", aud="account", azp="clpm-api")
    principal = await validator.validate(oidc_provider.sign(claims))
    assert principal.username == "viewer"
    claims = claims_like(oidc_provider, "viewer", aud=None, azp="clpm-api")
    assert (await validator.validate(oidc_provider.sign(claims))).username == "viewer"


async def test_audience_in_an_aud_list_is_accepted(
    validator: TokenValidator, oidc_provider: OidcProvider
) -> None:
    claims = claims_like(oidc_provider, aud=["account", "clpm-api"], azp="clpm-frontend")
    assert (await validator.validate(oidc_provider.sign(claims))).username == "engineer"


async def test_small_clock_skew_is_tolerated(
    validator: TokenValidator, oidc_provider: OidcProvider
) -> None:
    now = int(time.time())
    claims = claims_like(oidc_provider, exp=now - 10, nbf=now + 10, iat=now + 10)  # leeway 30 s
    assert (await validator.validate(oidc_provider.sign(claims))).username == "engineer"


async def test_subject_falls_back_to_username_without_sub(
    validator: TokenValidator, oidc_provider: OidcProvider
) -> None:
    claims = claims_like(oidc_provider, "viewer", sub=None)
    principal = await validator.validate(oidc_provider.sign(claims))
    assert principal.subject == "viewer"


async def test_keys_come_from_discovery_when_no_jwks_uri_is_set(
    oidc_provider: OidcProvider,
) -> None:
    checker = TokenValidator.for_oidc(auth_settings(oidc_provider, oidc_jwks_uri=None))
    try:
        principal = await checker.validate(oidc_provider.password_token("admin"))
    finally:
        await checker.aclose()
    assert principal.has_role(Role.ADMIN)


async def test_jwks_is_fetched_once_and_cached(oidc_provider: OidcProvider) -> None:
    source = JwksKeySource(
        issuer=oidc_provider.issuer, jwks_uri=oidc_provider.jwks_uri, cache_s=600, min_refresh_s=10
    )
    checker = TokenValidator(auth_settings(oidc_provider), source)
    tokens = [oidc_provider.password_token(user) for user in ("viewer", "engineer", "admin")]
    try:
        for token in tokens * 3:
            await checker.validate(token)
    finally:
        await checker.aclose()
    assert source.fetch_count == 1


async def test_accepted_tokens_are_remembered_but_never_past_exp(
    oidc_provider: OidcProvider,
) -> None:
    source = JwksKeySource(
        issuer=oidc_provider.issuer, jwks_uri=oidc_provider.jwks_uri, cache_s=600, min_refresh_s=0
    )
    checker = TokenValidator(auth_settings(oidc_provider, oidc_leeway_s=0), source, remember_s=60)
    exp = int(time.time()) + 2
    short_lived = oidc_provider.sign(claims_like(oidc_provider, exp=exp))
    try:
        assert checker.remembered(short_lived) is None  # not validated yet
        first = await checker.validate(short_lived)
        assert await checker.validate(short_lived) is first  # remembered: same object
        assert checker.remembered(short_lived) is first
        await asyncio.sleep(exp + 1.05 - time.time())  # python-jose accepts up to exp + 1 s
        assert checker.remembered(short_lived) is None  # forgotten at exp (leeway 0)
        assert "expired" in await rejected(checker, short_lived)
    finally:
        await checker.aclose()


# --------------------------------------------------------------------------- rejected


async def test_expired_token_is_rejected(
    validator: TokenValidator, oidc_provider: OidcProvider
) -> None:
    now = int(time.time())
    claims = claims_like(oidc_provider, iat=now - 3600, exp=now - 60)  # beyond the 30 s leeway
    assert "expired" in await rejected(validator, oidc_provider.sign(claims))


async def test_token_without_exp_is_rejected(
    validator: TokenValidator, oidc_provider: OidcProvider
) -> None:
    claims = claims_like(oidc_provider, exp=None)
    assert "exp" in await rejected(validator, oidc_provider.sign(claims))


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("exp", None),
        ("exp", [4102444800]),
        ("exp", "4102444800"),
        ("exp", True),
        ("nbf", None),
        ("nbf", [0]),
        ("iat", None),
        ("iat", {"at": 0}),
    ],
)
async def test_time_claims_that_are_not_numbers_are_rejected_not_a_crash(
    validator: TokenValidator, oidc_provider: OidcProvider, claim: str, value: Any
) -> None:
    """A validly signed token with exp/nbf/iat null, a list or a string used to raise a
    TypeError (a 500 at the gateway) or, for a string exp, to be accepted."""
    claims = claims_like(oidc_provider)
    claims[claim] = value
    assert claim in await rejected(validator, oidc_provider.sign(claims))


async def test_not_yet_valid_token_is_rejected(
    validator: TokenValidator, oidc_provider: OidcProvider
) -> None:
    claims = claims_like(oidc_provider, nbf=int(time.time()) + 120)
    assert "not yet valid" in await rejected(validator, oidc_provider.sign(claims))


async def test_wrong_issuer_is_rejected(
    validator: TokenValidator, oidc_provider: OidcProvider
) -> None:
    claims = claims_like(oidc_provider, iss="http://127.0.0.1:1/realms/other")
    assert "issuer" in (await rejected(validator, oidc_provider.sign(claims))).lower()


async def test_wrong_audience_is_rejected(
    validator: TokenValidator, oidc_provider: OidcProvider
) -> None:
    claims = claims_like(oidc_provider, aud="account", azp="clpm-frontend")
    assert "audience" in await rejected(validator, oidc_provider.sign(claims))
    claims = claims_like(oidc_provider, aud=["account", "other-api"], azp="other-api")
    assert "audience" in await rejected(validator, oidc_provider.sign(claims))


async def test_id_token_is_not_an_access_token(
    validator: TokenValidator, oidc_provider: OidcProvider
) -> None:
    claims = claims_like(oidc_provider, typ="ID")
    assert "access token" in await rejected(validator, oidc_provider.sign(claims))


async def test_alg_none_is_rejected(validator: TokenValidator, oidc_provider: OidcProvider) -> None:
    payload = b64(json.dumps(claims_like(oidc_provider, "admin")).encode())
    for header in ({"alg": "none", "typ": "JWT"}, {"alg": "None", "kid": "clpm-test-rsa-1"}):
        token = f"{b64(json.dumps(header).encode())}.{payload}."
        assert "not allowed" in await rejected(validator, token)


async def test_hs256_signed_with_the_public_key_is_rejected(
    validator: TokenValidator, oidc_provider: OidcProvider
) -> None:
    async with httpx.AsyncClient() as client:
        jwks = (await client.get(oidc_provider.jwks_uri)).json()
    public = jwks["keys"][0]
    pem = jwk.construct(public, "RS256").to_pem()
    header = {"alg": "HS256", "typ": "JWT", "kid": public["kid"]}
    signing_input = (
        f"{b64(json.dumps(header).encode())}."
        f"{b64(json.dumps(claims_like(oidc_provider, 'admin')).encode())}"
    )
    signature = b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())
    assert "not allowed" in await rejected(validator, f"{signing_input}.{signature}")


async def test_token_signed_with_an_unknown_key_is_rejected(
    validator: TokenValidator, oidc_provider: OidcProvider
) -> None:
    claims = claims_like(oidc_provider, "admin")
    forged = jwt.encode(claims, rsa_pem().decode(), algorithm="RS256", headers={"kid": "attacker"})
    assert "unknown key" in await rejected(validator, forged)


async def test_own_key_under_the_providers_kid_is_rejected(
    validator: TokenValidator, oidc_provider: OidcProvider
) -> None:
    real_kid = jwt.get_unverified_header(oidc_provider.password_token("viewer"))["kid"]
    claims = claims_like(oidc_provider, "admin")
    forged = jwt.encode(claims, rsa_pem().decode(), algorithm="RS256", headers={"kid": real_kid})
    assert "signature" in await rejected(validator, forged)


async def test_es256_token_from_an_unknown_ec_key_is_rejected(
    validator: TokenValidator, oidc_provider: OidcProvider
) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    real_kid = jwt.get_unverified_header(oidc_provider.password_token("viewer"))["kid"]
    claims = claims_like(oidc_provider, "admin")
    forged = jwt.encode(claims, key.decode(), algorithm="ES256", headers={"kid": real_kid})
    assert "unknown key" in await rejected(validator, forged)  # an RSA key never checks ES256


async def test_tampered_payload_is_rejected(
    validator: TokenValidator, oidc_provider: OidcProvider
) -> None:
    header, _, signature = oidc_provider.password_token("viewer").split(".")
    elevated = claims_like(
        oidc_provider, "viewer", realm_access={"roles": ["viewer", "engineer", "admin"]}
    )
    tampered = f"{header}.{b64(json.dumps(elevated).encode())}.{signature}"
    assert "signature" in await rejected(validator, tampered)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "a.b", "Bearer x.y.z", "...."])
async def test_malformed_tokens_are_rejected(validator: TokenValidator, garbage: str) -> None:
    await rejected(validator, garbage)


# --------------------------------------------------------------------------- rotation, outage


@dataclass
class RotatingProvider(OidcProvider):
    """A provider of its own (not the shared one) whose key id can change between starts."""

    kid: str = "rotation-1"

    def popen_kwargs(self) -> dict[str, Any]:
        options = super().popen_kwargs()
        options["env"] = {**options["env"], "KID": self.kid}
        return options


@pytest.fixture
def rotating_provider(tmp_path: Path) -> Iterator[RotatingProvider]:
    provider = RotatingProvider("oidc-rotating", free_port(), tmp_path)
    provider.start()
    yield provider
    provider.stop()


async def test_key_rotation_is_picked_up_and_refetches_are_rate_limited(
    rotating_provider: RotatingProvider,
) -> None:
    source = JwksKeySource(
        issuer=rotating_provider.issuer,
        jwks_uri=rotating_provider.jwks_uri,
        cache_s=600,
        min_refresh_s=1.0,
    )
    checker = TokenValidator(auth_settings(rotating_provider), source, remember_s=0)
    try:
        forged_key = rsa_pem().decode()
        admin_claims = claims_like(rotating_provider, "admin")
        forged_tokens = [
            jwt.encode(admin_claims, forged_key, algorithm="RS256", headers={"kid": f"bad-{n}"})
            for n in range(20)
        ]
        old_token = rotating_provider.password_token("viewer")
        await checker.validate(old_token)
        assert source.fetch_count == 1

        # Made-up key ids right after a fetch: rejected without asking the provider again.
        for forged in forged_tokens:
            assert "unknown key" in await rejected(checker, forged)
        assert source.fetch_count == 1

        # The provider restarts with a new key under a new kid.
        rotating_provider.stop()
        rotating_provider.kid = "rotation-2"
        rotating_provider.start()
        await asyncio.sleep(1.05)  # past the refetch rate limit
        new_token = rotating_provider.password_token("engineer")
        assert (await checker.validate(new_token)).username == "engineer"
        assert source.fetch_count == 2
        # The old key is gone from the JWKS: its tokens no longer validate.
        assert "unknown key" in await rejected(checker, old_token)

        # And again with a new key behind the SAME kid: a failed signature check refetches.
        rotating_provider.stop()
        rotating_provider.start()
        await asyncio.sleep(1.05)
        same_kid_token = rotating_provider.password_token("admin")
        assert jwt.get_unverified_header(same_kid_token)["kid"] == "rotation-2"
        assert (await checker.validate(same_kid_token)).username == "admin"
        assert source.fetch_count == 3
    finally:
        await checker.aclose()


async def test_provider_down_without_cached_keys_is_unavailable_not_invalid(
    rotating_provider: RotatingProvider,
) -> None:
    token = rotating_provider.password_token("viewer")
    rotating_provider.stop()
    checker = TokenValidator.for_oidc(auth_settings(rotating_provider, oidc_jwks_min_refresh_s=1.0))
    try:
        with pytest.raises(IdentityProviderUnavailableError) as first:
            await checker.validate(token)
        assert first.value.retry_after_s >= 1
        began = time.monotonic()
        with pytest.raises(IdentityProviderUnavailableError):
            await checker.validate(token)  # within the rate limit: no new attempt
        assert time.monotonic() - began < 0.05

        rotating_provider.start()  # new key: the old token must now fail, new ones pass
        await asyncio.sleep(1.05)
        fresh = rotating_provider.password_token("viewer")
        assert (await checker.validate(fresh)).username == "viewer"
    finally:
        await checker.aclose()


async def test_provider_down_with_cached_keys_keeps_validating(
    rotating_provider: RotatingProvider,
) -> None:
    checker = TokenValidator.for_oidc(
        auth_settings(rotating_provider, oidc_jwks_cache_s=1, oidc_jwks_min_refresh_s=0),
        remember_s=0,  # check the keys every time, not the memory of accepted tokens
    )
    token = rotating_provider.password_token("engineer")
    try:
        await checker.validate(token)
        rotating_provider.stop()
        await asyncio.sleep(1.1)  # the cached JWKS is now stale and cannot be refreshed
        assert (await checker.validate(token)).username == "engineer"
        # but a key only the provider could supply cannot be checked: 503, not 401
        forged = jwt.encode(
            claims_like_from(token), rsa_pem().decode(), algorithm="RS256", headers={"kid": "new"}
        )
        with pytest.raises(IdentityProviderUnavailableError):
            await checker.validate(forged)
    finally:
        await checker.aclose()


def claims_like_from(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.get_unverified_claims(token)
    return claims
