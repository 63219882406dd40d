"""build_view turns any snapshot, however damaged, into validated plain data."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.render.base import NoticeKind
from agent.render.view import THEMES, View, build_view, notice_view, safe_url

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _snapshot(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"snapshot-{name}.json").read_text())
    return data


def test_period_example_carries_school_theme_and_blocks() -> None:
    """The live example keeps its name, theme, accent, blocks and revision."""
    view = build_view(_snapshot("period"))

    assert view.school == "مدرسة الأفق الابتدائية"
    assert (view.theme, view.accent, view.revision) == ("emerald", "#22C55E", 57)
    assert [b.label for b in view.blocks][:3] == ["قرآن", "لغتي", "الفسحة"]
    assert view.blocks[2].kind == "break" and view.blocks[2].index is None
    assert view.current is not None and view.current.label == "رياضيات"
    assert view.next is not None and (view.next.start, view.next.end) == (
        "09:35",
        "10:20",
    )
    assert view.screen == "live"


def test_period_example_lists_announcements_duty_excellence_standby() -> None:
    """Content lists are kept with the fields the page shows."""
    view = build_view(_snapshot("period"))

    assert [a.title for a in view.announcements] == ["تنبيه", "رحلة"]
    assert view.announcements[1].expires_ms is not None
    assert view.duty[0].teacher == "أ. طلال" and view.duty[0].location == "الساحة"
    assert view.excellence[0].reason == "التميز في التدريس"
    assert view.standby[0].period_index == 3 and view.standby[0].teacher == "أ. وليد"
    assert view.featured_panel == "excellence"


def test_timezone_offset_and_date_come_from_now() -> None:
    """``now`` gives the school date and a +03:00 offset as 180 minutes."""
    view = build_view(_snapshot("period"))

    assert (view.date, view.tz_offset_min) == ("2026-04-22", 180)


def test_before_hours_example_is_an_idle_screen_with_next_day() -> None:
    """Outside the window the view names the idle screen and the next school day."""
    view = build_view(_snapshot("before-hours"))

    assert view.screen == "before"
    assert view.state.badge == "مرحبًا"
    assert view.next_day is not None
    assert (view.next_day.date, view.next_day.first_start) == ("2026-04-23", "07:00")
    assert view.next_day.is_tomorrow
    assert view.next_wake_at == "2026-04-22T06:30:00+03:00"
    assert view.copy["holiday_title"] == "لا دراسة اليوم"


def test_building_placeholder_is_a_waiting_screen() -> None:
    """A BUILDING placeholder lacking duty and copy strings still builds."""
    view = build_view(_snapshot("building"))

    assert view.screen == "waiting"
    assert view.duty == () and view.copy["after_title"] == ""
    assert view.revision == 58


@pytest.mark.parametrize(
    "snapshot",
    [
        {},
        {"meta": None, "settings": [], "state": "x", "day_path": {"a": 1}},
        {"day_path": [None, 3, {"from": "7", "to": "x"}], "announcements": "no"},
        {"now": 12, "duty": {"items": [None, {"teacher_name": {"x": 1}}]}},
        {"standby": [{"period_index": True}], "excellence": [{"name": None}]},
    ],
)
def test_garbage_snapshots_build_an_empty_view(snapshot: dict[str, Any]) -> None:
    """Wrong types anywhere give an empty, valid view instead of an exception."""
    view = build_view(snapshot)

    assert view.blocks == () and view.duty == () and view.announcements == ()
    json.loads(view.to_json())


def test_malformed_items_are_dropped_and_good_ones_kept() -> None:
    """A bad block or announcement is dropped without losing its neighbours."""
    snapshot = {
        "day_path": [
            {"kind": "period", "label": "Maths", "from": "08:00", "to": "08:45"},
            {"kind": "period", "label": "Broken", "from": "25:00", "to": "26:00"},
            {"kind": "period", "label": "Backwards", "from": "10:00", "to": "09:00"},
            {"kind": "break", "label": None, "from": "8:45", "to": "09:00"},
        ],
        "announcements": [{"id": 1, "title": "", "body": None}, {"title": "Hi"}],
    }

    view = build_view(snapshot)

    assert [(b.label, b.start) for b in view.blocks] == [
        ("Maths", "08:00"),
        ("", "08:45"),
    ]
    assert [a.title for a in view.announcements] == ["Hi"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("//media.example.org/logo.png", "https://media.example.org/logo.png"),
        ("https://x.example/a.png", "https://x.example/a.png"),
        ("http://x.example/a.png", "http://x.example/a.png"),
        ("javascript:alert(1)", None),
        ("data:image/png;base64,AAAA", None),
        ("file:///etc/passwd", None),
        ("/relative/logo.png", None),
        ('https://x.example/"onerror="x', None),
        ("", None),
        (None, None),
        (42, None),
    ],
)
def test_logo_url_rules(raw: object, expected: str | None) -> None:
    """Only http(s) survives; protocol-relative URLs become https."""
    assert safe_url(raw) == expected
    assert build_view({"settings": {"logo_url": raw}}).logo_url == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("#22c55e", "#22C55E"),
        ("#22C55E", "#22C55E"),
        ("#fff", None),
        ("red", None),
        ("#22C55E; background:url(x)", None),
        (None, None),
    ],
)
def test_accent_must_be_a_six_digit_hex_colour(
    raw: object, expected: str | None
) -> None:
    """Anything but ``#RRGGBB`` is dropped, so it cannot inject CSS."""
    assert build_view({"settings": {"display_accent_color": raw}}).accent == expected


