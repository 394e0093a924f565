import Foundation
import JobdCore
import JobdPostgres

/// Server-rendered pages: readable without JavaScript; the script only refreshes the
/// overview's figures. No inline script or style (the Content-Security-Policy forbids
/// them): presentation is in /static/console.css, behaviour in /static/console.js.
enum Pages {
    /// `reloadSeconds`: the page reloads itself that often (a `<meta>` refresh: works
    /// without JavaScript, allowed by the policy), for progress that moves.
    static func layout(
        title: String, principal: WebPrincipal?, csrf: String? = nil, refresh: String? = nil, reloadSeconds: Int? = nil,
        body: String
    ) -> String {
        let who = principal.map { "<span class=\"who\">\(HTML.escape($0.name)) · \(HTML.escape($0.role.rawValue))</span>" } ?? ""
        let meta = csrf.map { "<meta name=\"csrf-token\" content=\"\(HTML.escape($0))\">" } ?? ""
        let reload = reloadSeconds.map { "<meta http-equiv=\"refresh\" content=\"\($0)\">" } ?? ""
        let main = refresh.map { "<main data-refresh=\"\(HTML.escape($0))\">" } ?? "<main>"
        return """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            \(meta)\(reload)
            <title>jobd · \(HTML.escape(title))</title>
            <link rel="stylesheet" href="/static/console.css">
            <script src="/static/console.js" defer></script>
            </head>
            <body>
            <header><strong>jobd</strong>
            <nav><a href="/">Overview</a> <a href="/jobs">Jobs</a> <a href="/dead-letters">Dead letters</a> <a href="/bulk">Bulk actions</a> <a href="/periodic">Periodic</a> <a href="/notifications">Notifications</a> <a href="/campaigns">Campaigns</a> <a href="/content">Content</a></nav>
            \(who)</header>
            \(main)
            \(body)
            </main>
            </body>
            </html>
            """
    }

    static func notice(_ text: String?) -> String {
        guard let text, !text.isEmpty else { return "" }
        return "<p class=\"notice\">\(HTML.escape(String(text.prefix(300))))</p>"
    }

    static func button(_ label: String, action: String, csrf: String, danger: Bool = false) -> String {
        """
        <form method="post" action="\(HTML.escape(action))" class="inline">\
        <input type="hidden" name="csrf" value="\(HTML.escape(csrf))">\
        <button type="submit"\(danger ? " class=\"danger\"" : "")>\(HTML.escape(label))</button></form>
        """
    }

    /// `busy / slots` as the daemon last published them; its configured workers when
    /// it published none (Redis unreachable, or the daemon just started).
    static func slots(_ daemon: OverviewSnapshot.Daemon) -> String {
        guard let slots = daemon.slots, let busy = daemon.busy else { return "\(daemon.workers)" }
        return "\(busy) / \(slots)"
    }

    static func seconds(_ value: Double?) -> String {
        guard let value else { return "none" }
        if value < 60 { return String(format: "%.1f s", value) }
        if value < 3600 { return String(format: "%.1f min", value / 60) }
        return String(format: "%.1f h", value / 3600)
    }

    /// The last hour as bars: completed above the axis, failed below, one per minute.
    static func chart(_ minutes: [OverviewSnapshot.Minute]) -> String {
        guard let last = minutes.last?.minute else { return "<p class=\"muted\">No attempt ended in the last hour.</p>" }
        let start = last - 59 * 60
        let peak = max(1, minutes.map { max($0.completed, $0.failed) }.max() ?? 1)
        var bars = ""
        for minute in minutes where minute.minute >= start {
            let x = Int((minute.minute - start) / 60) * 10
            let up = Int((Double(minute.completed) / Double(peak) * 80).rounded(.up))
            let down = Int((Double(minute.failed) / Double(peak) * 40).rounded(.up))
            if minute.completed > 0 {
                bars += "<rect class=\"ok\" x=\"\(x)\" y=\"\(80 - up)\" width=\"8\" height=\"\(up)\"><title>\(minute.completed) completed</title></rect>"
            }
            if minute.failed > 0 {
                bars += "<rect class=\"fail\" x=\"\(x)\" y=\"81\" width=\"8\" height=\"\(down)\"><title>\(minute.failed) failed</title></rect>"
            }
        }
        let total = minutes.reduce(0) { $0 + $1.completed }
        let failed = minutes.reduce(0) { $0 + $1.failed }
        return """
            <svg class="chart" viewBox="0 0 600 122" role="img" aria-label="attempts per minute, last hour">\
            <line x1="0" y1="80.5" x2="600" y2="80.5" class="axis"/>\(bars)</svg>
            <p class="muted">Last hour: \(total) completed, \(failed) failed attempts; peak \(peak) a minute.</p>
            """
    }
}

