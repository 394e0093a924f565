import Foundation
import JobdAssembly
import JobdCore
import JobdPostgres
import JobdQueue

// MARK: - The campaigns section's results

extension BenchReport {
    /// `--sections campaigns`: one campaign to a list of `contacts` imported by COPY,
    /// delivered by the daemon (as `jobd run` assembles it) to a loopback SMTP sink.
    struct Campaigns: Codable {
        /// Contacts imported and on the list; `suppressed` of them are not subscribed
        /// (every 100th unsubscribed, every 100th bounced), the rest are `recipients`.
        var contacts: Int
        var suppressed: Int
        var recipients: Int
        /// Recipients per delivery job (the campaign's batch_size) and the daemon's workers.
        var batchSize: Int
        var workers: Int
        /// The SMTP sink script the messages went to.
        var sink: String
        /// COPY of the contacts plus the list's memberships (INSERT … SELECT), seconds.
        var importSeconds: Double
        /// From the commit of the UPDATE that schedules the campaign until its fan-out
        /// is done and the outbox is empty: every delivery row created and every
        /// delivery job in queue.jobs (polled every 10 ms). Delivery runs meanwhile.
        var fanOutSeconds: Double
        var deliveryJobs: Int
        /// From the first delivery recorded `sent` to the last (oltp.deliveries.sent_at).
        var deliverySeconds: Double
        /// `sent` over `deliverySeconds`.
        var recipientsPerSecond: Double
        /// From the scheduling commit until the campaign is `sent` (polled every 50 ms).
        var scheduleToSentSeconds: Double
        /// Deliveries recorded sent, and suppressed, in oltp.deliveries.
        var sent: Int
        var suppressedDeliveries: Int
        /// What the sink recorded: messages (one per recipient), distinct recipients,
        /// copies beyond one per recipient, and messages to suppressed contacts.
        var sinkMessages: Int
        var sinkRecipients: Int
        var sinkDuplicates: Int
        var sinkToSuppressed: Int
        /// Peak resident set of this process (the daemon and the bench's polling; the
        /// mark reset after the import) until the fan-out was done, and until the end.
        var peakRSSFanOutMiB: Double
        var peakRSSMiB: Double
        /// Contact by address (`workspace_id = $1 AND lower(address) = lower($2)`,
        /// prepared, one connection, random addresses of the list, a third in upper
        /// case), each round trip timed; run on an idle daemon-less database.
        var lookups: Int
        var lookupP50Ms: Double
        var lookupP99Ms: Double
        var lookupMaxMs: Double
    }

    func campaignLines() -> [String] {
        guard let c = campaigns else { return [] }
        func f(_ value: Double, _ digits: Int = 0) -> String { String(format: "%.\(digits)f", value) }
        return [
            "",
            "campaigns (\(c.contacts) contacts by COPY, \(c.suppressed) not subscribed; batch \(c.batchSize), \(c.workers) workers; sink \(c.sink))",
            "  import \(f(c.importSeconds, 2)) s; fan-out \(f(c.fanOutSeconds, 2)) s (\(c.deliveryJobs) delivery jobs); delivery \(f(c.recipientsPerSecond)) recipients/s over \(f(c.deliverySeconds, 2)) s; schedule → sent \(f(c.scheduleToSentSeconds, 2)) s",
            "  sent \(c.sent), suppressed \(c.suppressedDeliveries); sink received \(c.sinkMessages) messages, \(c.sinkRecipients) recipients, \(c.sinkDuplicates) duplicates, \(c.sinkToSuppressed) to suppressed contacts",
            "  peak RSS \(f(c.peakRSSFanOutMiB, 1)) MiB to the end of fan-out, \(f(c.peakRSSMiB, 1)) MiB to the end of delivery",
            "  contact by address (\(c.lookups) lookups): p50 \(f(c.lookupP50Ms, 3)) ms, p99 \(f(c.lookupP99Ms, 3)) ms, max \(f(c.lookupMaxMs, 3)) ms",
        ]
    }
}

