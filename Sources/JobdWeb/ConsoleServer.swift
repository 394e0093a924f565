import Hummingbird
import JobdCore
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// The web console as a Service: `jobd web` runs it alone, `jobd run` beside the
/// daemon's services when JOBD_WEB_LISTEN is set. Hummingbird serves HTTP/1.1 on its
/// NIO event loops; every database call goes to the console's own libpq threads.
public struct ConsoleServer: Service {
    let settings: WebSettings
    let conninfo: String?
    let logger: Logger
    /// The port actually bound (useful with port 0), once listening.
    public let boundPort: BoundPort

    public final class BoundPort: Sendable {
        private let value = Mutex<Int?>(nil)
        private let waiters = Mutex<[CheckedContinuation<Int, Never>]>([])
        public init() {}
        public var port: Int? { value.withLock { $0 } }

        func set(_ port: Int) {
            value.withLock { $0 = port }
            for waiter in waiters.withLock({ list -> [CheckedContinuation<Int, Never>] in defer { list = [] }; return list }) {
                waiter.resume(returning: port)
            }
        }

        /// Waits until the server listens.
        public func wait() async -> Int {
            if let port { return port }
            return await withCheckedContinuation { continuation in
                let ready: Int? = waiters.withLock { list in
                    if let port = value.withLock({ $0 }) { return port }
                    list.append(continuation)
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }
    }

    let database: ConsoleDatabase
    /// The overview's shared snapshot (its `computations` count is for tests).
    public let overview: OverviewCache

    let source: OverviewSource

    /// `redis`: the daemons' Redis, for its health, the dispatch lists and each daemon's
    /// busy/total worker slots on the overview (nil: the overview shows PostgreSQL's figures only).
    public init(settings: WebSettings, conninfo: String?, redis: ConsoleRedisTarget? = nil, logger: Logger) throws(JobdInputError) {
        try settings.validate()
        self.settings = settings
        self.conninfo = conninfo
        self.logger = logger
        self.boundPort = BoundPort()
        let database = ConsoleDatabase(
            conninfo: conninfo, size: settings.connections, queryTimeout: settings.queryTimeout,
            tierURLs: settings.tierURLs, logger: logger)
        let source = OverviewSource(database: database, redis: redis, logger: logger)
        self.source = source
        self.database = database
        self.overview = OverviewCache(interval: settings.refreshInterval) { try await source.snapshot() }
    }

    public func run() async throws {
        // The first overview snapshot is computed now, beside the listener's start, so
        // the first viewer is served a snapshot rather than waiting for its statements.
        overview.prepare()
        let database = database
        let responder = ConsoleResponder(
            settings: settings, auth: WebAuthenticator(settings: settings), database: database,
            overview: overview, logger: logger)
        let bound = boundPort
        let logger = logger
        let settings = settings
        let app = Application(
            responder: responder,
            configuration: ApplicationConfiguration(
                address: .hostname(settings.host, port: settings.port), serverName: nil),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? settings.port
                bound.set(port)
                logger.notice("web console listening", metadata: [
                    "address": "\(settings.host):\(port)",
                    "authentication": "\(settings.requiresAuthentication ? "required" : "none (loopback)")",
                ])
            },
            logger: logger)
        do {
            try await app.run()
        } catch {
            await database.close()
            await source.close()
            throw error
        }
        await database.close()
        await source.close()
    }
}
