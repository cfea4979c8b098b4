"""Fixtures of the deployment tests: the merged compose models of the three stacks."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deployment.compose_engine import BASE, DEV, PROD, PROD_SECRETS, compose_model


@pytest.fixture(scope="module")
def base_model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return compose_model(BASE, tmp_path_factory.mktemp("compose-base"))


@pytest.fixture(scope="module")
def dev_model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return compose_model(DEV, tmp_path_factory.mktemp("compose-dev"))


@pytest.fixture(scope="module")
def prod_model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return compose_model(PROD, tmp_path_factory.mktemp("compose-prod"), env=PROD_SECRETS)


@pytest.fixture(scope="module")
def all_models(
    base_model: dict[str, Any], dev_model: dict[str, Any], prod_model: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    return {"base": base_model, "dev": dev_model, "prod": prod_model}
