import ArgumentParser
import Foundation
import JobdAssembly
import JobdCampaigns
import JobdCore
import JobdPostgres
import JobdQueue

/// `jobd campaign …`: the OLTP tier's campaigns (its own database when
/// JOBD_OLTP_DATABASE_URL is set). Campaigns are created, scheduled, paused,
/// resumed and cancelled in plain SQL (README "Campaigns").
struct CampaignCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "campaign", abstract: "Campaign progress.", subcommands: [Status.self])

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recipients, pending, delivered, deferred, bounced, suppressed, rate and ETA of one campaign.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The campaign's id.") var id: Int64
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let connections = Connections(settings: try await ConfigurationLoader.load(global))
            let connection = try await connections.checkedPostgres("campaign-status", tier: .oltp)
            let status: CampaignStatus?
            do {
                status = try await CampaignStatus.load(connection, id: id)
                await connection.close()
            } catch {
                await connection.close()
                throw CLIError("campaign query failed: \(error)")
            }
            guard let status else { throw CLIError("no campaign \(id)") }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(status), as: UTF8.self))
            } else {
                print(status.text)
            }
        }
    }
}
