// harmwatch review UI: keyboard shortcuts, reveal-on-click and the break reminder.
// Loaded from /static (CSP forbids inline script); every page works without it.
"use strict";

(function () {
  const csrf = document.body.dataset.csrf || "";

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
    });
  }

  function showBreak(count) {
    const banner = document.getElementById("break-reminder");
    if (!banner) return;
    banner.textContent = banner.textContent.replace(/\d+/, String(count));
    banner.hidden = false;
  }

  async function reveal(button) {
    const item = document.getElementById("item").dataset.item;
    const index = button.dataset.index;
    button.disabled = true;
    const response = await post(`/api/items/${encodeURIComponent(item)}/media/${index}/reveal`);
    if (!response.ok) { button.disabled = false; return; }
    const result = await response.json();
    const figure = document.getElementById(`media-${index}`);
    const img = figure.querySelector("img");
    img.src = result.original_url;
    figure.classList.remove("hidden-media");
    figure.classList.add("revealed");
    button.closest("form").remove();
    const counter = document.getElementById("reveal-count");
    if (counter) counter.textContent = String(result.reveals_this_session);
    if (result.break_due) showBreak(result.reveals_this_session);
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button.reveal");
    if (button) { event.preventDefault(); reveal(button); return; }
    if (event.target.id === "break-dismiss") {
      document.getElementById("break-reminder").hidden = true;
    }
    if (event.target.id === "select-all") {
      document.querySelectorAll("input[name=item_ids]").forEach((box) => {
        box.checked = event.target.checked;
      });
    }
  });

  // Queue navigation.
  const rows = Array.from(document.querySelectorAll("tr.row"));
  let current = -1;
  function focusRow(index) {
    if (!rows.length) return;
    current = Math.max(0, Math.min(rows.length - 1, index));
    rows.forEach((row, i) => row.classList.toggle("current", i === current));
    rows[current].scrollIntoView({ block: "nearest" });
  }

  function click(id) {
    const element = document.getElementById(id);
    if (element) element.click();
  }

  const keys = {
    j: () => focusRow(current + 1),
    k: () => focusRow(current - 1),
    x: () => { if (current >= 0) { const box = rows[current].querySelector("input[type=checkbox]"); if (box) box.checked = !box.checked; } },
    o: () => { if (current >= 0) window.location.href = rows[current].dataset.href; },
    Enter: () => { if (current >= 0) window.location.href = rows[current].dataset.href; },
    c: () => click("claim"),
    1: () => click("confirm"),
    d: () => click("dismiss"),
    e: () => click("escalate"),
    r: () => { const next = document.querySelector("button.reveal"); if (next) reveal(next); },
    n: () => { const note = document.getElementById("decision-note") || document.getElementById("note-text"); if (note) note.focus(); },
    "?": () => { const help = document.getElementById("shortcuts"); if (help) help.showModal(); },
  };

  document.addEventListener("keydown", (event) => {
    const tag = (event.target.tagName || "").toLowerCase();
    if (["input", "textarea", "select"].includes(tag) || event.ctrlKey || event.metaKey || event.altKey) return;
    const action = keys[event.key];
    if (action) { event.preventDefault(); action(); }
  });
})();
