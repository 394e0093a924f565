import Foundation
import HTTPTypes
import Hummingbird
import JobdCampaigns
import JobdContent
import JobdCore
import JobdNotifications
import JobdPostgres
import Logging
import NIOCore

/// A request refused or failed with a status and a message for the user.
struct WebError: Error {
    var status: HTTPResponse.Status
    var message: String
    init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }
}

/// Every route of the console: pages, actions and the JSON API.
///
/// Order of checks for every request: Host (when nobody has to log in, only a
/// loopback Host is served, so a page on another site cannot reach the console
/// through a DNS name that resolves to 127.0.0.1), authentication (401), then per
/// route: role (403 for actions of a read-only user), method (405), CSRF (403 for a
/// POST without the token, unless authenticated by a bearer token).
public struct ConsoleResponder: HTTPResponder {
    public typealias Context = BasicRequestContext

    let settings: WebSettings
    let auth: WebAuthenticator
    let database: ConsoleDatabase
    let overview: OverviewCache
    let logger: Logger

    static let csrfHeader = HTTPField.Name("X-CSRF-Token")!
    static let maxBody = 64 * 1024

    /// Every response carries `Server-Timing: app;dur=MS`: the time this responder took,
    /// database included (what the page budget is measured on, e.g. by scripts/console-scale).
    public func respond(to request: Request, context: Context) async throws -> Response {
        let start = ContinuousClock.now
        var response = try await respondTimed(to: request, context: context)
        let elapsed = ContinuousClock.now - start
        let milliseconds = Double(elapsed.components.seconds) * 1_000 + Double(elapsed.components.attoseconds) / 1e15
        response.headers[HTTPField.Name("Server-Timing")!] = String(format: "app;dur=%.2f", milliseconds)
        return response
    }

    private func respondTimed(to request: Request, context: Context) async throws -> Response {
        let api = request.uri.path.hasPrefix("/api/")
        do {
            if !settings.requiresAuthentication, !Self.isLoopbackHost(request.head.authority ?? "") {
                throw WebError(.misdirectedRequest, "this console answers to a loopback address only")
            }
            guard let principal = auth.authenticate(authorization: request.headers[.authorization]) else {
                var response = api
                    ? json(.unauthorized, ["error": "authentication required"])
                    : plain(.unauthorized, "authentication required")
                response.headers[.wwwAuthenticate] = "Basic realm=\"jobd\", charset=\"UTF-8\""
                return response
            }
            return try await route(request, principal: principal)
        } catch let error as WebError {
            return api ? json(error.status, ["error": error.message]) : errorPage(error.status, error.message)
        } catch let error as PostgresError {
            // A bad search (say, JSON the server rejects) is the user's; the rest is
            // the database's, and says nothing of its internals.
            if error.kind == .server, let state = error.sqlState, state.hasPrefix("22") {
                let message = "invalid search: \(error.message)"
                return api ? json(.badRequest, ["error": message]) : errorPage(.badRequest, message)
            }
            logger.warning("web console query failed", metadata: ["error": "\(error)"])
            let message = "the database did not answer in time or is unavailable"
            return api ? json(.serviceUnavailable, ["error": message]) : errorPage(.serviceUnavailable, message)
        }
    }

    static func isLoopbackHost(_ host: String) -> Bool {
        var name = host
        if name.hasPrefix("[") {
            name = String(name.dropFirst().prefix { $0 != "]" })
        } else if let colon = name.lastIndex(of: ":") {
            name = String(name[..<colon])
        }
        return WebSettings.isLoopback(name)
    }

    // MARK: Routing