extension ConsoleResponder {
    func overviewPage(_ snapshot: OverviewSnapshot, principal: WebPrincipal) -> String {
        let csrf = auth.csrfToken(for: principal)
        let states = ["available", "retryable", "running"]
        var rows = ""
        for state in states {
            let counts = snapshot.unfinished[state] ?? [:]
            let cells = JobPriority.allCases.map { priority in
                "<td id=\"c-\(state)-\(priority.rawValue)\" class=\"num\">\(counts[priority.rawValue] ?? 0)</td>"
            }.joined()
            let total = counts.values.reduce(0, +)
            rows += "<tr><th><a href=\"/jobs?state=\(state)\">\(state)</a></th>\(cells)<td id=\"c-\(state)-total\" class=\"num\">\(total)</td></tr>"
        }
        let capped = snapshot.waitingCapped ?? []
        let cappedNote = capped.isEmpty ? "" : """
            <p id="waiting-capped" class="muted">More than \(snapshot.waitingCap ?? 0) jobs wait at priority \(capped.map(HTML.escape).joined(separator: ", ")): \
            its available and retryable figures count the first \((snapshot.waitingCap ?? 0) + 1) due (lower bounds; the overview reads no more per snapshot).</p>
            """
        var daemons = ""
        for daemon in snapshot.daemons {
            daemons += "<tr><td>\(HTML.escape(daemon.id))</td><td>\(HTML.escape(daemon.hostname))</td>"
                + "<td class=\"num\">\(Pages.slots(daemon))</td><td class=\"num\">\(daemon.desired.map(String.init) ?? "")</td>"
                + "<td>\(HTML.escape(daemon.version))</td><td class=\"num\">\(String(format: "%.1f", daemon.heartbeatAgeSeconds)) s</td></tr>"
        }
        if daemons.isEmpty { daemons = "<tr><td colspan=\"6\" class=\"muted\">no live daemon</td></tr>" }
        let lists = snapshot.redisLists.map { lists in
            JobPriority.allCases.map { "\($0.rawValue) \(lists[$0.rawValue] ?? 0)" }.joined(separator: ", ")
        } ?? "unknown"
        let health = """
            <section><h2>Servers</h2>
            <table class="health"><tbody>
            <tr><th>PostgreSQL</th><td id="pg-health" class="\(snapshot.postgres.reachable ? "ok" : "bad")">\(HTML.escape(snapshot.postgres.summary))</td></tr>
            <tr><th>Redis</th><td id="redis-health" class="\(snapshot.redis?.reachable == false ? "bad" : "ok")">\(HTML.escape(snapshot.redis?.summary ?? "not configured"))</td></tr>
            <tr><th>Redis lists</th><td id="redis-lists">\(HTML.escape(lists))</td></tr>
            </tbody></table>
            <p id="paused-line">\(HTML.escape(snapshot.pausedLine))</p></section>
            """
        var pauses = ""
        for pause in snapshot.pauses {
            let resume = principal.mayAct ? """
                <form method="post" action="/resume" class="inline"><input type="hidden" name="csrf" value="\(HTML.escape(csrf))">\
                <input type="hidden" name="scope" value="\(pause.scope.rawValue)"><input type="hidden" name="name" value="\(HTML.escape(pause.name))">\
                <button type="submit">Resume</button></form>
                """ : ""
            pauses += "<li>\(pause.scope.rawValue) <strong>\(HTML.escape(pause.name))</strong> paused by \(HTML.escape(pause.pausedBy)) at \(HTML.escape(pause.pausedAt)) \(resume)</li>"
        }
        let pauseForm = principal.mayAct ? """
            <form method="post" action="/pause" class="pause">
            <input type="hidden" name="csrf" value="\(HTML.escape(csrf))">
            <label>Pause <select name="scope"><option value="priority">priority lane</option><option value="kind">kind</option></select></label>
            <input name="name" placeholder="high, normal, low or a kind" required maxlength="128">
            <button type="submit">Pause</button></form>
            """ : ""
        let body = """
            <h1>Overview</h1>
            <p class="muted">Figures of <span id="generated-at">\(HTML.escape(snapshot.generatedAt))</span> (shared by every viewer, refreshed every few seconds).</p>
            <section><h2>Jobs waiting and running</h2>
            <table class="counts"><thead><tr><th>state</th><th>high</th><th>normal</th><th>low</th><th>total</th></tr></thead>
            <tbody>\(rows)</tbody></table>
            \(cappedNote)
            <p>Finished (completed and cancelled, estimated): <span id="finished">\(snapshot.finishedEstimate)</span> ·
            <a href="/dead-letters">Dead letters</a>: <span id="dead-letters">\(snapshot.deadLetters)</span> ·
            Oldest due job waiting: <span id="oldest-due">\(Pages.seconds(snapshot.oldestDueSeconds))</span></p>
            </section>
            <section><h2>Last hour</h2>\(Pages.chart(snapshot.lastHour))</section>
            \(health)
            <section><h2>Daemons</h2>
            <table><thead><tr><th>id</th><th>host</th><th>busy / workers</th><th>wanted</th><th>version</th><th>heartbeat</th></tr></thead>
            <tbody id="daemons">\(daemons)</tbody></table></section>
            <section><h2>Paused</h2>
            <ul id="pauses">\(pauses.isEmpty ? "<li class=\"muted\">nothing is paused</li>" : pauses)</ul>
            \(pauseForm)</section>
            """
        return Pages.layout(title: "Overview", principal: principal, csrf: csrf, refresh: "/api/v1/overview", body: body)
    }

