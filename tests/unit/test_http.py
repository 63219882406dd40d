"""Every answer in the protocol's status and snapshot tables maps to one outcome."""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
import pytest
import respx

from agent.errors import RejectedError, Rejection, TransientError
from agent.transport.http import (
    RateGate,
    ServerApi,
    SnapshotFresh,
    SnapshotNotModified,
    SnapshotPlaceholder,
    StatusChanged,
    StatusIdle,
    StatusUnchanged,
)

SERVER = "https://school.example"
TOKEN = "ab" * 32
DK = "0f1e2d3c-4b5a-4697-8877-665544332211"
STATUS = f"{SERVER}/api/display/status/{TOKEN}/"
SNAPSHOT = f"{SERVER}/api/display/snapshot/{TOKEN}/"


class _NoWait(RateGate):
    async def wait(self) -> None:
        return None


def _snapshot(revision: int = 58, **state: Any) -> dict[str, Any]:
    return {
        "now": "2026-04-22T09:12:05+03:00",
        "meta": {"schedule_revision": revision, "cache": "MISS"},
        "settings": {"name": "School"},
        "state": {"type": "period", **state},
        "day_path": [],
        "duty": {"items": []},
        "announcements": [],
    }


@pytest.fixture
async def api() -> Any:
    async with ServerApi(SERVER, TOKEN, DK, gate=_NoWait()) as client:
        yield client


# -- status (A2) ---------------------------------------------------------------


@respx.mock
async def test_status_304_is_unchanged_with_header_revision(api: ServerApi) -> None:
    """304 with X-Schedule-Revision means nothing changed."""
    route = respx.get(STATUS).respond(304, headers={"X-Schedule-Revision": "58"})

    outcome = await api.status(58)

    assert outcome == StatusUnchanged(58)
    request = route.calls.last.request
    assert request.url.params["v"] == "58" and request.url.params["dk"] == DK
    assert request.headers["X-Display-Device"] == DK


@respx.mock
async def test_status_fetch_required_with_revision(api: ServerApi) -> None:
    """fetch_required with a revision asks for the snapshot."""
    respx.get(STATUS).respond(
        200, json={"fetch_required": True, "schedule_revision": 59}
    )

    assert await api.status(58) == StatusChanged(59)


@respx.mock
async def test_status_fetch_required_without_revision(api: ServerApi) -> None:
    """A server that cannot compare still says fetch, with no revision."""
    respx.get(STATUS).respond(200, json={"fetch_required": True})

    assert await api.status(None) == StatusChanged(None)


@respx.mock
async def test_status_reload_flag(api: ServerApi) -> None:
    """An administrator's reload request is carried in the outcome."""
    respx.get(STATUS).respond(200, json={"fetch_required": True, "reload": True})

    assert await api.status(58) == StatusChanged(None, reload=True)


@respx.mock
async def test_status_fetch_not_required_from_older_server(api: ServerApi) -> None:
    """fetch_required false means nothing to do."""
    respx.get(STATUS).respond(200, json={"fetch_required": False})

    assert await api.status(58) == StatusIdle()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"detail": "screen_bound", "message": "bound"}, Rejection.SCREEN_BOUND),
        ({"detail": "access_denied"}, Rejection.TOKEN_INVALID),
        ({"error": "Invalid display token"}, Rejection.TOKEN_INVALID),
        ({"error": "Invalid or inactive display token"}, Rejection.TOKEN_INVALID),
        ({"detail": "device_required"}, Rejection.DEVICE_REQUIRED),
    ],
)
@respx.mock
async def test_status_403_bodies_are_rejections(
    api: ServerApi, body: dict[str, str], code: Rejection
) -> None:
    """Each 403 body the server sends maps to its rejection."""
    respx.get(STATUS).respond(403, json=body)

    with pytest.raises(RejectedError) as caught:
        await api.status(58)
    assert caught.value.code is code


