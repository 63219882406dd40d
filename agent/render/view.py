"""The view model: a snapshot reduced to validated, JSON-ready plain data.

A snapshot comes from a server we do not control, so every field is checked
here once and anything malformed is dropped; the page and the static renderer
then trust the view and never look at raw snapshot data.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

from agent.render.base import NoticeKind

THEMES = ("indigo", "emerald", "rose", "cyan", "amber", "orange", "violet")
DEFAULT_THEME = "indigo"
COPY_KEYS = (
    "before_title",
    "before_badge",
    "after_title",
    "after_badge",
    "after_holiday_title",
    "after_holiday_badge",
    "holiday_title",
    "holiday_badge",
)

# Generous caps: a screen shows far less than this, and a runaway body must not
# turn into a page the Pi cannot lay out.
_MAX_ITEMS = 60
_MAX_SHORT = 200
_MAX_LONG = 1200

_HHMM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)(?::[0-5]\d(?:\.\d+)?)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ACCENT = re.compile(r"#[0-9A-Fa-f]{6}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_ARABIC = re.compile(
    r"[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]"
)
_JSON_UNSAFE = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}

LABELS_EN = {
    "now": "Now",
    "next": "Next",
    "period": "Period",
    "break": "Break",
    "today": "Today",
    "announcements": "Announcements",
    "duty": "On duty today",
    "excellence": "Excellence",
    "standby": "Standby cover",
    "ends_in": "Ends in",
    "starts_in": "Starts in",
    "day_starts": "The day starts soon",
    "free": "No lesson right now",
    "day_over": "The school day is over",
    "no_school": "No school today",
    "next_day": "Next school day",
    "tomorrow": "Tomorrow",
    "first_at": "First period at",
    "waiting": "Preparing the schedule…",
    "offline": "Offline — showing the schedule saved at {time}",
    "offline_unsaved": "Offline — showing the last saved schedule",
    "weekdays": "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday",
    "months": "January|February|March|April|May|June|July|August|September"
    "|October|November|December",
}
LABELS_AR = {
    "now": "الآن",
    "next": "التالي",
    "period": "الحصة",
    "break": "استراحة",
    "today": "جدول اليوم",
    "announcements": "الإعلانات",
    "duty": "المناوبة اليوم",
    "excellence": "لوحة التميز",
    "standby": "حصص الانتظار",
    "ends_in": "تنتهي بعد",
    "starts_in": "تبدأ بعد",
    "day_starts": "يبدأ اليوم الدراسي قريبًا",
    "free": "لا توجد حصة الآن",
    "day_over": "انتهى اليوم الدراسي",
    "no_school": "لا دراسة اليوم",
    "next_day": "اليوم الدراسي القادم",
    "tomorrow": "غدًا",
    "first_at": "الحصة الأولى",
    "waiting": "جاري تجهيز الجدول…",
    "offline": "غير متصل — يُعرض الجدول المحفوظ الساعة {time}",
    "offline_unsaved": "غير متصل — يُعرض آخر جدول محفوظ",
    "weekdays": "الاثنين|الثلاثاء|الأربعاء|الخميس|الجمعة|السبت|الأحد",
    "months": "يناير|فبراير|مارس|أبريل|مايو|يونيو|يوليو|أغسطس|سبتمبر"
    "|أكتوبر|نوفمبر|ديسمبر",
}
NOTICE_TITLES: dict[NoticeKind, str] = {
    NoticeKind.UNPAIRED: "This screen is not paired yet",
    NoticeKind.SCREEN_BOUND: "This screen belongs to another device",
    NoticeKind.TOKEN_REJECTED: "The school server refused this screen",
    NoticeKind.OFFLINE: "Offline",
    NoticeKind.WAITING: "Waiting for the school server",
}


@dataclass(frozen=True)
class Block:
    """One entry of the day: a period or a break, times ``HH:MM`` school-local."""

    kind: str
    label: str
    start: str
    end: str
    index: int | None = None
    class_name: str = ""
    teacher: str = ""

    key: str = field(init=False, default="")

    def __post_init__(self) -> None:
        key = f"{self.start}-{self.end}-{self.kind}-{self.index or 0}"
        object.__setattr__(self, "key", key)


@dataclass(frozen=True)
class State:
    """What the server says the school is doing, as given."""

    type: str = ""
    label: str = ""
    badge: str = ""
    reason: str = ""
    start: str | None = None
    end: str | None = None


@dataclass(frozen=True)
class Announcement:
    """One announcement; ``id`` is unique within a view."""

    id: str
    title: str
    body: str
    level: str = "info"
    expires_ms: int | None = None


@dataclass(frozen=True)
class Duty:
    """A teacher on duty today."""

    teacher: str
    label: str
    location: str

    key: str = field(init=False, default="")

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "key", _digest(self.teacher, self.label, self.location)
        )


@dataclass(frozen=True)
class Excellence:
    """A person the school honours on screen."""

    name: str
    reason: str
    image_url: str | None

    key: str = field(init=False, default="")

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "key", _digest(self.name, self.reason, self.image_url or "")
        )


@dataclass(frozen=True)
class Standby:
    """A teacher covering a class for one period."""

    period_index: int | None
    class_name: str
    teacher: str
    notes: str

    key: str = field(init=False, default="")

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "key",
            _digest(str(self.period_index), self.class_name, self.teacher, self.notes),
        )


@dataclass(frozen=True)
class NextDay:
    """The next school day; ``first_start`` is ``HH:MM`` school-local."""

    date: str | None
    weekday_label: str
    first_start: str | None
    is_tomorrow: bool
    days_ahead: int | None


class _Keyed(Protocol):
    @property
    def key(self) -> str: ...


_K = TypeVar("_K", bound=_Keyed)


@dataclass(frozen=True)
class View:
    """Everything a renderer shows for one snapshot; plain, validated data."""

    school: str = ""
    logo_url: str | None = None
    theme: str = DEFAULT_THEME
    accent: str | None = None
    dir: str = "ltr"
    lang: str = "en"
    digits: str = "western"
    screen: str = "waiting"
    state: State = field(default_factory=State)
    date: str | None = None
    weekday: int | None = None
    tz_offset_min: int = 0
    server_offset_ms: float = 0.0
    blocks: tuple[Block, ...] = ()
    current: Block | None = None
    next: Block | None = None
    announcements: tuple[Announcement, ...] = ()
    duty: tuple[Duty, ...] = ()
    excellence: tuple[Excellence, ...] = ()
    standby: tuple[Standby, ...] = ()
    featured_panel: str = "excellence"
    copy: Mapping[str, str] = field(default_factory=dict)
    next_day: NextDay | None = None
    next_wake_at: str | None = None
    revision: int | None = None
    offline_since: str | None = None
    saved_at: str | None = None
    offline_text: str | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: dict(LABELS_EN))
    scroll_speed: float = 0.5

    def to_dict(self) -> dict[str, object]:
        """The view as JSON-ready dicts and lists (what ``kiosk.apply`` takes)."""
        return asdict(self)

    def to_json(self) -> str:
        """Compact JSON that is safe inside ``<script>`` and a JS string literal."""
        return safe_json(self.to_dict())


@dataclass(frozen=True)
class NoticeView:
    """A full-screen notice (or, for OFFLINE, the text of the badge)."""

    notice: str
    title: str
    text: str
    hint: str | None = None

    def to_json(self) -> str:
        """Compact JSON that is safe inside ``<script>`` and a JS string literal."""
        return safe_json(asdict(self))


def build_view(
    snapshot: Mapping[str, object],
    *,
    server_offset_ms: float = 0.0,
    offline_since: datetime | None = None,
    saved_at: datetime | None = None,
    digits: str = "western",
) -> View:
    """Reduce a raw snapshot to a View; never raises on malformed content."""
    snap = snapshot if isinstance(snapshot, Mapping) else {}
    meta = _mapping(snap.get("meta"))
    settings = _mapping(snap.get("settings"))
    now = _parse_iso(snap.get("now"))

    blocks = _blocks(snap.get("day_path"))
    state = _state(snap.get("state"))
    copy = {key: _text(settings.get(f"display_{key}")) for key in COPY_KEYS}
    announcements = _announcements(snap.get("announcements"))
    duty_box = _mapping(snap.get("duty"))
    tz_offset_min = _tz_offset_min(now, meta)
    # The school's own text sets the layout; announcements may be in any
    # language and each takes its direction from its own first letters.
    rtl = _mostly_arabic(
        [_text(settings.get("name")), state.label, *copy.values()]
        + [b.label for b in blocks]
    )
    labels = LABELS_AR if rtl else LABELS_EN

    return View(
        school=_text(settings.get("name")),
        logo_url=safe_url(settings.get("logo_url")),
        theme=_choice(settings.get("theme"), THEMES, DEFAULT_THEME),
        accent=_accent(settings.get("display_accent_color")),
        dir="rtl" if rtl else "ltr",
        lang="ar" if rtl else "en",
        digits="arabic" if digits == "arabic" else "western",
        screen=_screen(state.type, blocks),
        state=state,
        date=now.date().isoformat() if now else _date(meta.get("date")),
        weekday=_int(meta.get("weekday")),
        tz_offset_min=tz_offset_min,
        server_offset_ms=_finite(server_offset_ms),
        blocks=blocks,
        current=_block(snap.get("current_period")),
        next=_block(snap.get("next_period")),
        announcements=announcements,
        duty=_duty(duty_box.get("items")),
        excellence=_excellence(snap.get("excellence")),
        standby=_standby(snap.get("standby")),
        featured_panel=_choice(
            settings.get("featured_panel"), ("excellence", "duty"), "excellence"
        ),
        copy=copy,
        next_day=_next_day(meta.get("next_school_day")),
        next_wake_at=_iso_or_none(meta.get("next_wake_at")),
        revision=_int(meta.get("schedule_revision")),
        offline_since=_stamp(offline_since),
        saved_at=_stamp(saved_at),
        offline_text=_offline_text(
            labels, offline_since, saved_at, tz_offset_min, digits
        ),
        labels=dict(labels),
        scroll_speed=_speed(settings.get("periods_scroll_speed")),
    )


def notice_view(kind: NoticeKind, text: str, hint: str | None = None) -> NoticeView:
    """A notice as the page shows it: a fixed title plus the agent's text and hint."""
    return NoticeView(
        notice=kind.value,
        title=NOTICE_TITLES.get(kind, ""),
        text=_text(text, _MAX_LONG),
        hint=_text(hint) or None,
    )