    func jobsPage(_ jobs: [QueueAdmin.JobSummary], filter: QueueAdmin.JobFilter, query: [String: String], principal: WebPrincipal) -> String {
        func field(_ name: String) -> String { HTML.escape(query[name] ?? "") }
        func options(_ values: [String], selected: String?) -> String {
            "<option value=\"\">any</option>" + values.map {
                "<option value=\"\($0)\"\($0 == selected ? " selected" : "")>\($0)</option>"
            }.joined()
        }
        let search = principal.mayAct ? """
            <label>payload contains <input name="contains" value="\(field("contains"))" placeholder='{"order_id": 42}' size="24"></label>
            <label>or field <input name="field" value="\(field("field"))" placeholder="order.id" size="10"></label>
            <label>= <input name="value" value="\(field("value"))" size="10"></label>
            """ : ""
        var rows = ""
        for job in jobs {
            rows += """
                <tr><td class="num"><a href="/jobs/\(job.id)">\(job.id)</a></td><td>\(HTML.escape(job.kind))</td>\
                <td class="state-\(HTML.escape(job.state))">\(HTML.escape(job.state))\(job.cancelRequested && job.state == "running" ? " (cancel requested)" : "")</td>\
                <td>\(HTML.escape(job.priority))</td><td class="num">\(job.attempt)/\(job.maxAttempts)</td>\
                <td>\(HTML.escape(job.runAt))</td><td>\(HTML.escape(job.uniqueKey ?? ""))</td>\
                <td class="error">\(HTML.escape(job.lastError.map { String($0.prefix(120)) } ?? ""))</td></tr>
                """
        }
        if rows.isEmpty { rows = "<tr><td colspan=\"8\" class=\"muted\">no job matches</td></tr>" }
        var next = ""
        if jobs.count == filter.limit, let last = jobs.last {
            var parameters = query.filter { $0.key != "before" && !$0.value.isEmpty }
            parameters["before"] = String(last.id)
            let text = parameters.keys.sorted().map { "\(HTML.urlEncode($0))=\(HTML.urlEncode(parameters[$0]!))" }.joined(separator: "&")
            next = "<p><a rel=\"next\" href=\"/jobs?\(HTML.escape(text))\">Older jobs →</a></p>"
        }
        let body = """
            <h1>Jobs</h1>
            <form method="get" action="/jobs" class="filters">
            <label>id <input name="id" value="\(field("id"))" size="8" inputmode="numeric"></label>
            <label>state <select name="state">\(options(JobState.allCases.map(\.rawValue), selected: filter.state?.rawValue))</select></label>
            <label>kind <input name="kind" value="\(field("kind"))" size="14"></label>
            <label>priority <select name="priority">\(options(JobPriority.allCases.map(\.rawValue), selected: filter.priority?.rawValue))</select></label>
            <label>unique key <input name="unique_key" value="\(field("unique_key"))" size="12"></label>
            \(search)
            <button type="submit">Search</button> <a href="/jobs">clear</a>
            </form>
            <table><thead><tr><th>id</th><th>kind</th><th>state</th><th>priority</th><th>attempt</th><th>run at</th><th>unique key</th><th>last error</th></tr></thead>
            <tbody>\(rows)</tbody></table>
            \(next)
            \(principal.mayAct ? bulkForm(target: .jobs, verbs: [.retry, .cancel, .discard], query: query, principal: principal) : "")
            """
        return Pages.layout(title: "Jobs", principal: principal, body: body)
    }

