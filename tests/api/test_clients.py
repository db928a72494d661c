"""Clients through the HTTP API: create, list, read, patch, and who may do which (DESIGN.md §8)."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from tests.conftest import Stack

CLIENTS = "/api/v1/clients"
NO_SUCH_ID = 2**31 - 1  # a valid id that no test database will reach


def _tag() -> str:
    """A word only this test's clients contain, so searches see nothing else."""
    return f"zq{uuid.uuid4().hex[:10]}"


def _assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"].strip()
    if code is not None:
        assert error["code"] == code, error
    return error


async def test_create_with_every_field(stack: Stack) -> None:
    body = {
        "name": "  Harbor View Apartments  ",
        "email": "frontdesk@harborview.example",
        "phone": "+1 (555) 010-2030",
        "tier": "platinum",
        "billing_email": "ap@harborview.example",
        "address": "12 Quay Street, Portsmouth",
        "notes": "Gate code 4411. Call the super before arriving.",
    }
    response = await stack.post("olga", CLIENTS, body)
    assert response.status_code == 201, response.text
    client = response.json()
    assert client["name"] == "Harbor View Apartments"  # surrounding whitespace is trimmed
    for field in ("email", "phone", "tier", "billing_email", "address", "notes"):
        assert client[field] == body[field], field
    assert isinstance(client["id"], int) and client["id"] > 0
    assert client["client_number"] == f"C-{client['id']:05d}"
    assert client["created_at"] and client["updated_at"]

    fetched = await stack.get("sam", f"{CLIENTS}/{client['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == client


async def test_only_a_name_is_required(stack: Stack) -> None:
    response = await stack.post("sam", CLIENTS, {"name": "Walk-in customer"})
    assert response.status_code == 201, response.text
    client = response.json()
    assert client["tier"] == "standard"
    assert client["email"] is None and client["phone"] is None
    assert client["billing_email"] is None
    assert client["address"] == "" and client["notes"] == ""


@pytest.mark.parametrize("tier", ["standard", "platinum", "gov"])
async def test_every_tier_and_the_tier_filter(stack: Stack, tier: str) -> None:
    tag = _tag()
    made = await stack.new_client(name=f"{tag} {tier}", tier=tier)
    assert made["tier"] == tier
    other = "gov" if tier != "gov" else "standard"
    await stack.new_client(name=f"{tag} {other}", tier=other)

    listed = (await stack.get("olga", CLIENTS, params={"q": tag, "tier": tier})).json()
    assert [c["id"] for c in listed["items"]] == [made["id"]]
    assert listed["total"] == 1


async def test_client_numbers_are_unique_and_follow_the_ids(stack: Stack) -> None:
    made = [await stack.new_client() for _ in range(3)]
    numbers = [c["client_number"] for c in made]
    assert all(re.fullmatch(r"C-\d{5,}", n) for n in numbers), numbers
    assert len(set(numbers)) == 3
    assert [c["id"] for c in made] == sorted(c["id"] for c in made)
    assert numbers == [f"C-{c['id']:05d}" for c in made]


async def test_list_is_paginated(stack: Stack) -> None:
    tag = _tag()
    made = [await stack.new_client(name=f"{tag} {letter}") for letter in "edcba"]

    first = (await stack.get("olga", CLIENTS, params={"q": tag, "page_size": 2})).json()
    assert set(first) == {"items", "total", "page", "page_size"}
    assert first["total"] == 5 and first["page"] == 1 and first["page_size"] == 2
    assert len(first["items"]) == 2

    pages = [first["items"]]
    for page in (2, 3):
        response = await stack.get("olga", CLIENTS, params={"q": tag, "page": page, "page_size": 2})
        assert response.status_code == 200
        body = response.json()
        assert body["page"] == page and body["page_size"] == 2 and body["total"] == 5
        pages.append(body["items"])
    assert [len(p) for p in pages] == [2, 2, 1]

    # Every client once, in name order, across the pages.
    seen = [c["name"] for page in pages for c in page]
    assert seen == sorted(c["name"] for c in made)

    beyond = (await stack.get("olga", CLIENTS, params={"q": tag, "page": 4, "page_size": 2})).json()
    assert beyond["items"] == [] and beyond["total"] == 5


async def test_list_defaults(stack: Stack) -> None:
    await stack.new_client()
    body = (await stack.get("olga", CLIENTS)).json()
    assert body["page"] == 1 and body["page_size"] == 50
    assert body["total"] >= 1 and 1 <= len(body["items"]) <= 50


async def test_search_by_name_email_or_phone(stack: Stack) -> None:
    tag = _tag()
    by_name = await stack.new_client(name=f"Acme {tag} Storage")
    by_email = await stack.new_client(name="Somebody Else", email=f"{tag}@example.com")
    digits = str(uuid.uuid4().int)[:9]
    by_phone = await stack.new_client(name="Phone Person", phone=f"+1 {digits}")

    async def found(q: str) -> list[int]:
        response = await stack.get("olga", CLIENTS, params={"q": q})
        assert response.status_code == 200
        return sorted(c["id"] for c in response.json()["items"])

    assert await found(tag) == sorted([by_name["id"], by_email["id"]])
    assert await found(tag.upper()) == sorted([by_name["id"], by_email["id"]])  # any case
    assert await found(f"acme {tag}") == [by_name["id"]]
    assert await found(digits) == [by_phone["id"]]
    assert await found(f"{tag}-nobody") == []


async def test_percent_and_underscore_in_a_search_mean_themselves(stack: Stack) -> None:
    """In the client list and the job list alike (both search the client's name)."""
    tag = _tag()
    names = {
        "percent": f"{tag} 100% Heating",
        "like_percent": f"{tag} 1000 Heating",  # what "100%" matches as a LIKE pattern
        "underscore": f"{tag} a_b Cooling",
        "like_underscore": f"{tag} axb Cooling",  # what "a_b" matches as a LIKE pattern
    }
    ids = {key: (await stack.new_client(name=name))["id"] for key, name in names.items()}
    for client_id in ids.values():
        await stack.new_job(client_id=client_id)

    async def found(q: str) -> tuple[list[int], list[int]]:
        clients = (await stack.get("olga", CLIENTS, params={"q": q})).json()["items"]
        jobs = (await stack.get("olga", "/api/v1/jobs", params={"q": q})).json()["items"]
        return sorted(c["id"] for c in clients), sorted(j["client_id"] for j in jobs)

    assert await found(f"{tag} 100%") == ([ids["percent"]], [ids["percent"]])
    assert await found(f"{tag} a_b") == ([ids["underscore"]], [ids["underscore"]])


async def test_every_staff_role_may_read_but_technicians_may_not_write(stack: Stack) -> None:
    client = await stack.new_client()
    for user in ("ada", "mia", "olga", "sam", "tess"):
        assert (await stack.get(user, CLIENTS)).status_code == 200, user
    # A technician reads only the clients of their jobs (tests/api/test_access.py).
    for user in ("ada", "mia", "olga", "sam"):
        assert (await stack.get(user, f"{CLIENTS}/{client['id']}")).status_code == 200, user

    for user in ("ada", "mia", "olga", "sue"):
        response = await stack.post(user, CLIENTS, {"name": f"Made by {user}"})
        assert response.status_code == 201, (user, response.text)

    before = (await stack.get("olga", CLIENTS, params={"page_size": 1})).json()["total"]
    refused = await stack.post("tom", CLIENTS, {"name": "Tom's cousin"})
    error = _assert_error(refused, 403, "forbidden")
    # The message says who may: the writing roles, and what the caller is.
    for role in ("office", "sales", "manager", "admin"):
        assert role in error["message"], error["message"]
    assert "technician" in error["message"]
    after = (await stack.get("olga", CLIENTS, params={"page_size": 1})).json()["total"]
    assert after == before

    refused = await stack.patch("tess", f"{CLIENTS}/{client['id']}", {"name": "Renamed"})
    _assert_error(refused, 403, "forbidden")
    unchanged = (await stack.get("olga", f"{CLIENTS}/{client['id']}")).json()
    assert unchanged == client


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", CLIENTS),
        ("POST", CLIENTS),
        ("GET", f"{CLIENTS}/1"),
        ("PATCH", f"{CLIENTS}/1"),
    ],
)
async def test_a_token_is_required(stack: Stack, method: str, path: str) -> None:
    body = {"name": "Nobody's client"} if method != "GET" else None
    before = (await stack.get("olga", CLIENTS, params={"page_size": 1})).json()["total"]
    for headers in (
        {},
        {"Authorization": "Bearer jl_not-a-real-token"},
        {"Authorization": f"Bearer {stack.tokens['olga']}x"},
        {"Authorization": f"Basic {stack.tokens['olga']}"},
        {"Authorization": "Bearer"},
    ):
        response = await stack.http.request(method, path, json=body, headers=headers)
        _assert_error(response, 401, "not_authenticated")
        assert response.headers["www-authenticate"] == "Bearer"
    after = (await stack.get("olga", CLIENTS, params={"page_size": 1})).json()["total"]
    assert after == before