    private func route(_ request: Request, principal: WebPrincipal) async throws -> Response {
        var parts = request.uri.path.split(separator: "/").map(String.init)
        let query = HTML.parseForm(request.uri.query ?? "")
        let method = request.method
        let api = parts.first == "api"
        if api {
            guard parts.count >= 2, parts[1] == "v1" else { throw WebError(.notFound, "no such API version") }
            parts.removeFirst(2)
        }
        // Actions: POST only.
        // `/bulk` is a page for GET and the bulk action's dry run and confirm for POST.
        if let action = Self.action(parts), action != .bulk || method == .post {
            guard method == .post else { throw WebError(.methodNotAllowed, "actions are POST only") }
            return try await perform(action, request: request, principal: principal, api: api)
        }
        guard method == .get || method == .head else { throw WebError(.methodNotAllowed, "GET only") }
        switch (api, parts.count, parts.first ?? "") {
        case (false, 0, _):
            return html(overviewPage(try await overview.current(), principal: principal))
        case (true, 1, "overview"):
            return json(.ok, try await overview.current())
        case (_, 1, "jobs"):
            let filter = try parseFilter(query, principal: principal)
            let jobs = try await database.withAdmin { try await $0.jobs(filter) }
            if api { return json(.ok, JobPage(jobs: jobs, nextBefore: jobs.count == filter.limit ? jobs.last?.id : nil)) }
            return html(jobsPage(jobs, filter: filter, query: query, principal: principal))
        case (_, 2, "jobs"):
            guard let id = JobID(parts[1]) else { throw WebError(.notFound, "no such job") }
            let (detail, attempts) = try await database.withAdmin { admin in
                (try await admin.job(id), try await admin.attempts(of: id))
            }
            guard let detail else { throw WebError(.notFound, "no such job") }
            let payload = redactedPayload(detail.payload, for: principal)
            if api { return json(.ok, JobView(job: detail.summary, payload: payload, errors: redactedErrors(detail.errors), attempts: attempts, rescues: detail.rescues, deadLetterReason: detail.deadLetterReason, startedAt: detail.startedAt, finishedAt: detail.finishedAt)) }
            return html(jobPage(detail, payload: payload, attempts: attempts, principal: principal, notice: query["notice"]))
        case (_, 1, "dead-letters"):
            let kind = query["kind"].flatMap { $0.isEmpty ? nil : $0 }
            let limit = min(500, max(1, Int(query["limit"] ?? "") ?? 100))
            var before: QueueAdmin.DeadLetterCursor?
            if let text = query["before"], !text.isEmpty {
                guard let cursor = QueueAdmin.DeadLetterCursor(text: text) else {
                    throw WebError(.badRequest, "before is a cursor of a previous page (MICROS.ID)")
                }
                before = cursor
            }
            let page = try await database.withAdmin { try await $0.deadLetterPage(limit: limit, kind: kind, before: before) }
            if api {
                return json(.ok, page.map { DeadLetterView($0.letter, payload: redactedPayload($0.letter.payload, for: principal), cursor: $0.cursor) })
            }
            let next = page.count == limit ? page.last?.cursor : nil
            return html(deadLettersPage(page.map(\.letter), kind: kind, limit: limit, next: next, principal: principal, notice: query["notice"]))
        case (true, 1, "pauses"):
            return json(.ok, try await database.withAdmin { try await $0.pauses() })
        case (_, 1, "bulk"):
            let actions = try await database.withAdmin { try await $0.bulkActions(limit: 50) }
            if api { return json(.ok, actions) }
            return html(bulkListPage(actions, principal: principal))
        case (_, 2, "bulk"):
            guard let id = Int64(parts[1]), let action = try await database.withAdmin({ try await $0.bulkAction(id: id) }) else {
                throw WebError(.notFound, "no such bulk action")
            }
            if api { return json(.ok, action) }
            return html(bulkPage(action, principal: principal, notice: query["notice"]))
        case (_, 1, "notifications"):
            let status = query["status"].flatMap { $0.isEmpty ? nil : $0 }
            if let status, !["pending", "sending", "sent", "failed"].contains(status) {
                throw WebError(.badRequest, "status is pending, sending, sent or failed")
            }
            let before = try Self.optionalID(query["before"], "before")
            let limit = try Self.limit(query["limit"], default: 50)
            let list = try await database.withTier(.notifications) {
                try await NotificationStatus.recent($0, status: status, before: before, limit: limit)
            }
            let next = list.count == limit ? list.last?.id : nil
            if api { return json(.ok, NotificationPage(notifications: list, nextBefore: next)) }
            return html(notificationsPage(list, status: status, next: next, principal: principal))
        case (_, 2, "notifications"):
            guard let id = Int64(parts[1]),
                  let status = try await database.withTier(.notifications, { try await NotificationStatus.load($0, id: id) })
            else { throw WebError(.notFound, "no such notification") }
            if api { return json(.ok, status) }
            return html(notificationPage(status, principal: principal))
        case (_, 1, "campaigns"):
            let limit = try Self.limit(query["limit"], default: 20, maximum: 100)
            let list = try await database.withTier(.oltp) { try await CampaignStatus.recent($0, limit: limit) }
            if api { return json(.ok, list) }
            return html(campaignsPage(list, principal: principal))
        case (_, 2, "campaigns"):
            guard let id = Int64(parts[1]),
                  let status = try await database.withTier(.oltp, { try await CampaignStatus.load($0, id: id) })
            else { throw WebError(.notFound, "no such campaign") }
            if api { return json(.ok, status) }
            return html(campaignsPage([status], principal: principal, single: true))
        case (_, 1, "periodic"):
            let schedules = try await periodic()
            if api { return json(.ok, schedules) }
            return html(periodicPage(schedules, principal: principal))
        case (_, 1, "content"):
            // The page's by-id form: to the message's own address.
            if !api, let id = query["id"].map({ $0.trimmingCharacters(in: .whitespaces) }), !id.isEmpty {
                return redirect("/content/" + Self.pathSegment(id))
            }
            let text = (query["q"] ?? "").trimmingCharacters(in: .whitespaces)
            let tenant = query["tenant"].flatMap { $0.isEmpty ? nil : $0 }
            var hits: [ContentStore.SearchHit]?
            if !text.isEmpty {
                // Searching content is reading it.
                guard principal.role == .operator else { throw WebError(.forbidden, "content search is for operators") }
                guard text.utf8.count <= 1_000, (tenant?.count ?? 0) <= 128 else {
                    throw WebError(.badRequest, "q is at most 1000 bytes, tenant at most 128 characters")
                }
                let limit = try Self.limit(query["limit"], default: 50, maximum: 200)
                hits = try await database.withTier(.content) {
                    try await ContentStore(connection: $0).search(text, tenant: tenant, limit: limit)
                }
            } else if api {
                throw WebError(.badRequest, "q (the search) is required")
            }
            if api { return json(.ok, hits ?? []) }
            return html(contentPage(hits, query: text, tenant: tenant, principal: principal))
        case (_, 2, "content"):
            // The external id is any text up to 256 characters, so it travels percent-encoded
            // (a `/` in it as %2F) and is decoded here.
            guard let externalID = parts[1].removingPercentEncoding, !externalID.isEmpty, externalID.count <= 256 else {
                throw WebError(.notFound, "no such message")
            }
            let stored: ContentStore.StoredMessage?
            do {
                stored = try await database.withTier(.content) { try await ContentStore(connection: $0).message(externalID: externalID) }
            } catch let error as ContentStore.ReadError {
                throw WebError(.internalServerError, "\(error)")
            }
            guard let stored else { throw WebError(.notFound, "no such message") }
            let value = Self.contentView(stored, for: principal)
            if api { return json(.ok, value) }
            return html(contentMessagePage(stored, view: value, principal: principal))
        case (true, 1, "csrf"):
            return json(.ok, ["csrf": auth.csrfToken(for: principal)])
        case (false, 2, "static"):
            return try asset(parts[1])
        default:
            throw WebError(.notFound, "no such page")
        }
    }

