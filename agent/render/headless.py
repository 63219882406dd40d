"""A renderer with no window: it writes the screen as one self-contained HTML file.

The file carries the page's CSS and JS inline, the view model as JSON, and the
content pre-rendered as static markup (every snapshot string escaped), so a test
can grep it, a person can open it with scripts off, and a browser with scripts
on gets the same live page the webview shows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from datetime import UTC, datetime
from html import escape
from importlib import resources
from pathlib import Path

import structlog

from agent.fsutil import atomic_write
from agent.render.base import NoticeKind
from agent.render.view import (
    Block,
    NoticeView,
    View,
    notice_view,
    school_clock,
    to_digits,
)

log = structlog.get_logger(__name__)

PAGE_MODE = 0o644
BODY_START = "<!-- kiosk:body -->"
BODY_END = "<!-- /kiosk:body -->"
_HTML_TAG = re.compile(r"<html\b[^>]*>")
_STYLESHEET = '<link rel="stylesheet" href="screen.css">'
_SCRIPT = '<script src="screen.js"></script>'


class HeadlessRenderer:
    """Implements ``Renderer`` by rewriting ``out_path`` atomically on every call."""

    def __init__(self, out_path: Path) -> None:
        self.out_path = out_path
        self.last_view: View | None = None
        self._last_page: View | NoticeView | None = None
        self._closed = False

    async def show(self, view: View) -> None:
        """Write the schedule page for ``view``; this clears any notice."""
        self.last_view = view
        await self._write(view)

    async def show_notice(
        self, kind: NoticeKind, text: str, *, hint: str | None = None
    ) -> None:
        """Write a full-screen notice; OFFLINE badges the last view if there is one."""
        if kind is NoticeKind.OFFLINE and self.last_view is not None:
            badge = text or self.last_view.offline_text or notice_view(kind, "").title
            await self._write(dataclasses.replace(self.last_view, offline_text=badge))
            return
        if kind is NoticeKind.OFFLINE:
            kind = NoticeKind.WAITING
        await self._write(notice_view(kind, text, hint))

    async def reload(self) -> None:
        """Write the last page again (the clock in the static markup moves on)."""
        if self._last_page is not None:
            await self._write(self._last_page)

    async def close(self) -> None:
        """Stop accepting calls; the file stays for whoever reads it."""
        self._closed = True

    async def _write(self, content: View | NoticeView) -> None:
        if self._closed:
            raise RuntimeError("HeadlessRenderer is closed")
        now = datetime.now(UTC)
        page = await asyncio.to_thread(render_page, content, now=now)
        await asyncio.to_thread(
            atomic_write, self.out_path, page.encode("utf-8"), mode=PAGE_MODE
        )
        self._last_page = content
        log.debug(
            "page_written",
            path=str(self.out_path),
            kind=content.notice if isinstance(content, NoticeView) else "view",
            bytes=len(page),
        )


def render_page(content: View | NoticeView, *, now: datetime | None = None) -> str:
    """One self-contained HTML page for a view or a notice.

    ``now`` (aware) only sets the static clock; without it the clock reads
    ``--:--`` until the inlined script starts. Reads the bundled page files.
    """
    page = resources.files("agent.render").joinpath("page")
    template = page.joinpath("index.html").read_text(encoding="utf-8")
    css = page.joinpath("screen.css").read_text(encoding="utf-8")
    js = page.joinpath("screen.js").read_text(encoding="utf-8")
    if "</style" in css.lower() or "</script" in js.lower():
        raise ValueError("page assets must not close their own element")

    if isinstance(content, NoticeView):
        opening, body = _html_tag(None, content), _body(None, content, now)
    else:
        opening, body = _html_tag(content, None), _body(content, None, now)
    data = (
        '<script type="application/json" id="kiosk-view">'
        f"{content.to_json()}</script>\n<script>\n{js}</script>"
    )
    return _assemble(template, opening, f"<style>\n{css}</style>", body, data)


def _assemble(template: str, opening: str, style: str, body: str, data: str) -> str:
    """Splice the parts into the template; a template missing a part is a bug."""
    start, end = template.find(BODY_START), template.find(BODY_END)
    if not (0 <= start < end) or _STYLESHEET not in template or _SCRIPT not in template:
        raise ValueError("page template lacks a body region, stylesheet or script")
    head = _HTML_TAG.sub(lambda _: opening, template[:start], count=1)
    tail = template[end + len(BODY_END) :]
    head = head.replace(_STYLESHEET, style, 1)
    tail = tail.replace(_SCRIPT, data, 1)
    return f"{head}{BODY_START}\n{body}\n{BODY_END}{tail}"


# -- static markup: the same ids and classes screen.js fills in ------------


def _html_tag(view: View | None, notice: NoticeView | None) -> str:
    attrs: dict[str, str | None] = {
        "lang": "en",
        "dir": "ltr",
        "data-theme": "indigo",
        "data-screen": "waiting",
    }
    if view is not None:
        attrs.update(
            {
                "lang": view.lang,
                "dir": view.dir,
                "data-theme": view.theme,
                "data-screen": view.screen,
            }
        )
        if view.accent:
            rgb = ", ".join(str(int(view.accent[i : i + 2], 16)) for i in (1, 3, 5))
            attrs["style"] = f"--accent:{view.accent};--accent-rgb:{rgb}"
        if view.offline_text:
            attrs["data-offline"] = ""
    if notice is not None:
        attrs["data-notice"] = notice.notice
    return "<html" + _attrs(attrs) + ">"


def _body(view: View | None, notice: NoticeView | None, now: datetime | None) -> str:
    v = view or View()
    clock = _clock(v, now)
    return "\n".join(
        [
            '<div id="app" class="app">',
            _header(v, clock),
            _live(v, clock),
            _idle(v, clock),
            _offline(v.offline_text if view else None),
            "</div>",
            _notice(notice),
        ]
    )


def _header(v: View, clock: datetime | None) -> str:
    hm, sec = _clock_parts(v, clock)
    logo = (
        f'<img id="logo" class="logo" alt="" src="{_e(v.logo_url)}">'
        if v.logo_url
        else '<img id="logo" class="logo" alt="" hidden>'
    )
    return (
        '<header id="bar" class="bar"><div class="brand">'
        f'{logo}<div class="brand-text"><h1 id="school" class="school">'
        f'{_e(v.school)}</h1><div id="date" class="date">{_e(_long_date(v, clock))}'
        '</div></div></div><div id="clock" class="clock">'
        f'<span id="clock-hm" class="hm">{hm}</span>'
        f'<span id="clock-s" class="sec">{sec}</span></div></header>'
    )


def _live(v: View, clock: datetime | None) -> str:
    featured_title, featured = _featured(v)
    standby = [_person(*row) for row in _standby_rows(v)]
    pair_hidden = v.next is None and not featured
    return (
        '<main id="live" class="live"><div class="col-main">'
        f"{_now_card(v, clock)}"
        f'<div class="pair"{_hidden(pair_hidden)}>{_next_card(v)}'
        f'<section id="featured" class="card featured"{_hidden(not featured)}>'
        f'<h2 id="featured-title" class="card-title">{_e(featured_title)}</h2>'
        '<div class="viewport"><ul id="featured-list" class="people">'
        f"{''.join(featured)}</ul></div></section></div>"
        f"{_news(v)}</div>"
        '<div class="col-side"><section id="schedule" class="card schedule">'
        f'<h2 id="schedule-title" class="card-title">{_e(v.labels.get("today"))}</h2>'
        '<div class="viewport"><ol id="day-list" class="day-list">'
        f"{''.join(_block_item(v, b, clock) for b in v.blocks)}</ol></div></section>"
        f'<section id="standby" class="card standby"{_hidden(not standby)}>'
        f'<h2 id="standby-title" class="card-title">{_e(v.labels.get("standby"))}'
        '</h2><div class="viewport"><ul id="standby-list" class="people">'
        f"{''.join(standby)}</ul></div></section></div></main>"
    )


def _now_card(v: View, clock: datetime | None) -> str:
    cur, label = v.current, v.labels.get
    target: str | None
    if cur is not None:
        kind = "break" if cur.kind == "break" else "period"
        tag = f"{label('now', '')} · {_kind_label(v, cur)}"
        title, sub, caption = _block_label(v, cur), _people(cur), label("ends_in", "")
        time, target = _range(v, cur), cur.end
    else:
        kind, tag, sub, time = "idle", label("now", ""), "", ""
        first = v.blocks[0] if v.blocks else None
        starting = v.next is not None and first is not None and v.next.key == first.key
        title = label("day_starts" if starting else "free", "")
        caption = label("starts_in", "") if v.next else ""
        target = v.next.start if v.next else None
    remaining, fraction = _countdown(v, cur, target, clock)
    return (
        f'<section id="now" class="card now" data-kind="{kind}">'
        f'<div class="eyebrow"><span id="now-tag" class="tag">{_e(tag)}</span></div>'
        f'<div id="now-label" class="now-label">{_e(title)}</div>'
        f'<div id="now-sub" class="sub">{_e(sub)}</div><div class="now-foot">'
        f'<div class="count-box"><div id="count-caption" class="caption">'
        f'{_e(caption)}</div><div id="countdown" class="countdown">{_e(remaining)}'
        f'</div></div><div id="now-time" class="time">{_e(time)}</div></div>'
        '<div class="progress"><div id="progress" class="progress-bar" '
        f'style="transform: scaleX({fraction:.4f})"></div></div></section>'
    )


def _next_card(v: View) -> str:
    nxt = v.next
    tag = f"{v.labels.get('next', '')} · {_kind_label(v, nxt)}" if nxt else ""
    return (
        f'<section id="next" class="card next"{_hidden(nxt is None)}>'
        f'<div class="eyebrow"><span id="next-tag" class="tag">{_e(tag)}</span></div>'
        f'<div id="next-label" class="next-label">'
        f"{_e(_block_label(v, nxt) if nxt else '')}</div>"
        f'<div id="next-sub" class="sub">{_e(_people(nxt) if nxt else "")}</div>'
        f'<div id="next-time" class="time">{_e(_range(v, nxt) if nxt else "")}</div>'
        "</section>"
    )


def _news(v: View) -> str:
    items = "".join(
        f'<article class="ann lvl-{_e(a.level)}{" active" if i == 0 else ""}" '
        f'data-key="{_e(a.id)}"><div class="ann-title">{_e(a.title)}</div>'
        f'<div class="ann-body">{_e(a.body)}</div></article>'
        for i, a in enumerate(v.announcements)
    )
    count = len(v.announcements)
    dots = "".join(
        f'<span class="dot-i{" on" if i == 0 else ""}"></span>' for i in range(count)
    )
    return (
        f'<section id="news" class="card news"{_hidden(not count)}>'
        f'<h2 id="news-title" class="card-title">'
        f"{_e(v.labels.get('announcements'))}</h2>"
        f'<div id="news-list" class="news-list">{items}</div>'
        f'<div id="news-dots" class="dots">{dots if count > 1 else ""}</div></section>'
    )


def _idle(v: View, clock: datetime | None) -> str:
    hm, sec = _clock_parts(v, clock)
    title, badge = _idle_copy(v)
    line = _next_day_line(v, clock)
    caption = v.labels.get("next_day", "") if line else ""
    return (
        '<main id="idle" class="idle">'
        f'<div id="idle-badge" class="badge">{_e(badge)}</div>'
        f'<div id="idle-title" class="idle-title">{_e(title)}</div>'
        f'<div id="idle-clock" class="idle-clock"><span id="idle-hm" class="hm">'
        f'{hm}</span><span id="idle-s" class="sec">{sec}</span></div>'
        f'<div id="idle-date" class="idle-date">{_e(_long_date(v, clock))}</div>'
        f'<div id="idle-next" class="idle-next"{_hidden(not line)}>'
        f'<span id="idle-next-caption" class="caption">{_e(caption)}</span>'
        f'<span id="idle-next-value" class="idle-next-value">{_e(line)}</span></div>'
        "</main>"
    )


def _offline(text: str | None) -> str:
    return (
        f'<div id="offline" class="offline"{_hidden(not text)}>'
        '<span class="offline-dot"></span>'
        f'<span id="offline-text">{_e(text)}</span></div>'
    )


def _notice(notice: NoticeView | None) -> str:
    n = notice or NoticeView(notice="", title="", text="")
    return (
        # Notices are written in English: left to right even on an Arabic page.
        '<div id="notice" class="notice" dir="ltr" lang="en"'
        f"{_hidden(notice is None)}>"
        '<div class="notice-card"><div class="notice-icon"></div>'
        f'<h1 id="notice-title" class="notice-title">{_e(n.title)}</h1>'
        f'<p id="notice-text" class="notice-text">{_e(n.text)}</p>'
        f'<div id="notice-hint" class="notice-hint"{_hidden(not n.hint)}>'
        '<span class="caption">Device key</span>'
        f'<span id="notice-hint-text" class="hint-text">{_e(n.hint)}</span></div>'
        "</div></div>"
    )


def _block_item(v: View, b: Block, clock: datetime | None) -> str:
    is_break = b.kind == "break"
    classes = ["blk", "is-break" if is_break else "is-period"]
    if v.current is not None and v.current.key == b.key:
        classes.append("is-now")
    elif _same_day(v, clock) and clock is not None and b.end <= f"{clock:%H:%M}":
        classes.append("is-past")
    index = "" if is_break or b.index is None else _n(v, str(b.index))
    return (
        f'<li class="{" ".join(classes)}" data-key="{_e(b.key)}">'
        f'<span class="blk-idx">{_e(index)}</span><span class="blk-main">'
        f'<span class="blk-label">{_e(_block_label(v, b))}</span>'
        f'<span class="blk-sub">{_e(b.teacher)}</span></span>'
        f'<span class="blk-time">{_e(_range(v, b))}</span></li>'
    )


def _person(
    key: str, name: str, sub: str, initial: str, image: str | None = None
) -> str:
    img = f'<img alt="" src="{_e(image)}">' if image else ""
    return (
        f'<li class="person" data-key="{_e(key)}"><span class="avatar">'
        f'<span class="initial">{_e(initial)}</span>{img}</span>'
        f'<span class="p-main"><span class="p-name">{_e(name)}</span>'
        f'<span class="p-sub">{_e(sub)}</span></span></li>'
    )


def _featured(v: View) -> tuple[str, list[str]]:
    """The duty or excellence panel, falling back to whichever has content."""
    use_duty = v.featured_panel == "duty"
    if use_duty and not v.duty and v.excellence:
        use_duty = False
    elif not use_duty and not v.excellence and v.duty:
        use_duty = True
    if use_duty:
        rows = [
            _person(
                "d" + d.key,
                d.teacher or d.label,
                _join([d.label, d.location] if d.teacher else [d.location]),
                _initial(d.teacher or d.label),
            )
            for d in v.duty
        ]
        return v.labels.get("duty", ""), rows
    rows = [
        _person("e" + x.key, x.name, x.reason, _initial(x.name), x.image_url)
        for x in v.excellence
    ]
    return v.labels.get("excellence", ""), rows


def _standby_rows(v: View) -> list[tuple[str, str, str, str]]:
    return [
        (
            "s" + s.key,
            s.teacher or s.class_name,
            _join([s.class_name if s.teacher else "", s.notes]),
            "–" if s.period_index is None else _n(v, str(s.period_index)),
        )
        for s in v.standby
    ]


def _idle_copy(v: View) -> tuple[str, str]:
    """Title and badge for the idle screens, preferring what the server said."""
    copy, state, label = v.copy, v.state, v.labels.get
    if v.screen == "waiting":
        return state.label or label("waiting", ""), ""
    if v.screen == "before":
        title = state.label or copy.get("before_title") or label("day_starts", "")
        return title, state.badge or copy.get("before_badge", "")
    if v.screen == "holiday":
        title = state.label or copy.get("holiday_title") or label("no_school", "")
        return title, state.badge or copy.get("holiday_badge", "")
    holiday_next = v.next_day is not None and not v.next_day.is_tomorrow
    title = (holiday_next and copy.get("after_holiday_title")) or copy.get(
        "after_title", ""
    )
    badge = (holiday_next and copy.get("after_holiday_badge")) or copy.get(
        "after_badge", ""
    )
    return state.label or title or label("day_over", ""), state.badge or badge


def _next_day_line(v: View, clock: datetime | None) -> str:
    day = v.next_day
    if day is None or day.date is None or v.screen in ("waiting", "live"):
        return ""
    today = f"{clock:%Y-%m-%d}" if clock else v.date
    if v.screen == "before" and day.date != today:
        return ""
    parts = [
        v.labels.get("tomorrow", "") if day.is_tomorrow else "",
        f"{day.weekday_label or _weekday(v, day.date)} {_day_month(v, day.date)}",
    ]
    if day.first_start:
        parts.append(f"{v.labels.get('first_at', '')} {_n(v, day.first_start)}")
    return _join(parts)


# -- small formatters, mirroring screen.js ------------------------------------


def _e(text: object) -> str:
    return "" if text is None else escape(str(text), quote=True)


def _attrs(attrs: dict[str, str | None]) -> str:
    return "".join(
        f' {name}="{_e(value)}"' for name, value in attrs.items() if value is not None
    )


def _hidden(hidden: bool) -> str:
    return " hidden" if hidden else ""


def _n(v: View, text: str) -> str:
    return to_digits(text, v.digits)


def _join(parts: list[str]) -> str:
    return " · ".join(p.strip() for p in parts if p and p.strip())


def _kind_label(v: View, b: Block | None) -> str:
    if b is None:
        return ""
    if b.kind == "break":
        return v.labels.get("break", "")
    index = "" if b.index is None else " " + _n(v, str(b.index))
    return v.labels.get("period", "") + index


def _block_label(v: View, b: Block) -> str:
    return b.label or _kind_label(v, b)


def _range(v: View, b: Block) -> str:
    return f"{_n(v, b.start)} – {_n(v, b.end)}"


def _people(b: Block) -> str:
    return _join([b.class_name, b.teacher])


def _initial(name: str) -> str:
    words = name.split()
    return words[-1][0] if words else ""


def _clock(v: View, now: datetime | None) -> datetime | None:
    """The school's wall clock at ``now`` (naive), or None when not given."""
    if now is None or now.tzinfo is None:
        return None
    return school_clock(now.timestamp() * 1000 + v.server_offset_ms, v.tz_offset_min)


