"""A1: the people-facing short code page and the /?token= display URL."""

from __future__ import annotations

import httpx

from server_stub.testing import StubServer


def test_short_code_page_carries_the_token(
    stub: StubServer, http: httpx.Client
) -> None:
    """/s/CODE/ is HTML whose body has data-api-token and data-token."""
    response = http.get(f"/s/{stub.short_code}/")

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert f'data-api-token="{stub.token}"' in response.text
    assert f'data-token="{stub.token}"' in response.text


def test_short_code_is_case_insensitive(stub: StubServer, http: httpx.Client) -> None:
    """A code typed in lower case finds the same screen."""
    response = http.get(f"/s/{stub.short_code.lower()}/")

    assert f'data-api-token="{stub.token}"' in response.text


def test_unknown_short_code_is_html_404(stub: StubServer, http: httpx.Client) -> None:
    """An unknown code is an HTML 404."""
    code = "222222" if stub.short_code != "222222" else "333333"

    response = http.get(f"/s/{code}/")

    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/html")
    assert "data-api-token" not in response.text


def test_display_url_with_a_code(stub: StubServer, http: httpx.Client) -> None:
    """/?token=CODE serves the page carrying the real token."""
    response = http.get("/", params={"token": stub.short_code})

    assert response.status_code == 200
    assert f'data-api-token="{stub.token}"' in response.text


def test_display_url_with_a_token(stub: StubServer, http: httpx.Client) -> None:
    """/?token=TOKEN serves the same page."""
    response = http.get("/", params={"token": stub.token.upper()})

    assert f'data-token="{stub.token}"' in response.text


def test_display_url_unknown_is_404(stub: StubServer, http: httpx.Client) -> None:
    """/? with no or an unknown token is a 404."""
    assert http.get("/").status_code == 404
    assert http.get("/", params={"token": "nothing"}).status_code == 404
