"""POST /loops/catalogue: a loop list (CSV or JSON) imported through the gateway, PV ranges
included; invalid lists refused whole, naming rows and columns; admins only."""

from __future__ import annotations

import httpx

API = "/api/v1"
H = dict[str, dict[str, str]]

CSV = (
    "loop_id,name,unit,area,engineering_units,loop_type,criticality,pv_lo,pv_hi\n"
    "TIC-901,Jacket temperature,U900,Reactors,degC,temperature,4,0,500\n"
    "FIC-902,Feed flow,U900,Reactors,m3/h,flow,3,,\n"
)


def as_csv(headers: H, role: str) -> dict[str, str]:
    return {**headers[role], "Content-Type": "text/csv"}


async def test_admin_imports_a_csv_list_with_pv_ranges(
    client: httpx.AsyncClient, headers: H
) -> None:
    answer = await client.post(
        f"{API}/loops/catalogue", content=CSV, headers=as_csv(headers, "admin")
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"loops": 2, "dry_run": False, "loop_ids": ["TIC-901", "FIC-902"]}
    config = (await client.get(f"{API}/loops/TIC-901/config", headers=headers["viewer"])).json()
    assert (config["pv_lo"], config["pv_hi"], config["loop_type"]) == (0.0, 500.0, "temperature")
    assert config["criticality"] == 4
    unranged = (await client.get(f"{API}/loops/FIC-902/config", headers=headers["viewer"])).json()
    assert (unranged["pv_lo"], unranged["pv_hi"]) == (None, None)
    loop = (await client.get(f"{API}/loops/TIC-901", headers=headers["viewer"])).json()
    assert (loop["name"], loop["unit"], loop["engineering_units"]) == (
        "Jacket temperature",
        "U900",
        "degC",
    )


async def test_json_list_and_dry_run(client: httpx.AsyncClient, headers: H) -> None:
    rows = [{"loop_id": "PIC-903", "loop_type": "pressure", "pv_lo": 0, "pv_hi": 16}]
    dry = await client.post(
        f"{API}/loops/catalogue", json=rows, params={"dry_run": "true"}, headers=headers["admin"]
    )
    assert dry.status_code == 200, dry.text
    assert dry.json()["dry_run"] is True
    missing = await client.get(f"{API}/loops/PIC-903", headers=headers["viewer"])
    assert missing.status_code == 404  # a dry run writes nothing
    done = await client.post(
        f"{API}/loops/catalogue", json={"loops": rows}, headers=headers["admin"]
    )
    assert done.status_code == 200, done.text
    config = (await client.get(f"{API}/loops/PIC-903/config", headers=headers["viewer"])).json()
    assert (config["pv_lo"], config["pv_hi"]) == (0.0, 16.0)


async def test_invalid_rows_are_named_and_nothing_is_written(
    client: httpx.AsyncClient, headers: H
) -> None:
    bad = (
        "loop_id,loop_type,pv_lo,pv_hi\n"
        "TIC-911,temperature,0,500\n"
        "TIC-912,temperature,0,\n"
        "TIC-913,steam,0,500\n"
        "TIC-914,temperature,500,0\n"
    )
    answer = await client.post(
        f"{API}/loops/catalogue", content=bad, headers=as_csv(headers, "admin")
    )
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["title"] == "Invalid loop list"
    named = {(error["parameter"], error["location"]) for error in problem["errors"]}
    assert named == {
        ("row 3: pv_lo and pv_hi", "body"),  # one PV limit without the other
        ("row 4: loop_type", "body"),
        ("row 5: pv_hi", "body"),  # pv_lo >= pv_hi
    }
    messages = {error["parameter"]: error["message"] for error in problem["errors"]}
    assert messages["row 3: pv_lo and pv_hi"] == "give both limits of the PV range, or neither"
    assert messages["row 5: pv_hi"] == "must be greater than pv_lo"
    untouched = await client.get(f"{API}/loops/TIC-911", headers=headers["viewer"])
    assert untouched.status_code == 404


async def test_wrong_content_type_bad_json_and_empty_list_are_422(
    client: httpx.AsyncClient, headers: H
) -> None:
    url = f"{API}/loops/catalogue"
    xml = await client.post(
        url, content="<loops/>", headers={**headers["admin"], "Content-Type": "application/xml"}
    )
    assert xml.status_code == 422
    assert xml.json()["errors"][0]["parameter"] == "Content-Type"
    broken = await client.post(
        url, content="[{", headers={**headers["admin"], "Content-Type": "application/json"}
    )
    assert broken.status_code == 422
    assert broken.json()["errors"][0]["parameter"] == "body"
    empty = await client.post(url, content="loop_id\n", headers=as_csv(headers, "admin"))
    assert empty.status_code == 422
    assert "no loops" in empty.json()["detail"]


async def test_only_admins_import(client: httpx.AsyncClient, headers: H) -> None:
    for role in ("viewer", "engineer"):
        answer = await client.post(
            f"{API}/loops/catalogue", content=CSV, headers=as_csv(headers, role)
        )
        assert answer.status_code == 403, role
    anonymous = await client.post(
        f"{API}/loops/catalogue", content=CSV, headers={"Content-Type": "text/csv"}
    )
    assert anonymous.status_code == 401