    enum Action: Equatable {
        case retryJob(JobID), cancelJob(JobID), retryDead(JobID), discardDead(JobID), pause, resume, bulk
        var name: String {
            switch self {
            case .retryJob: "retry"
            case .cancelJob: "cancel"
            case .retryDead: "dead_letter_retry"
            case .discardDead: "dead_letter_discard"
            case .pause: "pause"
            case .resume: "resume"
            case .bulk: "bulk"
            }
        }
    }

    static func action(_ parts: [String]) -> Action? {
        switch parts.count {
        case 3 where parts[0] == "jobs":
            guard let id = JobID(parts[1]) else { return nil }
            return parts[2] == "retry" ? .retryJob(id) : parts[2] == "cancel" ? .cancelJob(id) : nil
        case 3 where parts[0] == "dead-letters":
            guard let id = JobID(parts[1]) else { return nil }
            return parts[2] == "retry" ? .retryDead(id) : parts[2] == "discard" ? .discardDead(id) : nil
        case 1 where parts[0] == "pause": return .pause
        case 1 where parts[0] == "resume": return .resume
        case 1 where parts[0] == "bulk": return .bulk
        default: return nil
        }
    }

    // MARK: Actions

    private func perform(_ action: Action, request: Request, principal: WebPrincipal, api: Bool) async throws -> Response {
        guard principal.mayAct else {
            logger.notice("web console action refused", metadata: [
                "user": "\(principal.name)", "role": "\(principal.role.rawValue)", "action": "\(action.name)",
            ])
            throw WebError(.forbidden, "\(principal.name) may only read")
        }
        var request = request
        let body = try await request.collectBody(upTo: Self.maxBody)
        let text = String(buffer: body)
        var form: [String: String] = [:]
        if request.headers[.contentType]?.hasPrefix("application/json") == true {
            if let object = try? JSONDecoder().decode([String: String].self, from: Data(text.utf8)) { form = object }
        } else {
            form = HTML.parseForm(text)
        }
        if !principal.viaBearer {
            let token = form["csrf"] ?? request.headers[Self.csrfHeader]
            guard auth.verifyCSRF(token, for: principal) else {
                logger.notice("web console action refused", metadata: [
                    "user": "\(principal.name)", "action": "\(action.name)", "reason": "csrf",
                ])
                throw WebError(.forbidden, "missing or wrong CSRF token: reload the page and try again")
            }
        }
        var metadata: Logger.Metadata = [
            "user": "\(principal.name)", "role": "\(principal.role.rawValue)", "action": "\(action.name)",
        ]
        if action == .bulk { return try await bulk(form: form, principal: principal, api: api, metadata: metadata) }
        let result: ActionResult
        var back = "/"
        switch action {
        case .retryJob(let id):
            let done = try await database.withAdmin { try await $0.retry(id: id) }
            metadata["job_id"] = "\(id)"
            result = ActionResult(ok: done, message: done ? "retried" : "not retried: the job is running or completed")
            back = "/jobs/\(id)"
        case .cancelJob(let id):
            let outcome = try await database.withAdmin { try await $0.cancel(ids: [id]) }.first
            metadata["job_id"] = "\(id)"
            switch outcome?.outcome {
            case .cancelled: result = ActionResult(ok: true, message: "cancelled")
            case .requested: result = ActionResult(ok: true, message: "cancel requested: the running attempt finishes, then the job ends cancelled unless it completed")
            case .finished: result = ActionResult(ok: false, message: "not cancelled: the job had already finished (\(outcome?.state ?? "?"))")
            case .unchanged, nil: result = ActionResult(ok: false, message: outcome?.state == nil ? "no such job" : "not cancelled: the job changed state meanwhile")
            }
            back = "/jobs/\(id)"
        case .retryDead(let id):
            let done = try await database.withAdmin { try await $0.retryDeadLetters(ids: [id]) }
            metadata["job_id"] = "\(id)"
            result = ActionResult(ok: !done.isEmpty, message: done.isEmpty ? "not a dead letter" : "re-driven")
            back = "/dead-letters"
        case .discardDead(let id):
            let done = try await database.withAdmin { try await $0.discardDeadLetters(ids: [id]) }
            metadata["job_id"] = "\(id)"
            result = ActionResult(ok: !done.isEmpty, message: done.isEmpty ? "not a dead letter" : "discarded")
            back = "/dead-letters"
        case .bulk:
            throw WebError(.notFound, "no such action")
        case .pause, .resume:
            guard let scope = form["scope"].flatMap(QueueAdmin.PauseScope.init(rawValue:)) else {
                throw WebError(.badRequest, "scope must be priority or kind")
            }
            let name = (form["name"] ?? "").trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty, name.count <= 128 else { throw WebError(.badRequest, "name must be 1 to 128 characters") }
            if scope == .priority, JobPriority(rawValue: name) == nil {
                throw WebError(.badRequest, "a priority is high, normal or low")
            }
            metadata["scope"] = "\(scope.rawValue)"
            metadata["name"] = "\(name)"
            if action == .pause {
                let done = try await database.withAdmin { try await $0.pause(scope, name, by: principal.name) }
                result = ActionResult(ok: true, message: done ? "paused" : "already paused")
            } else {
                let done = try await database.withAdmin { try await $0.resume(scope, name) }
                result = ActionResult(ok: done, message: done ? "resumed" : "was not paused")
            }
        }
        metadata["result"] = "\(result.message)"
        logger.notice("web console action", metadata: metadata)
        if api { return json(result.ok ? .ok : .conflict, result) }
        return redirect(back + "?notice=" + HTML.urlEncode(result.message))
    }

