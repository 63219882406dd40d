"""The sample school and how its snapshot looks at a given instant."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from importlib import resources
from typing import Any


def load_sample() -> dict[str, Any]:
    """The bundled sample school's data, a fresh copy each call."""
    text = (
        resources.files("server_stub").joinpath("data/school.json").read_text("utf-8")
    )
    data: dict[str, Any] = json.loads(text)
    return data


@dataclass
class School:
    """A school's data, which admin edits change, and its snapshot builder."""

    data: dict[str, Any] = field(default_factory=load_sample)

    @property
    def school_id(self) -> int:
        """The id the real server reports in X-School-Id."""
        return int(self.data.get("school_id", 1))

    @property
    def tz(self) -> timezone:
        """The school's fixed UTC offset."""
        return timezone(timedelta(minutes=int(self.data.get("utc_offset_min", 0))))

    def local(self, instant: datetime) -> datetime:
        """``instant`` in school-local time."""
        return instant.astimezone(self.tz)

    def is_school_day(self, day: date) -> bool:
        """True on the school's teaching weekdays."""
        return day.isoweekday() in self.data.get("school_weekdays", [1, 2, 3, 4, 5])

    def next_school_day(self, after: date) -> date:
        """The first school day strictly after ``after``."""
        day = after + timedelta(days=1)
        for _ in range(14):
            if self.is_school_day(day):
                return day
            day += timedelta(days=1)
        return day

    def at(self, day: date, hhmm: str) -> datetime:
        """School-local ``HH:MM`` on ``day`` as an aware datetime."""
        hours, minutes = (int(part) for part in hhmm.split(":"))
        return datetime.combine(day, time(hours, minutes), self.tz)

    def snapshot(
        self, instant: datetime, *, revision: int, ws_enabled: bool
    ) -> dict[str, Any]:
        """The snapshot body the real server would build at ``instant``."""
        now = self.local(instant)
        today = now.date()
        school_day = self.is_school_day(today)
        window = self.data.get("active_window", {"start": "06:30", "end": "13:00"})
        start, end = self.at(today, window["start"]), self.at(today, window["end"])
        active = school_day and start <= now < end
        settings = copy.deepcopy(self.data.get("settings", {}))
        settings.setdefault("timezone_name", self.data.get("timezone_name", "UTC"))
        upcoming = self.next_school_day(today)
        state, current, following = self._state(now, school_day, active, start, end)
        bell = self.data.get("bell", [])
        weekday = today.isoweekday()
        body: dict[str, Any] = {
            "now": now.isoformat(),
            "meta": {
                "date": today.isoformat(),
                "weekday": weekday,
                "is_school_day": school_day,
                "is_active_window": active,
                "active_window": (
                    {"start": start.isoformat(), "end": end.isoformat()}
                    if school_day
                    else None
                ),
                "next_school_day": self._day_info(upcoming),
                "next_wake_at": self._wake_at(now, school_day, start, active),
                "schedule_revision": revision,
                "ws_enabled": ws_enabled,
                "cache": "MISS",
                "generated_at": instant.astimezone(UTC).isoformat(),
                "is_stale": False,
            },
            "settings": settings,
            "state": state,
            "day_path": copy.deepcopy(bell) if active else [],
            "current_period": current,
            "next_period": following,
            "period_classes": [],
            "period_classes_map": {},
            "standby": [],
            "excellence": [],
            "duty": {"items": []},
            "announcements": [],
        }
        if active:
            classes = [
                {**row, "weekday": weekday}
                for row in self.data.get("period_classes", [])
            ]
            body["period_classes"] = classes
            by_period: dict[str, list[dict[str, Any]]] = {}
            for row in classes:
                by_period.setdefault(str(row["period_index"]), []).append(row)
            body["period_classes_map"] = by_period
            body["standby"] = copy.deepcopy(self.data.get("standby", []))
            body["excellence"] = copy.deepcopy(self.data.get("excellence", []))
            body["duty"] = {
                "items": [
                    {**item, "date": today.isoformat()}
                    for item in self.data.get("duty", [])
                ]
            }
            body["announcements"] = copy.deepcopy(self.data.get("announcements", []))
        return body

    def _state(
        self,
        now: datetime,
        school_day: bool,
        active: bool,
        start: datetime,
        end: datetime,
    ) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]:
        """The state, current block and next period at ``now``."""
        settings = self.data.get("settings", {})
        if not school_day:
            return (
                {
                    "type": "NO_SCHEDULE_TODAY",
                    "label": settings.get("display_holiday_title", ""),
                    "badge": settings.get("display_holiday_badge", ""),
                    "reason": "holiday",
                    "from": None,
                    "to": None,
                    "remaining_seconds": None,
                },
                None,
                None,
            )
        if not active:
            before = now < start
            return (
                {
                    "type": "BEFORE_SCHOOL" if before else "OFF_HOURS",
                    "label": settings.get(
                        "display_before_title" if before else "display_after_title", ""
                    ),
                    "badge": settings.get(
                        "display_before_badge" if before else "display_after_badge", ""
                    ),
                    "reason": "before_hours" if before else "after_hours",
                    "from": None,
                    "to": None,
                    "remaining_seconds": None,
                },
                None,
                None,
            )
        bell = self.data.get("bell", [])
        hhmm = now.strftime("%H:%M")
        periods = [b for b in bell if b["kind"] == "period"]
        following = next((b for b in periods if b["from"] > hhmm), None)
        for block in bell:
            if block["from"] <= hhmm < block["to"]:
                remaining = self._seconds_until(now, block["to"])
                state = {
                    "type": block["kind"],
                    "label": block["label"],
                    "from": block["from"],
                    "to": block["to"],
                    "remaining_seconds": remaining,
                }
                if block["kind"] == "period":
                    state["period_index"] = block.get("index")
                current = {**block, "remaining_seconds": remaining}
                return state, current, copy.deepcopy(following)

        # Inside the window but in no block: before the first, after the last,
        # or in a gap the timetable leaves between two.
        first = bell[0]["from"] if bell else "00:00"
        last = bell[-1]["to"] if bell else "00:00"
        gap_from: str | None
        gap_to: str | None
        if hhmm < first:
            kind, prefix, gap_from, gap_to = "before", "display_before", None, first
        elif hhmm >= last:
            kind, prefix, gap_from, gap_to = "after", "display_after", last, None
        else:
            kind, prefix = "day", ""
            gap_from = max(b["to"] for b in bell if b["to"] <= hhmm)
            gap_to = min(b["from"] for b in bell if b["from"] > hhmm)
        state = {
            "type": kind,
            "label": settings.get(f"{prefix}_title", "") if prefix else "",
            "badge": settings.get(f"{prefix}_badge", "") if prefix else "",
            "from": gap_from,
            "to": gap_to,
            "remaining_seconds": self._seconds_until(now, gap_to) if gap_to else None,
        }
        return state, None, copy.deepcopy(following)

    def _seconds_until(self, now: datetime, hhmm: str) -> int:
        """Whole seconds from ``now`` to ``hhmm`` the same school day."""
        return int((self.at(now.date(), hhmm) - now).total_seconds())

    def _day_info(self, day: date) -> dict[str, Any]:
        """meta.next_school_day for ``day``."""
        bell = self.data.get("bell", [])
        window = self.data.get("active_window", {"start": "06:30", "end": "13:00"})
        info: dict[str, Any] = {
            "date": day.isoformat(),
            "weekday": day.isoweekday(),
            "weekday_label": self.data.get("weekday_labels", {}).get(
                str(day.isoweekday()), ""
            ),
            "active_start": self.at(day, window["start"]).isoformat(),
            "active_end": self.at(day, window["end"]).isoformat(),
        }
        if bell:
            info["first_start"] = self.at(day, bell[0]["from"]).isoformat()
            info["last_end"] = self.at(day, bell[-1]["to"]).isoformat()
        return info

    def _wake_at(
        self, now: datetime, school_day: bool, start: datetime, active: bool
    ) -> str | None:
        """When a sleeping screen should wake: the next active window's start."""
        if active:
            return None
        if school_day and now < start:
            return start.isoformat()
        window = self.data.get("active_window", {"start": "06:30"})
        return self.at(self.next_school_day(now.date()), window["start"]).isoformat()


def school_day_anchor(
    school: School, real_now: datetime, hhmm: str = "09:12"
) -> datetime:
    """An instant at ``hhmm`` local on the latest school day up to ``real_now``.

    The demo and the tests run the stub on this shifted clock so the sample
    school is mid-morning whatever the wall-clock time is.
    """
    day = school.local(real_now).date()
    for _ in range(14):
        if school.is_school_day(day):
            break
        day -= timedelta(days=1)
    return school.at(day, hhmm)