    func jobPage(_ detail: QueueAdmin.JobDetail, payload: String, attempts: [QueueAdmin.AttemptEvent], principal: WebPrincipal, notice: String?) -> String {
        let job = detail.summary
        let csrf = auth.csrfToken(for: principal)
        var actions = ""
        if principal.mayAct {
            if ["dead", "cancelled", "available", "retryable"].contains(job.state) {
                actions += Pages.button(job.state == "dead" ? "Retry (re-drive)" : "Run now", action: "/jobs/\(job.id)/retry", csrf: csrf)
            }
            if ["available", "retryable"].contains(job.state) || (job.state == "running" && !job.cancelRequested) {
                actions += Pages.button("Cancel", action: "/jobs/\(job.id)/cancel", csrf: csrf, danger: true)
            }
            if job.state == "dead" {
                actions += Pages.button("Discard", action: "/dead-letters/\(job.id)/discard", csrf: csrf, danger: true)
            }
        }
        var timeline = ""
        for event in attempts {
            timeline += """
                <tr><td class="num">\(event.attempt)</td><td>\(HTML.escape(event.event))</td><td>\(HTML.escape(event.at))</td>\
                <td>\(HTML.escape(event.daemon ?? ""))</td><td>\(HTML.escape(event.outcome ?? ""))</td>\
                <td>\(HTML.escape(event.errorCode ?? ""))</td><td class="num">\(event.runSeconds.map { String(format: "%.3f s", $0) } ?? "")</td></tr>
                """
        }
        if timeline.isEmpty { timeline = "<tr><td colspan=\"7\" class=\"muted\">no attempt yet</td></tr>" }
        func row(_ name: String, _ value: String?) -> String {
            "<tr><th>\(name)</th><td>\(HTML.escape(value ?? "—"))</td></tr>"
        }
        let state = job.state + (job.cancelRequested && job.state == "running" ? " (cancel requested: ends cancelled unless this attempt completes it)" : "")
        let body = """
            <h1>Job \(job.id)</h1>
            \(Pages.notice(notice))
            <div class="actions">\(actions)</div>
            <table class="detail">
            \(row("kind", job.kind))\(row("state", state))\(row("priority", job.priority))
            \(row("attempt", "\(job.attempt) of \(job.maxAttempts)"))\(row("rescues", String(detail.rescues)))
            \(row("run at", job.runAt))\(row("created", job.createdAt))\(row("started", detail.startedAt))\(row("finished", detail.finishedAt))
            \(row("unique key", job.uniqueKey))\(row("leased by", detail.leasedBy))\(row("dead letter", detail.deadLetterReason))
            \(row("last error", job.lastError))
            </table>
            <h2>Payload</h2>
            <pre class="payload">\(HTML.escape(payload))</pre>
            <h2>Attempts</h2>
            <table><thead><tr><th>attempt</th><th>event</th><th>at</th><th>daemon</th><th>outcome</th><th>code</th><th>ran</th></tr></thead>
            <tbody>\(timeline)</tbody></table>
            <h2>Errors</h2>
            <pre class="errors">\(HTML.escape(redactedErrors(detail.errors)))</pre>
            """
        return Pages.layout(title: "Job \(job.id)", principal: principal, body: body)
    }