@respx.mock
async def test_403_html_from_a_proxy_is_transient(api: ServerApi) -> None:
    """A proxy's HTML 403 is not the server refusing the screen."""
    respx.get(STATUS).respond(403, html="<html>Forbidden by proxy</html>")

    with pytest.raises(TransientError):
        await api.status(58)


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, html="<html><form>Wi-Fi login</form></html>"),
        httpx.Response(200, text='{"fetch_required": tr'),
        httpx.Response(200, json=["not", "an", "object"]),
        httpx.Response(200, json={"hello": "portal"}),
        httpx.Response(302, headers={"Location": "http://portal.example/login"}),
        httpx.Response(502, text="Bad gateway"),
        httpx.Response(503),
        httpx.Response(504),
        httpx.Response(500, json={"detail": "boom"}),
        httpx.Response(404, text="nope"),
    ],
)
@respx.mock
async def test_status_faults_are_transient(
    api: ServerApi, response: httpx.Response
) -> None:
    """Portals, redirects, 5xx and junk are transient errors, never data."""
    respx.get(STATUS).mock(return_value=response)

    with pytest.raises(TransientError):
        await api.status(58)


@respx.mock
async def test_connection_errors_and_timeouts_are_transient(api: ServerApi) -> None:
    """Network failures become TransientError with the cause chained."""
    respx.get(STATUS).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(TransientError) as caught:
        await api.status(58)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)

    respx.get(STATUS).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(TransientError, match="timed out"):
        await api.status(58)


@respx.mock
async def test_429_carries_retry_after(api: ServerApi) -> None:
    """Rate limiting honours the server's Retry-After."""
    respx.get(SNAPSHOT).respond(
        429, json={"detail": "rate_limited"}, headers={"Retry-After": "7"}
    )

    with pytest.raises(TransientError) as caught:
        await api.snapshot(None)
    assert caught.value.retry_after_s == 7.0


# -- snapshot (A3) ------------------------------------------------------------


@respx.mock
async def test_snapshot_200_is_fresh_data_with_etag_and_revision(
    api: ServerApi,
) -> None:
    """A real snapshot comes back with its ETag, revision and cache state."""
    respx.get(SNAPSHOT).respond(
        200, json=_snapshot(58), headers={"ETag": '"abc123"', "X-Snapshot-Cache": "HIT"}
    )

    outcome = await api.snapshot(None)

    assert isinstance(outcome, SnapshotFresh)
    assert (outcome.etag, outcome.revision, outcome.cache) == ('"abc123"', 58, "HIT")
    assert outcome.is_stale is False


@respx.mock
async def test_snapshot_sends_if_none_match_and_understands_304(api: ServerApi) -> None:
    """The stored ETag goes out as If-None-Match; 304 means unchanged."""
    route = respx.get(SNAPSHOT).respond(304, headers={"X-Revision": "58"})

    outcome = await api.snapshot('"abc123"')

    assert outcome == SnapshotNotModified(58)
    assert route.calls.last.request.headers["If-None-Match"] == '"abc123"'


@respx.mock
async def test_gzip_bodies_are_decoded(api: ServerApi) -> None:
    """Gzip-encoded snapshots are read like plain ones."""
    body = gzip.compress(json.dumps(_snapshot(60)).encode())
    respx.get(SNAPSHOT).respond(
        200,
        content=body,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )

    outcome = await api.snapshot(None)

    assert isinstance(outcome, SnapshotFresh) and outcome.revision == 60


@respx.mock
async def test_stale_snapshot_is_flagged(api: ServerApi) -> None:
    """STALE bodies are data but marked, so the coordinator can refuse them."""
    body = _snapshot(57)
    body["meta"]["is_stale"] = True
    respx.get(SNAPSHOT).respond(200, json=body, headers={"X-Snapshot-Cache": "STALE"})

    outcome = await api.snapshot(None)

    assert isinstance(outcome, SnapshotFresh) and outcome.is_stale


