/// The console's only script and style sheet, served by the binary from /static (no
/// CDN, no build step). The script is optional: every page works without it.
enum Assets {
    /// Refreshes the overview's figures from the shared snapshot every 5 seconds,
    /// while the tab is visible. Builds DOM nodes with textContent only (never HTML
    /// from data).
    static let script = #"""
        "use strict";
        (function () {
          var main = document.querySelector("main[data-refresh]");
          if (!main) { return; }
          var url = main.getAttribute("data-refresh");
          function set(id, text) { var el = document.getElementById(id); if (el) { el.textContent = String(text); } }
          function age(s) {
            if (s === null || s === undefined) { return "none"; }
            if (s < 60) { return s.toFixed(1) + " s"; }
            if (s < 3600) { return (s / 60).toFixed(1) + " min"; }
            return (s / 3600).toFixed(1) + " h";
          }
          function render(data) {
            var states = ["available", "retryable", "running"];
            var priorities = ["high", "normal", "low"];
            states.forEach(function (state) {
              var counts = (data.unfinished && data.unfinished[state]) || {};
              var total = 0;
              priorities.forEach(function (p) { var n = counts[p] || 0; total += n; set("c-" + state + "-" + p, n); });
              set("c-" + state + "-total", total);
            });
            set("generated-at", data.generated_at);
            set("finished", data.finished_estimate);
            set("dead-letters", data.dead_letters);
            set("oldest-due", age(data.oldest_due_seconds));
            function health(id, h, absent) {
              var el = document.getElementById(id);
              if (!el) { return; }
              el.textContent = h ? h.summary : absent;
              el.className = (h && !h.reachable) ? "bad" : "ok";
            }
            health("pg-health", data.postgres, "unknown");
            health("redis-health", data.redis, "not configured");
            if (data.redis_lists) {
              set("redis-lists", priorities.map(function (p) { return p + " " + (data.redis_lists[p] || 0); }).join(", "));
            }
            var paused = (data.pauses || []).map(function (p) { return p.scope + " " + p.name + " (by " + p.paused_by + ")"; });
            set("paused-line", "paused: " + (paused.length ? paused.join(", ") : "nothing"));
            var body = document.getElementById("daemons");
            if (body) {
              while (body.firstChild) { body.removeChild(body.firstChild); }
              (data.daemons || []).forEach(function (d) {
                var tr = document.createElement("tr");
                var slots = (d.slots === null || d.slots === undefined || d.busy === null || d.busy === undefined)
                  ? String(d.workers) : d.busy + " / " + d.slots;
                var wanted = (d.desired === null || d.desired === undefined) ? "" : String(d.desired);
                [d.id, d.hostname, slots, wanted, d.version, d.heartbeat_age_seconds.toFixed(1) + " s"].forEach(function (v, i) {
                  var td = document.createElement("td"); td.textContent = String(v);
                  if (i === 2 || i === 3 || i === 5) { td.className = "num"; }
                  tr.appendChild(td);
                });
                body.appendChild(tr);
              });
            }
          }
          function tick() {
            if (document.hidden) { return; }
            fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
              .then(function (r) { return r.ok ? r.json() : null; })
              .then(function (data) { if (data) { render(data); main.classList.remove("stale"); } else { main.classList.add("stale"); } })
              .catch(function () { main.classList.add("stale"); });
          }
          setInterval(tick, 5000);
        })();
        """#

    static let style = #"""
        body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d2430; background: #f7f8fa; }
        header { display: flex; gap: 1.5em; align-items: center; padding: .6em 1.2em; background: #1d2430; color: #fff; }
        header a { color: #cfe3ff; margin-right: 1em; text-decoration: none; }
        header .who { margin-left: auto; color: #aab; }
        main { padding: 1em 1.5em; max-width: 1200px; }
        main.stale #generated-at { color: #b00; }
        h1 { font-size: 1.5em; margin: .2em 0 .6em; }
        h2 { font-size: 1.1em; margin: 1.2em 0 .4em; }
        table { border-collapse: collapse; background: #fff; }
        th, td { padding: .3em .7em; border-bottom: 1px solid #e3e6ea; text-align: left; vertical-align: top; }
        td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
        table.counts td { min-width: 5em; }
        .muted { color: #6b7380; }
        .error { color: #9b1c1c; max-width: 32em; overflow-wrap: anywhere; }
        .notice { background: #e8f4ea; border: 1px solid #b5dcbc; padding: .5em .8em; }
        pre { background: #fff; border: 1px solid #e3e6ea; padding: .8em; overflow: auto; max-height: 32em; }
        form.inline { display: inline; margin-right: .4em; }
        form.filters label, form.pause label { margin-right: .6em; }
        button { padding: .25em .8em; cursor: pointer; }
        button.danger { color: #9b1c1c; }
        .actions { margin: .4em 0 1em; }
        .state-dead, .state-cancelled { color: #9b1c1c; }
        .state-completed { color: #1f6f2b; }
        svg.chart { width: 100%; max-width: 720px; height: 150px; background: #fff; border: 1px solid #e3e6ea; }
        svg.chart rect.ok { fill: #3a8d4b; }
        table.health td.ok { color: #1d6b2f; }
        table.health td.bad { color: #b3261e; font-weight: 600; }
        svg.chart rect.fail { fill: #c0392b; }
        svg.chart line.axis { stroke: #889; stroke-width: 1; }
        """#
}