def _clock_parts(v: View, clock: datetime | None) -> tuple[str, str]:
    if clock is None:
        return "--:--", ""
    return _n(v, f"{clock:%H:%M}"), _n(v, f"{clock:%S}")


def _same_day(v: View, clock: datetime | None) -> bool:
    return clock is not None and f"{clock:%Y-%m-%d}" == v.date


def _countdown(
    v: View, cur: Block | None, target: str | None, clock: datetime | None
) -> tuple[str, float]:
    """Time left to ``target`` and the fraction of ``cur`` gone, on the same day."""
    if target is None or clock is None or not _same_day(v, clock):
        return "", 0.0
    now_s = clock.hour * 3600 + clock.minute * 60 + clock.second
    left = _seconds(target) - now_s
    if left < 0:
        return "", 0.0
    hours, rest = divmod(left, 3600)
    text = f"{rest // 60:02d}:{rest % 60:02d}"
    text = f"{hours}:{text}" if hours else text
    fraction = 0.0
    if cur is not None:
        span = _seconds(cur.end) - _seconds(cur.start)
        fraction = min(1.0, max(0.0, (now_s - _seconds(cur.start)) / span))
    return _n(v, text), fraction


def _seconds(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 3600 + int(minutes) * 60


def _names(v: View, key: str) -> list[str]:
    return v.labels.get(key, "").split("|")


def _weekday(v: View, iso: str) -> str:
    names = _names(v, "weekdays")
    try:
        day = datetime.strptime(iso, "%Y-%m-%d").weekday()
    except ValueError:
        return ""
    return names[day] if day < len(names) else ""


def _day_month(v: View, iso: str) -> str:
    months = _names(v, "months")
    try:
        date = datetime.strptime(iso, "%Y-%m-%d")
    except ValueError:
        return ""
    month = months[date.month - 1] if date.month <= len(months) else ""
    return f"{_n(v, str(date.day))} {month}".strip()


def _long_date(v: View, clock: datetime | None) -> str:
    iso = f"{clock:%Y-%m-%d}" if clock else v.date
    if not iso:
        return ""
    return f"{_weekday(v, iso)} {_day_month(v, iso)} {_n(v, iso[:4])}".strip()
