import JobdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle
import Synchronization

/// Serves the Prometheus text format at `GET /metrics` on `JOBD_METRICS_LISTEN`.
///
/// A scrape must never disturb the daemon, so the endpoint is deliberately small:
/// its own event-loop thread (never the cooperative pool the workers run on),
/// rendering from in-memory metrics only (no database query per scrape: gauges are
/// refreshed by `MetricsCollector` on its own schedule), request bodies ignored,
/// NIO's bounded header parser, connections closed after 10 s without a complete
/// request, and at most `maxConnections` open at once — a flood is refused at accept.
public struct MetricsServer: Service {
    public let address: ListenAddress
    public let registry: PrometheusCollectorRegistry
    public let logger: Logger
    public let maxConnections: Int
    private let bound: BoundPort

    public init(address: ListenAddress, registry: PrometheusCollectorRegistry, logger: Logger, maxConnections: Int = 32) {
        self.address = address
        self.registry = registry
        self.logger = logger
        self.maxConnections = maxConnections
        self.bound = BoundPort()
    }

    /// The port actually bound once `run()` listens (useful with port 0 in tests).
    public func boundPort() async -> Int {
        await bound.value()
    }

    public func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let limiter = ConnectionLimiter(limit: maxConnections)
        let registry = self.registry
        let channel: any Channel
        do {
            channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 32)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    guard limiter.enter() else { return channel.close() }
                    channel.closeFuture.whenComplete { _ in limiter.leave() }
                    return channel.eventLoop.makeCompletedFuture {
                        let pipeline = channel.pipeline.syncOperations
                        try pipeline.addHandler(IdleStateHandler(readTimeout: .seconds(10)))
                        try pipeline.configureHTTPServerPipeline(withErrorHandling: true)
                        try pipeline.addHandler(MetricsHTTPHandler(registry: registry))
                    }
                }
                .bind(host: address.host, port: address.port).get()
        } catch {
            try? await group.shutdownGracefully()
            throw MetricsServerError(address: address, reason: "\(error)")
        }
        let port = channel.localAddress?.port ?? address.port
        bound.set(port)
        logger.notice("metrics endpoint listening", metadata: ["listen": "\(address.host):\(port)"])
        // Serve until the group shuts down (or the task is cancelled).
        try? await gracefulShutdown()
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

/// The endpoint could not listen; names the address.
public struct MetricsServerError: Error, CustomStringConvertible {
    public var address: ListenAddress
    public var reason: String
    public var description: String { "cannot serve metrics on \(address) (JOBD_METRICS_LISTEN): \(reason)" }
}

/// Counts open scrape connections; refuses beyond the limit.
final class ConnectionLimiter: Sendable {
    private let open = Atomic<Int>(0)
    let limit: Int
    init(limit: Int) { self.limit = limit }

    func enter() -> Bool {
        let now = open.add(1, ordering: .relaxed).newValue
        if now > limit {
            open.subtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func leave() { open.subtract(1, ordering: .relaxed) }
}

/// The bound port, published once.
final class BoundPort: Sendable {
    private let state = Mutex<(port: Int?, waiters: [CheckedContinuation<Int, Never>])>((nil, []))

    func set(_ port: Int) {
        let waiters = state.withLock { state in
            state.port = port
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: port) }
    }

    func value() async -> Int {
        await withCheckedContinuation { continuation in
            let port: Int? = state.withLock { state in
                if let port = state.port { return port }
                state.waiters.append(continuation)
                return nil
            }
            if let port { continuation.resume(returning: port) }
        }
    }
}

/// One HTTP/1.1 exchange at a time per connection: `GET|HEAD /metrics` renders the
/// registry; anything else gets a short 404 or 405.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let registry: PrometheusCollectorRegistry
    private var request: HTTPRequestHead?

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break  // scrapes have no body; whatever comes is dropped
        case .end:
            guard let head = request else { return }
            request = nil
            respond(to: head, context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let status: HTTPResponseStatus
        let contentType: String
        var body: [UInt8]
        switch (head.method, path) {
        case (.GET, "/metrics"), (.HEAD, "/metrics"):
            status = .ok
            contentType = "text/plain; version=0.0.4; charset=utf-8"
            body = []
            body.reserveCapacity(16_384)
            registry.emit(into: &body)
        case (_, "/metrics"):
            status = .methodNotAllowed
            contentType = "text/plain; charset=utf-8"
            body = Array("only GET and HEAD are served\n".utf8)
        default:
            status = .notFound
            contentType = "text/plain; charset=utf-8"
            body = Array("jobd serves metrics at /metrics\n".utf8)
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.count))
        let keepAlive = head.isKeepAlive
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        if status == .methodNotAllowed { headers.add(name: "Allow", value: "GET, HEAD") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
