import Foundation
import JobdCore
import JobdNotify
import JobdQueue
import Logging
import ServiceLifecycle

/// `notification.send`: delivers one webhook, email or SMS, exactly as far as a
/// provider lets anyone — at most once per idempotency key while the
/// notifications database is reachable, with the key sent along so the receiver
/// can drop the duplicate the one remaining window could cause.
///
/// A run: validate → (an outcome left unrecorded by an earlier run? record it,
/// send nothing) → circuit breaker and rate limit for the destination → claim the
/// notification row (`pending`/`failed` → `sending`, fenced by a fresh token) →
/// send → record the try and the new status in one statement fenced on the token.
///
/// The window: if this process dies after the provider accepted and before the
/// row says `sent`, the row stays `sending` until its claim window passes; the
/// next run then sends again with the same `Idempotency-Key` (`Message-ID` for
/// email). If only the database went away, the outcome is kept in memory and the
/// retried job records it instead of sending again.
public struct NotificationSendHandler: JobHandler {
    public let kind = NotificationRequest.kind

    private let claims: ClaimBatcher
    private let finishes: FinishBatcher
    private let transport: CurlTransport
    private let settings: NotificationSettings
    /// Signs webhooks to hosts without a key of their own.
    private let defaultSigner: WebhookSigner?
    /// By host (`JOBD_WEBHOOK_SECRETS`).
    private let hostSigners: [String: WebhookSigner]
    private let deliveryGuard: DeliveryGuard
    private let unrecorded: UnrecordedOutcomes
    private let wallClock: @Sendable () -> Double

    /// Longest rate-limit wait spent asleep in the handler; longer ones snooze the job.
    static let maxInlineWait: Duration = .milliseconds(250)

