"""The price book through the HTTP API (issue 11 item 1): items, fixed prices, who may do what,
CSV export and import (dry run first, every problem by line), and the quote path's resolver."""

from __future__ import annotations

import csv
import io
import uuid
from decimal import Decimal

import httpx

from api.pricebook import service
from tests.api.signed_in import SignIn, csrf_of, signed_in_fixture  # noqa: F401
from tests.conftest import Stack

BOOK = "/api/v1/pricebook"


def _tag() -> str:
    return f"T{uuid.uuid4().hex[:8].upper()}"


def _error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    if code is not None:
        assert body["error"]["code"] == code, body
    assert body["error"]["message"].strip()
    return body["error"]


async def _item(stack: Stack, **fields: object) -> dict:
    body = {"sku": f"{_tag()}-1", "name": "Capacitor 45/5 MFD", "unit_price": "38.50", **fields}
    response = await stack.post("olga", BOOK, body)
    assert response.status_code == 201, response.text
    return response.json()


async def _import(stack: Stack, text: str, *, dry_run: bool, user: str = "olga") -> httpx.Response:
    return await stack.http.post(
        f"{BOOK}/import",
        params={"dry_run": "true" if dry_run else "false"},
        content=text.encode(),
        headers={**stack.auth(user), "Content-Type": "text/csv"},
    )