@pytest.mark.parametrize(
    ("state_type", "cache", "kind"),
    [
        ("BUILDING", "QUEUED", "BUILDING"),
        ("period", "QUEUED", "BUILDING"),
        ("config", "ERROR", "config"),
        ("config", "BYPASS", "config"),
        ("config", "LOOP", "config"),
        ("period", "LOOP", "LOOP"),
    ],
)
@respx.mock
async def test_placeholders_are_never_data(
    api: ServerApi, state_type: str, cache: str, kind: str
) -> None:
    """BUILDING, config and QUEUED/BYPASS/ERROR/LOOP bodies are placeholders."""
    respx.get(SNAPSHOT).respond(
        200, json=_snapshot(58, type=state_type), headers={"X-Snapshot-Cache": cache}
    )

    outcome = await api.snapshot(None)

    assert isinstance(outcome, SnapshotPlaceholder)
    assert outcome.kind == kind and outcome.retry_after_s == 3.0


@respx.mock
async def test_building_placeholder_without_duty_key(api: ServerApi) -> None:
    """The real BUILDING body lacks keys; it is still recognised."""
    body = {
        "now": "x",
        "meta": {"cache": "FALLBACK", "schedule_revision": 58},
        "settings": {},
        "state": {"type": "BUILDING"},
    }
    respx.get(SNAPSHOT).respond(200, json=body)

    outcome = await api.snapshot(None)

    assert isinstance(outcome, SnapshotPlaceholder) and outcome.kind == "BUILDING"


@respx.mock
async def test_json_that_is_not_a_snapshot_is_an_error(api: ServerApi) -> None:
    """A JSON object without meta and state is not data."""
    respx.get(SNAPSHOT).respond(200, json={"status": "ok"})

    with pytest.raises(TransientError, match="not a snapshot"):
        await api.snapshot(None)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"detail": "device_required"}, Rejection.DEVICE_REQUIRED),
        ({"detail": "screen_bound"}, Rejection.SCREEN_BOUND),
        ({"error": "Invalid display token"}, Rejection.TOKEN_INVALID),
        (_snapshot(0, type="config"), Rejection.TOKEN_INVALID),
    ],
)
@respx.mock
async def test_snapshot_403_rows(
    api: ServerApi, body: dict[str, Any], code: Rejection
) -> None:
    """Snapshot 403s, including a snapshot-shaped one, are rejections."""
    respx.get(SNAPSHOT).respond(403, json=body)

    with pytest.raises(RejectedError) as caught:
        await api.snapshot(None)
    assert caught.value.code is code


@respx.mock
async def test_server_time_header_feeds_the_clock(api: ServerApi) -> None:
    """X-Server-Time-MS on any answer, 304 included, sets the clock offset."""
    import time

    server_ms = time.time() * 1000 + 90_000
    respx.get(STATUS).respond(
        304,
        headers={"X-Server-Time-MS": str(int(server_ms)), "X-Schedule-Revision": "1"},
    )

    await api.status(1)

    assert api.clock.known
    assert 85_000 < api.clock.offset_ms < 95_000


@respx.mock
async def test_error_messages_never_carry_the_token(api: ServerApi) -> None:
    """A failure's message names the problem, not the secret in the URL."""
    respx.get(STATUS).mock(side_effect=httpx.ConnectError(f"failed for {STATUS}"))

    with pytest.raises(TransientError) as caught:
        await api.status(1)
    assert TOKEN not in str(caught.value)


async def test_rate_gate_spaces_requests_one_second_and_forty_a_minute() -> None:
    """The gate allows 1 request a second and no more than 40 in 60 s."""
    now = [0.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    gate = RateGate(monotonic=lambda: now[0], sleep=fake_sleep)
    for _ in range(41):
        await gate.wait()

    assert slept[0] == pytest.approx(1.0)
    assert now[0] == pytest.approx(60.0)
