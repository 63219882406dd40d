/* School display page.
 *
 * Public API (a contract with the renderers):
 *   window.kiosk.apply(view)               show a view model (object or JSON text)
 *   window.kiosk.notice(kind, text, hint)  full-screen notice; "offline" is a badge
 *   window.kiosk.alive()                   {revision, shown_at, ticked_at, screen, notice}
 *
 * Snapshot text reaches the DOM only through textContent. The clock and the
 * current block advance every second on their own, from Date.now() plus the
 * server offset, shifted to the school's timezone; nothing here talks to a server.
 */
(function () {
  "use strict";

  var NEWS_EVERY_MS = 8000;
  var PAGE_HOLD_MS = 4000; // at scroll_speed 1; 0.5 (the default) holds 8 s
  var PAGE_HOLD_MIN_MS = 3000;
  var PAGE_HOLD_MAX_MS = 20000;
  var THEMES = ["indigo", "emerald", "rose", "cyan", "amber", "orange", "violet"];
  var NOTICE_TITLES = {
    unpaired: "This screen is not paired yet",
    screen_bound: "This screen belongs to another device",
    token_rejected: "The school server refused this screen",
    offline: "Offline",
    waiting: "Waiting for the school server"
  };
  var LEVELS = ["info", "success", "warning", "urgent"];

  var doc = document;
  var root = doc.documentElement;
  var st = {
    view: null,
    notice: null,
    badge: null,
    shownAt: null,
    tickedAt: null,
    timer: 0,
    newsKeys: null,
    newsActive: null,
    newsAt: 0,
    scrollers: [],
    error: null
  };

  function $(id) {
    return doc.getElementById(id);
  }

  // ---- careful DOM writes: touch a node only when its content changes ----

  function setText(el, text) {
    var value = text === null || text === undefined ? "" : String(text);
    if (el && el.textContent !== value) el.textContent = value;
  }

  function setAttr(el, name, value) {
    if (!el) return;
    if (value === null || value === undefined) {
      if (el.hasAttribute(name)) el.removeAttribute(name);
    } else if (el.getAttribute(name) !== String(value)) {
      el.setAttribute(name, String(value));
    }
  }

  function setHidden(el, hidden) {
    if (el && el.hidden !== !!hidden) el.hidden = !!hidden;
  }

  function setClass(el, name, on) {
    if (el && el.classList.contains(name) !== !!on) el.classList.toggle(name, !!on);
  }

  function part(el, cls) {
    return el.querySelector("." + cls);
  }

  function fromTemplate(id) {
    return $(id).content.firstElementChild.cloneNode(true);
  }

  /* Make `list` hold one child per item, in order, reusing children by key. */
  function syncList(list, items, templateId, fill) {
    var existing = {};
    var child;
    for (child = list.firstElementChild; child; child = child.nextElementSibling) {
      existing[child.getAttribute("data-key")] = child;
    }
    var cursor = list.firstElementChild;
    items.forEach(function (item) {
      var el = existing[item.key];
      if (!el) {
        el = fromTemplate(templateId);
        el.setAttribute("data-key", item.key);
      }
      delete existing[item.key];
      fill(el, item);
      if (el === cursor) {
        cursor = cursor.nextElementSibling;
      } else {
        list.insertBefore(el, cursor);
      }
    });
    while (cursor) {
      var next = cursor.nextElementSibling;
      list.removeChild(cursor);
      cursor = next;
    }
  }

  function safeUrl(url) {
    return typeof url === "string" && /^https?:\/\/[^\s"<>\\]+$/i.test(url) ? url : null;
  }

  function watchImage(img) {
    if (img.dataset.watched) return;
    img.dataset.watched = "1";
    img.addEventListener("error", function () {
      img.hidden = true;
    });
    img.addEventListener("load", function () {
      img.hidden = false;
    });
    if (img.complete && img.getAttribute("src") && img.naturalWidth === 0) img.hidden = true;
  }

  function setImage(img, url) {
    if (!url) {
      img.hidden = true;
      if (img.hasAttribute("src")) img.removeAttribute("src");
      return;
    }
    watchImage(img);
    if (img.getAttribute("src") !== url) {
      img.hidden = false;
      img.src = url;
    }
  }

  // ---- numbers, dates and time ----------------------------------------

  function num(text) {
    var value = String(text === null || text === undefined ? "" : text);
    if (!st.view || st.view.digits !== "arabic") return value;
    return value.replace(/[0-9]/g, function (d) {
      return String.fromCharCode(0x0660 + Number(d));
    });
  }

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function secs(hhmm) {
    var m = /^(\d{1,2}):(\d{2})$/.exec(hhmm || "");
    return m ? Number(m[1]) * 3600 + Number(m[2]) * 60 : null;
  }

  function serverMs(view) {
    return Date.now() + (Number(view.server_offset_ms) || 0);
  }

  function schoolNow(view) {
    var d = new Date(serverMs(view) + (Number(view.tz_offset_min) || 0) * 60000);
    var sec = d.getUTCHours() * 3600 + d.getUTCMinutes() * 60 + d.getUTCSeconds();
    return {
      d: d,
      sec: sec + d.getUTCMilliseconds() / 1000,
      date: d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate())
    };
  }

  function duration(seconds) {
    var s = Math.max(0, Math.ceil(seconds));
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    var rest = pad(m) + ":" + pad(s % 60);
    return h ? h + ":" + rest : rest;
  }

  function names(view, key) {
    var text = (view.labels && view.labels[key]) || "";
    return text.split("|");
  }

  function dayMonth(view, iso) {
    var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso || "");
    if (!m) return "";
    return num(Number(m[3])) + " " + (names(view, "months")[Number(m[2]) - 1] || "");
  }

  function weekday(view, iso) {
    var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso || "");
    if (!m) return "";
    var dow = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))).getUTCDay();
    return names(view, "weekdays")[(dow + 6) % 7] || "";
  }

  function longDate(view, iso) {
    var year = (iso || "").slice(0, 4);
    return [weekday(view, iso), dayMonth(view, iso), num(year)].join(" ").trim();
  }

  // ---- the day's timeline ----------------------------------------------

  function blocksOf(view) {
    if (view.blocks && view.blocks.length) return view.blocks;
    return [view.current, view.next].filter(function (b) {
      return b && secs(b.start) !== null && secs(b.end) !== null;
    });
  }

  /* Where the school is in its day: in a block, before the first, between, or over. */
  function timeline(view, now) {
    var blocks = blocksOf(view);
    if (view.date && now.date !== view.date) return { mode: "stale" };
    var current = null;
    var next = null;
    blocks.forEach(function (b) {
      var start = secs(b.start);
      var end = secs(b.end);
      if (start <= now.sec && now.sec < end) current = b;
      else if (start > now.sec && !next) next = b;
    });
    if (current) {
      return { mode: "in", current: current, next: next, target: secs(current.end) };
    }
    if (next) {
      var first = blocks.length && now.sec < secs(blocks[0].start);
      return { mode: first ? "before" : "gap", current: null, next: next, target: secs(next.start) };
    }
    return { mode: blocks.length ? "over" : "empty" };
  }

  function screenFor(view, tl) {
    if (view.screen !== "live") return view.screen || "waiting";
    if (tl.mode === "over" || tl.mode === "stale") return "after";
    return "live";
  }

  function label(view, key) {
    return (view.labels && view.labels[key]) || "";
  }

  function kindLabel(view, b) {
    if (b.kind === "break") return label(view, "break");
    var index = b.index === null || b.index === undefined ? "" : " " + num(b.index);
    return label(view, "period") + index;
  }

  function blockLabel(view, b) {
    return b.label || kindLabel(view, b);
  }

  function range(b) {
    return num(b.start) + " – " + num(b.end);
  }

  function people(b) {
    return [b.class_name, b.teacher].filter(Boolean).join(" · ");
  }

  function initial(name) {
    var words = String(name || "").trim().split(/\s+/);
    var chars = Array.from(words[words.length - 1] || "");
    return chars[0] || "";
  }

  // ---- list fillers (the same markup the static renderer writes) --------

  function fillBlock(el, b) {
    var view = st.view;
    setClass(el, "is-break", b.kind === "break");
    setClass(el, "is-period", b.kind !== "break");
    setText(part(el, "blk-idx"), b.kind === "break" || b.index === null ? "" : num(b.index));
    setText(part(el, "blk-label"), blockLabel(view, b));
    setText(part(el, "blk-sub"), b.teacher || "");
    setText(part(el, "blk-time"), range(b));
  }

  function fillPerson(el, p) {
    setText(part(el, "initial"), p.initial);
    setText(part(el, "p-name"), p.name);
    setText(part(el, "p-sub"), p.sub);
    var avatar = part(el, "avatar");
    var img = avatar.querySelector("img");
    var url = safeUrl(p.img);
    if (url) {
      if (!img) {
        img = doc.createElement("img");
        img.alt = "";
        avatar.appendChild(img);
      }
      setImage(img, url);
    } else if (img) {
      avatar.removeChild(img);
    }
  }

  function fillAnn(el, a) {
    LEVELS.forEach(function (level) {
      setClass(el, "lvl-" + level, a.level === level);
    });
    setText(part(el, "ann-title"), a.title);
    setText(part(el, "ann-body"), a.body);
  }

  function featuredItems(view) {
    var duty = view.duty || [];
    var excellence = view.excellence || [];
    var useDuty = view.featured_panel === "duty";
    if (useDuty && !duty.length && excellence.length) useDuty = false;
    if (!useDuty && !excellence.length && duty.length) useDuty = true;
    var items = useDuty
      ? duty.map(function (d) {
          var sub = d.teacher ? [d.label, d.location] : [d.location];
          return {
            key: "d" + d.key,
            name: d.teacher || d.label,
            sub: sub.filter(Boolean).join(" · "),
            initial: initial(d.teacher || d.label)
          };
        })
      : excellence.map(function (e) {
          return {
            key: "e" + e.key,
            name: e.name,
            sub: e.reason,
            initial: initial(e.name),
            img: e.image_url
          };
        });
    return { title: label(view, useDuty ? "duty" : "excellence"), items: items };
  }

  function standbyItems(view) {
    return (view.standby || []).map(function (s) {
      return {
        key: "s" + s.key,
        name: s.teacher || s.class_name,
        sub: [s.teacher ? s.class_name : "", s.notes].filter(Boolean).join(" · "),
        initial: s.period_index === null ? "–" : num(s.period_index)
      };
    });
  }

  // ---- applying a view ---------------------------------------------------

  function setAccent(hex) {
    var m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex || "");
    if (m) {
      var rgb = [m[1], m[2], m[3]].map(function (h) {
        return parseInt(h, 16);
      });
      root.style.setProperty("--accent", hex);
      root.style.setProperty("--accent-rgb", rgb.join(", "));
    } else {
      root.style.removeProperty("--accent");
      root.style.removeProperty("--accent-rgb");
    }
  }

  function apply(input) {
    try {
      var view = typeof input === "string" ? JSON.parse(input) : input;
      if (!view || typeof view !== "object" || Array.isArray(view)) return false;
      st.view = view;
      st.badge = null;
      st.newsKeys = null;
      hideNotice();
      render(view);
      st.shownAt = Date.now();
      st.error = null;
      tick();
      return true;
    } catch (err) {
      st.error = String(err);
      if (window.console) window.console.error("kiosk.apply failed", err);
      return false;
    }
  }

  function render(view) {
    setAttr(root, "lang", view.lang === "ar" ? "ar" : "en");
    setAttr(root, "dir", view.dir === "rtl" ? "rtl" : "ltr");
    setAttr(root, "data-theme", THEMES.indexOf(view.theme) >= 0 ? view.theme : "indigo");
    setAccent(view.accent);

    setText($("school"), view.school);
    setImage($("logo"), safeUrl(view.logo_url));
    setText($("schedule-title"), label(view, "today"));
    setText($("news-title"), label(view, "announcements"));
    setText($("standby-title"), label(view, "standby"));

    syncList($("day-list"), view.blocks || [], "tpl-block", fillBlock);
    var featured = featuredItems(view);
    setText($("featured-title"), featured.title);
    syncList($("featured-list"), featured.items, "tpl-person", fillPerson);
    setHidden($("featured"), !featured.items.length);
    var standby = standbyItems(view);
    syncList($("standby-list"), standby, "tpl-person", fillPerson);
    setHidden($("standby"), !standby.length);
    renderBadge();
  }

  function renderBadge() {
    var view = st.view;
    var text = st.badge || (view && view.offline_text) || "";
    setText($("offline-text"), text);
    setHidden($("offline"), !text);
    setAttr(root, "data-offline", text ? "" : null);
  }

  // ---- every second --------------------------------------------------------

  function tick() {
    var view = st.view;
    if (!view) return;
    var now = schoolNow(view);
    var hm = num(pad(now.d.getUTCHours()) + ":" + pad(now.d.getUTCMinutes()));
    var s = num(pad(now.d.getUTCSeconds()));
    setText($("clock-hm"), hm);
    setText($("clock-s"), s);
    setText($("idle-hm"), hm);
    setText($("idle-s"), s);
    setText($("date"), longDate(view, now.date));
    setText($("idle-date"), longDate(view, now.date));

    var tl = timeline(view, now);
    var screen = screenFor(view, tl);
    setAttr(root, "data-screen", screen);
    if (screen === "live") renderLive(view, tl, now);
    else renderIdle(view, screen, now);
    renderNews(view);
    measureScrollers();
    st.tickedAt = Date.now();
  }

  function renderLive(view, tl, now) {
    var cur = tl.current;
    var nxt = tl.next;
    var nowCard = $("now");
    if (cur) {
      var start = secs(cur.start);
      var span = secs(cur.end) - start;
      setAttr(nowCard, "data-kind", cur.kind === "break" ? "break" : "period");
      setText($("now-tag"), label(view, "now") + " · " + kindLabel(view, cur));
      setText($("now-label"), blockLabel(view, cur));
      setText($("now-sub"), people(cur));
      setText($("count-caption"), label(view, "ends_in"));
      setText($("now-time"), range(cur));
      progress(span > 0 ? (now.sec - start) / span : 0);
    } else {
      setAttr(nowCard, "data-kind", "idle");
      setText($("now-tag"), label(view, "now"));
      setText($("now-label"), label(view, tl.mode === "before" ? "day_starts" : "free"));
      setText($("now-sub"), "");
      setText($("count-caption"), nxt ? label(view, "starts_in") : "");
      setText($("now-time"), "");
      progress(0);
    }
    setText($("countdown"), tl.target === undefined ? "" : num(duration(tl.target - now.sec)));

    setHidden($("next"), !nxt);
    if (nxt) {
      setText($("next-tag"), label(view, "next") + " · " + kindLabel(view, nxt));
      setText($("next-label"), blockLabel(view, nxt));
      setText($("next-sub"), people(nxt));
      setText($("next-time"), range(nxt));
    }
    setHidden(nowCard.parentNode.querySelector(".pair"), !nxt && $("featured").hidden);

    var list = $("day-list");
    var byKey = {};
    (view.blocks || []).forEach(function (b) {
      byKey[b.key] = b;
    });
    for (var el = list.firstElementChild; el; el = el.nextElementSibling) {
      var b = byKey[el.getAttribute("data-key")];
      if (!b) continue;
      setClass(el, "is-now", !!cur && b.key === cur.key);
      setClass(el, "is-past", secs(b.end) <= now.sec);
    }
  }

  function progress(fraction) {
    var f = Math.max(0, Math.min(1, fraction || 0));
    var value = "scaleX(" + f.toFixed(4) + ")";
    var bar = $("progress");
    if (bar.style.transform !== value) bar.style.transform = value;
  }

  function renderIdle(view, screen, now) {
    var copy = view.copy || {};
    var state = view.state || {};
    var fromServer = view.screen === screen;
    var nextDay = view.next_day;
    var holidayNext = !!nextDay && !nextDay.is_tomorrow;
    var title = "";
    var badge = "";
    if (screen === "waiting") {
      title = state.label || label(view, "waiting");
    } else if (screen === "before") {
      title = state.label || copy.before_title || label(view, "day_starts");
      badge = state.badge || copy.before_badge;
    } else if (screen === "holiday") {
      title = state.label || copy.holiday_title || label(view, "no_school");
      badge = state.badge || copy.holiday_badge;
    } else {
      var t = (holidayNext && copy.after_holiday_title) || copy.after_title;
      var b = (holidayNext && copy.after_holiday_badge) || copy.after_badge;
      title = (fromServer && state.label) || t || label(view, "day_over");
      badge = (fromServer && state.badge) || b;
    }
    setText($("idle-title"), title);
    setText($("idle-badge"), badge || "");

    var line = "";
    var showNext = nextDay && screen !== "waiting" && !(screen === "before" && nextDay.date !== now.date);
    if (showNext) {
      var when = [nextDay.is_tomorrow ? label(view, "tomorrow") : "",
        (nextDay.weekday_label || weekday(view, nextDay.date)) + " " + dayMonth(view, nextDay.date)];
      if (nextDay.first_start) when.push(label(view, "first_at") + " " + num(nextDay.first_start));
      line = when.filter(function (x) {
        return x && x.trim();
      }).join(" · ");
    }
    setText($("idle-next-caption"), line ? label(view, "next_day") : "");
    setText($("idle-next-value"), line);
    setHidden($("idle-next"), !line);
  }

  function renderNews(view) {
    var nowMs = serverMs(view);
    var items = (view.announcements || []).filter(function (a) {
      return a.expires_ms === null || a.expires_ms === undefined || a.expires_ms > nowMs;
    });
    var keys = items.map(function (a) {
      return a.id;
    }).join("\n");
    var list = $("news-list");
    if (keys !== st.newsKeys) {
      syncList(list, items.map(function (a) {
        return { key: a.id, title: a.title, body: a.body, level: a.level };
      }), "tpl-ann", fillAnn);
      var dots = $("news-dots");
      var want = items.length > 1 ? items.length : 0;
      while (dots.children.length > want) dots.removeChild(dots.lastElementChild);
      while (dots.children.length < want) {
        var dot = doc.createElement("span");
        dot.className = "dot-i";
        dots.appendChild(dot);
      }
      st.newsKeys = keys;
    }
    setHidden($("news"), !items.length);
    if (!items.length) return;

    var index = -1;
    items.forEach(function (a, i) {
      if (a.id === st.newsActive) index = i;
    });
    var clock = Date.now();
    if (index < 0) {
      index = 0;
      st.newsAt = clock;
    } else if (items.length > 1 && clock - st.newsAt >= NEWS_EVERY_MS) {
      index = (index + 1) % items.length;
      st.newsAt = clock;
    }
    st.newsActive = items[index].id;
    var i = 0;
    for (var el = list.firstElementChild; el; el = el.nextElementSibling) {
      setClass(el, "active", el.getAttribute("data-key") === st.newsActive);
    }
    for (var dot2 = $("news-dots").firstElementChild; dot2; dot2 = dot2.nextElementSibling) {
      setClass(dot2, "on", i === index);
      i += 1;
    }
  }

  // ---- paging for lists that do not fit ------------------------------------
  // A list that overflows holds still, then glides one page on (a short CSS
  // transition), and back to the top after its last page. Scrolling every
  // animation frame instead kept software rendering busy and grew the web
  // process's memory for as long as a list overflowed.

  function scrollers() {
    if (!st.scrollers.length) {
      // A fresh page shows each list's first page for a full hold.
      var now = Date.now();
      var viewports = doc.querySelectorAll(".viewport");
      for (var i = 0; i < viewports.length; i += 1) {
        st.scrollers.push({ vp: viewports[i], pos: 0, max: 0, movedAt: now });
      }
    }
    return st.scrollers;
  }

  function holdMs() {
    var speed = Number(st.view && st.view.scroll_speed) || 0.5;
    return Math.min(PAGE_HOLD_MAX_MS, Math.max(PAGE_HOLD_MIN_MS, PAGE_HOLD_MS / speed));
  }

  function placeList(sc, pos) {
    sc.pos = pos;
    var list = sc.vp.firstElementChild;
    if (list) list.style.transform = pos ? "translateY(" + -pos + "px)" : "";
  }

  // The next page starts at the last row that begins inside this one, so no
  // row is cut in half at the top and consecutive pages overlap by that row.
  function nextPage(sc) {
    if (sc.pos >= sc.max) return 0;
    var list = sc.vp.firstElementChild;
    var limit = sc.pos + sc.vp.clientHeight;
    var target = sc.pos;
    for (var row = list.firstElementChild; row; row = row.nextElementSibling) {
      var top = row.offsetTop - list.offsetTop;
      if (top > sc.pos && top < limit) target = top;
    }
    if (target <= sc.pos) target = limit; // one row taller than the viewport
    return Math.min(sc.max, Math.round(target));
  }

  // Called every tick: measures, and moves the lists whose page has been
  // shown for long enough.
  function measureScrollers() {
    var now = Date.now();
    var hold = holdMs();
    scrollers().forEach(function (sc) {
      var list = sc.vp.firstElementChild;
      var max = list ? list.scrollHeight - sc.vp.clientHeight : 0;
      var visible = sc.vp.offsetParent !== null;
      sc.max = visible && max > 2 ? Math.round(max) : 0;
      setClass(sc.vp, "overflowing", sc.max > 0);
      if (!sc.max) {
        if (sc.pos) placeList(sc, 0);
        sc.movedAt = now;
      } else if (sc.pos > sc.max) {
        placeList(sc, sc.max);
      } else if (now - sc.movedAt >= hold) {
        placeList(sc, nextPage(sc));
        sc.movedAt = now;
      }
    });
  }

  // ---- notices ---------------------------------------------------------------

  function hideNotice() {
    st.notice = null;
    setAttr(root, "data-notice", null);
    setHidden($("notice"), true);
  }

  function notice(kind, text, hint, title) {
    var k = String(kind || "waiting");
    if (k === "offline") {
      if (st.view) {
        st.badge = text ? String(text) : (st.view.offline_text || NOTICE_TITLES.offline);
        renderBadge();
        st.shownAt = Date.now();
        return true;
      }
      k = "waiting";
    }
    st.notice = k;
    setAttr(root, "data-notice", k);
    setText($("notice-title"), title || NOTICE_TITLES[k] || "");
    setText($("notice-text"), text || "");
    setText($("notice-hint-text"), hint || "");
    setHidden($("notice-hint"), !hint);
    setHidden($("notice"), false);
    st.shownAt = Date.now();
    return true;
  }

  function alive() {
    return {
      revision: st.view && st.view.revision !== undefined ? st.view.revision : null,
      shown_at: st.shownAt,
      ticked_at: st.tickedAt,
      screen: root.getAttribute("data-screen"),
      notice: st.notice,
      error: st.error
    };
  }

  // ---- start-up ----------------------------------------------------------------

  function loop() {
    try {
      tick();
    } catch (err) {
      st.error = String(err);
    }
    var offset = st.view ? Number(st.view.server_offset_ms) || 0 : 0;
    var wait = 1000 - ((Date.now() + offset) % 1000) + 15;
    st.timer = window.setTimeout(loop, wait);
  }

  function lockDown() {
    ["contextmenu", "selectstart", "dragstart", "drop", "dragover", "auxclick", "submit"].forEach(
      function (type) {
        doc.addEventListener(type, function (e) {
          e.preventDefault();
        }, true);
      }
    );
    doc.addEventListener("click", function (e) {
      if (e.target && e.target.closest && e.target.closest("a, area, form")) e.preventDefault();
    }, true);
    doc.addEventListener("wheel", function (e) {
      if (e.ctrlKey) e.preventDefault();
    }, { capture: true, passive: false });
    window.open = function () {
      return null;
    };
  }

  function boot() {
    root.classList.add("js");
    lockDown();
    var images = doc.querySelectorAll("img");
    for (var i = 0; i < images.length; i += 1) watchImage(images[i]);

    var embedded = $("kiosk-view");
    var data = null;
    if (embedded) {
      try {
        data = JSON.parse(embedded.textContent);
      } catch (err) {
        data = null;
      }
    }
    if (data && data.notice) notice(data.notice, data.text, data.hint, data.title);
    else if (data) apply(data);
    else notice("waiting", "");
    loop();
  }

  window.kiosk = { apply: apply, notice: notice, alive: alive };
  if (doc.readyState === "loading") doc.addEventListener("DOMContentLoaded", boot);
  else boot();
})();