def safe_json(data: object) -> str:
    """Compact JSON with ``< > &`` and U+2028/2029 escaped for embedding in HTML/JS."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for raw, escaped in _JSON_UNSAFE.items():
        text = text.replace(raw, escaped)
    return text


def safe_url(value: object) -> str | None:
    """An absolute http(s) URL (protocol-relative becomes https), else None."""
    if not isinstance(value, str):
        return None
    url = value.strip()
    if url.startswith("//"):
        url = "https:" + url
    if not url or len(url) > 2048 or any(ch <= " " or ch in '"<>\\`' for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return url


def to_digits(text: str, digits: str) -> str:
    """Western digits in ``text`` rewritten as Arabic-Indic when asked."""
    if digits != "arabic":
        return text
    return text.translate({ord("0") + n: 0x0660 + n for n in range(10)})


def school_clock(epoch_ms: float, tz_offset_min: int) -> datetime:
    """The school's wall clock for an epoch time, as a naive datetime."""
    seconds = epoch_ms / 1000.0 + tz_offset_min * 60
    return datetime(1970, 1, 1) + timedelta(seconds=seconds)


# -- field parsers ---------------------------------------------------------


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _items(value: object) -> list[Mapping[str, object]]:
    if not isinstance(value, list):
        return []
    return [item for item in value[:_MAX_ITEMS] if isinstance(item, Mapping)]