extension BenchTargets {
    /// The issue's targets hold at a scale (100k recipients; a 1M-contact list): a
    /// smaller run shows its figure but no verdict.
    static func campaigns(_ r: BenchReport) -> [BenchReport.Target] {
        func f(_ value: Double, _ digits: Int = 0) -> String { String(format: "%.\(digits)f", value) }
        let c = r.campaigns
        func at(_ scale: Int) -> Bool? { c.map { $0.contacts >= scale ? true : nil } ?? nil }
        func scaleNote(_ scale: Int) -> String {
            guard let c, c.contacts < scale else { return "" }
            return " (at \(c.contacts) contacts: no verdict below \(scale))"
        }
        // Fan-out grows with the list, so a larger list is judged by its time per 100k
        // contacts; the other targets are per recipient or name their own scale.
        func fanOutPer100k(_ c: BenchReport.Campaigns) -> Double {
            c.fanOutSeconds * 100_000 / Double(max(c.contacts, 1))
        }
        func fanOutScaleNote(_ c: BenchReport.Campaigns) -> String {
            c.contacts > 100_000 ? " (\(f(fanOutPer100k(c), 2)) s per 100k at \(c.contacts) contacts)" : ""
        }
        return [
            .init(
                name: "campaign fan-out, 100k recipients", target: "≤ 10 s",
                measured: c.map { "\(f($0.fanOutSeconds, 2)) s" + fanOutScaleNote($0) + scaleNote(100_000) } ?? "-",
                met: at(100_000).flatMap { _ in c.map { fanOutPer100k($0) <= 10 } }),
            .init(
                name: "campaign delivery to loopback sink", target: "≥ 2000 recipients/s",
                measured: c.map { "\(f($0.recipientsPerSecond)) recipients/s" + scaleNote(100_000) } ?? "-",
                met: at(100_000).flatMap { _ in c.map { $0.recipientsPerSecond >= 2_000 } }),
            .init(
                name: "campaign peak RSS, 1M-contact list", target: "≤ 128 MiB",
                measured: c.map { "\(f($0.peakRSSMiB, 1)) MiB" + scaleNote(1_000_000) } ?? "-",
                met: at(1_000_000).flatMap { _ in c.map { $0.peakRSSMiB <= 128 } }),
            .init(
                name: "contact lookup by address p99, 1M", target: "≤ 2 ms",
                measured: c.map { "\(f($0.lookupP99Ms, 3)) ms" + scaleNote(1_000_000) } ?? "-",
                met: at(1_000_000).flatMap { _ in c.map { $0.lookupP99Ms <= 2 } }),
        ]
    }
}

/// The bench's OLTP statements.
enum CampaignBenchStatements {
    /// The hot lookup: a workspace's contact by address, case-insensitive
    /// (`contacts_address_key`).
    struct ContactByAddress: PostgresStatement {
        var workspace: Int64
        var address: String
        static let sql: SQL = "SELECT id FROM oltp.contacts WHERE workspace_id = $1 AND lower(address) = lower($2)"
        var bindings: PostgresBindings { [.int(workspace), .text(address)] }
        static func decode(_ row: PostgresRow) throws -> Int64 { try row.decode("id") }
    }
}

// MARK: - The run

/// The SMTP sink as a child process (`scripts/smtp-sink`, or `scripts/notify-sink`:
/// both take `--ready FILE --record FILE` and write `smtp_port` to the ready file).
struct SMTPSinkProcess {
    let process: Process
    let dir: URL
    let record: String
    let port: Int

