// harmwatch admin pages: polls a bank import's progress. Loaded from /static (CSP forbids
// inline script); without it the page still works — reload it to see the progress.
"use strict";

(function () {
  const box = document.getElementById("import-progress");
  if (!box) return;
  const job = box.dataset.job;
  const field = (name) => document.getElementById(`import-${name}`);

  async function poll() {
    const response = await fetch(`/api/admin/banks/imports/${encodeURIComponent(job)}`,
                                 { credentials: "same-origin" });
    if (!response.ok) return;
    const state = await response.json();
    field("status").textContent = state.status;
    field("checked").textContent = String(state.checked ?? 0);
    field("read").textContent = String(state.read);
    field("added").textContent = String(state.added);
    field("duplicates").textContent = String(state.duplicates);
    box.dataset.status = state.status;
    if (state.status === "running") {
      setTimeout(poll, 1000);
      return;
    }
    const bar = field("bar");
    bar.max = 1;
    bar.value = 1;
    if (state.error) {
      field("error").textContent = state.error;
      field("error").hidden = false;
    }
  }

  poll();
})();
