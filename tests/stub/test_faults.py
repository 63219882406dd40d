"""A3: placeholder, stale and network faults switched on through /admin/faults."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from server_stub.testing import StubServer
from tests.stub.helpers import DK, snapshot_path, status_path


def test_building_placeholder(stub: StubServer, http: httpx.Client) -> None:
    """building answers a BUILDING body, cache QUEUED, without a duty key."""
    stub.admin("POST", "/admin/faults", {"building": True})

    response = http.get(snapshot_path(stub.token, dk=DK))

    assert response.status_code == 200
    assert response.json()["state"]["type"] == "BUILDING"
    assert response.headers["X-Snapshot-Cache"] == "QUEUED"
    assert "duty" not in response.json()


def test_config_placeholder(stub: StubServer, http: httpx.Client) -> None:
    """config_placeholder answers a config body with cache ERROR."""
    stub.admin("POST", "/admin/faults", {"config_placeholder": True})

    response = http.get(snapshot_path(stub.token, dk=DK))

    assert response.status_code == 200
    assert response.json()["state"]["type"] == "config"
    assert response.headers["X-Snapshot-Cache"] == "ERROR"


def test_loop_placeholder(stub: StubServer, http: httpx.Client) -> None:
    """loop answers a config body with cache LOOP."""
    stub.admin("POST", "/admin/faults", {"loop": True})

    response = http.get(snapshot_path(stub.token, dk=DK))

    assert response.json()["state"]["type"] == "config"
    assert response.headers["X-Snapshot-Cache"] == "LOOP"


@pytest.mark.parametrize("fault", ["building", "config_placeholder", "loop"])
def test_placeholders_carry_the_revision(
    stub: StubServer, http: httpx.Client, fault: str
) -> None:
    """Placeholders carry X-Revision and server time like real snapshots."""
    stub.admin("POST", "/admin/faults", {fault: True})

    response = http.get(snapshot_path(stub.token, dk=DK))

    assert response.headers["X-Revision"] == str(stub.state.revision)
    assert "X-Server-Time-MS" in response.headers
    assert response.json()["meta"]["schedule_revision"] == stub.state.revision


def test_too_many_requests_a_minute_loop(stub: StubServer, http: httpx.Client) -> None:
    """More than 120 snapshot requests in a minute get LOOP answers."""
    caches = [
        http.get(snapshot_path(stub.token, dk=DK)).headers["X-Snapshot-Cache"]
        for _ in range(121)
    ]

    assert "LOOP" not in caches[:120]
    assert caches[120] == "LOOP"


def test_clearing_faults_restores_data(stub: StubServer, http: httpx.Client) -> None:
    """DELETE /admin/faults brings real snapshots back."""
    stub.admin("POST", "/admin/faults", {"building": True})
    stub.admin("DELETE", "/admin/faults")

    response = http.get(snapshot_path(stub.token, dk=DK))

    assert response.json()["state"]["type"] not in ("BUILDING", "config")
    assert stub.admin("GET", "/admin/state")["faults"] == {}


def test_stale_serves_previous_revision(stub: StubServer, http: httpx.Client) -> None:
    """After a bump, stale serves the previous revision's body marked stale."""
    old = http.get(snapshot_path(stub.token, dk=DK))
    stub.admin("POST", "/admin/faults", {"stale": True})
    stub.admin("POST", "/admin/bump", {"push": False})

    response = http.get(snapshot_path(stub.token, dk=DK))

    meta = response.json()["meta"]
    assert meta["schedule_revision"] == old.json()["meta"]["schedule_revision"]
    assert meta["is_stale"] is True
    assert meta["cache"] == "STALE"
    assert response.headers["X-Snapshot-Cache"] == "STALE"
    assert response.headers["X-Revision"] == str(stub.state.revision)


def test_stale_does_not_touch_the_stored_body(
    stub: StubServer, http: httpx.Client
) -> None:
    """Once stale is off again, the current revision is served, not stale."""
    http.get(snapshot_path(stub.token, dk=DK))
    stub.admin("POST", "/admin/faults", {"stale": True})
    stub.admin("POST", "/admin/bump", {"push": False})
    http.get(snapshot_path(stub.token, dk=DK))
    stub.admin("POST", "/admin/faults", {"stale": False})

    meta = http.get(snapshot_path(stub.token, dk=DK)).json()["meta"]

    assert meta["schedule_revision"] == stub.state.revision
    assert meta["is_stale"] is False


@pytest.mark.parametrize("code", [500, 502, 503])
def test_http_status_fault(stub: StubServer, http: httpx.Client, code: int) -> None:
    """http_status answers that status on snapshot and status alike."""
    stub.admin("POST", "/admin/faults", {"http_status": code})

    snapshot = http.get(snapshot_path(stub.token, dk=DK))
    status = http.get(status_path(stub.token, dk=DK))

    assert snapshot.status_code == code
    assert status.status_code == code


def test_slow_fault_delays_the_answer(stub: StubServer, http: httpx.Client) -> None:
    """slow_s holds each answer for about that long."""
    stub.admin("POST", "/admin/faults", {"slow_s": 0.3})

    started = time.monotonic()
    response = http.get(status_path(stub.token, dk=DK))
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert 0.3 <= elapsed < 2.0


def test_captive_portal_is_html_200(stub: StubServer, http: httpx.Client) -> None:
    """captive_portal answers an HTML login page with 200."""
    stub.admin("POST", "/admin/faults", {"captive_portal": True})

    response = http.get(snapshot_path(stub.token, dk=DK))

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<form>" in response.text


def test_redirect_is_302(stub: StubServer, http: httpx.Client) -> None:
    """redirect answers 302 to a login page."""
    stub.admin("POST", "/admin/faults", {"redirect": True})

    response = http.get(status_path(stub.token, dk=DK))

    assert response.status_code == 302
    assert response.headers["Location"].startswith("http://")


def test_bad_json_is_unparseable(stub: StubServer, http: httpx.Client) -> None:
    """bad_json answers a JSON content type with a body that does not parse."""
    stub.admin("POST", "/admin/faults", {"bad_json": True})

    response = http.get(status_path(stub.token, dk=DK))

    assert response.headers["Content-Type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


def test_fault_set_false_switches_it_off(stub: StubServer, http: httpx.Client) -> None:
    """A fault given as false is removed and the rest stay on."""
    stub.admin("POST", "/admin/faults", {"building": True, "redirect": True})

    faults = stub.admin("POST", "/admin/faults", {"redirect": False})

    assert faults == {"building": True}
