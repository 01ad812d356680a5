"""The authority's calendar table, closing prices and the reference price (HB 17)."""

from datetime import date, timedelta

from tests.factories import bearer, make_org

# trading days of a window of 2025 (the package knows it): Oct 13 looks back across the National Day
# holiday (Oct 1–8) and past the adjusted Saturday Oct 11 (a working day, but the market is shut)
OCTOBER = [
    date(2025, 10, 10),
    date(2025, 10, 9),
    date(2025, 9, 30),
    date(2025, 9, 29),
    date(2025, 9, 26),
    date(2025, 9, 25),
    date(2025, 9, 24),
    date(2025, 9, 23),
    date(2025, 9, 22),
    date(2025, 9, 19),
]


async def record(client, authority, day: date, **price):
    return await client.post(
        "/v1/cer/prices", json={"date": day.isoformat(), **price}, headers=bearer(authority)
    )


class TestClosingPrices:
    async def test_non_trading_days_and_bad_prices_are_refused(self, client, authority):
        cases = [
            (date(2025, 10, 1), {"price_fen": 9000}, 422, "not_a_trading_day"),  # National Day
            (date(2025, 10, 11), {"price_fen": 9000}, 422, "not_a_trading_day"),  # adjusted Saturday
            (date(2025, 11, 15), {"price_fen": 9000}, 422, "not_a_trading_day"),  # Saturday
            (date(2025, 11, 14), {"price_fen": 0}, 422, "invalid_price"),
            (date(2025, 11, 14), {"price": "90.123"}, 422, "invalid_price"),
            (date(2025, 11, 14), {"price": "90", "price_fen": 9000}, 422, "invalid_price"),
            (date(2025, 11, 14), {}, 422, "invalid_price"),
            (date(2099, 11, 13), {"price_fen": 9000}, 422, "future_date"),
        ]
        for day, price, status, code in cases:
            r = await record(client, authority, day, **price)
            assert (r.status_code, r.json()["code"]) == (status, code), (day, price)
        r = await client.get("/v1/cer/prices", params={"from": "2025-10-01", "to": "2025-11-15"})
        assert [p["date"] for p in r.json() if p["date"] in ("2025-10-01", "2025-10-11", "2025-11-14")] == []

    async def test_only_the_authority_records_prices(self, client):
        buyer = await make_org(client, "buyer")
        r = await client.post(
            "/v1/cer/prices", json={"date": "2025-11-14", "price_fen": 1}, headers=buyer.headers
        )
        assert (r.status_code, r.json()["code"]) == (403, "forbidden_role")

    async def test_reference_price_is_the_average_of_the_ten_previous_trading_days(self, client, authority):
        on = date(2025, 10, 13)
        for i, day in enumerate(OCTOBER[1:]):
            r = await record(client, authority, day, price_fen=9000 + i)
            assert r.status_code == 200, r.text
        r = await client.get("/v1/cer/reference-price", params={"on": on.isoformat()})
        assert (r.status_code, r.json()["code"], r.json()["missing"]) == (
            409,
            "not_enough_prices",
            ["2025-10-10"],
        )
        r = await record(client, authority, OCTOBER[0], price="91.07")
        assert r.json() == {**r.json(), "date": "2025-10-10", "price_fen": 9107, "price": "91.07"}
        r = await client.get("/v1/cer/reference-price", params={"on": on.isoformat()})
        assert r.status_code == 200, r.text
        ref = r.json()
        total = 9107 + sum(9000 + i for i in range(9))
        assert ref["dates"] == [d.isoformat() for d in OCTOBER]
        assert (ref["average_fen"], ref["average_price"]) == (total // 10, f"{total / 1000:.3f}")
        assert [p["price_fen"] for p in ref["prices"]][:2] == [9107, 9000]
        # a correction replaces the day's price
        r = await record(client, authority, OCTOBER[0], price_fen=9207)
        r = await client.get("/v1/cer/reference-price", params={"on": on.isoformat()})
        assert r.json()["average_fen"] == (total + 100) // 10

    async def test_fewer_than_ten_days_of_data(self, client, authority):
        r = await client.get("/v1/cer/reference-price", params={"on": "2024-03-04"})
        assert (r.status_code, r.json()["code"]) == (409, "not_enough_prices")
        assert len(r.json()["missing"]) == 10
        r = await client.get("/v1/cer/reference-price", params={"on": "2200-01-01"})
        assert (r.status_code, r.json()["code"]) == (422, "invalid_date")


class TestCalendarTable:
    async def test_the_authority_extends_the_calendar_beyond_the_package(self, client, authority):
        r = await client.get("/v1/cer/calendar", params={"from": "2031-03-03", "to": "2031-03-09"})
        assert [(d["workday"], d["source"]) for d in r.json()] == [(True, "weekend_rule")] * 5 + [
            (False, "weekend_rule")
        ] * 2
        for day, workday in (("2031-03-05", False), ("2031-03-08", True)):
            r = await client.post(
                "/v1/cer/calendar",
                json={"date": day, "workday": workday, "note": "test"},
                headers=bearer(authority),
            )
            assert r.status_code == 200, r.text
        r = await client.get("/v1/cer/calendar", params={"from": "2031-03-03", "to": "2031-03-09"})
        days = {d["date"]: (d["workday"], d["trading_day"], d["source"]) for d in r.json()}
        assert days["2031-03-05"] == (False, False, "table")
        assert days["2031-03-08"] == (True, False, "table")  # a working Saturday: the market stays shut
        assert days["2031-03-04"] == (True, True, "weekend_rule")
        r = await client.get("/v1/cer/calendar", params={"from": "2025-10-01", "to": "2025-10-01"})
        assert r.json()[0]["source"] == "chinese_calendar" and r.json()[0]["workday"] is False
        r = await client.get("/v1/cer/calendar", params={"from": "2031-03-09", "to": "2031-03-03"})
        assert (r.status_code, r.json()["code"]) == (422, "invalid_range")
        start = date(2031, 1, 1)
        r = await client.get(
            "/v1/cer/calendar",
            params={"from": start.isoformat(), "to": (start + timedelta(days=400)).isoformat()},
        )
        assert r.status_code == 422
