"""HubSpot emulator: auth, rate limits, injected faults, stats and reset, seen through the real client.

The sync's HubSpot hook must survive what production throws at it: 401 for a bad token, 429 from
the ten-second and per-second (search) windows with HubSpot's body and headers, 5xx, and one bad
record inside a batch (SYNC-5). Time is driven by a fake clock, so nothing sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import hubspot
import pytest
from crm_sandbox.hubspot.testing import FakeClock, hubspot_sandbox, sandbox_call
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInputForCreate,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInputForCreate,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.contacts.exceptions import NotFoundException, ServiceException, UnauthorizedException

SCENARIO: dict[str, Any] = {
    "tokens": ["good-token"],
    "hubspot": {"contacts": [{"id": "201", "properties": {"email": "ann@acme.com"}}]},
}
LIMIT_10S = 6
LIMIT_SEARCH = 2
DAILY = 40


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def base_url(clock: FakeClock) -> Iterator[str]:
    options = {
        "requests_per_10s": LIMIT_10S,
        "search_per_second": LIMIT_SEARCH,
        "daily_limit": DAILY,
        "clock": clock,
    }
    with hubspot_sandbox(SCENARIO, **options) as url:
        yield url


@pytest.fixture
def client(base_url: str, clock: FakeClock) -> hubspot.HubSpot:
    sandbox_call(base_url, "POST", "reset")  # also forgets faults and rate-limit windows
    clock.advance(86_400)  # a fresh day for the daily quota
    return hubspot.HubSpot(access_token="good-token", host=base_url)


def error_of(exc: ApiException) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(exc.body)
    return parsed


# -- auth ------------------------------------------------------------------------------------------


def test_wrong_token_is_401_in_hubspots_shape(base_url: str) -> None:
    intruder = hubspot.HubSpot(access_token="stolen", host=base_url)
    with pytest.raises(UnauthorizedException) as caught:
        intruder.crm.contacts.basic_api.get_by_id("201")
    assert caught.value.status == 401
    error = error_of(caught.value)
    assert error["status"] == "error"
    assert error["category"] == "INVALID_AUTHENTICATION"
    assert error["correlationId"]
    assert "Authentication credentials not found" in error["message"]


def test_listed_token_is_accepted(client: hubspot.HubSpot) -> None:
    assert client.crm.contacts.basic_api.get_by_id("201").properties["email"] == "ann@acme.com"


def test_any_token_is_accepted_without_a_token_list() -> None:
    with hubspot_sandbox({"hubspot": {}}) as url:
        anyone = hubspot.HubSpot(access_token="whatever", host=url)
        assert anyone.crm.contacts.basic_api.get_page().results == []


# -- rate limits -------------------------------------------------------------------------------------


def test_ten_second_window_429_with_headers(client: hubspot.HubSpot, clock: FakeClock) -> None:
    api = client.crm.contacts.basic_api
    remaining = []
    for _ in range(LIMIT_10S):
        _, status, headers = api.get_page_with_http_info()
        assert status == 200
        assert headers["X-HubSpot-RateLimit-Max"] == str(LIMIT_10S)
        assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        remaining.append(int(headers["X-HubSpot-RateLimit-Remaining"]))
    assert remaining == [5, 4, 3, 2, 1, 0]
    with pytest.raises(ApiException) as caught:
        api.get_page()
    assert caught.value.status == 429
    error = error_of(caught.value)
    assert error["message"] == "You have reached your ten_secondly_rolling limit."
    assert (error["errorType"], error["policyName"]) == ("RATE_LIMIT", "TEN_SECONDLY_ROLLING")
    assert error["correlationId"]
    assert caught.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    clock.advance(10.001)  # the window rolls on
    _, status, _ = api.get_page_with_http_info()
    assert status == 200


def test_daily_headers_and_daily_limit(client: hubspot.HubSpot, clock: FakeClock) -> None:
    api = client.crm.contacts.basic_api
    _, _, headers = api.get_page_with_http_info()
    assert headers["X-HubSpot-RateLimit-Daily"] == str(DAILY)
    assert headers["X-HubSpot-RateLimit-Daily-Remaining"] == str(DAILY - 1)
    for _ in range(DAILY - 1):
        clock.advance(2)  # stay under the ten-second window
        api.get_page()
    clock.advance(2)
    with pytest.raises(ApiException) as caught:
        api.get_page()
    assert caught.value.status == 429
    assert error_of(caught.value)["policyName"] == "DAILY"


def test_search_is_limited_per_second_and_sends_no_rate_headers(
    client: hubspot.HubSpot, clock: FakeClock
) -> None:
    search = client.crm.contacts.search_api
    for _ in range(LIMIT_SEARCH):
        _, status, headers = search.do_search_with_http_info(PublicObjectSearchRequest())
        assert status == 200
        assert "X-HubSpot-RateLimit-Remaining" not in headers
    with pytest.raises(ApiException) as caught:
        search.do_search(PublicObjectSearchRequest())
    assert caught.value.status == 429
    error = error_of(caught.value)
    assert (error["policyName"], error["message"]) == ("SECONDLY", "You have reached your secondly limit.")
    clock.advance(1.0)
    assert search.do_search(PublicObjectSearchRequest()).total == 1


def test_limits_are_per_token(base_url: str, client: hubspot.HubSpot) -> None:
    for _ in range(LIMIT_10S):
        client.crm.contacts.basic_api.get_page()
    with pytest.raises(ApiException):
        client.crm.contacts.basic_api.get_page()
    with hubspot_sandbox({"hubspot": {}}, requests_per_10s=1) as url:
        first = hubspot.HubSpot(access_token="a", host=url)
        second = hubspot.HubSpot(access_token="b", host=url)
        first.crm.contacts.basic_api.get_page()
        second.crm.contacts.basic_api.get_page()  # a different token has its own window
        with pytest.raises(ApiException):
            first.crm.contacts.basic_api.get_page()


# -- injected faults ----------------------------------------------------------------------------------


def test_injected_5xx_surface_as_service_exceptions(base_url: str, client: hubspot.HubSpot) -> None:
    sandbox_call(
        base_url,
        "POST",
        "faults",
        [
            {"method": "GET", "path": "^/crm/v3/objects/contacts/201$", "status": 500},
            {"method": "GET", "path": "^/crm/v3/objects/contacts/201$", "status": 503},
        ],
    )
    for status in (500, 503):
        with pytest.raises(ServiceException) as caught:
            client.crm.contacts.basic_api.get_by_id("201")
        assert caught.value.status == status
        error = error_of(caught.value)
        assert error["status"] == "error"
        assert error["correlationId"]
    assert client.crm.contacts.basic_api.get_by_id("201").id == "201"  # faults are used up


def test_injected_429_looks_like_a_real_rate_limit(base_url: str, client: hubspot.HubSpot) -> None:
    # No Retry-After here: urllib3 (under the client) would honour it and retry on its own.
    sandbox_call(base_url, "POST", "faults", {"path": "^/crm/v3/objects/contacts$", "status": 429})
    with pytest.raises(ApiException) as caught:
        client.crm.contacts.basic_api.get_page()
    assert caught.value.status == 429
    assert error_of(caught.value)["policyName"] == "TEN_SECONDLY_ROLLING"
    assert caught.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"


def test_injected_record_error_fails_exactly_one_batch_input(base_url: str, client: hubspot.HubSpot) -> None:
    sandbox_call(
        base_url,
        "POST",
        "faults",
        {"method": "POST", "path": "/batch/create$", "record_error": "VALIDATION_ERROR"},
    )
    inputs = [SimplePublicObjectBatchInputForCreate(properties={"email": f"r{i}@corp.com"}) for i in range(3)]
    response, status, _ = client.crm.contacts.batch_api.create_with_http_info(
        BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs)
    )
    assert status == 207
    assert len(response.results) == 2
    assert response.num_errors == 1
    assert response.errors[0].category == "VALIDATION_ERROR"
    created = {r.properties["email"] for r in response.results}
    missing = {"r0@corp.com", "r1@corp.com", "r2@corp.com"} - created
    assert len(missing) == 1
    with pytest.raises(NotFoundException):
        client.crm.contacts.basic_api.get_by_id(missing.pop(), id_property="email")


# -- stats and reset -------------------------------------------------------------------------------


def test_stats_count_requests_by_route_and_status(base_url: str, client: hubspot.HubSpot) -> None:
    client.crm.contacts.basic_api.get_by_id("201")
    client.crm.contacts.basic_api.get_by_id("201")
    with pytest.raises(NotFoundException):
        client.crm.contacts.basic_api.get_by_id("999")
    stats = sandbox_call(base_url, "GET", "stats")
    assert stats["total"] == 3
    assert {"method": "GET", "path": "/crm/v3/objects/{objectType}/{objectId}", "count": 3} in stats[
        "requests"
    ]
    assert stats["by_status"] == {"200": 2, "404": 1}


def test_reset_restores_the_seeded_portal(base_url: str, client: hubspot.HubSpot) -> None:
    created = client.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"email": "tmp@x.io"})
    )
    client.crm.contacts.basic_api.archive("201")
    sandbox_call(base_url, "POST", "faults", {"path": ".*", "status": 500, "count": 5})
    sandbox_call(base_url, "POST", "reset")
    assert sandbox_call(base_url, "GET", "stats")["faults_pending"] == 0
    assert [r.id for r in client.crm.contacts.basic_api.get_page().results] == ["201"]
    with pytest.raises(NotFoundException):
        client.crm.contacts.basic_api.get_by_id(created.id)
    again = client.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"email": "tmp@x.io"})
    )
    assert again.id == created.id  # ids are deterministic from the seed


def test_malformed_bodies_are_400_not_500(base_url: str, client: hubspot.HubSpot) -> None:
    import urllib.error
    import urllib.request

    def post(path: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            base_url + path,
            data=raw,
            method="POST",
            headers={"Authorization": "Bearer good-token", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    status, error = post("/crm/v3/objects/contacts", b'{"properties": {"email": ')
    assert (status, error["category"]) == (400, "VALIDATION_ERROR")
    assert error["message"].startswith("Invalid input JSON")
    stage = {"label": "A", "metadata": {"probability": "0.1"}}
    pipeline = json.dumps({"label": "X", "displayOrder": "first", "stages": [stage]}).encode()
    status, error = post("/crm/v3/pipelines/deals", pipeline)
    assert (status, error["category"]) == (400, "VALIDATION_ERROR")
    assert "first" in error["message"]
    status, error = post("/crm/v3/objects/contacts/batch/read", b'{"inputs": ["201"]}')
    assert (status, error["category"]) == (400, "VALIDATION_ERROR")