    static func start(script: String) async throws -> SMTPSinkProcess {
        guard FileManager.default.fileExists(atPath: script) else {
            throw CLIError("campaigns: no SMTP sink at \(script) (run from the repository root, or --campaign-sink)")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("jobd-bench-smtp-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let ready = dir.appendingPathComponent("ready.json").path
        let record = dir.appendingPathComponent("record").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, "--ready", ready, "--record", record]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        for _ in 0..<200 {
            if let data = FileManager.default.contents(atPath: ready),
               let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
               let port = object["smtp_port"] as? Int {
                return SMTPSinkProcess(process: process, dir: dir, record: record, port: port)
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        kill(process.processIdentifier, SIGTERM)
        try? FileManager.default.removeItem(at: dir)
        throw CLIError("campaigns: \(script) did not start")
    }

    /// Stops the sink (it flushes its record on SIGTERM) and returns the recipient of
    /// every message it accepted, one entry per message and recipient.
    func stop() async -> [String] {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        for _ in 0..<200 where process.isRunning { try? await Task.sleep(for: .milliseconds(25)) }
        defer { try? FileManager.default.removeItem(at: dir) }
        guard let data = FileManager.default.contents(atPath: record) else { return [] }
        var recipients: [String] = []
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            if line.hasPrefix("{") {
                // notify-sink: JSON lines, the accepted mails are kind "smtp".
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      object["kind"] as? String == "smtp", let to = object["rcpt_to"] as? [String] else { continue }
                recipients += to
            } else {
                // smtp-sink: time, recipient, Message-ID, tab-separated.
                let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
                if fields.count >= 2 { recipients.append(String(fields[1])) }
            }
        }
        return recipients
    }
}

extension Bench {
    /// The contact number `i`'s address; its status: every 100th unsubscribed (i % 100 == 50),
    /// every 100th bounced (i % 100 == 99), the rest subscribed.
    static func campaignAddress(_ i: Int) -> String { "c\(i)@d\(i % 17).bench.test" }
    static func campaignStatus(_ i: Int) -> String {
        switch i % 100 {
        case 50: return "unsubscribed"
        case 99: return "bounced"
        default: return "subscribed"
        }
    }

    /// One campaign of `count` contacts (see `BenchReport.Campaigns`). Throws when
    /// the counts are wrong: a run that lost, doubled or misdirected a message
    /// publishes no figures. Its workspace (and all that cascades from it) is deleted after.
    func campaigns(contacts count: Int, sinkScript: String, workers: Int = 32, batchSize: Int = 100) async throws -> BenchReport.Campaigns {
        guard count > 0 else { throw CLIError("--campaign-contacts must be positive") }
        try await reset()
        let oltp = connections.postgres("bench-oltp", tier: .oltp)
        let sink: SMTPSinkProcess
        do { sink = try await SMTPSinkProcess.start(script: sinkScript) } catch {
            await oltp.close()
            throw error
        }
        let tag = "bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let outcome: Result<BenchReport.Campaigns, any Error>
        do {
            outcome = .success(try await campaignRun(
                oltp: oltp, sink: sink, tag: tag, count: count, workers: workers, batchSize: batchSize, sinkScript: sinkScript))
        } catch {
            outcome = .failure(error)
        }
        _ = await sink.stop()
        // The workspace and all it holds (contacts, list, campaign, deliveries) cascade.
        _ = try? await oltp.query("DELETE FROM oltp.workspaces WHERE name = $1", [tag], timeout: 900)
        await oltp.close()
        try await reset()
        return try outcome.get()
    }

    private func campaignRun(
        oltp: PostgresConnection, sink: SMTPSinkProcess, tag: String, count: Int, workers: Int, batchSize: Int,
        sinkScript: String
    ) async throws -> BenchReport.Campaigns {
        // The workspace, its account (relay: the sink), the list and the contacts.
        guard let workspace = Int64(try await oltp.query(
            "INSERT INTO oltp.workspaces (name) VALUES ($1) RETURNING id", [tag]).rows.first?.first.flatMap { $0 } ?? "") else {
            throw CLIError("campaigns: no workspace created")
        }
        let account = try await oltp.query("""
            INSERT INTO oltp.email_accounts (workspace_id, name, from_address, from_name, relay_url, starttls, unsubscribe_url)
            VALUES ($1, 'bench', 'news@bench.test', 'Bench News', $2, 'off', 'https://bench.test/unsubscribe') RETURNING id
            """, [String(workspace), "smtp://127.0.0.1:\(sink.port)"]).rows.first?.first ?? nil
        let list = try await oltp.query(
            "INSERT INTO oltp.lists (workspace_id, name) VALUES ($1, 'everyone') RETURNING id", [String(workspace)]).rows.first?.first ?? nil
        guard let account, let list else { throw CLIError("campaigns: no account or list created") }

        let importStarted = ContinuousClock.now
        var copied = 0
        var next = 1
        while next <= count {
            let last = min(count, next + 99_999)
            var text = ""
            text.reserveCapacity((last - next + 1) * 80)
            for i in next...last {
                text += "\(workspace)\t\(Self.campaignAddress(i))\tContact \(i)\t{\"city\": \"City\(i % 1000)\", \"n\": \(i)}\t\(Self.campaignStatus(i))\n"
            }
            copied += try await oltp.copyIn(
                "COPY oltp.contacts (workspace_id, address, name, fields, status) FROM STDIN", data: Array(text.utf8), timeout: 600)
            next = last + 1
        }
        guard copied == count else { throw CLIError("campaigns: COPY imported \(copied) of \(count) contacts") }
        try await oltp.query("""
            INSERT INTO oltp.list_members (list_id, contact_id, workspace_id)
            SELECT $1, id, $2 FROM oltp.contacts WHERE workspace_id = $2
            """, [list, String(workspace)], timeout: 600)
        let importSeconds = importStarted.duration(to: .now).seconds
        try await oltp.executeScript("ANALYZE oltp.contacts; ANALYZE oltp.list_members", timeout: 600)
        let suppressed = (1...count).reduce(0) { $0 + (Self.campaignStatus($1) == "subscribed" ? 0 : 1) }
        let recipients = count - suppressed

        // Contact by address: a separate timed loop on one prepared connection.
        let lookups = quick ? 1_000 : 10_000
        var lookupMs: [Double] = []
        lookupMs.reserveCapacity(lookups)
        var rng = SystemRandomNumberGenerator()
        for n in 0..<lookups {
            let i = Int.random(in: 1...count, using: &rng)
            let address = n % 3 == 0 ? Self.campaignAddress(i).uppercased() : Self.campaignAddress(i)
            let started = ContinuousClock.now
            let found = try await oltp.firstRow(CampaignBenchStatements.ContactByAddress(workspace: workspace, address: address))
            lookupMs.append(started.duration(to: .now).seconds * 1000)
            guard found != nil else { throw CLIError("campaigns: contact \(address) not found by address") }
        }
        lookupMs.sort()

        guard let campaign = Int64(try await oltp.query("""
            INSERT INTO oltp.campaigns (workspace_id, name, account_id, list_id, subject, html_template, text_template, batch_size)
            VALUES ($1, 'bench', $2, $3, 'News for {{name}}',
                    '<p>Hello {{name}} in {{city}}</p><p><a href="{{unsubscribe_url}}">unsubscribe</a></p>',
                    'Hello {{name}} ({{email}}) in {{city}}. Unsubscribe: {{unsubscribe_url}}', $4)
            RETURNING id
            """, [String(workspace), account, list, String(batchSize)]).rows.first?.first.flatMap { $0 } ?? "") else {
            throw CLIError("campaigns: no campaign created")
        }

        resetPeakRSS()
        let timeout = 120 + Double(count) / 200
        let (fanOut, toSent, rssFanOut) = try await withDaemon(workers: workers) { _ -> (Double, Double, Double) in
            try await Task.sleep(for: .milliseconds(300))  // connected and idle
            try await oltp.query("UPDATE oltp.campaigns SET status = 'scheduled' WHERE id = $1", [String(campaign)])
            let scheduled = ContinuousClock.now
            let deadline = scheduled + .seconds(timeout)
            var fanOut: Double?
            var rssFanOut = 0.0
            while true {
                guard ContinuousClock.now < deadline else { throw CLIError("campaigns: not sent within \(Int(timeout)) s") }
                let row = try await oltp.query("""
                    SELECT status, fanout_done, (SELECT count(*) FROM oltp.outbox) FROM oltp.campaigns WHERE id = $1
                    """, [String(campaign)]).rows.first
                let status = row?[0] ?? nil
                if fanOut == nil, row?[1] == "t", row?[2] == "0" {
                    fanOut = scheduled.duration(to: .now).seconds
                    rssFanOut = peakRSSMiB()
                }
                if status == "sent", let fanOut { return (fanOut, scheduled.duration(to: .now).seconds, rssFanOut) }
                try await Task.sleep(for: .milliseconds(fanOut == nil ? 10 : 50))
            }
        }
        let rss = peakRSSMiB()

        guard let counts = try await oltp.firstRow(BenchStatements.CampaignDeliveryCounts(campaign: campaign), timeout: 600)
        else { throw CLIError("campaigns: no delivery counts") }
        let sent = counts.sent, suppressedRows = counts.suppressed, rows = counts.rows
        let window = counts.sendWindowSeconds
        // A completed job's row is deleted at its completion: those are counted from the ledger.
        let jobs = Int(try await sql.query("""
            SELECT (SELECT count(*) FROM queue.jobs WHERE kind = 'campaign.deliver' AND state <> 'completed')
                 + (SELECT count(*) FROM queue.completed_jobs WHERE kind = 'campaign.deliver')
            """).rows.first?.first.flatMap { $0 } ?? "0") ?? 0
        let received = await sink.stop()
        var perRecipient: [String: Int] = [:]
        for address in received { perRecipient[address.lowercased(), default: 0] += 1 }
        var toSuppressed = 0
        for (address, copies) in perRecipient {
            guard address.hasPrefix("c"), let at = address.firstIndex(of: "@"),
                  let i = Int(address[address.index(after: address.startIndex)..<at]) else { continue }
            if Self.campaignStatus(i) != "subscribed" { toSuppressed += copies }
        }
        let result = BenchReport.Campaigns(
            contacts: count, suppressed: suppressed, recipients: recipients, batchSize: batchSize, workers: workers,
            sink: sinkScript, importSeconds: importSeconds, fanOutSeconds: fanOut, deliveryJobs: jobs,
            deliverySeconds: window, recipientsPerSecond: window > 0 ? Double(sent) / window : 0,
            scheduleToSentSeconds: toSent, sent: sent, suppressedDeliveries: suppressedRows,
            sinkMessages: received.count, sinkRecipients: perRecipient.count,
            sinkDuplicates: received.count - perRecipient.count, sinkToSuppressed: toSuppressed,
            peakRSSFanOutMiB: rssFanOut, peakRSSMiB: rss, lookups: lookupMs.count,
            lookupP50Ms: percentile(lookupMs, 0.5), lookupP99Ms: percentile(lookupMs, 0.99), lookupMaxMs: lookupMs.last ?? 0)
        // A run that lost, doubled or misdirected a message publishes no figures.
        var wrong: [String] = []
        if rows != count { wrong.append("\(rows) delivery rows for \(count) list members") }
        if sent != recipients { wrong.append("\(sent) deliveries sent for \(recipients) subscribed contacts") }
        if suppressedRows != suppressed { wrong.append("\(suppressedRows) deliveries suppressed for \(suppressed) contacts not subscribed") }
        if perRecipient.count != recipients || received.count != recipients {
            wrong.append("the sink received \(received.count) messages for \(perRecipient.count) recipients, expected \(recipients)")
        }
        if toSuppressed > 0 { wrong.append("the sink received \(toSuppressed) messages to contacts not subscribed") }
        guard wrong.isEmpty else { throw CLIError("campaigns: " + wrong.joined(separator: "; ")) }
        return result
    }
}
