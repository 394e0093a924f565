import Foundation
import JobdCodec
import JobdContent
import JobdCore
import JobdNotifications
import JobdNotify
import JobdQueue
import Logging
import Synchronization

/// `campaign.prepare` (internal: enqueued by the OLTP tier's outbox, not producers).
/// Payload `{"campaign_id": N}`.
///
/// scheduled → sending, stores the campaign's content once in the content tier
/// (`external_id` `oltp-campaign:<id>`, tenant `workspace-<id>`), then fans the
/// list out page by page until the list is exhausted or the campaign is paused or
/// cancelled. Every page is one statement (deliveries + outbox jobs + cursor), so a
/// run cut short anywhere resumes where it stopped.
public struct CampaignPrepareHandler: JobHandler {
    public let kind = "campaign.prepare"
    /// Enqueued only by the outbox relay, never by producers.
    public var isInternal: Bool { true }
    let oltp: TierDatabase
    let content: TierDatabase
    let settings: CampaignSettings
    let codec: ZlibCodec

    public init(oltp: TierDatabase, content: TierDatabase, settings: CampaignSettings = .defaults, compressionLevel: Int = 6) {
        self.oltp = oltp
        self.content = content
        self.settings = settings
        codec = ZlibCodec(level: compressionLevel)
    }

    public func handle(_ job: ClaimedJob, context: JobContext) async throws {
        let id = try CampaignPayload.campaignID(job.payload, kind: kind)
        guard let campaign = try await oltp.withConnection({ try await CampaignStore(connection: $0).campaign(id) }) else {
            throw JobFailure.permanent("campaign \(id) does not exist", code: "campaign_missing")
        }
        switch campaign.status {
        case "scheduled":
            if campaign.dueIn > 0 { throw JobSnooze(for: TotalConversion.duration(seconds: campaign.dueIn), code: "campaign_not_due", message: "the campaign's send time is still ahead") }
            _ = try await oltp.withConnection { try await CampaignStore(connection: $0).start(id) }
        case "sending":
            break
        default:
            // draft, paused (resume enqueues a new preparation), sent, cancelled.
            context.logger.debug("campaign not to be prepared now", metadata: ["campaign_id": "\(id)", "status": "\(campaign.status)"])
            return
        }
        // A campaign with attachments stores (or finds) its content on every
        // preparation: a resume after retention purged it stores it again.
        if campaign.contentRef == nil || campaign.attachmentCount > 0 {
            let ref = try await storeContent(campaign)
            if campaign.contentRef == nil {
                try await oltp.withConnection { try await CampaignStore(connection: $0).setContentRef(id, ref) }
            }
        }
        var pages = 0
        var jobs = 0
        let clock = ContinuousClock()
        let started = clock.now
        var waited = Duration.zero
        var statements = Duration.zero
        var done = false
        while !done {
            try Task.checkCancellation()
            let asked = clock.now
            done = try await oltp.withConnection { connection in
                waited += asked.duration(to: clock.now)
                let store = CampaignStore(connection: connection)
                let giveBack = clock.now.advanced(by: Self.connectionSlice)
                repeat {
                    try Task.checkCancellation()
                    let sent = clock.now
                    let page = try await store.fanOutPage(id, pageSize: settings.pageSize)
                    statements += sent.duration(to: clock.now)
                    pages += 1
                    jobs += page.jobs
                    if !page.ran || page.done { return true }
                } while clock.now < giveBack
                return false
            }
        }
        let finished = try await oltp.withConnection { try await CampaignStore(connection: $0).finishIfDone(id) }
        context.logger.info("campaign fanned out", metadata: [
            "campaign_id": "\(id)", "pages": "\(pages)", "delivery_jobs": "\(jobs)", "finished": "\(finished)",
            "seconds": "\(started.duration(to: clock.now).seconds)", "statement_seconds": "\(statements.seconds)",
            "connection_wait_seconds": "\(waited.seconds)",
        ])
    }

    /// How long the fan-out keeps one pooled connection for consecutive pages before
    /// it gives it back: the delivery batches sharing the pool (which start while the
    /// fan-out runs) get a turn at least this often, and the fan-out waits for a
    /// connection once per slice rather than once per page. Each page is still its
    /// own statement and transaction, so a fan-out cut short anywhere resumes from
    /// its cursor.
    static let connectionSlice = Duration.milliseconds(500)

