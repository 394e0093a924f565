import Foundation
import JobdAnalytics
import JobdCore
import Testing

/// Parses `2026-03-29T01:00:00Z`-style UTC instants for readable expectations.
private func utc(_ text: String) -> Date {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    guard let date = formatter.date(from: text) else { preconditionFailure("bad test date \(text)") }
    return date
}

private func iso(_ date: Date?) -> String? { date.map(ScheduledJob.isoTime) }

private func zone(_ identifier: String) -> TimeZone {
    guard let zone = TimeZone(identifier: identifier) else { preconditionFailure("no time zone \(identifier) (tzdata)") }
    return zone
}

@Suite("CronSchedule")
struct CronTests {
    @Test("every minute: the next minute boundary strictly after the instant")
    func everyMinute() throws {
        let cron = try CronSchedule("* * * * *")
        #expect(iso(cron.nextSlot(after: utc("2026-01-01T10:00:00Z"))) == "2026-01-01T10:01:00Z")
        #expect(iso(cron.nextSlot(after: utc("2026-01-01T10:00:59Z"))) == "2026-01-01T10:01:00Z")
        #expect(iso(cron.nextSlot(after: utc("2026-12-31T23:59:30Z"))) == "2027-01-01T00:00:00Z")
    }

    @Test("steps, ranges and lists")
    func stepsRangesLists() throws {
        let quarter = try CronSchedule("*/15 * * * *")
        #expect(quarter.slots(after: utc("2026-01-01T10:07:00Z"), through: utc("2026-01-01T11:00:00Z")).map(ScheduledJob.isoTime)
            == ["2026-01-01T10:15:00Z", "2026-01-01T10:30:00Z", "2026-01-01T10:45:00Z", "2026-01-01T11:00:00Z"])
        let working = try CronSchedule("0 9-17/4 * * 1-5")  // 09, 13, 17 on weekdays
        // 2026-01-02 is a Friday; the next weekday after its 17:00 is Monday the 5th.
        #expect(working.slots(after: utc("2026-01-02T08:00:00Z"), through: utc("2026-01-05T10:00:00Z")).map(ScheduledJob.isoTime)
            == ["2026-01-02T09:00:00Z", "2026-01-02T13:00:00Z", "2026-01-02T17:00:00Z", "2026-01-05T09:00:00Z"])
        let list = try CronSchedule("5,35 0 1,15 * *")
        #expect(iso(list.nextSlot(after: utc("2026-01-01T00:35:00Z"))) == "2026-01-15T00:05:00Z")
        let from = try CronSchedule("50/5 * * * *")  // 50, 55
        #expect(iso(from.nextSlot(after: utc("2026-01-01T10:51:00Z"))) == "2026-01-01T10:55:00Z")
        #expect(iso(from.nextSlot(after: utc("2026-01-01T10:55:00Z"))) == "2026-01-01T11:50:00Z")
    }

    @Test("month and weekday names, 7 as Sunday, macros")
    func namesAndMacros() throws {
        #expect(try CronSchedule("0 0 * JAN,jul SUN") == CronSchedule("0 0 * 1,7 0"))
        #expect(try CronSchedule("0 0 * * 7") == CronSchedule("0 0 * * 0"))
        #expect(try CronSchedule("0 0 * * mon-fri") == CronSchedule("0 0 * * 1-5"))
        #expect(iso(try CronSchedule("@daily").nextSlot(after: utc("2026-05-05T12:00:00Z"))) == "2026-05-06T00:00:00Z")
        #expect(iso(try CronSchedule("@hourly").nextSlot(after: utc("2026-05-05T12:00:00Z"))) == "2026-05-05T13:00:00Z")
        #expect(iso(try CronSchedule("@weekly").nextSlot(after: utc("2026-05-05T12:00:00Z"))) == "2026-05-10T00:00:00Z")
        #expect(iso(try CronSchedule("@monthly").nextSlot(after: utc("2026-05-05T12:00:00Z"))) == "2026-06-01T00:00:00Z")
        #expect(iso(try CronSchedule("@yearly").nextSlot(after: utc("2026-05-05T12:00:00Z"))) == "2027-01-01T00:00:00Z")
    }

    @Test("day-of-month and day-of-week: either when both are restricted, else the restricted one")
    func dayFields() throws {
        // The 13th, or any Friday.
        let either = try CronSchedule("0 0 13 * 5")
        #expect(either.slots(after: utc("2026-03-01T00:00:00Z"), through: utc("2026-03-14T00:00:00Z")).map(ScheduledJob.isoTime)
            == ["2026-03-06T00:00:00Z", "2026-03-13T00:00:00Z"])
        // `*/2` starts with `*`, so (as in Vixie cron) only the weekday decides: every Monday.
        let star = try CronSchedule("0 0 */2 * 1")
        let slots = star.slots(after: utc("2026-03-01T00:00:00Z"), through: utc("2026-04-01T00:00:00Z"))
        #expect(slots.map(ScheduledJob.isoTime) == [
            "2026-03-02T00:00:00Z", "2026-03-09T00:00:00Z", "2026-03-16T00:00:00Z", "2026-03-23T00:00:00Z",
            "2026-03-30T00:00:00Z",
        ])
        // Day-of-month alone.
        let odd = try CronSchedule("0 0 1-5/2 3 *")
        #expect(odd.slots(after: utc("2026-01-01T00:00:00Z"), through: utc("2027-01-01T00:00:00Z")).map(ScheduledJob.isoTime)
            == ["2026-03-01T00:00:00Z", "2026-03-03T00:00:00Z", "2026-03-05T00:00:00Z"])
    }

    @Test("leap day: 29 February fires only in leap years")
    func leapDay() throws {
        let cron = try CronSchedule("0 12 29 2 *")
        #expect(iso(cron.nextSlot(after: utc("2025-01-01T00:00:00Z"))) == "2028-02-29T12:00:00Z")
        #expect(iso(cron.nextSlot(after: utc("2096-03-01T00:00:00Z"))) == "2104-02-29T12:00:00Z")  // 2100 is not leap
    }

    @Test("bad expressions are rejected with a reason", arguments: [
        ("* * * *", "expected 5 fields"),
        ("60 * * * *", "minute 60 is outside 0-59"),
        ("* 24 * * *", "hour 24 is outside 0-23"),
        ("* * 0 * *", "day-of-month 0 is outside 1-31"),
        ("* * * 13 *", "month 13 is outside 1-12"),
        ("* * * * 8", "day-of-week 8 is outside 0-7"),
        ("*/0 * * * *", "step \"0\""),
        ("5-1 * * * *", "runs backwards"),
        ("* * * FOO *", "\"FOO\" is not a number or name"),
        ("1,,2 * * * *", "empty list element"),
        ("0 0 30 2 *", "never matches"),
        ("@fortnightly", "unknown macro"),
    ])
    func rejected(expression: String, reason: String) {
        #expect {
            try CronSchedule(expression)
        } throws: { error in
            "\(error)".contains(reason)
        }
    }

    // MARK: Time zones and DST

    @Test("a wall time in a time zone: 02:00 Berlin is 01:00 UTC in winter, 00:00 UTC in summer")
    func timeZone() throws {
        let cron = try CronSchedule("0 2 * * *", timeZone: zone("Europe/Berlin"))
        #expect(iso(cron.nextSlot(after: utc("2026-01-10T12:00:00Z"))) == "2026-01-11T01:00:00Z")
        #expect(iso(cron.nextSlot(after: utc("2026-07-10T12:00:00Z"))) == "2026-07-11T00:00:00Z")
    }

    @Test("spring forward: a skipped wall time fires once, at the end of the gap")
    func springForward() throws {
        // Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
        let berlin = zone("Europe/Berlin")
        let daily = try CronSchedule("30 2 * * *", timeZone: berlin)
        let slots = daily.slots(after: utc("2026-03-27T12:00:00Z"), through: utc("2026-03-30T12:00:00Z"))
        #expect(slots.map(ScheduledJob.isoTime) == [
            "2026-03-28T01:30:00Z",  // 02:30 CET
            "2026-03-29T01:00:00Z",  // 02:30 does not exist: 03:00 CEST, the first instant after the gap
            "2026-03-30T00:30:00Z",  // 02:30 CEST
        ])
        // Every 15 minutes: the four skipped wall times collapse into one slot at 03:00.
        let quarter = try CronSchedule("*/15 * * * *", timeZone: berlin)
        let around = quarter.slots(after: utc("2026-03-29T00:30:00Z"), through: utc("2026-03-29T01:30:00Z"))
        #expect(around.map(ScheduledJob.isoTime) == [
            "2026-03-29T00:45:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:15:00Z", "2026-03-29T01:30:00Z",
        ])
    }

    @Test("fall back: a repeated wall time fires once unless the hour field is *")
    func fallBack() throws {
        // New York, 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:xx happens twice
        // (05:xx UTC, then 06:xx UTC).
        let newYork = zone("America/New_York")
        let daily = try CronSchedule("30 1 * * *", timeZone: newYork)
        let slots = daily.slots(after: utc("2026-10-31T12:00:00Z"), through: utc("2026-11-02T12:00:00Z"))
        #expect(slots.map(ScheduledJob.isoTime) == ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"])
        // Hourly at :30: both 01:30s run, an hour apart.
        let hourly = try CronSchedule("30 * * * *", timeZone: newYork)
        let hours = hourly.slots(after: utc("2026-11-01T04:00:00Z"), through: utc("2026-11-01T08:00:00Z"))
        #expect(hours.map(ScheduledJob.isoTime) == [
            "2026-11-01T04:30:00Z",  // 00:30 EDT
            "2026-11-01T05:30:00Z",  // 01:30 EDT
            "2026-11-01T06:30:00Z",  // 01:30 EST (again)
            "2026-11-01T07:30:00Z",  // 02:30 EST
        ])
        // Every minute through the overlap: 120 distinct minutes from 01:00 EDT to 01:59 EST.
        let minutely = try CronSchedule("* * * * *", timeZone: newYork)
        let minutes = minutely.slots(after: utc("2026-11-01T04:59:00Z"), through: utc("2026-11-01T06:59:00Z"))
        #expect(minutes.count == 120)
        #expect(Set(minutes).count == 120)
        #expect(zip(minutes, minutes.dropFirst()).allSatisfy { $1.timeIntervalSince($0) == 60 })
    }

    @Test("a slot is never before or at the instant, and consecutive slots increase")
    func monotonic() throws {
        let cron = try CronSchedule("*/7 1-3 * * *", timeZone: zone("Europe/Berlin"))
        var cursor = utc("2026-03-25T00:00:00Z")
        for _ in 0..<200 {
            let next = try #require(cron.nextSlot(after: cursor))
            #expect(next > cursor)
            cursor = next
        }
    }
}

