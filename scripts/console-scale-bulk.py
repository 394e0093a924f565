#!/usr/bin/env python3
"""The bulk-retry run of scripts/console-scale (its --bulk-retry mode starts this).

Against a console (`jobd web`) and a daemon (`jobd run`) on a kept load, as the
console's operator in a browser would: open the dead-letters page, take the CSRF
token from its bulk form, ask for the dry run of "retry everything" (no filter),
confirm it with the dry run's count and upper bound, and follow the redirect to the
bulk action's page. While the action runs:

- one client requests every page of the console in turn, again and again (the
  pages of scripts/console-scale's table, the bulk dry runs and the action's own
  page included), and keeps each response's server time (`Server-Timing: app;dur`);
- another polls the action's progress (GET /api/v1/bulk/ID) twice a second, timed too,
  and keeps (seconds since the confirm, processed, expected, affected, status).

Both stop when the action has finished. Prints the action's total time, the progress
samples, and per page p50 / p95 / max and the number of samples against the budget.
Exit status: 0 when the action finished with every matching row worked through and
every page's p95 within the budget; 1 otherwise, with the reasons on the last lines.
"""

import argparse
import http.client
import json
import re
import sys
import threading
import time
import urllib.parse


class Console:
    """One keep-alive HTTP/1.1 connection to the console, like one browser tab."""

    def __init__(self, base):
        url = urllib.parse.urlsplit(base)
        self.host = url.hostname
        self.port = url.port
        self.connection = None

    def request(self, method, path, form=None):
        """Returns (status, headers, body text, server milliseconds or None)."""
        body = None
        headers = {"Host": "%s:%d" % (self.host, self.port), "Accept": "text/html"}
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in range(2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                text = response.read().decode("utf-8", "replace")
                break
            except (http.client.HTTPException, OSError):
                # A connection the server closed between two requests: one more try.
                self.connection.close()
                self.connection = None
                if attempt == 1:
                    raise
        timing = response.getheader("Server-Timing") or ""
        match = re.search(r"dur=([0-9.]+)", timing)
        return response.status, response, text, float(match.group(1)) if match else None


def quantile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p * len(ordered) + 0.5)) - 1))]