    // MARK: Tier pages

    static func optionalID(_ text: String?, _ name: String) throws -> Int64? {
        guard let text, !text.isEmpty else { return nil }
        guard let id = Int64(text), id >= 0 else { throw WebError(.badRequest, "\(name) must be an id") }
        return id
    }

    static func limit(_ text: String?, default value: Int, maximum: Int = 500) throws -> Int {
        guard let text, !text.isEmpty else { return value }
        guard let limit = Int(text), (1...maximum).contains(limit) else { throw WebError(.badRequest, "limit is 1…\(maximum)") }
        return limit
    }

    struct NotificationPage: Codable {
        var notifications: [NotificationStatus]
        /// Pass as `before` for the next page; nil on the last one.
        var nextBefore: Int64?
    }

    struct PeriodicJob: Codable {
        var name: String
        var cron: String
        var timeZone: String
        var kind: String
        var payload: String
        /// The latest slot enqueued (nil before the first).
        var lastSlot: String?
        var lastEnqueuedAt: String?
        /// The next three slots, ISO 8601 UTC.
        var nextSlots: [String]
    }

    /// The configured schedules with their latest enqueued slot and next slots.
    func periodic() async throws -> [PeriodicJob] {
        let schedules = settings.schedules
        let latest = try await database.withAdmin { try await $0.latestScheduleSlots(names: schedules.map(\.name)) }
        let now = Date()
        return schedules.map { schedule in
            var slots: [String] = []
            var after = now
            while slots.count < 3, let next = schedule.cron.nextSlot(after: after) {
                slots.append(ScheduledJob.isoTime(next))
                after = next
            }
            return PeriodicJob(
                name: schedule.name, cron: schedule.cron.expression, timeZone: schedule.cron.timeZone.identifier,
                kind: schedule.kind, payload: schedule.payload, lastSlot: latest[schedule.name]?.slot,
                lastEnqueuedAt: latest[schedule.name]?.enqueuedAt, nextSlots: slots)
        }
    }

