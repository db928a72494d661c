"""Operations and the contract's front door: /healthz, /metrics and /openapi.json (DESIGN.md §8)."""

from __future__ import annotations

import re

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Stack

# The HTTP API of DESIGN.md §8 (method, path as OpenAPI spells it).
DESIGN_ROUTES = [
    ("POST", "/api/v1/clients"),
    ("GET", "/api/v1/clients"),
    ("GET", "/api/v1/clients/{client_id}"),
    ("PATCH", "/api/v1/clients/{client_id}"),
    ("POST", "/api/v1/jobs"),
    ("GET", "/api/v1/jobs"),
    ("GET", "/api/v1/jobs/{slug}"),
    ("POST", "/api/v1/jobs/{slug}/events"),
    ("POST", "/api/v1/jobs/{slug}/send"),
    ("POST", "/api/v1/jobs/{slug}/result"),
    ("GET", "/api/v1/jobs/{slug}/result"),
    ("GET", "/api/v1/jobs/{slug}/result/document.pdf"),
    ("GET", "/api/v1/settings/communications"),
    ("PUT", "/api/v1/settings/communications"),
    ("GET", "/api/v1/settings/resulting"),
    ("PUT", "/api/v1/settings/resulting"),
    ("GET", "/api/v1/settings/closeout"),
    ("PUT", "/api/v1/settings/closeout"),
    ("GET", "/api/v1/outbox"),
    ("GET", "/api/v1/documents/{id}"),
    ("POST", "/api/v1/jobs/{slug}/send"),
    ("GET", "/api/v1/outbox"),
    ("GET", "/api/v1/settings/communications"),
    ("PUT", "/api/v1/settings/communications"),
    ("GET", "/api/v1/settings/closeout"),
    ("PUT", "/api/v1/settings/closeout"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
]
# The ones built so far: these must be there today.
BUILT = {
    ("POST", "/api/v1/clients"),
    ("GET", "/api/v1/clients"),
    ("GET", "/api/v1/clients/{client_id}"),
    ("PATCH", "/api/v1/clients/{client_id}"),
    ("POST", "/api/v1/jobs"),
    ("GET", "/api/v1/jobs"),
    ("GET", "/api/v1/jobs/{slug}"),
    ("POST", "/api/v1/jobs/{slug}/events"),
    ("GET", "/api/v1/documents/{id}"),
    ("POST", "/api/v1/jobs/{slug}/send"),
    ("GET", "/api/v1/outbox"),
    ("GET", "/api/v1/settings/communications"),
    ("PUT", "/api/v1/settings/communications"),
    ("GET", "/api/v1/settings/closeout"),
    ("PUT", "/api/v1/settings/closeout"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
}
# Path parameters filled in with values that name nothing, so a probe changes nothing.
_SAMPLES = {"client_id": str(2**31 - 1), "slug": "zzzzzzzz", "id": "999999999"}


def _concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: _SAMPLES.get(m.group(1), "999999999"), path)


def _unrouted(response: httpx.Response) -> bool:
    """True when no route answered (as opposed to a route answering "no such job")."""
    if response.status_code == 405:
        return True
    if response.status_code != 404:
        return False
    try:
        return response.json()["error"]["message"] == "Not Found"
    except (ValueError, KeyError, TypeError):
        return False


async def _openapi(stack: Stack) -> dict:
    response = await stack.http.get("/openapi.json")  # public: no token needed
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


async def test_healthz_reports_every_part_ok(stack: Stack) -> None:
    response = await stack.http.get("/healthz")  # no token: load balancers and ops call it
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["api"] == "ok"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["temporal"] == "ok"


async def test_openapi_lists_the_design_routes_that_exist(stack: Stack) -> None:
    spec = await _openapi(stack)
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == "Jobline"
    listed = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}

    missing_now = BUILT - listed
    assert not missing_now, f"routes of DESIGN §8 missing from /openapi.json: {missing_now}"

    # Any other §8 route the app already serves must be documented too.
    for method, path in DESIGN_ROUTES:
        if (method, path) in listed:
            continue
        body = {} if method in ("POST", "PUT", "PATCH") else None
        response = await stack.http.request(
            method, _concrete(path), json=body, headers=stack.auth("ada")
        )
        assert _unrouted(response), f"{method} {path} is served but not in /openapi.json"


async def test_openapi_documents_auth_and_errors(stack: Stack) -> None:
    spec = await _openapi(stack)
    schemes = spec["components"]["securitySchemes"]
    bearer = [name for name, s in schemes.items() if s.get("scheme", "").lower() == "bearer"]
    assert bearer, schemes
    for path, ops in spec["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            # Bearer-token auth on every API route, so every one can answer 401.
            assert {name for s in op.get("security", []) for name in s} & set(bearer), where
            assert "401" in op["responses"], where
    events = spec["paths"]["/api/v1/jobs/{slug}/events"]["post"]["responses"]
    for status in ("200", "403", "404", "409", "422"):
        assert status in events, status
    assert "201" in spec["paths"]["/api/v1/jobs"]["post"]["responses"]
    assert "201" in spec["paths"]["/api/v1/clients"]["post"]["responses"]


def _samples(text: str, name: str) -> list:
    return [
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def _requests_total(text: str, method: str, route: str, status: str) -> float:
    return sum(
        s.value
        for s in _samples(text, "jobline_http_requests_total")
        if s.labels == {"method": method, "route": route, "status": status}
    )


async def test_metrics_are_prometheus_text(stack: Stack) -> None:
    job = await stack.new_job()
    slug = job["slug"]
    before = (await stack.http.get("/metrics")).text
    assert (await stack.get("olga", f"/api/v1/jobs/{slug}")).status_code == 200
    assert (await stack.get("olga", f"/api/v1/clients/{2**31 - 1}")).status_code == 404

    response = await stack.http.get("/metrics")  # no token: scraped by Prometheus
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# TYPE jobline_http_requests_total counter" in text
    assert "jobline_http_request_seconds" in text

    # One series per route template (not per job), counted by status.
    job_route = ("GET", "/api/v1/jobs/{slug}", "200")
    assert _requests_total(text, *job_route) >= _requests_total(before, *job_route) + 1
    client_404 = ("GET", "/api/v1/clients/{client_id}", "404")
    assert _requests_total(text, *client_404) >= _requests_total(before, *client_404) + 1
    assert slug not in text
    latency = _samples(text, "jobline_http_request_seconds_count")
    assert any(s.labels.get("route") == "/api/v1/jobs/{slug}" and s.value >= 1 for s in latency)