    func deadLettersPage(
        _ letters: [QueueAdmin.DeadLetter], kind: String?, limit: Int, next: QueueAdmin.DeadLetterCursor?,
        principal: WebPrincipal, notice: String?
    ) -> String {
        let csrf = auth.csrfToken(for: principal)
        var rows = ""
        for letter in letters {
            let actions = principal.mayAct
                ? Pages.button("Retry", action: "/dead-letters/\(letter.jobID)/retry", csrf: csrf)
                    + Pages.button("Discard", action: "/dead-letters/\(letter.jobID)/discard", csrf: csrf, danger: true)
                : ""
            rows += """
                <tr><td class="num"><a href="/jobs/\(letter.jobID)">\(letter.jobID)</a></td><td>\(HTML.escape(letter.kind))</td>\
                <td>\(HTML.escape(letter.priority))</td><td class="num">\(letter.attempts)</td><td>\(HTML.escape(letter.reason))</td>\
                <td>\(HTML.escape(letter.deadAt))</td><td class="error">\(HTML.escape(letter.lastError.map { String($0.prefix(160)) } ?? ""))</td>\
                <td>\(actions)</td></tr>
                """
        }
        if rows.isEmpty { rows = "<tr><td colspan=\"8\" class=\"muted\">no dead letters</td></tr>" }
        var older = ""
        if let next {
            var query = "before=\(next.text)"
            if let kind { query += "&kind=" + HTML.urlEncode(kind) }
            if limit != 100 { query += "&limit=\(limit)" }
            older = " <a rel=\"next\" href=\"/dead-letters?\(HTML.escape(query))\">Older dead letters →</a>"
        }
        let body = """
            <h1>Dead letters</h1>
            \(Pages.notice(notice))
            <form method="get" action="/dead-letters" class="filters">
            <label>kind <input name="kind" value="\(HTML.escape(kind ?? ""))"></label> <button type="submit">Filter</button></form>
            <table><thead><tr><th>job</th><th>kind</th><th>priority</th><th>attempts</th><th>reason</th><th>dead at</th><th>last error</th><th></th></tr></thead>
            <tbody>\(rows)</tbody></table>
            <p class="muted">Newest first, \(limit) a page (\(letters.count) shown).\(older)</p>
            \(principal.mayAct ? bulkForm(target: .deadLetters, verbs: [.retry, .discard], query: kind.map { ["kind": $0] } ?? [:], principal: principal) : "")
            """
        return Pages.layout(title: "Dead letters", principal: principal, body: body)
    }
}

extension ConsoleResponder {
    /// "Everything matching this filter": posts the page's filter for a dry run.
    func bulkForm(
        target: QueueAdmin.BulkTarget, verbs: [QueueAdmin.BulkVerb], query: [String: String], principal: WebPrincipal
    ) -> String {
        let csrf = auth.csrfToken(for: principal)
        var hidden = "<input type=\"hidden\" name=\"csrf\" value=\"\(HTML.escape(csrf))\">"
            + "<input type=\"hidden\" name=\"target\" value=\"\(target.rawValue)\">"
        for key in Self.bulkFilterFields[target] ?? [] {
            if let value = query[key], !value.isEmpty {
                hidden += "<input type=\"hidden\" name=\"\(key)\" value=\"\(HTML.escape(value))\">"
            }
        }
        let options = verbs.map { "<option value=\"\($0.rawValue)\">\($0.rawValue)</option>" }.joined()
        return """
            <form method="post" action="/bulk" class="bulk">\(hidden)
            <label>Everything matching this filter: <select name="action">\(options)</select></label>
            <button type="submit">Count first (dry run)</button></form>
            """
    }

    static func filterText(_ filter: String) -> String {
        filter == "{}" ? "no filter: everything" : filter
    }

