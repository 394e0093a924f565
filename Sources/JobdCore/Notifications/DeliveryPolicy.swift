/// What one try at a provider came to, as the transport saw it.
public enum TransferOutcome: Sendable, Equatable {
    /// The provider answered: an HTTP status, or the SMTP reply code of the last
    /// command. `retryAfter` is the raw `Retry-After` header, if any.
    case response(status: Int, retryAfter: String?)
    /// No complete answer within the connect or total timeout.
    case timedOut
    /// Could not resolve or connect, or the connection broke before an answer.
    case connectionFailed
    /// Aborted because the job was cancelled (a drain that ran out of time).
    case cancelled
    /// Anything else the client library reported (TLS, protocol errors): retried.
    case failed
    /// Every address the destination resolved to is outside `OutboundNetworkPolicy`:
    /// nothing was connected to. `address` lists the refused addresses and their scopes.
    case destinationNotAllowed(address: String)
    /// The relay does not offer STARTTLS and `JOBD_SMTP_STARTTLS` is `require`: the
    /// session ended before AUTH or any mail was sent.
    case tlsUnavailable
}

/// What to do with a notification after one try.
public enum DeliveryVerdict: Sendable, Equatable {
    /// Accepted by the provider: mark sent, never send again.
    case sent
    /// Refused for good (e.g. HTTP 400, SMTP 550): mark failed, dead-letter the job.
    case permanent
    /// Worth another try after the job's backoff (5xx, 408, 429, timeouts, connection errors).
    case retry
    /// The provider said when to come back (429/503 with `Retry-After`): run the job
    /// again then, without spending an attempt.
    case snooze(seconds: Double)

    /// Whether the circuit breaker counts this try against the destination. A
    /// permanent refusal comes from a healthy server, so it does not.
    public var isDestinationFailure: Bool {
        switch self {
        case .sent, .permanent: false
        case .retry, .snooze: true
        }
    }

    /// The `outcome` column of `notifications.attempts`.
    public var outcomeName: String {
        switch self {
        case .sent: "sent"
        case .permanent: "failed"
        case .retry: "retry"
        case .snooze: "snoozed"
        }
    }
}

/// The pure decision table from a try's outcome to a verdict.
public enum DeliveryPolicy {
    /// A `Retry-After` further out than this is capped: a provider cannot park a job for weeks.
    public static let maxSnoozeSeconds = 86_400.0
    /// …and one nearer than this is raised, so `Retry-After: 0` cannot spin a job
    /// that spends no attempts.
    public static let minSnoozeSeconds = 1.0

    /// - Parameter now: Unix seconds, for `Retry-After` given as an HTTP date.
    public static func verdict(channel: NotificationChannel, outcome: TransferOutcome, now: Double) -> DeliveryVerdict {
        switch outcome {
        case .response(let status, let retryAfter):
            return channel == .email ? smtpVerdict(code: status) : httpVerdict(status: status, retryAfter: retryAfter, now: now)
        case .destinationNotAllowed:
            return .permanent
        case .timedOut, .connectionFailed, .cancelled, .failed, .tlsUnavailable:
            return .retry
        }
    }

    /// 2xx sent; 429/503 with a usable `Retry-After` snooze until then; 408, 429,
    /// 5xx retry; every other 4xx — and a 3xx, since redirects are not followed
    /// (they would carry a signed body to a host nobody allowed) — is permanent.
    public static func httpVerdict(status: Int, retryAfter: String?, now: Double) -> DeliveryVerdict {
        switch status {
        case 200...299:
            return .sent
        case 429, 503:
            if let retryAfter, let seconds = RetryAfter.seconds(retryAfter, now: now) {
                return .snooze(seconds: min(maxSnoozeSeconds, max(minSnoozeSeconds, seconds)))
            }
            return .retry
        case 408:
            return .retry
        case 300...499:
            return .permanent
        default:
            // 5xx, and codes no server should send (1xx as a final answer, 6xx…).
            return .retry
        }
    }

    /// SMTP reply codes: 2xx accepted; 4xx transient (greylisting, full mailbox,
    /// rate limits); 5xx permanent (no such user, policy refusal).
    public static func smtpVerdict(code: Int) -> DeliveryVerdict {
        switch code {
        case 200...299: .sent
        case 500...599: .permanent
        default: .retry
        }
    }