def _text(value: object, limit: int = _MAX_SHORT) -> str:
    """Text from a string or number; anything else is empty."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float) and math.isfinite(value):
        value = str(value)
    if not isinstance(value, str):
        return ""
    return _CONTROL.sub("", value).strip()[:limit]


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _finite(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if math.isfinite(number):
            return number
    return 0.0


def _speed(value: object) -> float:
    speed = _finite(value)
    return min(speed, 5.0) if speed > 0 else 0.5


def _choice(value: object, allowed: tuple[str, ...], default: str) -> str:
    if isinstance(value, str) and value.strip().lower() in allowed:
        return value.strip().lower()
    return default


def _accent(value: object) -> str | None:
    if isinstance(value, str) and _ACCENT.fullmatch(value.strip()):
        return value.strip().upper()
    return None


def _hhmm(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    match = _HHMM.fullmatch(value.strip())
    if match is None:
        return None
    return f"{int(match[1]):02d}:{match[2]}"


def _date(value: object) -> str | None:
    if isinstance(value, str) and _DATE.fullmatch(value.strip()):
        try:
            return datetime.strptime(value.strip(), "%Y-%m-%d").date().isoformat()
        except ValueError:
            return None
    return None


def _parse_iso(value: object) -> datetime | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        return None


def _iso_or_none(value: object) -> str | None:
    parsed = _parse_iso(value)
    return parsed.isoformat() if parsed else None


def _stamp(value: datetime | None) -> str | None:
    if not isinstance(value, datetime):
        return None
    return value.isoformat(timespec="seconds")


def _tz_offset_min(now: datetime | None, meta: Mapping[str, object]) -> int:
    """Offset from ``now``; failing that, from any other stamp the server sent."""
    window = _mapping(meta.get("active_window"))
    next_day = _mapping(meta.get("next_school_day"))
    for stamp in (
        now,
        _parse_iso(window.get("start")),
        _parse_iso(meta.get("next_wake_at")),
        _parse_iso(next_day.get("first_start")),
    ):
        offset = stamp.utcoffset() if stamp else None
        if offset is not None and abs(offset.total_seconds()) <= 18 * 3600:
            return int(offset.total_seconds() // 60)
    return 0


def _block(value: object) -> Block | None:
    item = _mapping(value)
    start, end = _hhmm(item.get("from")), _hhmm(item.get("to"))
    if start is None or end is None or end <= start:
        return None
    kind = "break" if item.get("kind") == "break" else "period"
    return Block(
        kind=kind,
        label=_text(item.get("label")),
        start=start,
        end=end,
        index=_int(item.get("index")) if kind == "period" else None,
        class_name=_text(item.get("class")),
        teacher=_text(item.get("teacher")),
    )


def _blocks(value: object) -> tuple[Block, ...]:
    found = [b for b in map(_block, _items(value)) if b is not None]
    unique = {b.key: b for b in found}
    return tuple(sorted(unique.values(), key=lambda b: (b.start, b.end)))


def _state(value: object) -> State:
    item = _mapping(value)
    return State(
        type=_text(item.get("type"), 40),
        label=_text(item.get("label")),
        badge=_text(item.get("badge")),
        reason=_text(item.get("reason"), 60),
        start=_hhmm(item.get("from")),
        end=_hhmm(item.get("to")),
    )


def _screen(state_type: str, blocks: tuple[Block, ...]) -> str:
    """Which screen the page starts from: live, before, after, holiday or waiting."""
    if state_type in ("period", "break", "before", "day", "after"):
        return "live"
    fixed = {
        "BEFORE_SCHOOL": "before",
        "OFF_HOURS": "after",
        "NO_SCHEDULE_TODAY": "holiday",
    }
    if state_type in fixed:
        return fixed[state_type]
    if state_type in ("BUILDING", "config") or not blocks:
        return "waiting"
    return "live"


def _announcements(value: object) -> tuple[Announcement, ...]:
    result: list[Announcement] = []
    seen: set[str] = set()
    for item in _items(value):
        title, body = _text(item.get("title")), _text(item.get("body"), _MAX_LONG)
        if not title and not body:
            continue
        raw_id = _text(item.get("id"), 40)
        key = f"a{raw_id}" if raw_id else "h" + _digest(title, body)
        while key in seen:
            key += "+"
        seen.add(key)
        expires = _parse_iso(item.get("expires_at"))
        result.append(
            Announcement(
                id=key,
                title=title,
                body=body,
                level=_level(item.get("level")),
                expires_ms=(
                    int(expires.timestamp() * 1000)
                    if expires and expires.tzinfo
                    else None
                ),
            )
        )
    return tuple(result)


def _level(value: object) -> str:
    level = value.strip().lower() if isinstance(value, str) else ""
    if level in ("warning", "warn"):
        return "warning"
    if level in ("danger", "urgent", "critical", "error", "alert"):
        return "urgent"
    return "success" if level == "success" else "info"


def _duty(value: object) -> tuple[Duty, ...]:
    rows = (
        Duty(
            teacher=_text(item.get("teacher_name")),
            label=_text(item.get("duty_label")),
            location=_text(item.get("location")),
        )
        for item in _items(value)
    )
    return _unique(row for row in rows if row.teacher or row.label)


def _excellence(value: object) -> tuple[Excellence, ...]:
    rows = (
        Excellence(
            name=_text(
                item.get("name") or item.get("teacher_name") or item.get("title")
            ),
            reason=_text(item.get("reason") or item.get("subtitle")),
            image_url=safe_url(item.get("image_url")),
        )
        for item in _items(value)
    )
    return _unique(row for row in rows if row.name)


def _standby(value: object) -> tuple[Standby, ...]:
    rows = (
        Standby(
            period_index=_int(item.get("period_index")),
            class_name=_text(item.get("class_name")),
            teacher=_text(item.get("teacher_name")),
            notes=_text(item.get("notes")),
        )
        for item in _items(value)
    )
    return _unique(row for row in rows if row.teacher or row.class_name)


def _unique(rows: Iterable[_K]) -> tuple[_K, ...]:
    seen: dict[str, _K] = {}
    for row in rows:
        seen.setdefault(row.key, row)
    return tuple(seen.values())


def _next_day(value: object) -> NextDay | None:
    item = _mapping(value)
    date = _date(item.get("date"))
    if date is None:
        return None
    first = _parse_iso(item.get("first_start"))
    ahead = _int(item.get("days_ahead"))
    return NextDay(
        date=date,
        weekday_label=_text(item.get("weekday_label")),
        first_start=first.strftime("%H:%M") if first else None,
        is_tomorrow=item.get("is_tomorrow") is True or ahead == 1,
        days_ahead=ahead,
    )


def _mostly_arabic(texts: list[str]) -> bool:
    """True when Arabic-script letters outnumber all other letters together."""
    joined = "".join(texts)
    arabic = len(_ARABIC.findall(joined))
    letters = sum(1 for ch in joined if ch.isalpha())
    return arabic > 0 and arabic * 2 > letters


def _offline_text(
    labels: Mapping[str, str],
    offline_since: datetime | None,
    saved_at: datetime | None,
    tz_offset_min: int,
    digits: str,
) -> str | None:
    if offline_since is None:
        return None
    if saved_at is None or saved_at.tzinfo is None:
        return labels["offline_unsaved"]
    local = school_clock(saved_at.timestamp() * 1000, tz_offset_min)
    return labels["offline"].format(time=to_digits(local.strftime("%H:%M"), digits))


def _digest(*parts: str) -> str:
    joined = "\x1f".join(parts).encode()
    return hashlib.sha1(joined, usedforsecurity=False).hexdigest()[:12]