    // MARK: Bulk actions

    /// The fields a bulk form carries for its filter, by target.
    static let bulkFilterFields: [QueueAdmin.BulkTarget: [String]] = [
        .jobs: ["id", "state", "kind", "priority", "unique_key", "contains", "field", "value"],
        .deadLetters: ["kind"],
    ]

    struct BulkDryRun: Codable {
        var target: QueueAdmin.BulkTarget
        var action: QueueAdmin.BulkVerb
        /// The filter as the bulk action stores it (JSON text).
        var filter: String
        var count: Int
        /// Send back with `confirm=1` to act on exactly the rows counted.
        var upper: JobID
    }

    /// POST /bulk: without `confirm=1` a dry run (the count and a confirm form); with
    /// it, the audit row and the job that works through the matches, then its page.
    private func bulk(form: [String: String], principal: WebPrincipal, api: Bool, metadata: Logger.Metadata) async throws -> Response {
        guard let target = form["target"].flatMap(QueueAdmin.BulkTarget.init(rawValue:)) else {
            throw WebError(.badRequest, "target must be jobs or dead_letters")
        }
        guard let verb = form["action"].flatMap(QueueAdmin.BulkVerb.init(rawValue:)) else {
            throw WebError(.badRequest, "action must be retry, cancel or discard")
        }
        if target == .deadLetters, verb == .cancel {
            throw WebError(.badRequest, "dead letters are retried or discarded, not cancelled")
        }
        let fields = Self.bulkFilterFields[target] ?? []
        let given = form.filter { fields.contains($0.key) && !$0.value.trimmingCharacters(in: .whitespaces).isEmpty }
        let filter: String
        switch target {
        case .jobs:
            filter = QueueAdmin.bulkFilter(try parseFilter(given, principal: principal))
        case .deadLetters:
            let kind = given["kind"]?.trimmingCharacters(in: .whitespaces)
            guard (kind?.count ?? 0) <= 128 else { throw WebError(.badRequest, "kind is at most 128 characters") }
            filter = QueueAdmin.bulkDeadLetterFilter(kind: kind)
        }
        var metadata = metadata
        metadata["action"] = "bulk_\(verb.rawValue)"
        metadata["target"] = "\(target.rawValue)"
        metadata["filter"] = "\(filter)"
        guard form["confirm"] == "1" else {
            let count = try await database.withAdmin { try await $0.countBulk(target: target, filter: filter) }
            let dryRun = BulkDryRun(target: target, action: verb, filter: filter, count: count.count, upper: count.upper)
            if api { return json(.ok, dryRun) }
            return html(bulkDryRunPage(dryRun, fields: given, principal: principal))
        }
        guard let upper = form["upper"].flatMap({ JobID($0) }), upper >= 0 else {
            throw WebError(.badRequest, "upper (from the dry run) is required to confirm")
        }
        var batch = 1000
        if let text = form["batch"], !text.isEmpty {
            guard let value = Int(text), (1...10_000).contains(value) else { throw WebError(.badRequest, "batch is 1…10000") }
            batch = value
        }
        let started = try await database.withAdmin {
            try await $0.startBulkAction(
                target: target, action: verb, filter: filter, requestedBy: principal.name, upper: upper, batch: batch)
        }
        metadata["bulk_action_id"] = "\(started.id)"
        metadata["expected"] = "\(started.expected)"
        metadata["result"] = "started"
        logger.notice("web console action", metadata: metadata)
        if api { return json(.ok, started) }
        return redirect("/bulk/\(started.id)?notice=" + HTML.urlEncode("started: \(started.expected) to work through"))
    }

