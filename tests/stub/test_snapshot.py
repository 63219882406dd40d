"""A3: snapshot identity, binding, ETags, headers, gzip and the rate limit."""

from __future__ import annotations

import time

import httpx

from server_stub.testing import StubServer
from tests.stub.conftest import StubFactory
from tests.stub.helpers import DK, OTHER_DK, snapshot_path, status_path


def test_device_key_by_header(stub: StubServer, http: httpx.Client) -> None:
    """X-Display-Device alone is a device key."""
    response = http.get(snapshot_path(stub.token), headers={"X-Display-Device": DK})

    assert response.status_code == 200
    assert response.json()["meta"]["schedule_revision"] == stub.state.revision


def test_device_key_by_query(stub: StubServer, http: httpx.Client) -> None:
    """dk= alone is a device key."""
    response = http.get(snapshot_path(stub.token, dk=DK))

    assert response.status_code == 200


def test_missing_device_key_is_device_required(
    stub: StubServer, http: httpx.Client
) -> None:
    """No device key gives 403 device_required."""
    response = http.get(snapshot_path(stub.token))

    assert response.status_code == 403
    assert response.json()["detail"] == "device_required"


def test_header_and_query_keys_bind_alike(stub: StubServer, http: httpx.Client) -> None:
    """A key bound by header is the same device when it comes by query."""
    http.get(snapshot_path(stub.token), headers={"X-Display-Device": DK})

    response = http.get(snapshot_path(stub.token, dk=DK))

    assert response.status_code == 200


def test_second_key_is_screen_bound(stub: StubServer, http: httpx.Client) -> None:
    """The first key owns the screen; a second gets screen_bound."""
    http.get(snapshot_path(stub.token, dk=DK))

    response = http.get(snapshot_path(stub.token, dk=OTHER_DK))

    assert response.status_code == 403
    assert response.json()["detail"] == "screen_bound"


def test_snapshot_binding_blocks_status(stub: StubServer, http: httpx.Client) -> None:
    """A key bound through the snapshot keeps other keys off status."""
    http.get(snapshot_path(stub.token, dk=DK))

    response = http.get(status_path(stub.token, dk=OTHER_DK))

    assert response.status_code == 403
    assert response.json()["detail"] == "screen_bound"


def test_unbind_releases_the_screen(stub: StubServer, http: httpx.Client) -> None:
    """After /admin/unbind another key can claim the screen."""
    http.get(snapshot_path(stub.token, dk=DK))
    stub.admin("POST", "/admin/unbind", {"token": stub.token})

    response = http.get(snapshot_path(stub.token, dk=OTHER_DK))

    assert response.status_code == 200
    assert stub.admin("GET", "/admin/state")["bindings"][stub.token] == OTHER_DK


def test_snapshot_token_errors_match_status(
    stub: StubServer, http: httpx.Client
) -> None:
    """Snapshot refuses a malformed token with access_denied."""
    response = http.get(snapshot_path("not-a-token", dk=DK))

    assert response.status_code == 403
    assert response.json()["detail"] == "access_denied"


def test_etag_is_strong_and_quoted(stub: StubServer, http: httpx.Client) -> None:
    """The ETag is a quoted hex digest without W/."""
    etag = http.get(snapshot_path(stub.token, dk=DK)).headers["ETag"]

    assert etag.startswith('"') and etag.endswith('"')
    assert all(c in "0123456789abcdef" for c in etag[1:-1])
    assert len(etag) > 10


def test_if_none_match_quoted_gives_304(stub: StubServer, http: httpx.Client) -> None:
    """The ETag as given gives 304 with an empty body."""
    etag = http.get(snapshot_path(stub.token, dk=DK)).headers["ETag"]

    response = http.get(
        snapshot_path(stub.token, dk=DK), headers={"If-None-Match": etag}
    )

    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["ETag"] == etag


def test_if_none_match_weak_gives_304(stub: StubServer, http: httpx.Client) -> None:
    """W/ before the ETag is stripped before comparing."""
    etag = http.get(snapshot_path(stub.token, dk=DK)).headers["ETag"]

    response = http.get(
        snapshot_path(stub.token, dk=DK), headers={"If-None-Match": f"W/{etag}"}
    )

    assert response.status_code == 304


def test_if_none_match_bare_gives_304(stub: StubServer, http: httpx.Client) -> None:
    """The ETag without its quotes also matches."""
    etag = http.get(snapshot_path(stub.token, dk=DK)).headers["ETag"]

    response = http.get(
        snapshot_path(stub.token, dk=DK), headers={"If-None-Match": etag.strip('"')}
    )

    assert response.status_code == 304


def test_if_none_match_list_is_not_supported(
    stub: StubServer, http: httpx.Client
) -> None:
    """A list of ETags, even one holding the current one, gives a full body."""
    etag = http.get(snapshot_path(stub.token, dk=DK)).headers["ETag"]

    response = http.get(
        snapshot_path(stub.token, dk=DK), headers={"If-None-Match": f'"x", {etag}'}
    )

    assert response.status_code == 200