    /// The template and the attachments, stored once: a retry finds them by external_id.
    func storeContent(_ campaign: CampaignStore.Campaign) async throws -> String {
        let ref = "oltp-campaign:\(campaign.id)"
        let template = campaign.template
        let attachments = campaign.attachmentCount == 0 ? [] : try await oltp.withConnection {
            try await CampaignStore(connection: $0).attachments(campaign.id)
        }
        let message = ContentMessage(
            externalID: ref, tenantID: "workspace-\(campaign.workspaceID)", campaignID: String(campaign.id),
            from: template.fromAddress, to: [template.fromAddress], subject: template.subject,
            headers: [.init(name: "X-Jobd-Campaign-List", value: String(campaign.listID))],
            text: template.text, html: template.html,
            attachments: attachments.map { .init(filename: $0.filename, contentType: $0.contentType, data: $0.data) })
        let prepared = try PreparedMessage(message, codec: codec)
        let outcome = try await content.withConnection { try await ContentStore(connection: $0).write(prepared) }
        switch outcome {
        case .inserted, .duplicate:
            return ref
        case .conflict:
            throw JobFailure.permanent("content \(ref) is already stored with different content", code: "external_id_conflict")
        case .raced:
            throw JobFailure.transient("another write of \(ref) was committing", code: "content_write_raced")
        }
    }
}

/// `campaign.deliver` (internal: enqueued by the fan-out). Payload
/// `{"campaign_id": N, "batch": B, "contacts": [id, …]}` (1–1000 contacts; `batch`
/// the batch's first contact id, optional: see `CampaignPayload.batch`).
///
/// Sends one message per recipient of the batch through the account's relay over
/// one curl worker at a time (whose handle keeps the SMTP connection open between
/// them). In groups: the recipients the throttles (the account's messages per
/// second, the recipient domain's rate and transfers in flight; `CampaignThrottles`)
/// let go now, up to `sendGroup` and about 0.25 s of sends at the rate just seen, are
/// claimed in one statement (`sending` rows under one fresh token) → each is sent →
/// their outcomes are recorded in one statement fenced on the token:
///   2xx sent · 4xx or no answer deferred (tried again with backoff, `failed` after
///   `maxTries`) · 5xx bounced (the contact becomes `bounced`) · contacts no longer
///   subscribed are suppressed, never sent.
/// A group member's permit is taken before the claim and held until its send is
/// done, so a group never exceeds a domain's transfers in flight (it may hold them
/// a little early). Members not sent because the batch stops (pause, cancel, the
/// account refused, the relay is down, the job is cancelled) are released unsent
/// (`pending`, the try not counted) by the same record.
/// AUTH refusals (530, 534, 535, 538) are the account's fault, not the recipient's:
/// the recipient is released unsent and the job retries with backoff.
///
/// Throttles: a recipient that may not go yet is passed over while the batch sends
/// the others; when none may go, the batch gives its worker back and sleeps until
/// the first may (at most `throttleWait`), or snoozes the job for that long without
/// spending an attempt. It never spins.
///
/// Reports: the batch writes what it measured (`CampaignSendMonitor`) about once a
/// second and after every bounce. A report pauses the campaign when its bounce rate
/// over every daemon passed its threshold (this daemon's batches of it then stop
/// after the send in progress), and reads the campaign's status: a batch that finds
/// it paused stops and snoozes, one that finds it cancelled marks the rest of its
/// recipients cancelled. So a pause or cancel stops a running batch within about a
/// second (or one send, if a send takes longer).
///
/// The window: a process that dies after the relay accepted a message and before
/// its group's record leaves the row `sending`; once its claim window passes, a
/// later run sends it again with the same Message-ID. At a crash, at most the
/// members of the groups in flight whose sends were done (≤ `sendGroup` per curl
/// worker) get an extra copy; claimed members not yet sent are merely sent later.
/// A recipient whose claim lapsed `maxTries` times is failed instead of claimed
/// again (a recipient that kills its sender cannot loop however often its batch is
/// enqueued again).
///
/// A batch whose job is dead-lettered with recipients open is enqueued again by the
/// outbox relay's `DeliverySweep` (under the same unique key).
public struct CampaignDeliverHandler: JobHandler {
    public let kind = "campaign.deliver"
    /// Enqueued only by the outbox relay and campaign.prepare, never by producers.
    public var isInternal: Bool { true }
    let oltp: TierDatabase
    /// Where the campaigns' attachments are read from; nil: a campaign with
    /// attachments is paused rather than sent without them.
    let content: TierDatabase?
    let settings: CampaignSettings
    let transport: CurlTransport
    let secrets: SecretReferences
    let wallClock: @Sendable () -> Double
    let throttles: CampaignThrottles
    let monitor: CampaignSendMonitor

