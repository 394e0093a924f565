import JobdCore
import JobdPostgres
import Logging
import ServiceLifecycle

/// Adds the kinds this daemon's handlers declare internal (`JobHandler.isInternal`)
/// to `queue.internal_kinds`, where the INSERT trigger of migration 0013 refuses them
/// to producers. Once at start-up (retried until it succeeds), then idle until
/// shutdown: a kind, once internal, stays so (remove it by hand to undo).
public struct InternalKindsDeclaration: Service {
    let kinds: [String]
    let connection: PostgresConnection
    let logger: Logger

    public init(kinds: [String], connection: PostgresConnection, logger: Logger) {
        self.kinds = kinds
        self.connection = connection
        var logger = logger
        logger[metadataKey: LogKey.service] = "internal-kinds"
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var failures = 0
            while !Task.isCancelled {
                do {
                    try await declare()
                    break
                } catch {
                    failures += 1
                    if failures == 1 || failures % 10 == 0 {
                        logger.warning("declaring internal kinds failed; retrying", metadata: [
                            LogKey.error: "\(error)", LogKey.count: "\(failures)",
                        ])
                    }
                    try? await Task.sleep(for: .seconds(min(30, 1 << min(failures, 5))))
                }
            }
        }
        await connection.close()
        // A service that returns early would end the whole group: wait for shutdown.
        try? await gracefulShutdown()
    }

    /// One statement; kinds already listed are left alone.
    public func declare() async throws {
        let added = try await connection.execute(QueueInternalKindsStatements.Declare(kinds: kinds))
        if added > 0 {
            logger.info("declared internal kinds", metadata: [LogKey.count: "\(added)"])
        }
    }
}
