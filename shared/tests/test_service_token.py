"""The service token: set, or one per installation in its data directory, compared in full."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from clpm_shared.config import load_settings
from clpm_shared.service_token import is_service_token, service_headers, service_token


def test_a_configured_token_is_used_as_is(tmp_path: Path) -> None:
    settings = load_settings(
        diagnostics={"diag_service_token": "s3cret"}, runtime={"clpm_data_dir": tmp_path}
    )
    assert service_token(settings) == "s3cret"
    assert not (tmp_path / "service-token").exists()


def test_without_one_every_process_of_an_installation_shares_a_private_file(
    tmp_path: Path,
) -> None:
    settings = load_settings(runtime={"clpm_data_dir": tmp_path / "data"})
    with ThreadPoolExecutor(8) as pool:
        tokens = set(pool.map(lambda _: service_token(settings), range(16)))
    assert len(tokens) == 1
    token = tokens.pop()
    assert len(token) >= 32
    file = tmp_path / "data" / "service-token"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert [path.name for path in file.parent.iterdir()] == ["service-token"]
    other = load_settings(runtime={"clpm_data_dir": tmp_path / "other"})
    assert service_token(other) != token


def test_only_the_exact_bearer_token_passes() -> None:
    assert is_service_token(service_headers("abc")["Authorization"], "abc")
    assert is_service_token("bearer abc", "abc")
    for header in (None, "", "Bearer", "Bearer ", "Bearer abcd", "Bearer ab", "Basic abc"):
        assert not is_service_token(header, "abc"), header
