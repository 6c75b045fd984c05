// sinkbus admin page: refreshes the live parts of the open page in place
// (elements with data-live and an id), asks before a delete. The page
// reads and works without it.
"use strict";
(function () {
  const period = Number(document.body.dataset.refresh || 0);
  const status = document.getElementById("refresh-status");

  // A part is left alone while it holds the keyboard focus: replacing it
  // would lose the user's place. It catches up once focus moves on.
  function update(next) {
    for (const cur of document.querySelectorAll("[data-live][id]")) {
      const fresh = next.getElementById(cur.id);
      if (!fresh || cur.contains(document.activeElement)) continue;
      if (cur.innerHTML !== fresh.innerHTML) cur.innerHTML = fresh.innerHTML;
      for (const a of fresh.attributes) {
        if (cur.getAttribute(a.name) !== a.value) cur.setAttribute(a.name, a.value);
      }
    }
  }

  let busy = false;
  async function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    try {
      // With its query: the page it refreshes is the one shown (the replay
      // just started stays highlighted); reading it changes nothing.
      const resp = await fetch(location.pathname + location.search, { headers: { Accept: "text/html" }, cache: "no-store" });
      if (!resp.ok) throw new Error(String(resp.status));
      update(new DOMParser().parseFromString(await resp.text(), "text/html"));
      status.textContent = "";
    } catch (e) {
      status.textContent = "Refresh failed (" + e.message + "); retrying.";
    } finally {
      busy = false;
    }
  }

  if (period > 0) setInterval(refresh, period);

  document.addEventListener("click", function (ev) {
    const b = ev.target.closest("button[data-confirm]");
    if (b && !window.confirm(b.dataset.confirm)) ev.preventDefault();
  });
})();
