import JobdCore
import Logging
import ServiceLifecycle

/// Runs one pass of a loop again and again until graceful shutdown or
/// cancellation. A pass that throws (Postgres or Redis gone) is logged and retried
/// after a capped, jittered backoff (0.1 s doubling to 10 s), so a daemon outlives
/// any outage of its servers and does not hammer them when they come back.
struct ResilientLoop {
    let name: String
    let logger: Logger
    let stats: DaemonStats
    var backoff = RetryBackoff(base: .milliseconds(100), maximum: .seconds(10), jitter: 0.5)

    /// `pass` returns after doing some work or waiting; errors are retried.
    func run(_ pass: () async throws -> Void) async {
        var failures = 0
        var generator = SystemRandomNumberGenerator()
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await pass()
                if failures > 0 {
                    logger.notice("loop recovered", metadata: [LogKey.service: "\(name)", LogKey.count: "\(failures)"])
                }
                failures = 0
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                // A loop that fails and retries is alive: the watchdog is for wedged
                // loops, not for outages of Postgres or Redis (the status line says
                // which is down), so an outage does not get the daemon restarted.
                stats.beat(name)
                failures += 1
                let delay = backoff.delay(forAttempt: failures, using: &generator)
                // Log the first failure loudly and then only every tenth, so an outage
                // does not flood the journal.
                if failures == 1 || failures % 10 == 0 {
                    logger.warning("loop pass failed; retrying", metadata: [
                        LogKey.service: "\(name)", LogKey.error: "\(error)",
                        LogKey.count: "\(failures)", LogKey.retryIn: "\(String(format2: delay.seconds))",
                    ])
                }
                try? await Task.sleep(for: delay)
            }
        }
    }
}

extension String {
    init(format2 value: Double) {
        let scaled = (value * 100).rounded() / 100
        self = "\(scaled)"
    }
}