@Suite("ScheduledJob")
struct ScheduleTests {
    @Test("an entry with a time zone and a payload")
    func fullEntry() throws {
        let entry = try ScheduledJob.parseEntry(#"digest = 0 6 * * MON-FRI Europe/Berlin digest.send {"to": "ops; all"}"#)
        guard case .job(let job) = entry else { Issue.record("not a job: \(entry)"); return }
        #expect(job.name == "digest")
        #expect(job.kind == "digest.send")
        #expect(job.cron.timeZone.identifier == "Europe/Berlin")
        #expect(job.cron == (try CronSchedule("0 6 * * 1-5", timeZone: zone("Europe/Berlin"))))
        #expect(job.payload == #"{"to": "ops; all"}"#)
    }

    @Test("defaults: UTC, payload {}; macros; UTC named explicitly")
    func minimalEntries() throws {
        let entries = try ScheduledJob.parseList("a = @hourly noop\nb = 0 0 * * * UTC noop ; c = off")
        #expect(entries.map(\.name) == ["a", "b", "c"])
        guard case .job(let a) = entries[0], case .job(let b) = entries[1] else { Issue.record("\(entries)"); return }
        #expect(a.cron.timeZone.secondsFromGMT() == 0)  // Foundation may spell UTC "GMT"
        #expect(a.payload == "{}")
        #expect(b.kind == "noop")
        #expect(entries[2] == .off("c"))
    }

    @Test("resolve: built-ins stay unless replaced by name or turned off")
    func resolveAgainstDefaults() throws {
        let builtIns = ["analytics-rollup", "queue-prune", "queue-trim", "notifications-trim", "analytics-trim"]
        #expect(try ScheduledJob.resolve(nil).map(\.name) == builtIns)
        // A replaced entry moves to the end of the list.
        let replaced = try ScheduledJob.resolve("queue-prune = 0 3 * * * queue.prune {\"batch\": 100}")
        #expect(replaced.map(\.name) == ["analytics-rollup", "queue-trim", "notifications-trim", "analytics-trim", "queue-prune"])
        #expect(replaced[4].cron == (try CronSchedule("0 3 * * *")))
        #expect(try ScheduledJob.resolve(builtIns.map { "\($0) = off" }.joined(separator: "; ")).isEmpty)
        #expect(try ScheduledJob.resolve("x = * * * * * noop").map(\.name) == builtIns + ["x"])
    }

    @Test("bad entries name the problem", arguments: [
        ("nonsense", "expected NAME = CRON"),
        ("bad name = * * * * * noop", "schedule name"),
        ("x = * * * * noop", "missing the job kind"),
        ("x = * * * * * Mars/Olympus noop", "unknown time zone"),
        ("x = 61 * * * * noop", "minute 61"),
        ("x = * * * * * noop [1]", "JSON object"),
        ("x = * * * * * noop {oops", "JSON object"),
        ("x = * * * * * noop; x = @daily noop", "given twice"),
        ("x = off now", "nothing may follow off"),
    ])
    func badEntries(text: String, reason: String) {
        #expect {
            try ScheduledJob.parseList(text)
        } throws: { error in
            "\(error)".contains(reason)
        }
    }