def test_old_etag_after_a_bump_gives_full_body(
    stub: StubServer, http: httpx.Client
) -> None:
    """After a revision bump the stored ETag no longer matches."""
    etag = http.get(snapshot_path(stub.token, dk=DK)).headers["ETag"]
    stub.admin("POST", "/admin/bump", {"push": False})

    response = http.get(
        snapshot_path(stub.token, dk=DK), headers={"If-None-Match": etag}
    )

    assert response.status_code == 200
    assert response.headers["ETag"] != etag


def test_rebuild_at_same_revision_changes_etag(
    stub: StubServer, http: httpx.Client
) -> None:
    """A rebuild with nothing changed still gets a new ETag."""
    first = http.get(snapshot_path(stub.token, dk=DK))
    stub.admin("POST", "/admin/revision", {"revision": stub.state.revision})

    second = http.get(snapshot_path(stub.token, dk=DK))

    assert second.json()["meta"]["schedule_revision"] == stub.state.revision
    assert second.headers["X-Snapshot-Cache"] == "MISS"
    assert second.headers["ETag"] != first.headers["ETag"]


def test_first_build_is_miss_then_hit(stub: StubServer, http: httpx.Client) -> None:
    """X-Snapshot-Cache is MISS on the first build and HIT after."""
    first = http.get(snapshot_path(stub.token, dk=DK))
    second = http.get(snapshot_path(stub.token, dk=DK))

    assert first.headers["X-Snapshot-Cache"] == "MISS"
    assert second.headers["X-Snapshot-Cache"] == "HIT"
    assert second.json()["meta"]["cache"] == "HIT"
    assert second.headers["ETag"] == first.headers["ETag"]


def test_snapshot_headers(stub: StubServer, http: httpx.Client) -> None:
    """Server time, revision, school id and no-store are on every snapshot."""
    headers = http.get(snapshot_path(stub.token, dk=DK)).headers

    assert abs(int(headers["X-Server-Time-MS"]) - stub.state.now_ms()) < 5_000
    assert headers["X-Revision"] == str(stub.state.revision)
    assert headers["X-School-Id"] == "12"
    assert headers["Cache-Control"].startswith("no-store")


def test_304_carries_server_time_and_revision(
    stub: StubServer, http: httpx.Client
) -> None:
    """A 304 still sends X-Server-Time-MS and X-Revision."""
    etag = http.get(snapshot_path(stub.token, dk=DK)).headers["ETag"]

    response = http.get(
        snapshot_path(stub.token, dk=DK), headers={"If-None-Match": etag}
    )

    assert "X-Server-Time-MS" in response.headers
    assert response.headers["X-Revision"] == str(stub.state.revision)


def test_body_is_gzipped_when_asked(stub: StubServer, http: httpx.Client) -> None:
    """Accept-Encoding: gzip gives a gzip body that decodes to the snapshot."""
    response = http.get(
        snapshot_path(stub.token, dk=DK), headers={"Accept-Encoding": "gzip"}
    )

    assert response.headers["Content-Encoding"] == "gzip"
    assert response.json()["meta"]["schedule_revision"] == stub.state.revision


def test_body_is_plain_without_gzip(stub: StubServer, http: httpx.Client) -> None:
    """Accept-Encoding: identity gives an uncompressed body."""
    response = http.get(
        snapshot_path(stub.token, dk=DK), headers={"Accept-Encoding": "identity"}
    )

    assert "Content-Encoding" not in response.headers
    assert response.json()["state"]["type"]


def test_rate_limit_allows_a_burst_of_three(make_stub: StubFactory) -> None:
    """With the rate limit on, the fourth quick request gets 429 Retry-After."""
    server = make_stub(rate_limit=True)
    url = server.url + snapshot_path(server.token, dk=DK)

    with httpx.Client(timeout=5) as client:
        codes = [client.get(url).status_code for _ in range(3)]
        limited = client.get(url)

    assert codes == [200, 200, 200]
    assert limited.status_code == 429
    assert limited.json() == {"detail": "rate_limited"}
    assert limited.headers["Retry-After"] == "1"


def test_rate_limit_recovers_after_a_second(make_stub: StubFactory) -> None:
    """A second after being limited, a request is answered again."""
    server = make_stub(rate_limit=True)
    url = server.url + snapshot_path(server.token, dk=DK)

    with httpx.Client(timeout=5) as client:
        for _ in range(4):
            client.get(url)
        time.sleep(1.05)
        response = client.get(url)

    assert response.status_code == 200


def test_cached_body_expires(make_stub: StubFactory) -> None:
    """After the cache lifetime the body is rebuilt: MISS and a new ETag."""
    server = make_stub(rate_limit=False, cache_ttl_s=0.2)
    url = server.url + snapshot_path(server.token, dk=DK)

    first = httpx.get(url)
    time.sleep(0.3)
    second = httpx.get(url)

    assert second.headers["X-Snapshot-Cache"] == "MISS"
    assert second.headers["ETag"] != first.headers["ETag"]
