"""A2: the status endpoint, one test per row of the answer table."""

from __future__ import annotations

import secrets

import httpx

from server_stub.testing import StubServer
from tests.stub.conftest import StubFactory
from tests.stub.helpers import DK, OTHER_DK, snapshot_path, status_path


def test_same_revision_answers_304_with_revision_header(
    stub: StubServer, http: httpx.Client
) -> None:
    """v equal to the revision gives 304, X-Schedule-Revision and no body."""
    revision = stub.state.revision

    response = http.get(status_path(stub.token, dk=DK, v=str(revision)))

    assert response.status_code == 304
    assert response.headers["X-Schedule-Revision"] == str(revision)
    assert response.content == b""


def test_rev_parameter_works_like_v(stub: StubServer, http: httpx.Client) -> None:
    """rev= is accepted in place of v=."""
    revision = stub.state.revision

    response = http.get(status_path(stub.token, dk=DK, rev=str(revision)))

    assert response.status_code == 304


def test_other_revision_asks_for_a_fetch(stub: StubServer, http: httpx.Client) -> None:
    """An older v gives fetch_required with the current revision."""
    revision = stub.state.revision

    response = http.get(status_path(stub.token, dk=DK, v=str(revision - 1)))

    assert response.status_code == 200
    assert response.json() == {"fetch_required": True, "schedule_revision": revision}


def test_status_sends_server_time(stub: StubServer, http: httpx.Client) -> None:
    """Status answers, 304 included, carry X-Server-Time-MS."""
    response = http.get(status_path(stub.token, dk=DK, v=str(stub.state.revision)))

    assert int(response.headers["X-Server-Time-MS"]) > 1_600_000_000_000


def test_refresh_flag_is_answered_once(stub: StubServer, http: httpx.Client) -> None:
    """A refresh flag forces one fetch_required, then 304 again."""
    revision = str(stub.state.revision)
    stub.admin("POST", "/admin/flags", {"refresh": True})

    first = http.get(status_path(stub.token, dk=DK, v=revision))
    second = http.get(status_path(stub.token, dk=DK, v=revision))

    assert first.status_code == 200
    assert first.json()["fetch_required"] is True
    assert "reload" not in first.json()
    assert second.status_code == 304


def test_reload_flag_is_answered_once(stub: StubServer, http: httpx.Client) -> None:
    """A reload flag adds reload: true to one answer, then 304 again."""
    revision = str(stub.state.revision)
    stub.admin("POST", "/admin/flags", {"token": stub.token, "reload": True})

    first = http.get(status_path(stub.token, dk=DK, v=revision))
    second = http.get(status_path(stub.token, dk=DK, v=revision))

    assert first.status_code == 200
    assert first.json()["reload"] is True
    assert first.json()["fetch_required"] is True
    assert second.status_code == 304


def test_legacy_false_fault(stub: StubServer, http: httpx.Client) -> None:
    """status_legacy_false answers like an older server: fetch_required false."""
    stub.admin("POST", "/admin/faults", {"status_legacy_false": True})

    response = http.get(status_path(stub.token, dk=DK, v="1"))

    assert response.status_code == 200
    assert response.json() == {"fetch_required": False}


def test_fetch_required_only_fault(stub: StubServer, http: httpx.Client) -> None:
    """status_fetch_required_only answers fetch_required with no revision."""
    stub.admin("POST", "/admin/faults", {"status_fetch_required_only": True})

    response = http.get(status_path(stub.token, dk=DK, v=str(stub.state.revision)))

    assert response.status_code == 200
    assert response.json() == {"fetch_required": True}


def test_status_claims_the_screen(stub: StubServer, http: httpx.Client) -> None:
    """A second device key on status is refused with screen_bound."""
    http.get(status_path(stub.token, dk=DK))

    response = http.get(status_path(stub.token, dk=OTHER_DK))

    assert response.status_code == 403
    assert response.json()["detail"] == "screen_bound"
    assert response.json()["message"]


def test_status_binding_blocks_snapshot(stub: StubServer, http: httpx.Client) -> None:
    """A key bound through status keeps other keys off the snapshot."""
    http.get(status_path(stub.token, dk=DK))

    response = http.get(snapshot_path(stub.token, dk=OTHER_DK))

    assert response.status_code == 403
    assert response.json()["detail"] == "screen_bound"


def test_malformed_token_is_access_denied(stub: StubServer, http: httpx.Client) -> None:
    """A token that is not 32 or 64 hex characters gets access_denied."""
    for token in ("ABC234", "z" * 64, stub.token[:40]):
        response = http.get(status_path(token, dk=DK))

        assert response.status_code == 403
        assert response.json()["detail"] == "access_denied"


def test_unknown_token_is_invalid(stub: StubServer, http: httpx.Client) -> None:
    """A well-formed unknown token gets "Invalid display token"."""
    response = http.get(status_path(secrets.token_hex(32), dk=DK))

    assert response.status_code == 403
    assert response.json() == {"error": "Invalid display token"}


def test_upper_case_token_is_accepted(stub: StubServer, http: httpx.Client) -> None:
    """Tokens are case-insensitive."""
    response = http.get(status_path(stub.token.upper(), dk=DK, v="1"))

    assert response.status_code == 200
    assert response.json()["schedule_revision"] == stub.state.revision


def test_32_hex_token_is_accepted(make_stub: StubFactory) -> None:
    """An older screen's 32-hex token works."""
    token = secrets.token_hex(16)
    server = make_stub(tokens=[token], rate_limit=False)

    response = httpx.get(server.url + status_path(token, dk=DK, v="1"))

    assert response.status_code == 200
    assert response.json()["fetch_required"] is True


def test_status_never_builds_a_snapshot(stub: StubServer, http: httpx.Client) -> None:
    """Status calls leave the next snapshot a cache MISS."""
    http.get(status_path(stub.token, dk=DK, v="1"))

    response = http.get(snapshot_path(stub.token, dk=DK))

    assert response.headers["X-Snapshot-Cache"] == "MISS"