    @Test("slot placeholders and the unique key")
    func placeholders() throws {
        let job = ScheduledJob(
            name: "rollup", cron: try CronSchedule("15 0 * * *"), kind: "analytics.rollup",
            payload: #"{"day": "${previous_date}", "for": "${slot_date}", "at": "${slot}"}"#)
        let slot = utc("2026-03-01T00:15:00Z")
        #expect(job.payload(for: slot) == #"{"day": "2026-02-28", "for": "2026-03-01", "at": "2026-03-01T00:15:00Z"}"#)
        #expect(job.uniqueKey(for: slot) == "cron:rollup:2026-03-01T00:15:00Z")
        #expect(ScheduledJob.defaults[0].payload(for: slot) == #"{"day": "2026-02-28"}"#)
    }
}

@Suite("Analytics core")
struct AnalyticsCoreTests {
    @Test("days: parse, print, yesterday, bounds")
    func days() throws {
        let day = try #require(AnalyticsDay("2024-02-29"))
        #expect(day.description == "2024-02-29")
        #expect(day.startISO == "2024-02-29T00:00:00Z")
        #expect(day.endISO == "2024-03-01T00:00:00Z")
        #expect(AnalyticsDay("2023-02-29") == nil)
        #expect(AnalyticsDay("2024-2-9") == nil)
        #expect(AnalyticsDay("yesterday") == nil)
        #expect(AnalyticsDay.yesterday(now: utc("2026-01-01T00:00:01Z")).description == "2025-12-31")
        #expect(AnalyticsDay(containing: utc("2026-01-01T23:59:59Z")).description == "2026-01-01")
    }

    @Test("the text report shows every section, totals and missing sources")
    func textReport() throws {
        var report = DailyReport(day: try #require(AnalyticsDay("2026-01-01")), stored: true)
        report.jobs = [.init(kind: "noop", outcome: "completed", attempts: 10, waitP50Ms: 1.5, runP99Ms: 250)]
        report.content = [
            .init(tenantID: "t1", messages: 2, rawBytes: 4_000, storedBytes: 1_000, compressionRatio: 4),
            .init(tenantID: "t2", messages: 1, rawBytes: 2_000, storedBytes: 1_000, compressionRatio: 2),
        ]
        report.sections = [.init(section: "notifications", status: "source_missing", detail: "notifications.attempts not in the notifications database")]
        let text = report.text()
        #expect(text.contains("analytics for 2026-01-01 (UTC)"))
        #expect(text.contains("notifications: source_missing"))
        #expect(text.contains("noop"))
        #expect(text.contains("1.50"))
        #expect(text.contains("(all)"))
        #expect(text.contains("3.00x"))  // 6000 / 2000 overall
        #expect(report.contentTotal.messages == 3)
    }
}
