import ArgumentParser
import Foundation
import JobdAnalytics
import JobdAssembly
import JobdCore
import JobdQueue

/// `jobd report`: one day's analytics across the tiers — the stored rollup, or, for
/// a day not rolled up yet, the same figures computed from the tiers on the spot.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Jobs, wait and run times, events, content, notifications and campaigns of one UTC day, or one campaign.")

    @OptionGroup var global: GlobalOptions

    @Option(help: "The UTC day, YYYY-MM-DD (default: yesterday).")
    var day: String?

    @Flag(help: "Print JSON.")
    var json = false

    @Flag(help: "Roll the day up now (as analytics.rollup does) and store it before printing.")
    var refresh = false

    @Flag(help: "Print how long the report took to stderr.")
    var timing = false

    @Option(help: "One campaign instead of a day: all its deliveries (counted now) and its rolled-up days.")
    var campaign: Int64?

    func validate() throws {
        if let day, AnalyticsDay(day) == nil { throw ValidationError("--day: \"\(day)\" is not a date YYYY-MM-DD") }
        if campaign != nil, day != nil || refresh { throw ValidationError("--campaign takes neither --day nor --refresh") }
        if let campaign, campaign <= 0 { throw ValidationError("--campaign: a campaign id is a positive integer") }
    }

    func run() async throws {
        let connections = Connections(settings: try await ConfigurationLoader.load(global))
        let target = day.flatMap(AnalyticsDay.init) ?? AnalyticsDay.yesterday(now: Date())
        // One connection per tier database is all a report needs.
        var configuration = connections.configuration
        configuration.tierConnections = 1
        let databases = TierDatabases(configuration: configuration, logger: connections.logger) { tier, name in
            connections.postgres("report-\(name)", tier: tier)
        }
        let queue = TierDatabase(tier: .queue, size: 1, logger: connections.logger) { _ in
            connections.postgres("report-queue")
        }
        let rollup = AnalyticsRollup(databases: databases, queue: queue, logger: connections.logger)
        if let campaign {
            let report: CampaignReport
            do {
                report = try await rollup.campaignReport(campaign)
            } catch {
                await databases.close()
                await queue.close()
                throw CLIError("report failed: \(error)")
            }
            await databases.close()
            await queue.close()
            try print(json ? Self.json(report) : TerminalText.escape(report.text(), multiline: true))
            return
        }
        let started = ContinuousClock.now
        let report: DailyReport
        do {
            report = refresh ? try await rollup.rollUp(target) : try await rollup.report(target)
        } catch {
            await databases.close()
            await queue.close()
            throw CLIError("report failed: \(error)")
        }
        let elapsed = started.duration(to: .now)
        await databases.close()
        await queue.close()
        if json {
            print(try Self.json(report))
        } else {
            // Kinds, event names and tenants are producers' text: escaped for the terminal.
            print(TerminalText.escape(report.text(), multiline: true))
        }
        if timing {
            let ms = elapsed.seconds * 1000
            FileHandle.standardError.write(Data(String(
                format: "report %@: %.1f ms (%@, connect included)\n", target.description, ms,
                refresh ? "rolled up now" : report.stored ? "stored rollup" : "computed from the tiers").utf8))
        }
    }

    static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return TerminalText.json(String(decoding: try encoder.encode(value), as: UTF8.self))
    }
}