def test_unknown_theme_falls_back_to_indigo() -> None:
    """A theme outside the known seven becomes the default."""
    assert build_view({"settings": {"theme": "neon"}}).theme == "indigo"
    assert build_view({"settings": {"theme": "Rose"}}).theme == "rose"
    assert "indigo" in THEMES


def test_arabic_school_is_right_to_left() -> None:
    """Mostly Arabic text gives rtl and lang ar with Arabic labels."""
    view = build_view(_snapshot("period"))

    assert (view.dir, view.lang) == ("rtl", "ar")
    assert view.labels["now"] == "الآن"


def test_english_school_with_an_arabic_word_stays_left_to_right() -> None:
    """A few Arabic words do not flip an English school."""
    snapshot = {
        "settings": {"name": "Horizon Primary School"},
        "day_path": [
            {
                "kind": "period",
                "label": "Arabic (عربي)",
                "from": "08:00",
                "to": "09:00",
            },
            {"kind": "period", "label": "Mathematics", "from": "09:00", "to": "10:00"},
        ],
    }

    view = build_view(snapshot)

    assert (view.dir, view.lang) == ("ltr", "en")


def test_to_json_escapes_script_end_and_line_separators() -> None:
    """``</script>`` and U+2028/2029 never appear raw in the JSON text."""
    hostile = "</script><script>alert(1)</script>\u2028\u2029&"
    view = build_view({"announcements": [{"id": 1, "title": hostile, "body": "b"}]})

    text = view.to_json()

    assert "</script" not in text.lower() and "<" not in text and ">" not in text
    assert "\u2028" not in text and "\u2029" not in text and "&" not in text
    assert "\\u003c/script\\u003e" in text
    assert json.loads(text)["announcements"][0]["title"] == hostile


def test_offline_view_carries_the_saved_time_in_school_time() -> None:
    """Offline text names the save time on the school's clock, in its digits."""
    saved = datetime(2026, 4, 22, 6, 12, tzinfo=UTC)
    view = build_view(
        _snapshot("period"),
        offline_since=datetime(2026, 4, 22, 7, 0, tzinfo=UTC),
        saved_at=saved,
        digits="arabic",
    )

    assert view.offline_since == "2026-04-22T07:00:00+00:00"
    assert view.saved_at == "2026-04-22T06:12:00+00:00"
    assert view.offline_text is not None and "٠٩:١٢" in view.offline_text
    assert view.digits == "arabic"


def test_online_view_has_no_offline_text() -> None:
    """Without offline_since there is no badge text."""
    assert build_view(_snapshot("period")).offline_text is None


def test_server_offset_that_is_not_finite_becomes_zero() -> None:
    """NaN or infinity cannot reach the JSON (which would reject it)."""
    view = build_view({}, server_offset_ms=float("nan"))

    assert view.server_offset_ms == 0.0
    json.loads(view.to_json())


def test_view_is_frozen() -> None:
    """A view is immutable once built."""
    view = build_view({})

    with pytest.raises(AttributeError):
        view.school = "x"  # type: ignore[misc]
    assert isinstance(view, View)


def test_notice_view_has_title_text_and_hint() -> None:
    """A notice carries a fixed title plus the agent's text and hint."""
    notice = notice_view(NoticeKind.SCREEN_BOUND, "Ask the office.", "3f9a1c2e")

    data = json.loads(notice.to_json())

    assert data["notice"] == "screen_bound" and data["hint"] == "3f9a1c2e"
    assert data["title"] and data["text"] == "Ask the office."


def test_english_announcements_do_not_flip_an_arabic_school() -> None:
    """Direction comes from the school's own text, not from announcements."""
    snapshot = json.loads((FIXTURES / "snapshot-period.json").read_text("utf-8"))
    snapshot["announcements"] = [
        {"id": n, "title": "Sports day " * 30, "body": "Bring water " * 30}
        for n in range(3)
    ]

    view = build_view(snapshot)

    assert view.dir == "rtl" and view.lang == "ar"
