"""``GET /metrics``: the gateway's cache counters in Prometheus' text format, moving with the
requests it serves (real PostgreSQL, influxd, Redis and OIDC provider)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from clpm_api_gateway.metrics import route_template

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


def duration_count(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], route: str, status: str
) -> float:
    labels = (("method", "GET"), ("route", route), ("status", status))
    return samples.get(("clpm_gateway_request_duration_seconds_count", labels), 0.0)


async def test_requests_are_timed_by_route_template_and_status(
    client: httpx.AsyncClient, headers: H
) -> None:
    realtime = "/api/v1/data/realtime"
    loop = "/api/v1/loops/{loop_id}"
    before = await scrape(client)
    viewer = headers["viewer"]
    for _ in range(3):  # the later ones answered before the routing: same label
        assert (await client.get(realtime, params={"loopId": RAW_LOOP}, headers=viewer)).is_success
    assert (await client.get("/api/v1/loops/NOPE-1", headers=viewer)).status_code == 404
    assert (await client.get("/api/v1/loops/NOPE-2", headers=viewer)).status_code == 404
    assert (await client.get("/no/such/path/a1")).status_code == 404
    assert (await client.get("/no/such/path/b2")).status_code == 404
    after = await scrape(client)
    assert duration_count(after, realtime, "200") == duration_count(before, realtime, "200") + 3
    assert duration_count(after, loop, "404") == duration_count(before, loop, "404") + 2
    assert (
        duration_count(after, "unmatched", "404") == duration_count(before, "unmatched", "404") + 2
    )
    routes = {labels for name, labels in after if name.startswith("clpm_gateway_request_")}
    assert not [labels for labels in routes if ("route", "/no/such/path/a1") in labels]
    bucket = (
        "clpm_gateway_request_duration_seconds_bucket",
        (("le", "+Inf"), ("method", "GET"), ("route", realtime), ("status", "200")),
    )
    assert after[bucket] == duration_count(after, realtime, "200")


def test_route_templates_from_paths_and_their_parameters() -> None:
    assert route_template("/api/v1/loops/FIC-1/kpis", {"loop_id": "FIC-1"}) == (
        "/api/v1/loops/{loop_id}/kpis"
    )
    # a loop named like a literal segment: the parameter is the last matching segment
    assert route_template("/api/v1/loops/loops", {"loop_id": "loops"}) == "/api/v1/loops/{loop_id}"
    assert route_template("/health", {}) == "/health"
    # a value spanning segments (the web front's catch-all): the caller uses the route's path
    assert route_template("/fleet/loops/FIC-1", {"path": "fleet/loops/FIC-1"}) is None