    /// - Parameters:
    ///   - database: the notifications tier.
    ///   - wallClock: Unix seconds, for `Retry-After` dates, signatures and `Date:`.
    ///   - clock: for rate limits, breakers and how long an unrecorded outcome is kept.
    public init(
        database: TierDatabase, settings: NotificationSettings, userAgent: String = "jobd", logger: Logger,
        wallClock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 },
        clock: any MonotonicClock = ContinuousClock()
    ) {
        let store = NotificationStore(database: database)
        claims = ClaimBatcher(claimingWith: store)
        finishes = FinishBatcher(store: store)
        transport = CurlTransport(
            concurrency: settings.concurrency, connectTimeout: settings.connectTimeout, timeout: settings.timeout,
            userAgent: userAgent)
        self.settings = settings
        defaultSigner = settings.webhookSecret.map { WebhookSigner(secret: $0.value) }
        hostSigners = settings.webhookHostSecrets.mapValues { WebhookSigner(secret: $0.value) }
        deliveryGuard = DeliveryGuard(rateLimit: settings.rateLimit, breaker: settings.breaker, clock: clock)
        unrecorded = UnrecordedOutcomes(clock: clock)
        self.wallClock = wallClock
        if settings.webhookSecret == nil && settings.webhookHostSecrets.isEmpty {
            logger.warning("webhook secret not set; webhook notifications will be refused", metadata: [
                LogKey.notificationChannel: "webhook",
            ])
        } else if settings.webhookSecret == nil {
            logger.notice("no default webhook secret; webhooks only to hosts in JOBD_WEBHOOK_SECRETS", metadata: [
                LogKey.notificationChannel: "webhook", LogKey.count: "\(settings.webhookHostSecrets.count)",
            ])
        }
    }

    public func handle(_ job: ClaimedJob, context: JobContext) async throws {
        let request = try NotificationRequest(payload: try JSONPayload.object(job.payload, kind: kind))
        let route = try settings.route(request)
        var logger = context.logger
        logger[metadataKey: LogKey.notificationKey] = "\(request.idempotencyKey)"
        logger[metadataKey: LogKey.notificationChannel] = "\(request.channel.rawValue)"
        logger[metadataKey: LogKey.destination] = "\(route.destinationKey)"

        // 1. A send whose outcome could not be written: write it, send nothing.
        if let left = unrecorded.take(request.idempotencyKey) {
            let accepted: Bool
            do {
                accepted = try await finish(left.record)
            } catch {
                unrecorded.remember(request.idempotencyKey, left)
                throw error
            }
            if accepted {
                logger.notice("notification outcome recorded after the database returned", metadata: [
                    LogKey.outcome: "\(left.verdict.outcomeName)",
                ])
                try conclude(left.verdict, record: left.record, request: request)
                return
            }
            // The claim was taken over meanwhile: carry on like any run.
        }

        // 2. Circuit breaker and rate limit of the destination.
        let probe: Bool
        switch deliveryGuard.admit(route.destinationKey, maxWait: Self.maxInlineWait) {
        case .hold(let retryIn, let reason):
            let message = reason == "circuit_open"
                ? "the circuit of \(route.destinationKey) is open after repeated failures"
                : "the send rate to \(route.destinationKey) is at its limit"
            logger.debug("notification held back", metadata: [
                LogKey.errorCode: "\(reason)", LogKey.error: "\(message)", LogKey.retryIn: "\(retryIn.seconds)",
            ])
            // A little spread, so held jobs do not all return at the same instant.
            throw JobSnooze(for: retryIn * Double.random(in: 1.0...1.2) + .milliseconds(10), code: reason, message: message)
        case .go(let wait, let isProbe):
            probe = isProbe
            if wait > .zero {
                do {
                    try await Task.sleep(for: wait)
                } catch {
                    deliveryGuard.abandon(route.destinationKey, probe: probe)
                    throw error
                }
            }
        }

        // 3. Claim the notification and 4. send it, on a transfer worker taken first,
        // so the claim window never includes a wait for a free worker.
        let token = Self.claimToken()
        let step: SendStep
        do {
            step = try await transport.withSlot { slot -> SendStep in
                let claim = try await claims.submitAndWait(NotificationClaimRequest(
                    request: request, token: token, jobID: job.id, window: settings.sendingWindow)).get()
                guard case .claimed(let id, let number) = claim else { return .notClaimed(claim) }
                let startedAt = wallClock()
                let report = await send(request, route: route, slot: slot)
                return .sent(id: id, tryNumber: number, startedAt: startedAt, report: report)
            }
        } catch {
            deliveryGuard.abandon(route.destinationKey, probe: probe)
            throw error
        }
        let notificationID: Int64
        let tryNumber: Int
        let startedAt: Double
        let report: TransferReport
        switch step {
        case .sent(let id, let number, let started, let transfer):
            notificationID = id
            tryNumber = number
            startedAt = started
            report = transfer
        case .notClaimed(.alreadySent(let id)):
            deliveryGuard.abandon(route.destinationKey, probe: probe)
            logger.info("notification already sent; not sending again", metadata: [LogKey.notificationID: "\(id)"])
            return
        case .notClaimed(.busy(let retryIn)):
            deliveryGuard.abandon(route.destinationKey, probe: probe)
            throw JobSnooze(
                for: max(.milliseconds(50), retryIn + .milliseconds(50)), code: "notification_in_flight",
                message: "another run is sending the notification with idempotency_key \(request.idempotencyKey); looking again once its claim ends")
        case .notClaimed(.conflict):
            deliveryGuard.abandon(route.destinationKey, probe: probe)
            throw JobFailure.permanent(
                "idempotency_key \(request.idempotencyKey) already names a different notification",
                code: "idempotency_conflict")
        case .notClaimed(.claimed):
            preconditionFailure("a claimed notification is always sent")
        }

        // 5. Decide, feed the breaker, record.
        let verdict = DeliveryPolicy.verdict(channel: request.channel, outcome: report.outcome, now: wallClock())
        if report.outcome == .cancelled {
            deliveryGuard.abandon(route.destinationKey, probe: probe)
        } else {
            switch deliveryGuard.record(route.destinationKey, failure: verdict.isDestinationFailure) {
            case .none: break
            case .opened(let cooldown):
                logger.warning("notification circuit opened", metadata: [
                    LogKey.messageID: "\(JobdMessageID.notificationCircuitOpened.id)", LogKey.retryIn: "\(cooldown.seconds)",
                    LogKey.errorCode: "circuit_open",
                    LogKey.error: "\(route.destinationKey) failed repeatedly, last with \(DeliveryPolicy.errorCode(channel: request.channel, outcome: report.outcome) ?? verdict.outcomeName)",
                ])
            case .closed:
                logger.notice("notification circuit closed", metadata: [
                    LogKey.messageID: "\(JobdMessageID.notificationCircuitClosed.id)",
                ])
            }
        }
        let statusCode: Int? = if case .response(let status, _) = report.outcome { status } else { nil }
        let errorCode = DeliveryPolicy.errorCode(channel: request.channel, outcome: report.outcome)
        let newStatus: String
        switch verdict {
        case .sent: newStatus = "sent"
        case .permanent: newStatus = "failed"
        // The job is dead-lettered after this attempt: the notification will not be tried again.
        case .retry: newStatus = job.attempt >= job.maxAttempts && report.outcome != .cancelled ? "failed" : "pending"
        case .snooze: newStatus = "pending"
        }
        let record = NotificationStore.TryRecord(
            notificationID: notificationID, tryNumber: tryNumber, claimToken: token, jobID: job.id,
            jobAttempt: job.attempt, destination: route.destinationKey, startedAt: startedAt,
            durationMs: (report.seconds * 1000 * 1000).rounded() / 1000, outcome: verdict.outcomeName,
            statusCode: statusCode, errorCode: errorCode, excerpt: report.excerpt, newStatus: newStatus,
            lastError: verdict == .sent ? nil : Self.describe(errorCode: errorCode, excerpt: report.excerpt))
        logger.debug("notification try finished", metadata: [
            LogKey.outcome: "\(verdict.outcomeName)", LogKey.statusCode: "\(statusCode.map(String.init) ?? "")",
            LogKey.durationMs: "\(TotalConversion.milliseconds(report.seconds))",
        ])
        let accepted: Bool
        do {
            accepted = try await finish(record)
        } catch {
            unrecorded.remember(request.idempotencyKey, .init(record: record, verdict: verdict))
            logger.warning("notification outcome not recorded; kept for the job's next run", metadata: [
                LogKey.outcome: "\(verdict.outcomeName)", LogKey.errorCode: "outcome_unrecorded",
                LogKey.error: "\(Self.nonEmpty(String(describing: error), or: "writing the outcome failed"))",
            ])
            throw error
        }
        if !accepted {
            // Our claim window passed and another run took the notification over:
            // its outcome is the one that counts.
            logger.warning("notification claim was taken over; outcome not recorded", metadata: [
                LogKey.outcome: "\(verdict.outcomeName)", LogKey.errorCode: "claim_lost",
                LogKey.error: "the claim window passed and another run took the notification over",
            ])
            if verdict == .sent { return }
            throw JobFailure.transient("notification claim was taken over by another run", code: "claim_lost")
        }
        if report.outcome == .cancelled { throw CancellationError() }
        try conclude(verdict, record: record, request: request)
    }

    /// Writes the record through the group-commit batcher, whose writer is the
    /// daemon's service (`services`), not this job's task: a drain's cancellation
    /// cannot stop the write of a send that already happened.
    private func finish(_ record: NotificationStore.TryRecord) async throws -> Bool {
        try await finishes.submitAndWait(record)
    }

    /// The claim and finish batchers' writers; the daemon runs them while its pools run.
    public var services: [any Service] { [claims.service, finishes.service] }

    /// Turns the verdict into the job's result.
    private func conclude(_ verdict: DeliveryVerdict, record: NotificationStore.TryRecord, request: NotificationRequest) throws {
        let what = "\(request.channel.rawValue) to \(record.destination)"
        switch verdict {
        case .sent:
            return
        case .permanent:
            throw JobFailure.permanent(
                "\(what) refused: \(record.lastError ?? "")", code: record.errorCode ?? "notification_refused")
        case .retry:
            throw JobFailure.transient(
                "\(what) failed: \(record.lastError ?? "")", code: record.errorCode ?? "notification_failed")
        case .snooze(let seconds):
            throw JobSnooze(
                for: TotalConversion.duration(seconds: seconds), code: record.errorCode ?? "retry_after",
                message: "\(what) asked to come back later: \(record.lastError ?? "Retry-After")")
        }
    }

    private enum SendStep: Sendable {
        case sent(id: Int64, tryNumber: Int, startedAt: Double, report: TransferReport)
        case notClaimed(NotificationStore.Claim)
    }

    private func send(_ request: NotificationRequest, route: NotificationRoute, slot: CurlTransport.Slot) async -> TransferReport {
        let idempotency = "Idempotency-Key: \(request.idempotencyKey)"
        switch request.channel {
        case .webhook:
            let body = Array(request.body.utf8)
            var headers = ["Content-Type: application/json", idempotency]
            // route() refused hosts without a key, so a webhook is never sent unsigned.
            let host = EndpointURL(parsing: route.endpoint)?.host ?? ""
            if let signer = hostSigners[host] ?? defaultSigner {
                headers += signer.headers(
                    timestamp: Int64(wallClock()), url: route.endpoint, idempotencyKey: request.idempotencyKey, body: body)
            }
            return await slot.post(HTTPPost(url: route.endpoint, headers: headers, body: body, networkPolicy: settings.networkPolicy))
        case .sms:
            let body = Array(JSONValue.object(["to": .string(request.to), "body": .string(request.body)]).canonicalText.utf8)
            var headers = ["Content-Type: application/json", idempotency]
            if let token = settings.smsToken { headers.append("Authorization: Bearer \(token.value)") }
            return await slot.post(HTTPPost(url: route.endpoint, headers: headers, body: body, networkPolicy: settings.networkPolicy))
        case .email:
            // route() checked that both are set.
            let relay = settings.smtpRelay!
            let from = settings.smtpFrom!
            let message = EmailMessage.render(
                from: from, to: request.to, subject: request.subject ?? "", body: request.body,
                idempotencyKey: request.idempotencyKey, date: Int64(wallClock()))
            return await slot.send(MailSubmission(
                relayURL: relay.curlURL, username: relay.username, password: relay.password,
                startTLS: settings.effectiveStartTLS, from: from, to: request.to, message: Array(message.utf8)))
        }
    }

    private static func nonEmpty(_ text: String, or fallback: String) -> String {
        text.isEmpty ? fallback : text
    }

    private static func describe(errorCode: String?, excerpt: String) -> String {
        let head = String(excerpt.prefix(200))
        switch (errorCode, head.isEmpty) {
        case (let code?, false): return "\(code): \(head)"
        case (let code?, true): return code
        case (nil, _): return head
        }
    }

    /// 128 random bits: the fence of one claim.
    public static func claimToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return String(generator.next() as UInt64, radix: 16) + "-" + String(generator.next() as UInt64, radix: 16)
    }
}
