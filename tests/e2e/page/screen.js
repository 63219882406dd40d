"use strict";
// A stand-in for the bundled page with the same three entry points, used to
// test the window machinery on its own.
window.kiosk = (() => {
  const byId = (id) => document.getElementById(id);
  let revision = null;
  let shownAt = null;

  function painted() {
    requestAnimationFrame(() => requestAnimationFrame(() => {
      shownAt = Date.now();
    }));
  }

  return {
    apply(input) {
      // The contract allows an object or its JSON text; the agent sends text.
      const view = typeof input === "string" ? JSON.parse(input) : input;
      revision = view.revision ?? null;
      document.documentElement.dir = view.dir || "ltr";
      document.documentElement.lang = view.lang || "en";
      byId("school").textContent = view.school || "";
      const list = byId("news-list");
      list.replaceChildren(...(view.announcements || []).map((item) => {
        const li = document.createElement("li");
        li.textContent = `${item.title} ${item.body}`;
        return li;
      }));
      byId("notice").hidden = true;
      byId("offline").hidden = true;
      painted();
    },
    notice(kind, text, hint) {
      if (kind === "offline") {
        byId("offline-text").textContent = text;
        byId("offline").hidden = false;
      } else {
        byId("notice").dataset.kind = kind;
        byId("notice-text").textContent = text;
        byId("notice-hint").textContent = hint ?? "";
        byId("notice").hidden = false;
      }
      painted();
    },
    alive() {
      return { revision, shown_at: shownAt };
    },
  };
})();
