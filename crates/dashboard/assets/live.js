// Live refresh through the daemon's events stream: a second after the last event,
// fetch this page again and swap its <main>. Without this script the page reads the
// same (and a <noscript> refresh reloads it every minute).
(function () {
  "use strict";
  var badge = document.getElementById("live");
  if (!window.EventSource || !window.fetch || !badge) return;
  var timer = null, seen = 0;
  function refresh() {
    timer = null;
    fetch(location.href, { headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("main");
        var old = document.querySelector("main");
        if (fresh && old) old.replaceWith(fresh);
      })
      .catch(function () { badge.textContent = "offline"; });
  }
  var events = new EventSource("/api/v1/events");
  events.onopen = function () { badge.textContent = "live"; badge.className = "live on"; };
  events.onerror = function () { badge.textContent = "reconnecting"; badge.className = "live"; };
  // The daemon names its events (`event: drydock`): `onmessage` only sees unnamed
  // ones and would never fire.
  events.addEventListener("drydock", function () {
    // Counted on the badge: tests (and the curious) can see the stream works.
    badge.setAttribute("data-events", String(++seen));
    if (timer) clearTimeout(timer);
    timer = setTimeout(refresh, 1000);
  });
})();