    func bulkDryRunPage(_ dryRun: BulkDryRun, fields: [String: String], principal: WebPrincipal) -> String {
        let csrf = auth.csrfToken(for: principal)
        var hidden = ""
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            hidden += "<input type=\"hidden\" name=\"\(HTML.escape(key))\" value=\"\(HTML.escape(value))\">"
        }
        let what = dryRun.target == .jobs ? "jobs" : "dead letters"
        let body = """
            <h1>Bulk \(dryRun.action.rawValue): dry run</h1>
            <p><strong id="bulk-count">\(dryRun.count)</strong> \(what) match <code>\(HTML.escape(Self.filterText(dryRun.filter)))</code> now.</p>
            <p class="muted">Confirming records who asked and runs the action as a job, a batch at a time, on these \(what)
            (ones added later are not touched); its page shows the progress.</p>
            <form method="post" action="/bulk" class="bulk">
            <input type="hidden" name="csrf" value="\(HTML.escape(csrf))">
            <input type="hidden" name="target" value="\(dryRun.target.rawValue)">
            <input type="hidden" name="action" value="\(dryRun.action.rawValue)">
            <input type="hidden" name="upper" value="\(dryRun.upper)">
            <input type="hidden" name="confirm" value="1">\(hidden)
            <button type="submit" class="danger"\(dryRun.count == 0 ? " disabled" : "")>\(dryRun.action.rawValue.capitalized) \(dryRun.count) \(what)</button>
            <a href="\(dryRun.target == .jobs ? "/jobs" : "/dead-letters")">back</a></form>
            """
        return Pages.layout(title: "Bulk \(dryRun.action.rawValue)", principal: principal, body: body)
    }

    static func bulkStatus(_ action: QueueAdmin.BulkAction) -> String {
        if action.finishedAt != nil { return "finished" }
        if action.cancelledAt != nil { return "cancelled" }
        if action.jobState == "dead" || action.jobState == "cancelled" { return "stopped (job \(action.jobState ?? ""))" }
        return action.startedAt == nil ? "queued" : "running"
    }

    func bulkPage(_ action: QueueAdmin.BulkAction, principal: WebPrincipal, notice: String?) -> String {
        let status = Self.bulkStatus(action)
        func row(_ name: String, _ value: String?) -> String {
            "<tr><th>\(name)</th><td>\(HTML.escape(value ?? "—"))</td></tr>"
        }
        let job = action.jobID.map { "<a href=\"/jobs/\($0)\">\($0)</a> (\(HTML.escape(action.jobState ?? "pruned")))" } ?? "—"
        let body = """
            <h1>Bulk action \(action.id)</h1>
            \(Pages.notice(notice))
            <p><progress id="bulk-progress" max="\(max(action.expected, 1))" value="\(min(action.processed, max(action.expected, 1)))"></progress>
            <span id="bulk-status">\(HTML.escape(status))</span>: <span id="bulk-processed">\(action.processed)</span> of
            <span id="bulk-expected">\(action.expected)</span> worked through, <span id="bulk-affected">\(action.affected)</span> changed.</p>
            <table class="detail">
            \(row("action", action.action))\(row("target", action.target))\(row("filter", Self.filterText(action.filter)))
            \(row("requested by", action.requestedBy))\(row("requested at", action.createdAt))
            \(row("started", action.startedAt))\(row("finished", action.finishedAt))\(action.cancelledAt == nil ? "" : row("cancelled", action.cancelledAt))\(row("batch", String(action.batch)))
            <tr><th>job</th><td>\(job)</td></tr>\(row("job error", action.jobError))
            </table>
            """
        return Pages.layout(
            title: "Bulk action \(action.id)", principal: principal,
            reloadSeconds: status == "running" || status == "queued" ? 2 : nil, body: body)
    }

    func bulkListPage(_ actions: [QueueAdmin.BulkAction], principal: WebPrincipal) -> String {
        var rows = ""
        for action in actions {
            rows += """
                <tr><td class="num"><a href="/bulk/\(action.id)">\(action.id)</a></td><td>\(HTML.escape(action.action))</td>\
                <td>\(HTML.escape(action.target))</td><td><code>\(HTML.escape(Self.filterText(action.filter)))</code></td>\
                <td>\(HTML.escape(action.requestedBy))</td><td class="num">\(action.processed) / \(action.expected)</td>\
                <td class="num">\(action.affected)</td><td>\(HTML.escape(Self.bulkStatus(action)))</td><td>\(HTML.escape(action.createdAt))</td></tr>
                """
        }
        if rows.isEmpty { rows = "<tr><td colspan=\"9\" class=\"muted\">no bulk action yet</td></tr>" }
        let body = """
            <h1>Bulk actions</h1>
            <p class="muted">Start one from the jobs or dead-letters page: filter, then "everything matching this filter".</p>
            <table><thead><tr><th>id</th><th>action</th><th>target</th><th>filter</th><th>by</th><th>done</th><th>changed</th><th>status</th><th>requested</th></tr></thead>
            <tbody>\(rows)</tbody></table>
            """
        return Pages.layout(title: "Bulk actions", principal: principal, body: body)
    }
}
