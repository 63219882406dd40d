"""A4: the snapshot body's shape, and how the clock moves the school's day."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from server_stub.testing import StubServer
from tests.stub.helpers import DK, snapshot_path

# 2026-04-22 is a Wednesday (a school day); 2026-04-24 is a Friday (weekend).
SCHOOL_DAY = "2026-04-22"
WEEKEND_DAY = "2026-04-24"
TOP_KEYS = {
    "now",
    "meta",
    "settings",
    "state",
    "day_path",
    "current_period",
    "next_period",
    "period_classes",
    "period_classes_map",
    "standby",
    "excellence",
    "duty",
    "announcements",
}
META_KEYS = {
    "date",
    "weekday",
    "is_school_day",
    "is_active_window",
    "active_window",
    "next_school_day",
    "next_wake_at",
    "schedule_revision",
    "ws_enabled",
    "cache",
    "generated_at",
    "is_stale",
}
SETTINGS_KEYS = {
    "name",
    "logo_url",
    "theme",
    "display_accent_color",
    "timezone_name",
    "refresh_interval_sec",
    "standby_scroll_speed",
    "periods_scroll_speed",
    "featured_panel",
    *(
        f"display_{when}_{part}"
        for when in ("before", "after", "after_holiday", "holiday")
        for part in ("title", "badge")
    ),
}


def body_at(stub: StubServer, http: httpx.Client, local: str) -> dict[str, Any]:
    """The snapshot body with the school clock set to ``local`` (+03:00)."""
    stub.admin("POST", "/admin/clock", {"now": f"{local}+03:00"})
    response = http.get(snapshot_path(stub.token, dk=DK))
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_live_snapshot_has_every_key(stub: StubServer, http: httpx.Client) -> None:
    """A live snapshot carries every key the protocol lists."""
    body = body_at(stub, http, f"{SCHOOL_DAY}T09:12:00")

    assert body.keys() >= TOP_KEYS
    assert body["meta"].keys() >= META_KEYS
    assert body["settings"].keys() >= SETTINGS_KEYS
    assert {"type", "label", "from", "to", "remaining_seconds"} <= body["state"].keys()
    assert isinstance(body["duty"]["items"], list)


def test_now_carries_the_school_offset(stub: StubServer, http: httpx.Client) -> None:
    """now is school-local ISO time with the +03:00 offset."""
    body = body_at(stub, http, f"{SCHOOL_DAY}T09:12:00")

    now = datetime.fromisoformat(body["now"])
    assert body["now"].endswith("+03:00")
    assert now.date().isoformat() == SCHOOL_DAY


def test_settings_values_are_in_range(stub: StubServer, http: httpx.Client) -> None:
    """Theme, accent colour and featured panel take protocol values."""
    settings = body_at(stub, http, f"{SCHOOL_DAY}T09:12:00")["settings"]

    assert settings["theme"] in {
        "indigo",
        "emerald",
        "rose",
        "cyan",
        "amber",
        "orange",
        "violet",
    }
    assert settings["display_accent_color"].startswith("#")
    assert len(settings["display_accent_color"]) == 7
    assert settings["featured_panel"] in {"excellence", "duty"}


def test_live_content_rows_have_their_fields(
    stub: StubServer, http: httpx.Client
) -> None:
    """Inside the window standby, duty and day_path rows carry their fields."""
    body = body_at(stub, http, f"{SCHOOL_DAY}T09:12:00")

    assert body["standby"]
    assert all(
        {"period_index", "class_name", "teacher_name", "notes"} <= row.keys()
        for row in body["standby"]
    )
    assert all(
        {"teacher_name", "duty_label", "location"} <= row.keys()
        for row in body["duty"]["items"]
    )
    periods = [b for b in body["day_path"] if b["kind"] == "period"]
    assert periods
    assert all({"index", "class", "teacher", "from", "to"} <= p.keys() for p in periods)


def test_during_a_period(stub: StubServer, http: httpx.Client) -> None:
    """At 09:12 the state is a period with current and next periods set."""
    body = body_at(stub, http, f"{SCHOOL_DAY}T09:12:00")

    assert body["state"]["type"] == "period"
    assert body["current_period"]["index"] == 3
    assert body["current_period"]["from"] == "08:50"
    assert body["next_period"]["index"] == 4
    assert body["meta"]["is_active_window"] is True
    assert body["meta"]["next_wake_at"] is None
    assert 0 < body["state"]["remaining_seconds"] <= 23 * 60


def test_during_a_break(stub: StubServer, http: httpx.Client) -> None:
    """At 08:40 the state is the morning break."""
    body = body_at(stub, http, f"{SCHOOL_DAY}T08:40:00")

    assert body["state"]["type"] == "break"
    assert body["current_period"]["kind"] == "break"
    assert body["current_period"]["to"] == "08:50"
    assert body["next_period"]["index"] == 3


def test_before_school(stub: StubServer, http: httpx.Client) -> None:
    """At 06:00 the state is BEFORE_SCHOOL and the wake-up is at window start."""
    body = body_at(stub, http, f"{SCHOOL_DAY}T06:00:00")

    assert body["state"]["type"] == "BEFORE_SCHOOL"
    assert body["state"]["reason"] == "before_hours"
    assert body["meta"]["is_active_window"] is False
    assert body["meta"]["next_wake_at"] == f"{SCHOOL_DAY}T06:30:00+03:00"


def test_after_school(stub: StubServer, http: httpx.Client) -> None:
    """At 14:00 the state is OFF_HOURS and the wake-up is the next school day."""
    body = body_at(stub, http, f"{SCHOOL_DAY}T14:00:00")

    assert body["state"]["type"] == "OFF_HOURS"
    assert body["state"]["reason"] == "after_hours"
    assert body["meta"]["next_wake_at"] == "2026-04-23T06:30:00+03:00"


def test_weekend(stub: StubServer, http: httpx.Client) -> None:
    """On a Friday the state is NO_SCHEDULE_TODAY; Sunday is the next day."""
    body = body_at(stub, http, f"{WEEKEND_DAY}T09:00:00")

    assert body["state"]["type"] == "NO_SCHEDULE_TODAY"
    assert body["meta"]["is_school_day"] is False
    assert body["meta"]["weekday"] == 5
    assert body["meta"]["next_school_day"]["date"] == "2026-04-26"
    assert body["meta"]["next_wake_at"] == "2026-04-26T06:30:00+03:00"


def test_outside_window_lists_are_empty(stub: StubServer, http: httpx.Client) -> None:
    """Outside the active window every content list is empty."""
    body = body_at(stub, http, f"{SCHOOL_DAY}T14:00:00")

    assert body["day_path"] == []
    assert body["period_classes"] == []
    assert body["period_classes_map"] == {}
    assert body["standby"] == []
    assert body["excellence"] == []
    assert body["duty"] == {"items": []}
    assert body["announcements"] == []
    assert body["current_period"] is None


def test_state_label_comes_from_settings(stub: StubServer, http: httpx.Client) -> None:
    """The off-hours state label and badge are the school's copy strings."""
    body = body_at(stub, http, f"{SCHOOL_DAY}T14:00:00")

    assert body["state"]["label"] == body["settings"]["display_after_title"]
    assert body["state"]["badge"] == body["settings"]["display_after_badge"]


def test_clock_change_rebuilds(stub: StubServer, http: httpx.Client) -> None:
    """Moving the clock rebuilds the snapshot without bumping the revision."""
    before = body_at(stub, http, f"{SCHOOL_DAY}T09:12:00")

    after = body_at(stub, http, f"{SCHOOL_DAY}T10:00:00")

    assert after["current_period"]["index"] == 4
    assert after["meta"]["schedule_revision"] == before["meta"]["schedule_revision"]