    public init(
        oltp: TierDatabase, content: TierDatabase? = nil, settings: CampaignSettings = .defaults, userAgent: String = "jobd",
        secrets: SecretReferences = SecretReferences(),
        wallClock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 },
        throttles: CampaignThrottles = CampaignThrottles(), monitor: CampaignSendMonitor = CampaignSendMonitor()
    ) {
        self.oltp = oltp
        self.content = content
        self.settings = settings
        transport = CurlTransport(
            concurrency: settings.concurrency, connectTimeout: settings.connectTimeout, timeout: settings.timeout,
            userAgent: userAgent)
        self.secrets = secrets
        self.wallClock = wallClock
        self.throttles = throttles
        self.monitor = monitor
    }

    static let authCodes: Set<Int> = [530, 534, 535, 538]
    /// Reports are written at most this often per campaign, except after a bounce.
    static let reportInterval = 1.0
    static let bounceReportInterval = 0.05
    /// A group holds about this long of sends (at the rate of the group before):
    /// outcomes are recorded this often, and claims are never held long.
    static let groupSpan = 0.25

    /// A database call, its time counted as the database's.
    private func database<T: Sendable>(_ id: Int64, _ body: (CampaignStore) async throws -> T) async throws -> T {
        let start = monitor.now()
        defer {
            let spent = monitor.now() - start
            monitor.add(id) { $0.database += spent }
        }
        return try await oltp.withConnection { try await body(CampaignStore(connection: $0)) }
    }

    /// Writes the campaign's report when due. Returns the campaign's status when it
    /// is no longer `sending` (this report paused it, or someone paused or cancelled
    /// it): the batch stops then. Nil when it still sends or no report was due.
    private func report(_ id: Int64, interval: Double, force: Bool = false, heldFor: Double? = nil, logger: Logger) async throws -> String? {
        guard let (window, seconds) = monitor.flush(id, minimumInterval: interval, force: force) else { return nil }
        let (reason, status) = try await database(id) {
            try await $0.report(id, daemon: monitor.daemon, window: window, seconds: seconds, slots: settings.concurrency, heldFor: heldFor)
        }
        if let reason {
            monitor.markStopped(id, status: "paused")
            logger.warning("campaign paused: bounce rate", metadata: ["campaign_id": "\(id)", "reason": "\(reason)"])
            return "paused"
        }
        guard let status, status != "sending" else { return nil }
        monitor.markStopped(id, status: status)
        return status
    }

    /// The campaign's attachments from the content tier, each MIME part encoded once
    /// for the whole batch. When the stored content lacks them (purged or archived by
    /// retention, damaged, or no content tier to read), the campaign is paused with
    /// a reason saying so and nil returned: nothing is sent without them.
    private func attachments(_ campaign: CampaignStore.Campaign, logger: Logger) async throws -> [CampaignAttachment]? {
        guard campaign.attachmentCount > 0 else { return [] }
        let id = campaign.id
        var problem: String
        if let content, let ref = campaign.contentRef {
            do {
                let stored = try await content.withConnection {
                    try await ContentStore(connection: $0).attachments(externalID: ref)
                }
                if let stored, stored.count == campaign.attachmentCount {
                    return stored.map { CampaignAttachment(filename: $0.filename, contentType: $0.contentType, data: $0.data) }
                }
                problem = "its \(campaign.attachmentCount) attachment(s) are missing from the content tier (\(ref) holds \(stored?.count ?? 0))"
            } catch let error as ContentStore.ReadError {
                problem = "its attachments in the content tier are unreadable (\(ref): \(error))"
            }
        } else if content == nil {
            problem = "it has attachments and this daemon reads no content tier"
        } else {
            problem = "it has attachments and no stored content"
        }
        let reason = "not sent: \(problem)"
        _ = try await database(id) { try await $0.pause(id, reason: reason) }
        monitor.markStopped(id, status: "paused")
        logger.error("campaign paused: attachments missing", metadata: ["campaign_id": "\(id)", "reason": "\(reason)"])
        return nil
    }

    public func handle(_ job: ClaimedJob, context: JobContext) async throws {
        let payload = try CampaignPayload.batch(job.payload, kind: kind)
        let (id, batch, contacts) = (payload.campaign, payload.batch, payload.contacts)
        let readAt = monitor.now()
        guard let campaign = try await database(id, { try await $0.campaign(id) }) else {
            throw JobFailure.permanent("campaign \(id) does not exist", code: "campaign_missing")
        }
        switch campaign.status {
        case "sending":
            monitor.clearStopped(id, readAt: readAt)
        case "paused", "scheduled":
            // Nothing new starts while paused; the batch waits without spending attempts.
            throw JobSnooze(for: settings.pauseRecheck, code: "campaign_paused", message: "the campaign is paused; waiting without spending an attempt")
        case "cancelled":
            let cancelled = try await database(id) { try await $0.cancelOpen(id, batch: batch, contacts: contacts) }
            context.logger.info("campaign cancelled; batch not sent", metadata: ["campaign_id": "\(id)", "count": "\(cancelled)"])
            return
        default:
            return  // sent (nothing open) or draft (never fanned out)
        }
        guard let attachments = try await attachments(campaign, logger: context.logger) else {
            throw JobSnooze(for: settings.pauseRecheck, code: "campaign_paused", message: "the campaign's attachments are missing; it is paused")
        }
        let password = try secrets.resolve(campaign.secretRef)
        guard let startTLS = NotificationSettings.StartTLS(rawValue: campaign.startTLS) else {
            throw JobFailure.permanent("account STARTTLS mode \(campaign.startTLS) is unknown", code: "account_invalid")
        }
        var relay = campaign.relayURL
        while relay.hasSuffix("/") { relay.removeLast() }
        _ = try await database(id) { try await $0.suppress(id, batch: batch, contacts: contacts) }
        _ = try await database(id) { try await $0.failAbandoned(id, batch: batch, contacts: contacts, maxTries: settings.maxTries) }
        let order = Dictionary(uniqueKeysWithValues: contacts.enumerated().map { ($1, $0) })
        var remaining = try await database(id) { try await $0.recipientLimits(id, account: campaign.accountID, batch: batch, contacts: contacts) }
            .sorted { order[$0.contact, default: 0] < order[$1.contact, default: 0] }

        var counts: [String: Int] = [:]
        var accountRefused: String?
        // No answer from the relay: the rest of the batch waits this long instead of
        // each recipient spending a connect timeout.
        var relayDown: Double?
        // Set when a report finds the campaign no longer sending: `paused` or `cancelled`.
        var stopped: String?
        var throttled: (wait: Duration, cause: CampaignThrottles.Cause)?
        // Recipients claimed in one statement and recorded in one (`sendGroup` at most).
        var groupSize = min(settings.sendGroup, 4)

        /// The first remaining recipient the throttles let go now, with its permit;
        /// else the shortest wait among them.
        func nextReady() -> (index: Int, permit: CampaignThrottles.Permit)? {
            throttled = nil
            var held: Set<String> = []
            for (index, recipient) in remaining.enumerated() {
                if recipient.isLimited, held.contains(recipient.domain) { continue }
                switch throttles.take(account: campaign.accountID, accountRate: campaign.accountRate, recipient: recipient) {
                case .go(let permit):
                    return (index, permit)
                case .wait(let wait, let cause):
                    if throttled == nil || wait < throttled!.wait { throttled = (wait, cause) }
                    // The account's limit holds back every recipient alike.
                    if cause == .account { return nil }
                    held.insert(recipient.domain)
                }
            }
            return nil
        }

        sending: while !remaining.isEmpty {
            if Task.isCancelled || monitor.stoppedStatus(id) != nil { break }
            guard let first = nextReady() else {
                guard let (wait, cause) = throttled else { break }
                if wait > settings.throttleWait { break }  // snoozes below, giving the worker back
                // Counted before the sleep, so a report written meanwhile shows it.
                monitor.add(id) { window in
                    switch cause {
                    case .account: window.accountWait += wait.seconds
                    case .domain(let domain): window.domainWaits[domain, default: 0] += wait.seconds
                    }
                }
                try await Task.sleep(for: wait)
                throttled = nil
                stopped = try await report(id, interval: Self.reportInterval, logger: context.logger)
                if stopped != nil { break }
                continue
            }
            let asked = monitor.now()
            try await transport.withSlot { slot in
                let waited = monitor.now() - asked
                monitor.add(id) { $0.poolWait += waited }
                var next: (index: Int, permit: CampaignThrottles.Permit)? = first
                while let head = next {
                    // The group: the recipients the throttles let go now, each with its permit.
                    var permits: [Int64: CampaignThrottles.Permit] = [:]
                    var members: [Int64] = []
                    var cursor: (index: Int, permit: CampaignThrottles.Permit)? = head
                    while let (index, permit) = cursor {
                        let contact = remaining.remove(at: index).contact
                        members.append(contact)
                        permits[contact] = permit
                        cursor = members.count < groupSize && !remaining.isEmpty ? nextReady() : nil
                    }
                    // A permit is held until its send is done (transfers in flight), or
                    // given back at once for a recipient not claimed.
                    defer { for permit in permits.values { throttles.release(permit) } }
                    let token = NotificationSendHandler.claimToken()
                    let claimedAt = monitor.now()
                    let claims = try await database(id) {
                        try await $0.claimGroup(
                            id, batch: batch, contacts: members, token: token, window: settings.sendingWindow.seconds,
                            maxTries: settings.maxTries)
                    }
                    let byContact = Dictionary(claims.map { ($0.recipient.contactID, $0) }, uniquingKeysWith: { first, _ in first })
                    for contact in members where byContact[contact] == nil {
                        if let permit = permits.removeValue(forKey: contact) { throttles.release(permit) }
                    }
                    var outcomes: [CampaignStore.Outcome] = []
                    outcomes.reserveCapacity(claims.count)
                    var smtpTotal = 0.0
                    var sendCount = 0
                    for contact in members {
                        guard let claimed = byContact[contact] else { continue }
                        // Stopping, or the group ran so long that its claims near their end:
                        // the rest of the group is released unsent.
                        if accountRefused != nil || relayDown != nil || stopped != nil || Task.isCancelled
                            || monitor.stoppedStatus(id) != nil || monitor.now() - claimedAt > settings.sendingWindow.seconds / 2 {
                            outcomes.append(.init(contact: contact, state: "pending"))
                            continue
                        }
                        let message = CampaignMail.render(
                            campaign.template, for: claimed.recipient, date: Int64(wallClock()), attachments: attachments)
                        let started = monitor.now()
                        let report = await slot.send(MailSubmission(
                            relayURL: relay, username: campaign.username, password: password, startTLS: startTLS,
                            from: campaign.template.fromAddress, to: claimed.recipient.address, message: Array(message.utf8)))
                        let smtp = monitor.now() - started
                        if let permit = permits.removeValue(forKey: contact) { throttles.release(permit) }
                        smtpTotal += smtp
                        sendCount += 1
                        var state: String
                        var code: Int?
                        var retryIn = 0.0
                        switch report.outcome {
                        case .response(let status, _) where (200..<300).contains(status):
                            state = "sent"
                            code = status
                        case .response(let status, _) where Self.authCodes.contains(status):
                            state = "pending"
                            code = status
                            accountRefused = report.excerpt
                        case .response(let status, _) where (500..<600).contains(status):
                            state = "bounced"
                            code = status
                        case .cancelled:
                            state = "pending"
                        default:
                            if case .response(let status, _) = report.outcome { code = status } else { relayDown = 0 }
                            state = claimed.tries >= settings.maxTries ? "failed" : "deferred"
                            retryIn = min(settings.deferMaximum.seconds, settings.deferBase.seconds * pow(2, Double(min(claimed.tries - 1, 30))))
                            if relayDown != nil { relayDown = retryIn }
                        }
                        outcomes.append(.init(contact: contact, state: state, code: code, reply: report.excerpt, retryIn: retryIn))
                    }
                    // The outcomes are written even when the job is being cancelled: the sends happened.
                    let (store, written) = (oltp, outcomes)
                    let recordStart = monitor.now()
                    _ = try await Task.detached {
                        try await store.withConnection { try await CampaignStore(connection: $0).recordGroup(id, batch: batch, token: token, outcomes: written) }
                    }.value
                    let recorded = monitor.now() - recordStart
                    var bounced = false
                    monitor.add(id) { window in
                        window.smtp += smtpTotal
                        window.database += recorded
                        for outcome in written {
                            let state = outcome.state
                            if ["sent", "bounced", "failed"].contains(state) { window.tried += 1 }
                            if state == "bounced" { window.bounced += 1 }
                            if state == "deferred" || state == "failed" { window.deferrals += 1 }
                            if state != "pending" { window.sends += 1 }
                        }
                    }
                    for outcome in written {
                        counts[outcome.state, default: 0] += 1
                        if outcome.state == "bounced" { bounced = true }
                    }
                    // The next group spans about `groupSpan` of sends at the rate just seen.
                    if sendCount > 0 {
                        let perSend = max(smtpTotal / Double(sendCount), 0.000_1)
                        groupSize = max(1, min(settings.sendGroup, Int(Self.groupSpan / perSend)))
                    }
                    let interval = bounced ? Self.bounceReportInterval : Self.reportInterval
                    if stopped == nil { stopped = try await self.report(id, interval: interval, logger: context.logger) }
                    if accountRefused != nil || relayDown != nil || stopped != nil || Task.isCancelled || monitor.stoppedStatus(id) != nil { break }
                    next = remaining.isEmpty ? nil : nextReady()
                }
            }
            if accountRefused != nil || relayDown != nil || stopped != nil { break sending }
        }
        context.logger.debug("campaign batch sent", metadata: [
            "campaign_id": "\(id)", "sent": "\(counts["sent"] ?? 0)", "deferred": "\(counts["deferred"] ?? 0)",
            "bounced": "\(counts["bounced"] ?? 0)",
        ])
        if let accountRefused {
            _ = try await report(id, interval: 0, force: true, logger: context.logger)
            throw JobFailure.transient("relay refused the account: \(accountRefused)", code: "account_refused")
        }
        try Task.checkCancellation()
        if stopped == nil { stopped = monitor.stoppedStatus(id) }
        if let stopped {
            _ = try await report(id, interval: 0, force: true, logger: context.logger)
            if stopped == "cancelled" {
                let cancelled = try await database(id) { try await $0.cancelOpen(id, batch: batch, contacts: contacts) }
                context.logger.info("campaign cancelled; rest of the batch not sent", metadata: ["campaign_id": "\(id)", "count": "\(cancelled)"])
                return
            }
            throw JobSnooze(for: settings.pauseRecheck, code: "campaign_paused", message: "the campaign was paused; waiting without spending an attempt")
        }
        if let relayDown {
            _ = try await report(id, interval: 0, force: true, logger: context.logger)
            throw JobSnooze(for: TotalConversion.duration(seconds: relayDown), code: "relay_unavailable", message: "the account's relay did not answer; the recipient is deferred and the batch waits")
        }
        if !remaining.isEmpty, let (wait, cause) = throttled {
            monitor.add(id) { window in
                switch cause {
                case .account: window.accountWait += wait.seconds
                case .domain(let domain): window.domainWaits[domain, default: 0] += wait.seconds
                }
            }
            _ = try await report(id, interval: 0, force: true, heldFor: wait.seconds, logger: context.logger)
            let what = switch cause {
            case .account: "the account's messages per second"
            case .domain(let domain): "the limit of \(domain)"
            }
            throw JobSnooze(for: wait, code: "throttled", message: "held back by \(what); waiting without spending an attempt")
        }
        _ = try await report(id, interval: 0, force: true, logger: context.logger)
        if let wait = try await database(id, { try await $0.nextOpen(id, batch: batch, contacts: contacts) }) {
            throw JobSnooze(for: TotalConversion.duration(seconds: max(0.05, wait + 0.05)), code: "recipients_deferred", message: "deferred recipients are not due yet")
        }
        _ = try await database(id) { try await $0.finishIfDone(id) }
    }
}