    /// A short, stable reason code for logs and the attempts table.
    public static func errorCode(channel: NotificationChannel, outcome: TransferOutcome) -> String? {
        switch outcome {
        case .response(let status, _):
            if channel == .email { return (200...299).contains(status) ? nil : "smtp_\(status)" }
            return (200...299).contains(status) ? nil : "http_\(status)"
        case .timedOut: return "timeout"
        case .connectionFailed: return "connect_failed"
        case .cancelled: return "cancelled"
        case .failed: return "transfer_failed"
        case .destinationNotAllowed: return "destination_not_allowed"
        case .tlsUnavailable: return "smtp_starttls_unavailable"
        }
    }
}

/// `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP date.
public enum RetryAfter {
    /// The seconds from `now` (Unix seconds) the header asks to wait, 0 for a date in
    /// the past, nil when the value is neither form.
    public static func seconds(_ text: String, now: Double) -> Double? {
        let value = text.trimmingSpaces()
        if !value.isEmpty, value.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) {
            // Arbitrarily long digit strings saturate instead of failing.
            return Double(value.prefix(12)) ?? nil
        }
        guard let date = HTTPDate.unixSeconds(value) else { return nil }
        return max(0, Double(date) - now)
    }
}

/// The three date formats HTTP recipients must accept (RFC 9110 §5.6.7).
public enum HTTPDate {
    static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    /// `Sun, 06 Nov 1994 08:49:37 GMT`, `Sunday, 06-Nov-94 08:49:37 GMT` or
    /// `Sun Nov  6 08:49:37 1994`, as Unix seconds.
    public static func unixSeconds(_ text: String) -> Int64? {
        let parts = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        var day: Int?, month: Int?, year: Int?, clock: String?
        if parts.count == 6, parts[5] == "GMT", parts[0].hasSuffix(",") {
            day = Int(parts[1]); month = monthNumber(parts[2]); year = Int(parts[3]); clock = parts[4]
        } else if parts.count == 4, parts[3] == "GMT", parts[0].hasSuffix(",") {
            let date = parts[1].split(separator: "-").map(String.init)
            guard date.count == 3, date[2].count == 2, let short = Int(date[2]) else { return nil }
            day = Int(date[0]); month = monthNumber(date[1]); clock = parts[2]
            // RFC 9110: a two-digit year more than 50 years ahead means the past century.
            year = short < 70 ? 2000 + short : 1900 + short
        } else if parts.count == 5 {
            month = monthNumber(parts[1]); day = Int(parts[2]); clock = parts[3]; year = Int(parts[4])
        } else {
            return nil
        }
        guard let day, let month, let year, let clock, (1...31).contains(day), (1...9999).contains(year) else { return nil }
        let hms = clock.split(separator: ":").map { Int($0) }
        guard hms.count == 3, let hour = hms[0], let minute = hms[1], let second = hms[2],
              (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second) else { return nil }
        return CivilTime.unixSeconds(year: year, month: month, day: day) + Int64(hour * 3600 + minute * 60 + second)
    }

    private static func monthNumber(_ text: String) -> Int? {
        months.firstIndex(of: text.lowercased()).map { $0 + 1 }
    }
}

/// Proleptic Gregorian calendar arithmetic in UTC (Howard Hinnant's algorithms),
/// so the core needs no Foundation to read or write dates.
public enum CivilTime {
    public static func unixSeconds(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return (era * 146_097 + doe - 719_468) * 86_400
    }

    /// (year, month, day, hour, minute, second, weekday 0 = Sunday) of Unix seconds.
    public static func components(_ unixSeconds: Int64) -> (year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, weekday: Int) {
        var days = unixSeconds / 86_400
        var secs = unixSeconds % 86_400
        if secs < 0 { secs += 86_400; days -= 1 }
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        let weekday = ((days % 7) + 11) % 7  // 1970-01-01 was a Thursday (4)
        return (Int(year), Int(month), Int(day), Int(secs / 3600), Int(secs % 3600 / 60), Int(secs % 60), Int(weekday))
    }
}