    struct ActionResult: Codable {
        var ok: Bool
        var message: String
    }

    // MARK: Filters

    func parseFilter(_ query: [String: String], principal: WebPrincipal) throws -> QueueAdmin.JobFilter {
        var filter = QueueAdmin.JobFilter()
        func value(_ key: String) -> String? {
            guard let text = query[key]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
            return text
        }
        if let id = value("id") {
            guard let parsed = JobID(id) else { throw WebError(.badRequest, "id must be a number") }
            filter.id = parsed
        }
        if let state = value("state") {
            guard let parsed = JobState(rawValue: state) else { throw WebError(.badRequest, "no such state: \(state)") }
            filter.state = parsed
        }
        if let priority = value("priority") {
            guard let parsed = JobPriority(rawValue: priority) else { throw WebError(.badRequest, "priority is high, normal or low") }
            filter.priority = parsed
        }
        if let kind = value("kind") {
            guard kind.count <= 128 else { throw WebError(.badRequest, "kind is at most 128 characters") }
            filter.kind = kind
        }
        if let key = value("unique_key") {
            guard key.count <= 512 else { throw WebError(.badRequest, "unique key is at most 512 characters") }
            filter.uniqueKey = key
        }
        if let before = value("before") {
            guard let parsed = JobID(before) else { throw WebError(.badRequest, "before must be a job id") }
            filter.beforeID = parsed
        }
        if let limit = value("limit") {
            guard let parsed = Int(limit), (1...500).contains(parsed) else { throw WebError(.badRequest, "limit is 1…500") }
            filter.limit = parsed
        }
        let contains = value("contains")
        let field = value("field")
        if contains != nil || field != nil {
            // Searching by content is reading it: a read-only user could probe a body
            // value by value.
            guard principal.role == .operator else { throw WebError(.forbidden, "payload search is for operators") }
        }
        if let contains, field != nil {
            _ = contains
            throw WebError(.badRequest, "give either contains or field and value, not both")
        }
        if let contains {
            guard contains.utf8.count <= 4_096, case .object = try? JSONDecoder().decode(JSONValue.self, from: Data(contains.utf8)) else {
                throw WebError(.badRequest, "contains must be a JSON object, e.g. {\"order_id\": 42}")
            }
            filter.contains = contains
        }
        if let field {
            filter.contains = try Self.containment(field: field, value: query["value"] ?? "")
        }
        return filter
    }

