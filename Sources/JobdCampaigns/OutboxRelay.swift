import JobdCore
import JobdPostgres
import JobdQueue
import Logging
import ServiceLifecycle

/// Moves `oltp.outbox` rows into `queue.jobs`. The OLTP tier may be another
/// database than the queue, so what an OLTP transaction causes (a campaign
/// scheduled, a page fanned out) is written to the outbox inside that transaction
/// and relayed here: insert into the queue, then delete from the outbox.
///
/// Idempotent: each job's unique_key is the outbox row's key plus its id, and the
/// queue refuses a second unfinished job with the same key, so a crash between the
/// insert and the delete relays nothing twice while the first job is unfinished.
/// (Should that job have finished in the gap, the re-relayed copy finds its work
/// done: both campaign kinds are idempotent.)
///
/// One relay runs per OLTP database at a time (a session advisory lock on its own
/// connection); other daemons wait as standbys. It wakes on NOTIFY
/// `jobd_oltp_outbox` and at least every `interval`. A graceful shutdown or a
/// cancellation ends it within `shutdownSlice` of being asked, however long
/// `interval` is: the blocking wait for a NOTIFY cannot be interrupted, so it is
/// taken in slices no longer than that.
///
/// The relay holding the lock also runs the `DeliverySweep` every `sweepInterval`
/// (first when it takes the lock): a delivery batch whose job ended with recipients
/// open is enqueued again. A failed pass is logged and tried at the next interval;
/// it never stops the relaying.
public struct OutboxRelay: Service {
    let oltp: PostgresConnection
    let queue: PostgresConnection
    let batch: Int
    let interval: Duration
    let sweepInterval: Duration
    let logger: Logger

    /// Key of the advisory lock (any fixed number unique to this use).
    static let lockKey: Int64 = 7_305_126_117_403_391

    /// The longest single wait for a NOTIFY (see the type's contract).
    static let shutdownSlice: Duration = .milliseconds(500)

    public init(
        oltp: PostgresConnection, queue: PostgresConnection, batch: Int = 500, interval: Duration = .seconds(1),
        sweepInterval: Duration = CampaignSettings.defaults.sweepInterval, logger: Logger
    ) {
        self.oltp = oltp
        self.queue = queue
        self.batch = batch
        self.interval = interval
        self.sweepInterval = sweepInterval
        var logger = logger
        logger[metadataKey: LogKey.service] = "oltp-outbox-relay"
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var failures = 0
            var holding = false
            let clock = ContinuousClock()
            var nextSweep: ContinuousClock.Instant?
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                var moved = 0
                do {
                    let connected = await oltp.isConnected
                    if !holding || !connected {
                        holding = try await oltp.firstRow(CampaignOutboxStatements.TryLock(key: Self.lockKey)) ?? false
                        if holding { _ = try await oltp.listen("jobd_oltp_outbox") }
                    }
                    if holding { moved = try await relayOnce() }
                    failures = 0
                } catch is CancellationError {
                    break
                } catch {
                    holding = false
                    failures += 1
                    if failures == 1 { logger.warning("outbox relay failed; retrying", metadata: [LogKey.error: "\(error)"]) }
                }
                if !holding { nextSweep = nil }
                if holding, failures == 0, nextSweep.map({ clock.now >= $0 }) ?? true {
                    nextSweep = clock.now.advanced(by: sweepInterval)
                    do {
                        let outcome = try await DeliverySweep(oltp: oltp, queue: queue).sweep()
                        if outcome.enqueued > 0 || outcome.preparations > 0 || outcome.finished > 0 {
                            logger.info("campaign sweep enqueued work", metadata: [
                                "campaigns": "\(outcome.campaigns)", "open_batches": "\(outcome.openBatches)",
                                "delivery_jobs": "\(outcome.enqueued)", "preparations": "\(outcome.preparations)",
                                "finished": "\(outcome.finished)",
                            ])
                        }
                        if outcome.enqueued > 0 || outcome.preparations > 0 { continue }  // relay them now
                    } catch is CancellationError {
                        break
                    } catch {
                        logger.warning("campaign sweep failed; trying again at the next interval", metadata: [LogKey.error: "\(error)"])
                    }
                }
                if moved >= batch { continue }
                if holding, failures == 0 {
                    do {
                        try await waitForNotification(until: clock.now.advanced(by: interval))
                    } catch {
                        holding = false  // a new session has neither the lock nor the LISTEN
                    }
                } else {
                    let pause = failures == 0 ? interval : min(.seconds(10), interval * (1 << min(failures, 4)))
                    try? await Task.sleep(for: pause)
                }
            }
            await oltp.close()
            await queue.close()
        }
    }

    /// Returns at the first NOTIFY on the OLTP connection, at `deadline`, or within
    /// `shutdownSlice` of a graceful shutdown or a cancellation.
    private func waitForNotification(until deadline: ContinuousClock.Instant) async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { return }
            if try await !oltp.waitForNotifications(timeout: min(left, Self.shutdownSlice).seconds).isEmpty { return }
        }
    }

    /// One batch: returns how many rows it moved. Tests call it directly.
    @discardableResult
    public func relayOnce() async throws -> Int {
        let rows = try await oltp.rows(CampaignOutboxStatements.Pending(limit: batch))
        guard !rows.isEmpty else { return 0 }
        let ids = rows.map(\.id)
        try await queue.execute(CampaignOutboxStatements.EnqueueRelayed(rows: rows))
        try await oltp.execute(CampaignOutboxStatements.Delete(ids: ids))
        logger.debug("outbox relayed", metadata: [LogKey.count: "\(ids.count)"])
        return ids.count
    }
}
