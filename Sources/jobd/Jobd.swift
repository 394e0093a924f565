import ArgumentParser

@main
struct Jobd: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "jobd",
        abstract: "A hybrid job queue daemon: durable jobs in PostgreSQL, fast dispatch through Redis.",
        version: version,
        subcommands: [
            RunCommand.self, MigrateCommand.self, EnqueueCommand.self, StatusCommand.self, DeadLetterCommand.self,
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

/// A one-line, user-facing failure: ArgumentParser prints `Error: <description>` and
/// exits non-zero.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