    /// `order.id` = `42` → `{"order":{"id":42}}`. The value is JSON when it parses as a
    /// JSON scalar (a number, true, false, null, "quoted"), else a string.
    static func containment(field: String, value: String) throws -> String {
        let path = field.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !path.isEmpty, path.count <= 8, path.allSatisfy({ !$0.isEmpty && $0.count <= 128 }) else {
            throw WebError(.badRequest, "field is a key or a dotted path of up to 8 keys, e.g. order.id")
        }
        guard value.utf8.count <= 4_096 else { throw WebError(.badRequest, "value is at most 4096 bytes") }
        var leaf: JSONValue = .string(value)
        if let parsed = try? JSONDecoder().decode(JSONValue.self, from: Data(value.utf8)) {
            switch parsed {
            case .object, .array: break
            default: leaf = parsed
            }
        }
        if case .number = leaf, let exact = Int64(value.trimmingCharacters(in: .whitespaces)) {
            // Keep integers exact (JSONValue holds numbers as Double).
            var text = String(exact)
            for key in path.reversed() { text = "{" + Self.jsonString(key) + ":" + text + "}" }
            return text
        }
        for key in path.reversed() { leaf = .object([key: leaf]) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(leaf), as: UTF8.self)
    }

    static func jsonString(_ text: String) -> String {
        String(decoding: (try? JSONEncoder().encode(text)) ?? Data("\"\"".utf8), as: UTF8.self)
    }

    // MARK: Redaction

