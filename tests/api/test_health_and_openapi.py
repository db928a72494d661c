"""Operations and the contract's front door: /healthz, /metrics and /openapi.json (DESIGN.md §8)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, get_args

import httpx
from prometheus_client.parser import text_string_to_metric_families

from api.admission import Admitted
from api.app import create_app
from api.route_index import RouteIndex
from core.config import Settings
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


# --- the contract: what each route can answer is what it declares (issue 8 item 12) ----------

ERROR_BODY = "#/components/schemas/ErrorBody"


def _operations(spec: dict) -> list[tuple[str, str, dict]]:
    return [
        (method.upper(), path, op)
        for path, ops in spec["paths"].items()
        if path.startswith("/api/v1/")
        for method, op in ops.items()
    ]


def _event_routes() -> set[tuple[str, str]]:
    """Routes that send events to a job's workflow: the ones that wait for an admission turn."""
    admitted = get_args(Admitted)[1].dependency
    routes = RouteIndex(create_app(Settings(environment="test"))).routes
    return {
        (method, served.path)
        for served in routes
        if (dependant := getattr(served.context, "dependant", None)) is not None
        and admitted in {d.call for d in _dependencies(dependant)}
        for method in served.context.methods or ()
    }


def _dependencies(dependant: Any) -> list[Any]:
    return [dependant, *(d for sub in dependant.dependencies for d in _dependencies(sub))]


async def test_every_route_declares_the_errors_it_can_answer(stack: Stack) -> None:
    spec = await _openapi(stack)
    events = _event_routes()
    assert {("POST", "/api/v1/jobs/{slug}/events"), ("POST", "/api/v1/jobs/{slug}/send")} <= events
    for method, path, op in _operations(spec):
        where, declared = f"{method} {path}", set(op["responses"])
        if op.get("security"):
            assert "401" in declared, where
        if "requestBody" in op:
            assert {"413", "422"} <= declared, (where, declared)
        if (method, path) in events:
            assert {"409", "503"} <= declared, (where, declared)
        if op.get("parameters"):
            assert "422" in declared, (where, declared)
        for status, response in op["responses"].items():
            if int(status) >= 400:
                # One error shape, the one every error answer has.
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": ERROR_BODY}, (where, status, schema)
    detail = spec["components"]["schemas"]["ErrorDetail"]
    assert {"code", "message"} <= set(detail["required"])


def _declared(spec: dict, method: str, path: str) -> set[int]:
    return {int(s) for s in spec["paths"][path][method.lower()]["responses"]}


async def test_what_routes_answer_is_declared(stack: Stack) -> None:
    """Every route asked the wrong way (no token, no such thing, a body too large or malformed)
    answers with a status its OpenAPI entry lists."""
    spec = await _openapi(stack)
    limits = {
        (method, served.path): served.max_body_size
        for served in RouteIndex(create_app(Settings(environment="test"))).routes
        for method in served.context.methods or ()
    }
    for method, path, op in _operations(spec):
        limit = limits[method, path]
        url, declared = _concrete(path), _declared(spec, method, path)
        probes: dict[str, httpx.Response] = {}
        body = "requestBody" in op
        if body:
            json_body = {"content": b"{}", "headers": {"Content-Type": "application/json"}}
            probes["anonymous"] = await stack.http.request(method, url, **json_body)  # type: ignore[arg-type]
            assert limit is not None, (method, path)  # every route with a body has a limit
            for what, content in (("malformed", b"{nope"), ("oversize", b" " * (limit + 1))):
                headers = {**stack.auth("ada"), "Content-Type": "application/json"}
                probes[what] = await stack.http.request(
                    method, url, content=content, headers=headers
                )
        else:
            probes["anonymous"] = await stack.http.request(method, url)
            if method == "GET" or "{" in path:  # ids that name nothing: nothing to change
                auth = stack.auth("ada")
                probes["made-up ids"] = await stack.http.request(method, url, headers=auth)
        assert probes["anonymous"].status_code == 401, (method, path)
        if body:
            assert probes["malformed"].status_code == 422, (method, path, probes["malformed"].text)
            assert probes["oversize"].status_code == 413, (method, path, probes["oversize"].text)
        for what, response in probes.items():
            if response.status_code >= 400:
                assert response.status_code in declared, (method, path, what, response.text)

    # Events to a final job are refused by its stage: a 409, declared.
    slug = (await stack.new_job())["slug"]
    canceled = await stack.event("olga", slug, "job_canceled", reason="Customer found another")
    assert canceled.status_code == 200, canceled.text
    note = await stack.event("olga", slug, "note_added", text="Too late")
    send = await stack.post("olga", f"/api/v1/jobs/{slug}/send", {"message": "Hello"})
    for response, path in (
        (note, "/api/v1/jobs/{slug}/events"),
        (send, "/api/v1/jobs/{slug}/send"),
    ):
        assert response.status_code == 409, response.text
        assert 409 in _declared(spec, "POST", path)


def _formats(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        if "format" in schema:
            yield schema["format"]
        for value in schema.values():
            yield from _formats(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _formats(value)


async def test_quiet_hours_are_local_wall_clock_times_in_the_schema(stack: Stack) -> None:
    spec = await _openapi(stack)
    # JSON Schema's `format: time` requires an offset; no time in Jobline's documents has one.
    assert "time" not in set(_formats(spec))
    quiet = spec["components"]["schemas"]["QuietHours"]["properties"]
    for part in ("start", "end"):
        pattern = re.compile(quiet[part]["pattern"])
        assert quiet[part]["type"] == "string"
        for local in ("21:00", "08:00", "07:30:00", "23:59:59.5"):
            assert pattern.match(local), (part, local)
        for not_local in ("21:00+02:00", "21:00Z", "24:00", "9:00", "21h"):
            assert not pattern.match(not_local), (part, not_local)
    # What the API takes is unchanged: HH:MM is read as ever, and comes back with its seconds.
    current = (await stack.get("ada", "/api/v1/settings/communications")).json()
    try:
        changed = {**current, "quiet_hours": {"start": "22:15", "end": "06:45"}}
        saved = await stack.http.put(
            "/api/v1/settings/communications", headers=stack.auth("ada"), json=changed
        )
        assert saved.status_code == 200, saved.text
        assert saved.json()["quiet_hours"] == {"start": "22:15:00", "end": "06:45:00"}
    finally:
        restored = await stack.http.put(
            "/api/v1/settings/communications", headers=stack.auth("ada"), json=current
        )
        assert restored.status_code == 200, restored.text


async def test_metrics_label_every_route_by_its_full_path(stack: Stack) -> None:
    nested = ["/api/v1/settings/closeout", "/api/v1/settings/branding"]
    for path in nested:
        assert (await stack.get("ada", path)).status_code == 200
    text = (await stack.http.get("/metrics")).text
    for path in nested:
        assert _requests_total(text, "GET", path, "200") >= 1, path
    templates = {served.path for served in RouteIndex(create_app()).routes}
    labels = {s.labels["route"] for s in _samples(text, "jobline_http_requests_total")}
    assert labels - {"unmatched"} <= templates, labels - templates
