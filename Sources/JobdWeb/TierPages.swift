import Foundation
import JobdCampaigns
import JobdContent
import JobdCore
import JobdNotifications

/// The pages of the other tiers: periodic jobs, notifications, campaigns, content
/// search. Server-rendered like the queue's, no script needed.
extension ConsoleResponder {
    static func cell(_ value: String?) -> String { "<td>\(HTML.escape(value ?? ""))</td>" }

    /// `text` as one URL path segment: everything but ASCII letters, digits and
    /// `-._~` percent-encoded (a `/` too), so it is also safe in an attribute as is.
    static func pathSegment(_ text: String) -> String {
        var allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    func periodicPage(_ jobs: [PeriodicJob], principal: WebPrincipal) -> String {
        var rows = ""
        for job in jobs {
            rows += "<tr>" + Self.cell(job.name) + "<td><code>\(HTML.escape(job.cron))</code> \(HTML.escape(job.timeZone))</td>"
                + "<td><a href=\"/jobs?kind=\(HTML.urlEncode(job.kind))\">\(HTML.escape(job.kind))</a></td>"
                + Self.cell(job.lastSlot ?? "never") + "<td class=\"next-slots\">\(job.nextSlots.map(HTML.escape).joined(separator: "<br>"))</td></tr>"
        }
        if rows.isEmpty { rows = "<tr><td colspan=\"5\" class=\"muted\">no periodic job configured</td></tr>" }
        let body = """
            <h1>Periodic jobs</h1>
            <p class="muted">JOBD_SCHEDULES and the built-in schedules; a daemon enqueues each slot once (unique key cron:NAME:SLOT).</p>
            <table><thead><tr><th>name</th><th>schedule</th><th>kind</th><th>last slot enqueued</th><th>next slots (UTC)</th></tr></thead>
            <tbody>\(rows)</tbody></table>
            """
        return Pages.layout(title: "Periodic jobs", principal: principal, body: body)
    }

    func notificationsPage(_ list: [NotificationStatus], status: String?, next: Int64?, principal: WebPrincipal) -> String {
        var rows = ""
        for item in list {
            rows += "<tr><td class=\"num\"><a href=\"/notifications/\(item.id)\">\(item.id)</a></td>" + Self.cell(item.channel)
                + Self.cell(item.recipient) + "<td class=\"state-\(HTML.escape(item.status))\">\(HTML.escape(item.status))</td>"
                + "<td class=\"num\">\(item.tries)</td>" + Self.cell(item.updatedAt)
                + "<td class=\"error\">\(HTML.escape(item.lastError.map { String($0.prefix(120)) } ?? ""))</td></tr>"
        }
        if rows.isEmpty { rows = "<tr><td colspan=\"7\" class=\"muted\">no notification</td></tr>" }
        let options = ["pending", "sending", "sent", "failed"].map {
            "<option value=\"\($0)\"\($0 == status ? " selected" : "")>\($0)</option>"
        }.joined()
        var older = ""
        if let next {
            older = "<p><a rel=\"next\" href=\"/notifications?before=\(next)\(status.map { "&amp;status=" + HTML.urlEncode($0) } ?? "")\">Older notifications →</a></p>"
        }
        let body = """
            <h1>Notifications</h1>
            <form method="get" action="/notifications" class="filters">
            <label>status <select name="status"><option value="">any</option>\(options)</select></label>
            <button type="submit">Filter</button></form>
            <table><thead><tr><th>id</th><th>channel</th><th>recipient</th><th>status</th><th>tries</th><th>updated</th><th>last error</th></tr></thead>
            <tbody>\(rows)</tbody></table>
            \(older)
            """
        return Pages.layout(title: "Notifications", principal: principal, body: body)
    }

    func notificationPage(_ item: NotificationStatus, principal: WebPrincipal) -> String {
        func row(_ name: String, _ value: String?) -> String { "<tr><th>\(name)</th><td>\(HTML.escape(value ?? "—"))</td></tr>" }
        var tries = ""
        for attempt in item.attempts {
            tries += "<tr><td class=\"num\">\(attempt.number)</td>" + Self.cell(attempt.startedAt) + Self.cell(attempt.destination)
                + Self.cell(attempt.outcome) + Self.cell(attempt.statusCode.map(String.init))
                + Self.cell(attempt.errorCode) + "<td class=\"num\">\(String(format: "%.0f ms", attempt.durationMilliseconds))</td>"
                + "<td>\(attempt.jobID.map { "<a href=\"/jobs/\($0)\">\($0)</a>" } ?? "")</td>"
                + "<td class=\"error\">\(HTML.escape(attempt.excerpt ?? ""))</td></tr>"
        }
        if tries.isEmpty { tries = "<tr><td colspan=\"9\" class=\"muted\">not tried yet</td></tr>" }
        let body = """
            <h1>Notification \(item.id)</h1>
            <table class="detail">
            \(row("channel", item.channel))\(row("recipient", item.recipient))\(row("subject", item.subject))
            \(row("status", item.status))\(row("tries", String(item.tries)))\(row("last status code", item.lastStatusCode.map(String.init)))
            \(row("last error", item.lastError))\(row("created", item.createdAt))\(row("updated", item.updatedAt))
            \(row("sent", item.sentAt))\(row("failed", item.failedAt))\(row("archived", item.archived ? "yes (body dropped by retention)" : "no"))
            </table>
            <h2>Tries</h2>
            <table><thead><tr><th>try</th><th>started</th><th>destination</th><th>outcome</th><th>code</th><th>error</th><th>took</th><th>job</th><th>excerpt</th></tr></thead>
            <tbody>\(tries)</tbody></table>
            """
        return Pages.layout(title: "Notification \(item.id)", principal: principal, body: body)
    }

    func campaignsPage(_ list: [CampaignStatus], principal: WebPrincipal, single: Bool = false) -> String {
        var rows = ""
        for campaign in list {
            let open = max(0, campaign.recipients - campaign.delivered - campaign.bounced - campaign.failed - campaign.suppressed - campaign.cancelled)
            let done = campaign.recipients - open
            rows += "<tr><td class=\"num\"><a href=\"/campaigns/\(campaign.id)\">\(campaign.id)</a></td>" + Self.cell(campaign.name)
                + Self.cell(campaign.status)
                + "<td><progress max=\"\(max(campaign.recipients, 1))\" value=\"\(done)\"></progress> \(done) / \(campaign.recipients)</td>"
                + "<td class=\"num\">\(campaign.delivered)</td><td class=\"num\">\(campaign.pending + campaign.sending)</td>"
                + "<td class=\"num\">\(campaign.deferred)</td><td class=\"num\">\(campaign.bounced + campaign.failed)</td>"
                + "<td class=\"num\">\(campaign.suppressed)</td>"
                + "<td class=\"num\">\(campaign.rate.map { String(format: "%.1f/s", $0) } ?? "")</td>"
                + Self.cell(campaign.etaSeconds.map { Pages.seconds($0) }) + "</tr>"
        }
        if rows.isEmpty { rows = "<tr><td colspan=\"11\" class=\"muted\">no campaign</td></tr>" }
        let title = single ? "Campaign \(list.first?.id ?? 0)" : "Campaigns"
        let body = """
            <h1>\(HTML.escape(title))</h1>
            <table><thead><tr><th>id</th><th>name</th><th>status</th><th>progress</th><th>delivered</th><th>open</th>\
            <th>deferred</th><th>bounced/failed</th><th>suppressed</th><th>rate</th><th>eta</th></tr></thead>
            <tbody>\(rows)</tbody></table>
            \(single ? "<p><a href=\"/campaigns\">all campaigns</a></p>" : "<p class=\"muted\">The newest 20.</p>")
            """
        return Pages.layout(title: title, principal: principal, body: body)
    }

    func contentPage(_ hits: [ContentStore.SearchHit]?, query: String, tenant: String?, principal: WebPrincipal) -> String {
        var results = ""
        if let hits {
            var rows = ""
            for hit in hits {
                rows += "<td><a href=\"/content/\(Self.pathSegment(hit.externalID))\">\(HTML.escape(hit.externalID))</a></td>" + Self.cell(hit.tenantID) + Self.cell(hit.campaignID) + Self.cell(hit.subject)
                    + Self.cell(hit.createdAt) + "<td class=\"num\">\(String(format: "%.3f", hit.rank))</td>"
                rows = "<tr>" + rows + "</tr>"
                results += rows
                rows = ""
            }
            if results.isEmpty { results = "<tr><td colspan=\"6\" class=\"muted\">nothing found</td></tr>" }
            results = """
                <table><thead><tr><th>external id</th><th>tenant</th><th>campaign</th><th>subject</th><th>created</th><th>rank</th></tr></thead>
                <tbody>\(results)</tbody></table>
                """
        }
        let form = principal.mayAct ? """
            <form method="get" action="/content" class="filters">
            <label>search <input name="q" value="\(HTML.escape(query))" placeholder='invoice -draft "order 42"' size="30"></label>
            <label>tenant <input name="tenant" value="\(HTML.escape(tenant ?? ""))" size="12"></label>
            <button type="submit">Search</button></form>
            """ : "<p class=\"muted\">Searching stored messages is for operators.</p>"
        let lookup = """
            <form method="get" action="/content" class="filters">
            <label>external id <input name="id" size="30" required></label>
            <button type="submit">Show</button></form>
            """
        let body = """
            <h1>Content</h1>
            \(lookup)
            \(form)
            \(results)
            """
        return Pages.layout(title: "Content", principal: principal, body: body)
    }

    /// One stored message, from its redacted view (`contentView`): the same fields and
    /// redaction as the API. The HTML body is shown as escaped source, never rendered.
    func contentMessagePage(_ stored: ContentStore.StoredMessage, view: JSONValue, principal: WebPrincipal) -> String {
        guard case .object(let fields) = view else { return Pages.layout(title: "Message", principal: principal, body: "") }
        func string(_ value: JSONValue?) -> String? {
            switch value {
            case .string(let text)?: text
            case .number(let number)?: String(Int64(number))
            case .array(let items)?: items.compactMap { string($0) }.joined(separator: ", ")
            default: nil
            }
        }
        func row(_ name: String, _ key: String) -> String {
            "<tr><th>\(name)</th><td>\(HTML.escape(string(fields[key]) ?? "—"))</td></tr>"
        }
        var headers = ""
        if case .array(let items)? = fields["headers"] {
            for case .object(let header) in items {
                headers += "<tr><th>\(HTML.escape(string(header["name"]) ?? ""))</th><td>\(HTML.escape(string(header["value"]) ?? ""))</td></tr>"
            }
        }
        var attachments = ""
        switch fields["attachments"] {
        case .array(let items)?:
            for case .object(let attachment) in items {
                attachments += "<tr>" + Self.cell(string(attachment["filename"])) + Self.cell(string(attachment["content_type"]))
                    + "<td class=\"num\">\(HTML.escape(string(attachment["size"]) ?? ""))</td></tr>"
            }
            if !attachments.isEmpty {
                attachments = "<table><thead><tr><th>file</th><th>type</th><th>bytes</th></tr></thead><tbody>\(attachments)</tbody></table>"
            }
        case .string(let hidden)?: attachments = "<p class=\"muted\">\(HTML.escape(hidden))</p>"
        default: break
        }
        func body(_ title: String, _ key: String) -> String {
            guard let text = string(fields[key]) else { return "" }
            return "<h2>\(title)</h2><pre class=\"payload\">\(HTML.escape(text))</pre>"
        }
        let archived = stored.archivedAt.map { "<p class=\"muted\">Archived \(HTML.escape($0)): retention removed the bodies and attachments.</p>" } ?? ""
        let page = """
            <h1>Message \(HTML.escape(stored.message.externalID))</h1>
            \(archived)
            <table class="detail">
            \(row("tenant", "tenant_id"))\(row("campaign", "campaign_id"))\(row("from", "from"))\(row("to", "to"))
            \(row("subject", "subject"))\(row("created", "created_at"))\(row("archived", "archived_at"))
            <tr><th>size</th><td>\(stored.rawBytes) bytes raw, \(stored.storedBytes) bytes stored</td></tr>
            </table>
            <h2>Headers</h2>
            <table class="detail">\(headers.isEmpty ? "<tr><td class=\"muted\">none</td></tr>" : headers)</table>
            <h2>Attachments</h2>
            \(attachments.isEmpty ? "<p class=\"muted\">none</p>" : attachments)
            \(body("Text", "text"))\(body("HTML (source)", "html"))
            """
        return Pages.layout(title: "Message", principal: principal, body: page)
    }
}