    func redactedPayload(_ text: String, for principal: WebPrincipal) -> String {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) else {
            return principal.role == .operator ? text : "‹payload hidden›"
        }
        return PayloadRedaction.pretty(PayloadRedaction.redact(value, for: principal.role == .operator ? .operator : .readOnly))
    }

    /// A stored message in the `content.write` payload's shape (headers as a list of
    /// name/value pairs, attachments with their size), redacted for the viewer as a
    /// job's payload is: secrets (a header whose name names one) hidden from everyone,
    /// bodies (text, html, attachment data, long values) from read-only viewers.
    static func contentView(_ stored: ContentStore.StoredMessage, for principal: WebPrincipal) -> JSONValue {
        let message = stored.message
        func text(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }
        let headers: [JSONValue] = message.headers.sorted { $0.name < $1.name }.map { header in
            .object(["name": .string(header.name),
                     "value": PayloadRedaction.isSecretKey(header.name) ? .string("‹secret hidden›") : .string(header.value)])
        }
        let attachments: [JSONValue] = message.attachments.map { attachment in
            .object(["filename": .string(attachment.filename), "content_type": .string(attachment.contentType),
                     "size": .number(Double(attachment.data.count)), "data_base64": .string(Base64.encode(attachment.data))])
        }
        let value = JSONValue.object([
            "external_id": .string(message.externalID), "tenant_id": .string(message.tenantID),
            "campaign_id": text(message.campaignID), "from": .string(message.from), "to": .array(message.to.map { .string($0) }),
            "subject": .string(message.subject), "headers": .array(headers), "text": text(message.text),
            "html": text(message.html), "attachments": .array(attachments), "created_at": .string(stored.createdAt),
            "archived_at": text(stored.archivedAt), "raw_bytes": .number(Double(stored.rawBytes)),
            "stored_bytes": .number(Double(stored.storedBytes)),
        ])
        return PayloadRedaction.redact(value, for: principal.role == .operator ? .operator : .readOnly)
    }

    func redactedErrors(_ text: String) -> String {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) else { return "[]" }
        return PayloadRedaction.pretty(value)
    }

    // MARK: API shapes

    struct JobPage: Codable {
        var jobs: [QueueAdmin.JobSummary]
        /// Pass as `before` for the next page; nil on the last one.
        var nextBefore: JobID?
    }

    struct JobView: Codable {
        var job: QueueAdmin.JobSummary
        /// Pretty-printed JSON, redacted for the viewer's role.
        var payload: String
        var errors: String
        var attempts: [QueueAdmin.AttemptEvent]
        var rescues: Int
        var deadLetterReason: String?
        var startedAt: String?
        var finishedAt: String?
    }

    struct DeadLetterView: Codable {
        var jobID: JobID
        var kind: String
        var priority: String
        var attempts: Int
        var reason: String
        var lastError: String?
        var deadAt: String
        var payload: String
        /// Pass the last one's as `before` for the next page.
        var cursor: String

        init(_ letter: QueueAdmin.DeadLetter, payload: String, cursor: QueueAdmin.DeadLetterCursor) {
            self.cursor = cursor.text
            jobID = letter.jobID
            kind = letter.kind
            priority = letter.priority
            attempts = letter.attempts
            reason = letter.reason
            lastError = letter.lastError
            deadAt = letter.deadAt
            self.payload = payload
        }
    }

    // MARK: Responses

    static func securityHeaders(_ headers: inout HTTPFields) {
        // No inline script or style anywhere: everything comes from /static.
        headers[.contentSecurityPolicy] =
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        headers[HTTPField.Name("Referrer-Policy")!] = "same-origin"
        headers[.cacheControl] = "no-store"
    }

    func html(_ page: String, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        Self.securityHeaders(&headers)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: page)))
    }

    func plain(_ status: HTTPResponse.Status, _ text: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        Self.securityHeaders(&headers)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text + "\n")))
    }

    func json(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(value)) ?? Data("{\"error\":\"encoding failed\"}".utf8)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        Self.securityHeaders(&headers)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    func redirect(_ location: String) -> Response {
        var headers = HTTPFields()
        headers[.location] = location
        Self.securityHeaders(&headers)
        return Response(status: .seeOther, headers: headers, body: ResponseBody())
    }

    func errorPage(_ status: HTTPResponse.Status, _ message: String) -> Response {
        html(Pages.layout(title: "\(status.code) \(status.reasonPhrase)", principal: nil, body: """
            <h1>\(status.code) \(HTML.escape(status.reasonPhrase))</h1>
            <p class="error">\(HTML.escape(message))</p>
            """), status: status)
    }

    func asset(_ name: String) throws -> Response {
        let (body, type): (String, String)
        switch name {
        case "console.js": (body, type) = (Assets.script, "text/javascript; charset=utf-8")
        case "console.css": (body, type) = (Assets.style, "text/css; charset=utf-8")
        default: throw WebError(.notFound, "no such file")
        }
        var headers = HTTPFields()
        headers[.contentType] = type
        Self.securityHeaders(&headers)
        headers[.cacheControl] = "max-age=300"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }
}
