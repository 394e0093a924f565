import JobdCore
import JobdPostgres
import Logging
import ServiceLifecycle

/// Holds `LISTEN jobd_jobs` on a connection of its own and wakes the promoter when
/// the insert trigger fires, so a new job is promoted within a round trip instead
/// of a poll interval. After every reconnect it wakes the promoter too, since
/// notifications sent while it was away are gone (the promoter's poll covers them).
///
/// A session that only waits never learns that the network under it went silent
/// (keepalives are answered by whatever proxy or NAT sits in between), so every
/// `probeInterval` seconds it runs `SELECT 1` under the command deadline: a dead
/// session is found within `probeInterval + JOBD_COMMAND_TIMEOUT`, then replaced.
public struct NotificationListener: Service {
    public static let channel = "jobd_jobs"
    public static let probeInterval: Double = 5

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
        let probeEvery = Duration.milliseconds(Int(Self.probeInterval * 1000))
        await cancelWhenGracefulShutdown {
            var lastProbe = ContinuousClock.now
            await loop.run {
                if try await connection.listen(Self.channel) {
                    wake.signal()
                    lastProbe = .now
                }
                let notes = try await connection.waitForNotifications(timeout: 0.5)
                if !notes.isEmpty { wake.signal() }
                if lastProbe.duration(to: .now) >= probeEvery {
                    try await connection.execute(SessionStatements.Probe())
                    lastProbe = .now
                }
                stats.beat("listener")
            }
        }
        await connection.close()
    }
}