/// Reads the relay passwords accounts refer to (`env:NAME`, `file:/path`), each
/// once per process.
public final class SecretReferences: Sendable {
    private let environment: @Sendable (String) -> String?
    private let cache = Mutex<[String: SecretText]>([:])

    public init(environment: @escaping @Sendable (String) -> String? = { ProcessInfo.processInfo.environment[$0] }) {
        self.environment = environment
    }

    public func resolve(_ reference: String?) throws -> SecretText? {
        guard let reference else { return nil }
        if let known = cache.withLock({ $0[reference] }) { return known }
        let value: String
        if reference.hasPrefix("env:") {
            guard let text = environment(String(reference.dropFirst(4))), !text.isEmpty else {
                throw JobFailure.transient("secret \(reference) is not set in the daemon's environment", code: "secret_unavailable")
            }
            value = text
        } else if reference.hasPrefix("file:") {
            guard let data = FileManager.default.contents(atPath: String(reference.dropFirst(5))),
                  var text = String(data: data, encoding: .utf8) else {
                throw JobFailure.transient("secret \(reference) cannot be read", code: "secret_unavailable")
            }
            if text.hasSuffix("\n") { text.removeLast() }
            value = text
        } else {
            throw JobFailure.permanent("secret reference \(reference) is neither env: nor file:", code: "account_invalid")
        }
        let secret = SecretText(value)
        cache.withLock { $0[reference] = secret }
        return secret
    }
}