async def test_create_read_list_and_patch(stack: Stack) -> None:
    client = await stack.new_client(tier="gov")
    tag = _tag()
    created = await _item(
        stack,
        sku=f"{tag}-FAN",
        name="Condenser fan motor",
        description="1/4 HP, 1075 RPM",
        unit_price="120",
        taxable=False,
        category="Motors",
        fixed_prices=[
            {"tier": "gov", "unit_price": "95.00"},
            {"client_id": client["id"], "unit_price": 90},
        ],
    )
    assert created == {
        "sku": f"{tag}-FAN",
        "name": "Condenser fan motor",
        "description": "1/4 HP, 1075 RPM",
        "unit_price": "120.00",
        "taxable": False,
        "category": "Motors",
        "active": True,
        "fixed_prices": [
            {"tier": "gov", "unit_price": "95.00"},
            {"client_id": client["id"], "client_name": client["name"], "unit_price": "90.00"},
        ],
    }
    read = await stack.get("sam", f"{BOOK}/{tag}-FAN")
    assert read.status_code == 200 and read.json() == created
    # A technician reads it too, without the prices of clients not on their jobs (DESIGN.md §3).
    read = await stack.get("tess", f"{BOOK}/{tag}-FAN")
    assert read.status_code == 200
    assert read.json() == {**created, "fixed_prices": created["fixed_prices"][:1]}
    listed = await stack.get("tess", BOOK, params={"q": tag})
    assert listed.json()["items"] == [read.json()]

    # q matches the SKU or the name, any case; a % is itself, not a wildcard.
    for q in (tag.lower(), "CONDENSER FAN"):
        found = await stack.get("sam", BOOK, params={"q": q, "category": "Motors"})
        assert found.status_code == 200
        assert f"{tag}-FAN" in [i["sku"] for i in found.json()["items"]], q
    none = await stack.get("sam", BOOK, params={"q": f"{tag}%"})
    assert none.json()["items"] == [] and none.json()["total"] == 0

    patched = await stack.patch(
        "mia",
        f"{BOOK}/{tag}-FAN",
        {
            "unit_price": "125.00",
            "active": False,
            "fixed_prices": [{"tier": "platinum", "unit_price": "110"}],
        },
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["unit_price"] == "125.00" and body["active"] is False
    assert body["fixed_prices"] == [{"tier": "platinum", "unit_price": "110.00"}]
    inactive = await stack.get("olga", BOOK, params={"q": tag, "active": "false"})
    assert [i["sku"] for i in inactive.json()["items"]] == [f"{tag}-FAN"]
    active = await stack.get("olga", BOOK, params={"q": tag, "active": "true"})
    assert active.json()["total"] == 0


async def test_refusals(stack: Stack) -> None:
    item = await _item(stack)
    sku = item["sku"]
    _error(await stack.post("olga", BOOK, {"sku": sku, "name": "Again", "unit_price": "1"}), 409)
    for who in ("sam", "tess"):
        _error(
            await stack.post(who, BOOK, {"sku": f"{_tag()}", "name": "x", "unit_price": "1"}), 403
        )
        _error(await stack.patch(who, f"{BOOK}/{sku}", {"name": "x"}), 403)
        _error(await _import(stack, "sku,name,unit_price\nA,B,1\n", dry_run=True, user=who), 403)
    _error(await stack.http.get(BOOK), 401)
    _error(await stack.get("olga", f"{BOOK}/NO-SUCH-{_tag()}"), 404)
    _error(await stack.patch("olga", f"{BOOK}/NO-SUCH-{_tag()}", {"name": "x"}), 404)
    # Unknown client, bad money, both or neither of tier/client, a SKU change, a null name.
    missing = 2**31 - 1
    bad = await stack.patch(
        "olga", f"{BOOK}/{sku}", {"fixed_prices": [{"client_id": missing, "unit_price": "1"}]}
    )
    assert str(missing) in _error(bad, 422)["message"]
    for body in (
        {"unit_price": "-1"},
        {"unit_price": "10000000.01"},
        {"unit_price": "1.005"},
        {"unit_price": True},
        {"fixed_prices": [{"tier": "gov", "client_id": 1, "unit_price": "1"}]},
        {"fixed_prices": [{"unit_price": "1"}]},
        {"fixed_prices": [{"tier": "gold", "unit_price": "1"}]},
        {"fixed_prices": [{"tier": "gov", "unit_price": "1"}, {"tier": "gov", "unit_price": "2"}]},
        {"sku": "OTHER"},
        {"name": None},
        {"name": "x" * 201},
    ):
        _error(await stack.patch("olga", f"{BOOK}/{sku}", body), 422)
    for bad_sku in ("has space", "a/b", "x" * 65, ""):
        _error(
            await stack.post("olga", BOOK, {"sku": bad_sku, "name": "n", "unit_price": "1"}), 422
        )
    unchanged = await stack.get("olga", f"{BOOK}/{sku}")
    assert unchanged.json() == item


async def test_create_is_idempotent(stack: Stack) -> None:
    body = {"sku": _tag(), "name": "Filter 20x25x1", "unit_price": "12.00"}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = await stack.http.post(BOOK, json=body, headers={**stack.auth("olga"), **key})
    again = await stack.http.post(BOOK, json=body, headers={**stack.auth("olga"), **key})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()


async def test_prices_for_client_beats_tier_beats_list(stack: Stack) -> None:
    gov = await stack.new_client(tier="gov")
    own = await stack.new_client(tier="gov")
    plain = await stack.new_client(tier="standard")
    tag = _tag()
    await _item(
        stack,
        sku=f"{tag}-A",
        unit_price="100.00",
        fixed_prices=[
            {"tier": "gov", "unit_price": "95.00"},
            {"client_id": own["id"], "unit_price": "90.00"},
        ],
    )
    await _item(stack, sku=f"{tag}-B", unit_price="50.00", active=False)
    skus = [f"{tag}-A", f"{tag}-B", f"{tag}-NONE"]
    async with stack.db.session() as session:
        for client, want, basis in (
            (own, "90.00", "client"),
            (gov, "95.00", "tier"),
            (plain, "100.00", "list"),
        ):
            prices = await service.prices_for(session, client["id"], client["tier"], skus)
            assert set(prices) == {f"{tag}-A", f"{tag}-B"}  # unknown SKUs are absent
            a = prices[f"{tag}-A"]
            assert (a.unit_price, a.basis, a.list_price) == (
                Decimal(want),
                basis,
                Decimal("100.00"),
            )
            b = prices[f"{tag}-B"]
            assert (b.unit_price, b.basis, b.active) == (Decimal("50.00"), "list", False)
        found = await service.search_items(session, tag.lower(), client_id=own["id"], tier="gov")
        assert [(r.sku, r.unit_price, r.basis) for r in found] == [
            (f"{tag}-A", Decimal("90.00"), "client")
        ]  # active items only


async def test_export_guards_formulas_and_round_trips(stack: Stack) -> None:
    tag = _tag()
    await _item(
        stack,
        sku=f"{tag}-X",
        name='=HYPERLINK("http://evil")',
        description="line one\nline two, with a comma",
        category="Parts",
        fixed_prices=[{"tier": "gov", "unit_price": "30.00"}],
    )
    answer = await stack.get("tess", f"{BOOK}.csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    text = answer.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0] == [
        "sku", "name", "description", "unit_price", "taxable", "category", "active",
        "price_standard", "price_platinum", "price_gov",
    ]  # fmt: skip
    row = next(r for r in rows if r[0] == f"{tag}-X")
    assert row == [
        f"{tag}-X", "'=HYPERLINK(\"http://evil\")", "line one\nline two, with a comma",
        "38.50", "yes", "Parts", "yes", "", "", "30.00",
    ]  # fmt: skip
    # The export imports back unchanged (the guard's apostrophe is taken off again).
    mine = io.StringIO()
    csv.writer(mine).writerows([rows[0], row])
    result = await _import(stack, mine.getvalue(), dry_run=False)
    assert result.status_code == 200, result.text
    assert result.json()["updated"] == 1
    item = (await stack.get("olga", f"{BOOK}/{tag}-X")).json()
    assert item["name"] == '=HYPERLINK("http://evil")'
    assert item["fixed_prices"] == [{"tier": "gov", "unit_price": "30.00"}]


async def test_import_dry_run_then_import(stack: Stack) -> None:
    tag = _tag()
    await _item(
        stack,
        sku=f"{tag}-OLD",
        unit_price="10.00",
        fixed_prices=[{"tier": "gov", "unit_price": "9.00"}],
    )
    bad_file = (
        "sku,name,unit_price,taxable,price_gov\n"  # line 1
        f"{tag}-NEW,Drain pan,45.00,yes,40\n"  # 2: fine
        f"{tag}-OLD,Old item,abc,maybe,\n"  # 3: money, boolean
        "\n"  # 4: blank, skipped
        f"{tag}-NEW,Twice,1.00,no,\n"  # 5: duplicate SKU
        f"bad sku,{'n' * 201},1,no,-5\n"  # 6: sku, too long, tier price
        f'{tag}-Q,"two\nlines",,yes,\n'  # 7-8: missing price, starts on 7
        f"{tag}-R,Short row\n"  # 9
    )
    dry = await _import(stack, bad_file, dry_run=True)
    error = _error(dry, 422, "import_problems")
    result = error["result"]
    assert result["ok"] is False and result["dry_run"] is True and result["rows"] == 6
    found = {(p["line"], p["column"]) for p in result["problems"]}
    assert found == {
        (3, "unit_price"), (3, "taxable"), (5, "sku"), (6, "sku"), (6, "name"),
        (6, "price_gov"), (7, "unit_price"), (9, ""),
    }, result["problems"]  # fmt: skip
    # With problems nothing is imported, dry run or not.
    real = await _import(stack, bad_file, dry_run=False)
    assert _error(real, 422)["result"]["problems"] == result["problems"]
    assert (await stack.get("olga", f"{BOOK}/{tag}-NEW")).status_code == 404

    clean = (
        "sku,name,unit_price,taxable,price_gov,price_platinum\n"
        f"{tag}-NEW,Drain pan,45.00,yes,40,\n"
        f"{tag}-OLD,Old item renamed,11.00,No,,12.5\n"
    )
    dry = await _import(stack, clean, dry_run=True)
    assert dry.status_code == 200, dry.text
    assert dry.json() == {
        "dry_run": True,
        "ok": True,
        "rows": 2,
        "created": 1,
        "updated": 1,
        "problems": [],
    }
    assert (
        await stack.get("olga", f"{BOOK}/{tag}-NEW")
    ).status_code == 404  # a dry run writes nothing
    done = await _import(stack, clean, dry_run=False)
    assert done.status_code == 200, done.text
    assert done.json()["dry_run"] is False and done.json()["created"] == 1
    new = (await stack.get("olga", f"{BOOK}/{tag}-NEW")).json()
    assert new["unit_price"] == "45.00" and new["fixed_prices"] == [
        {"tier": "gov", "unit_price": "40.00"}
    ]
    old = (await stack.get("olga", f"{BOOK}/{tag}-OLD")).json()
    assert (old["name"], old["unit_price"], old["taxable"]) == ("Old item renamed", "11.00", False)
    # The empty gov column removed the gov price; platinum was set.
    assert old["fixed_prices"] == [{"tier": "platinum", "unit_price": "12.50"}]


async def test_import_header_and_file_problems(stack: Stack) -> None:
    for text, column in (
        ("sku,name,colour\nA,B,red\n", "colour"),
        ("sku,name\nA,B\n", "unit_price"),
        ("", ""),
        ("sku,name,unit_price\n", ""),
    ):
        result = _error(await _import(stack, text, dry_run=True), 422)["result"]
        assert [(p["line"], p["column"]) for p in result["problems"]][:1] == [(1, column)], text
    not_utf8 = await stack.http.post(
        f"{BOOK}/import",
        content="sku,name,unit_price\nA,Caf\xe9,1\n".encode("latin-1"),
        headers={**stack.auth("olga"), "Content-Type": "text/csv"},
    )
    assert _error(not_utf8, 422)["result"]["problems"][0]["line"] == 2
    huge = await stack.http.post(
        f"{BOOK}/import",
        content=b"sku,name,unit_price\n" + b"A,B,1\n" * 400_000,
        headers={**stack.auth("olga"), "Content-Type": "text/csv"},
    )
    _error(huge, 413)


# --- the pages' writes, on both databases (the browser test runs on SQLite) ---------------------


async def test_pages_refuse_readers_and_forms_without_their_token(
    stack: Stack, signed_in: SignIn
) -> None:
    item = await _item(stack)
    sku = item["sku"]
    technician = await signed_in("technician")
    page = await technician.get(f"/pricebook/{sku}")
    assert page.status_code == 200 and "Save fixed prices" not in page.text
    token = csrf_of(page)
    for path, data in (
        ("/pricebook", {"sku": _tag(), "name": "n", "unit_price": "1"}),
        (f"/pricebook/{sku}/details", {"name": "Renamed", "unit_price": "1"}),
        (f"/pricebook/{sku}/prices", {"tier_gov": "1"}),
    ):
        refused = await technician.post(path, data={**data, "csrf_token": token})
        assert refused.status_code == 403, (path, refused.text)
    office = await signed_in("office")
    no_token = await office.post(f"/pricebook/{sku}/prices", data={"tier_gov": "1"})
    assert no_token.status_code == 403
    assert (await stack.get("olga", f"{BOOK}/{sku}")).json() == item

    # An unknown client's price: the page says which, and nothing changes.
    form = await office.get(f"/pricebook/{sku}")
    answer = await office.post(
        f"/pricebook/{sku}/prices",
        data={
            "csrf_token": csrf_of(form),
            "tier_gov": "30",
            "new_client_id": str(2**31 - 1),
            "new_client_price": "20",
        },
    )
    assert answer.status_code == 422 and f"No client with id {2**31 - 1}" in answer.text
    assert (await stack.get("olga", f"{BOOK}/{sku}")).json() == item
    saved = await office.post(
        f"/pricebook/{sku}/prices", data={"csrf_token": csrf_of(form), "tier_gov": "30"}
    )
    assert saved.status_code == 303
    assert (await stack.get("olga", f"{BOOK}/{sku}")).json()["fixed_prices"] == [
        {"tier": "gov", "unit_price": "30.00"}
    ]
