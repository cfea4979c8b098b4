"""``GET /metrics``: the gateway's cache counters in Prometheus' text format, moving with the
requests it serves (real PostgreSQL, influxd, Redis and OIDC provider)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

RAW_LOOP = "FIC-101"  # conftest: one hour of 1 Hz raw samples

H = dict[str, dict[str, str]]


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def operation(cache: str, name: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("clpm_gateway_cache_operations_total", (("cache", cache), ("operation", name)))


async def test_metrics_count_cache_work_and_answers_of_the_cached_hit_layer(
    client: httpx.AsyncClient, headers: H
) -> None:
    before = await scrape(client)
    assert ("clpm_gateway_cached_hits_answered_total", ()) in before
    for outcome in ("started", "renewed", "failed"):
        assert ("clpm_gateway_near_renewals_total", (("outcome", outcome),)) in before
    params = {"loopId": RAW_LOOP, "fields": "pv,sp"}
    for _ in range(3):
        answer = await client.get("/api/v1/data/realtime", params=params, headers=headers["viewer"])
        assert answer.status_code == 200
    after = await scrape(client)
    answered = "clpm_gateway_cached_hits_answered_total", ()
    assert after[answered] >= before[answered] + 1, "later requests were answered by the layer"
    computed = operation("shared", "computations")
    assert after[computed] >= before.get(computed, 0.0) + 1, "the first one was computed"
    assert (
        after[operation("shared", "misses")] >= before.get(operation("shared", "misses"), 0.0) + 1
    )


async def test_metrics_need_no_token_and_are_not_in_the_api_prefix(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/metrics")).status_code == 200
    assert (await client.get("/api/v1/metrics")).status_code == 404