enum CampaignPayload {
    static func campaignID(_ payload: String, kind: String) throws -> Int64 {
        let object = try JSONPayload.object(payload, kind: kind)
        guard let value = object["campaign_id"] else {
            throw JobFailure.permanent("\(kind) payload: campaign_id is required", code: "payload_invalid")
        }
        return Int64(try JSONPayload.integer(value, field: "campaign_id", kind: kind, range: 1...Int.max))
    }

    /// A `campaign.deliver` payload: the campaign, the batch and its contacts.
    struct Batch: Sendable, Equatable {
        var campaign: Int64
        /// The batch's name (its first contact id, as in the job's unique key
        /// `campaign:<id>:deliver:<batch>`): bounds every statement of the batch to its
        /// rows. Nil when the payload has none (`"batch"` absent or null: a job written
        /// by a daemon from before payloads carried it); the batch then runs its
        /// statements by campaign and contacts alone, which sends the same recipients
        /// but may read every open delivery of the campaign per statement.
        var batch: Int64?
        var contacts: [Int64]
    }

    /// Reads a `campaign.deliver` payload. A present `batch` must be a whole number
    /// no greater than the smallest contact (a batch is named by its first contact,
    /// so every contact of it is at least that): anything else is `payload_invalid`
    /// (permanent: the job is dead-lettered, and the delivery sweep enqueues the
    /// batch's open recipients again with a payload of its own). A well-formed batch
    /// that is not these contacts' batch matches none of their rows: the job sends
    /// nothing, and the sweep enqueues their own batch once the job has ended.
    static func batch(_ payload: String, kind: String) throws -> Batch {
        let object = try JSONPayload.object(payload, kind: kind)
        guard let value = object["campaign_id"] else {
            throw JobFailure.permanent("\(kind) payload: campaign_id is required", code: "payload_invalid")
        }
        let id = Int64(try JSONPayload.integer(value, field: "campaign_id", kind: kind, range: 1...Int.max))
        guard case .array(let items)? = object["contacts"], (1...1_000).contains(items.count) else {
            throw JobFailure.permanent("\(kind) payload: contacts must be an array of 1…1000 ids", code: "payload_invalid")
        }
        let contacts = try items.map { Int64(try JSONPayload.integer($0, field: "contacts[]", kind: kind, range: 1...Int.max)) }
        var batch: Int64?
        if let value = object["batch"], value != .null {
            let first = Int(contacts.min() ?? 1)
            batch = Int64(try JSONPayload.integer(value, field: "batch", kind: kind, range: 1...first))
        }
        return Batch(campaign: id, batch: batch, contacts: contacts)
    }
}
