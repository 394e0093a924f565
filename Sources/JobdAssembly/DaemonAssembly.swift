import JobdCore
import JobdQueue
import Logging
import ServiceLifecycle

/// A daemon built from its configuration: the queue's services (promoter, pools,
/// maintenance, …) and every tier's handlers and background services, in one list
/// a `ServiceGroup` runs. `jobd run`, `jobd bench` and the integration tests all build
/// their daemons here, so they run the same wiring.
public struct DaemonAssembly: Sendable {
    /// What a caller adds to or replaces in the configured daemon.
    public struct Overrides: Sendable {
        /// Registered with the tiers' handlers; one whose kind a tier also serves
        /// replaces the tier's handler of that kind.
        public var handlers: [any JobHandler]
        /// The fault suite's switches (`JOBD_TEST_FAULTS=1`): lets a `noop` job abort the
        /// process and the promoter be wedged. Never set in production.
        public var testFaults: Bool
        /// Registers the fault suite's `probe` kind, which writes a receipt per run.
        public var faultProbe: Bool

        public init(
            handlers: [any JobHandler] = [], testFaults: Bool = false, faultProbe: Bool = false
        ) {
            self.handlers = handlers
            self.testFaults = testFaults
            self.faultProbe = faultProbe
        }
    }

    public let daemon: JobDaemon
    public let tiers: TierComponents
    private let probe: FaultProbeHandler?

    /// Every service to run, in start order (`ServiceGroup` stops them in reverse):
    /// the tiers' services first so they stop after the pools drain, then the daemon's.
    public var services: [any Service] { daemon.services }

    public init(
        connections: Connections, identity: DaemonIdentity, logger: Logger? = nil, overrides: Overrides = Overrides()
    ) {
        let configuration = connections.configuration
        tiers = TierComponents(connections: connections, testFaults: overrides.testFaults)
        probe = overrides.faultProbe
            ? FaultProbeHandler(connections: (1...4).map { connections.postgres("probe-\($0)") }, daemon: "\(identity.pid)")
            : nil
        let replaced = Set(overrides.handlers.map(\.kind))
        var handlers = tiers.handlers.filter { !replaced.contains($0.kind) } + overrides.handlers
        if let probe { handlers.append(probe) }
        daemon = JobDaemon(
            configuration: configuration, handlers: HandlerRegistry(handlers), identity: identity,
            logger: logger ?? connections.logger, postgres: { connections.postgres($0, tier: .queue, scans: $1) },
            redis: connections.dispatch,
            testFaults: overrides.testFaults ? TestFaults() : nil,
            tierServices: tiers.services)
    }

    /// Closes the tier databases and the probe's connections; after the services stopped.
    public func close() async {
        await tiers.databases.close()
        await probe?.close()
    }
}