def hidden_inputs(html, form_index=0):
    """The hidden inputs of the form-th POST form to /bulk in a page."""
    forms = re.findall(r'<form method="post" action="/bulk"[^>]*>(.*?)</form>', html, re.S)
    if len(forms) <= form_index:
        return None
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', forms[form_index]))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True, help="the console, http://127.0.0.1:PORT")
    parser.add_argument("--budget", type=float, default=100.0, help="p95 server time a page may take, ms")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds the action may take")
    parser.add_argument("--batch", type=int, default=None, help="batch size to confirm with (default: the console's)")
    parser.add_argument("--mid-id", type=int, required=True, help="a job id in the middle of the table")
    parser.add_argument("--cursor", required=True, help="a dead-letter cursor a few pages deep")
    parser.add_argument("--baseline-rounds", type=int, default=5,
                        help="rounds of every page before the confirm, for comparison")
    args = parser.parse_args()

    browser = Console(args.base)
    failures = []

    # The operator's way in: the dead-letters page's bulk form, its dry run, the confirm.
    status, _, page, _ = browser.request("GET", "/dead-letters")
    form = hidden_inputs(page)
    if status != 200 or not form or "csrf" not in form:
        print("console-scale: the dead-letters page (%d) has no bulk form with a CSRF token" % status, file=sys.stderr)
        return 1
    csrf = form["csrf"]
    form["action"] = "retry"
    status, _, page, dry_ms = browser.request("POST", "/bulk", form)
    count = re.search(r'<strong id="bulk-count">(\d+)</strong>', page)
    confirm = hidden_inputs(page)
    if status != 200 or not count or not confirm or confirm.get("confirm") != "1":
        print("console-scale: the dry run answered %d without a count and a confirm form" % status, file=sys.stderr)
        return 1
    expected = int(count.group(1))
    if args.batch:
        confirm["batch"] = str(args.batch)
    enc = urllib.parse.quote
    pages = [
        ("bulk action page (progress)", "GET", None, None),
        ("overview (shared snapshot)", "GET", "/", None),
        ("jobs, newest", "GET", "/jobs", None),
        ("jobs, deep page (before=mid)", "GET", "/jobs?before=%d" % args.mid_id, None),
        ("jobs, state=available", "GET", "/jobs?state=available", None),
        ("jobs, kind", "GET", "/jobs?kind=kind.7", None),
        ("jobs, kind+priority", "GET", "/jobs?kind=kind.7&priority=low", None),
        ("jobs, payload field=value", "GET", "/jobs?field=order_id&value=%d" % args.mid_id, None),
        ("jobs, payload contains (nested)", "GET", "/jobs?contains=" + enc('{"customer": {"id": 4242}}'), None),
        ("jobs, payload tenant (1000 values)", "GET", "/jobs?field=tenant&value=acme-17", None),
        ("job page", "GET", "/jobs/%d" % args.mid_id, None),
        ("dead letters, newest", "GET", "/dead-letters", None),
        ("dead letters, deep (cursor)", "GET", "/dead-letters?before=" + enc(args.cursor), None),
        ("dead letters, kind", "GET", "/dead-letters?kind=kind.3", None),
        ("bulk actions list", "GET", "/bulk", None),
        ("periodic jobs", "GET", "/periodic", None),
        ("notifications", "GET", "/notifications", None),
        ("campaigns", "GET", "/campaigns", None),
        ("api jobs, kind", "GET", "/api/v1/jobs?kind=kind.7", None),
        ("bulk dry run: dead letters of a kind", "POST", "/bulk",
         {"csrf": csrf, "target": "dead_letters", "action": "retry", "kind": "kind.3"}),
        ("bulk dry run: jobs, kind+state", "POST", "/bulk",
         {"csrf": csrf, "target": "jobs", "action": "cancel", "kind": "kind.7", "state": "available"}),
    ]

    def progress_path():
        return "/bulk/%d" % outcome_id["id"] if outcome_id else "/bulk"

    def run_round(tab, into, stop=None):
        for name, method, path, form in pages:
            if stop is not None and stop.is_set():
                return
            path = path or progress_path()
            try:
                status, _, text, ms = tab.request(method, path, form)
            except Exception as error:  # noqa: BLE001 - reported, not fatal to the run
                errors.append("%s: %s" % (name, error))
                continue
            if status != 200 or ms is None:
                errors.append("%s: status %d" % (name, status))
                continue
            into[name].append(ms)
            if path == "/" and into is samples:
                snapshot = tab.request("GET", "/api/v1/overview")[2]
                try:
                    value = json.loads(snapshot).get("compute_milliseconds")
                    if value is not None:
                        computes.append(value)
                except ValueError:
                    pass

    # Before the confirm: the same pages, same daemon and console, no bulk action (the
    # progress page's slot is the bulk actions list then).
    outcome_id = {}
    errors = []
    computes = []
    samples = {name: [] for name, _, _, _ in pages}
    baseline = {name: [] for name, _, _, _ in pages}
    for _ in range(args.baseline_rounds):
        run_round(browser, baseline)

    started = time.monotonic()
    status, response, _, confirm_ms = browser.request("POST", "/bulk", confirm)
    location = response.getheader("Location") or ""
    found = re.match(r"/bulk/(\d+)", location)
    if status != 303 or not found:
        print("console-scale: the confirm answered %d, Location %r" % (status, location), file=sys.stderr)
        return 1
    action_id = int(found.group(1))
    outcome_id["id"] = action_id
    status, _, _, _ = browser.request("GET", location)
    print("console-scale: bulk action %d: retry of %d dead letters confirmed (dry run %.1f ms, confirm %.1f ms server time)"
          % (action_id, expected, dry_ms or float("nan"), confirm_ms or float("nan")), flush=True)

    samples["api bulk progress (poll)"] = []
    baseline["api bulk progress (poll)"] = []
    progress = []
    finished = threading.Event()
    outcome = {}
    last = {"action": {"processed": 0, "expected": expected, "affected": 0, "batch": 0}}

    def sample_pages():
        tab = Console(args.base)
        while not finished.is_set():
            run_round(tab, samples, finished)

    def poll_progress():
        poller = Console(args.base)
        while True:
            now = time.monotonic() - started
            try:
                status, _, text, ms = poller.request("GET", "/api/v1/bulk/%d" % action_id)
                action = json.loads(text)
                action["processed"], action["expected"], action["affected"]
            except Exception as error:  # noqa: BLE001 - reported, not fatal to the run
                errors.append("progress: %s" % error)
                if now > args.timeout:
                    outcome.update(action=last.get("action"), state="unreadable", seconds=now)
                    finished.set()
                    return
                time.sleep(1)
                continue
            last["action"] = action
            if ms is not None:
                samples["api bulk progress (poll)"].append(ms)
            state = "finished" if action.get("finished_at") else (
                "stopped" if action.get("job_state") in ("dead", "cancelled") else
                "running" if action.get("started_at") else "queued")
            progress.append((now, action["processed"], action["expected"], action["affected"], state))
            if state in ("finished", "stopped") or now > args.timeout:
                outcome.update(action=action, state=state, seconds=now)
                finished.set()
                return
            time.sleep(0.5)

    threads = [threading.Thread(target=sample_pages), threading.Thread(target=poll_progress)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    action = outcome["action"]
    print()
    print("progress (seconds since the confirm: worked through / expected, changed, status):")
    step = max(1, len(progress) // 40)
    for index, (seconds, processed, total, affected, state) in enumerate(progress):
        if index % step == 0 or index == len(progress) - 1:
            print("  %7.1f s  %7d / %d  %7d changed  %s" % (seconds, processed, total, affected, state))
    print()
    print("bulk action %d: %s after %.1f s (client: confirm to the first poll that saw it end);"
          " server: created %s, started %s, finished %s"
          % (action_id, outcome["state"], outcome["seconds"], action.get("created_at"),
             action.get("started_at"), action.get("finished_at")))
    print("  expected %d, worked through %d, changed %d, batch %d"
          % (action["expected"], action["processed"], action["affected"], action["batch"]))
    if outcome["state"] != "finished":
        failures.append("the bulk action did not finish (%s after %.0f s; job %s)"
                        % (outcome["state"], outcome["seconds"], action.get("job_state")))
    elif action["processed"] != action["expected"]:
        failures.append("the bulk action worked through %d of %d" % (action["processed"], action["expected"]))

    print()
    print("server time during the run (Server-Timing app;dur), milliseconds; budget p95 <= %g" % args.budget)
    print("(before: %d rounds just before the confirm, same daemon and console, no bulk action)" % args.baseline_rounds)
    print("%-40s %6s %8s %8s %8s  %-7s %8s %8s" % ("page", "n", "p50", "p95", "max", "verdict", "before50", "before95"))
    for name, values in samples.items():
        before = baseline.get(name) or []
        before_text = ("%8.1f %8.1f" % (quantile(before, 0.5), quantile(before, 0.95))) if before else "%8s %8s" % ("-", "-")
        if not values:
            print("%-40s %6d %8s %8s %8s  %-7s %s" % (name, 0, "-", "-", "-", "NONE", before_text))
            failures.append("%s: no sample during the run" % name)
            continue
        p95 = quantile(values, 0.95)
        verdict = "ok" if p95 <= args.budget else "OVER"
        print("%-40s %6d %8.1f %8.1f %8.1f  %-7s %s"
              % (name, len(values), quantile(values, 0.5), p95, max(values), verdict, before_text))
        if p95 > args.budget:
            failures.append("%s: p95 %.1f ms > %g ms" % (name, p95, args.budget))
    if computes:
        print("%-40s %6d %8.1f %8.1f %8.1f  %s" % ("overview computation (background)", len(computes),
              quantile(computes, 0.5), quantile(computes, 0.95), max(computes), "(no viewer waits for it)"))
    if errors:
        print()
        print("errors during the run (%d), first ones:" % len(errors))
        for line in errors[:10]:
            print("  " + line)
        failures.append("%d requests failed during the run" % len(errors))
    print()
    if failures:
        for line in failures:
            print("console-scale: FAIL: " + line)
        return 1
    print("console-scale: bulk retry of %d dead letters finished in %.1f s; every page's p95 within %g ms"
          % (action["expected"], outcome["seconds"], args.budget))
    return 0


if __name__ == "__main__":
    sys.exit(main())
