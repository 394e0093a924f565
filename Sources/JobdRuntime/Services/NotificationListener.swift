import JobdCore
import JobdPostgres
import Logging
import ServiceLifecycle

/// Holds `LISTEN jobd_jobs` on a connection of its own and wakes the promoter when
/// the insert trigger fires, so a new job is promoted within a round trip instead
/// of a poll interval. After every reconnect it wakes the promoter too, since
/// notifications sent while it was away are gone (the promoter's poll covers them).
public struct NotificationListener: Service {
    public static let channel = "jobd_jobs"

    let connection: PostgresConnection
    let wake: WakeSignal
    let stats: DaemonStats
    let logger: Logger

    public init(connection: PostgresConnection, wake: WakeSignal, stats: DaemonStats, logger: Logger) {
        self.connection = connection
        self.wake = wake
        self.stats = stats
        self.logger = logger
    }

    public func run() async throws {
        let loop = ResilientLoop(name: "listener", logger: logger, stats: stats)
        await cancelWhenGracefulShutdown {
            await loop.run {
                if try await connection.listen(Self.channel) { wake.signal() }
                let notes = try await connection.waitForNotifications(timeout: 0.5)
                if !notes.isEmpty { wake.signal() }
                stats.beat("listener")
            }
        }
        await connection.close()
    }
}