async def test_unknown_client_is_404(stack: Stack) -> None:
    error = _assert_error(await stack.get("olga", f"{CLIENTS}/{NO_SUCH_ID}"), 404, "not_found")
    assert str(NO_SUCH_ID) in error["message"]
    _assert_error(await stack.patch("olga", f"{CLIENTS}/{NO_SUCH_ID}", {"name": "x"}), 404)
    # A technician may read clients, so they get the same honest 404.
    _assert_error(await stack.get("tess", f"{CLIENTS}/{NO_SUCH_ID}"), 404)


async def test_patch_changes_only_the_given_fields(stack: Stack) -> None:
    client = await stack.new_client(
        name="Original Name",
        email="orig@example.com",
        phone="555-0100",
        tier="gov",
        billing_email="billing@example.com",
        address="1 First St",
        notes="original notes",
    )
    path = f"{CLIENTS}/{client['id']}"

    response = await stack.patch("sam", path, {"phone": "555-0199", "notes": "moved the gate"})
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["phone"] == "555-0199" and patched["notes"] == "moved the gate"
    untouched = ("id", "client_number", "name", "email", "tier", "billing_email", "address")
    for field in untouched:
        assert patched[field] == client[field], field
    assert patched["created_at"] == client["created_at"]
    assert patched["updated_at"] >= client["updated_at"]
    assert (await stack.get("olga", path)).json() == patched

    # null clears an optional contact field, and only that one.
    cleared = (await stack.patch("olga", path, {"billing_email": None})).json()
    assert cleared["billing_email"] is None
    assert cleared["email"] == "orig@example.com" and cleared["phone"] == "555-0199"

    retiered = (await stack.patch("mia", path, {"tier": "platinum", "name": "New Name"})).json()
    assert retiered["tier"] == "platinum" and retiered["name"] == "New Name"
    assert retiered["address"] == "1 First St" and retiered["notes"] == "moved the gate"

    # An empty patch changes no field.
    same = (await stack.patch("olga", path, {})).json()
    for field in ("name", "email", "phone", "tier", "billing_email", "address", "notes"):
        assert same[field] == retiered[field], field
