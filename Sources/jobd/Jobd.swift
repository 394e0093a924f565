import ArgumentParser
import JobdAssembly
import JobdPostgres

@main
struct Jobd: AsyncParsableCommand {
    static let version = JobdBuild.version

    static let configuration = CommandConfiguration(
        commandName: "jobd",
        abstract: "A hybrid job queue daemon: durable jobs in PostgreSQL, fast dispatch through Redis.",
        version: version,
        subcommands: [
            RunCommand.self, MigrateCommand.self, EnqueueCommand.self, StatusCommand.self, DeadLetterCommand.self,
            BenchCommand.self,
            ContentCommand.self,
            ReportCommand.self,
            CampaignCommand.self,
            WebCommand.self, CancelCommand.self, PauseCommand.self, ResumeCommand.self,
        ]
    )
}

/// Options every subcommand takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "YAML config file; JOBD_* environment variables override it.")
    var config: String?

    @Option(name: .long, help: "auto, journald, text or json (overrides JOBD_LOG_FORMAT).")
    var logFormat: String?

    @Option(name: .long, help: "trace, debug, info, notice, warning, error (overrides JOBD_LOG_LEVEL).")
    var logLevel: String?
}

extension GlobalOptions {
    /// The prelude every admin command shares: load the configuration, connect once
    /// (a failure is a one-line error without secrets), run `body`, always close.
    func withPostgres<T: Sendable>(
        _ name: String, _ body: (PostgresConnection, Connections) async throws -> T
    ) async throws -> T {
        let connections = Connections(settings: try await ConfigurationLoader.load(self))
        let connection = try await connections.checkedPostgres(name)
        do {
            let result = try await body(connection, connections)
            await connection.close()
            return result
        } catch {
            await connection.close()
            throw error
        }
    }
}

