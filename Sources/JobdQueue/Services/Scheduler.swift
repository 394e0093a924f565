import Foundation
import JobdCore
import JobdPostgres
import Logging
import ServiceLifecycle
import Synchronization

/// Enqueues periodic jobs (`JOBD_SCHEDULES`): each slot of each schedule exactly
/// once, however many daemons run a scheduler.
///
/// A slot is claimed by inserting `(name, slot)` into `queue.schedule_slots`; the
/// job is inserted by the same statement only when that insert did not conflict.
/// Two daemons racing for a slot serialise on the primary key, and the loser
/// inserts nothing — also long after the winner's job finished, which the job's
/// own unique key (`cron:<name>:<slot>`) alone could not guarantee. The job's
/// `run_at` is the slot, so its queue wait is measured from the slot.
///
/// Slots missed while no daemon ran are made up once, by the latest missed slot.
/// A schedule never seen before starts from now (it does not fire retroactively).
/// Times come from the injected clock; slots are computed by the pure `CronSchedule`.
public final class Scheduler: Service {
    public let schedules: [ScheduledJob]
    let connection: PostgresConnection
    let now: @Sendable () -> Date
    let logger: Logger
    /// Longest sleep between passes, so a changed clock is noticed.
    let maxSleep: Double

    /// The last slot handled per schedule; nil until loaded from the database.
    private let cursor = Mutex<[String: Date]?>(nil)

    public struct Enqueued: Sendable, Equatable {
        public var name: String
        public var slot: Date
        public var jobID: JobID
    }

    public init(
        schedules: [ScheduledJob], connection: PostgresConnection, now: @escaping @Sendable () -> Date = { Date() },
        maxSleep: Double = 30, logger: Logger
    ) {
        self.schedules = schedules
        self.connection = connection
        self.now = now
        self.maxSleep = maxSleep
        var logger = logger
        logger[metadataKey: LogKey.service] = "scheduler"
        self.logger = logger
    }

    public func run() async throws {
        guard !schedules.isEmpty else { return }
        await cancelWhenGracefulShutdown {
            var failures = 0
            while !Task.isCancelled {
                var pause = self.maxSleep
                do {
                    _ = try await self.runOnce()
                    failures = 0
                    pause = self.secondsUntilNextSlot()
                } catch is CancellationError {
                    return
                } catch {
                    failures += 1
                    if failures == 1 || failures % 10 == 0 {
                        self.logger.warning("scheduler pass failed; retrying", metadata: [
                            LogKey.error: "\(error)", LogKey.count: "\(failures)",
                        ])
                    }
                    pause = min(self.maxSleep, Double(1 << min(failures, 5)))
                }
                try? await Task.sleep(for: .milliseconds(Int(max(0.05, pause) * 1000)))
            }
        }
        await connection.close()
    }

    /// Seconds until the earliest next slot (at most `maxSleep`); a little after it,
    /// so the slot is due when the pass runs.
    func secondsUntilNextSlot() -> Double {
        let current = now()
        let last = cursor.withLock { $0 } ?? [:]
        var soonest = maxSleep
        for schedule in schedules {
            guard let next = schedule.cron.nextSlot(after: max(last[schedule.name] ?? current, current)) else { continue }
            soonest = min(soonest, next.timeIntervalSince(current) + 0.01)
        }
        return max(0, soonest)
    }

    /// One pass: enqueues the latest due slot of every schedule whose slot has come,
    /// in one statement. Returns the jobs this call inserted (slots another daemon
    /// claimed first are not among them).
    @discardableResult
    public func runOnce() async throws -> [Enqueued] {
        let current = now()
        var last = try await loadedCursor(now: current)
        var due: [(schedule: ScheduledJob, slot: Date)] = []
        for schedule in schedules {
            // After a long outage, look back at most a week: only the latest slot runs anyway.
            let from = max(last[schedule.name] ?? current, current.addingTimeInterval(-7 * 86_400))
            guard let slot = schedule.cron.slots(after: from, through: current, limit: 100_000).last else { continue }
            due.append((schedule, slot))
        }
        guard !due.isEmpty else { return [] }
        let inserted = try await connection.rows(QueueScheduleSlotsStatements.Enqueue(
            names: due.map(\.schedule.name),
            slots: due.map { ScheduledJob.isoTime($0.slot) },
            kinds: due.map(\.schedule.kind),
            payloads: due.map { $0.schedule.payload(for: $0.slot) },
            uniqueKeys: due.map { $0.schedule.uniqueKey(for: $0.slot) }))
        for (schedule, slot) in due { last[schedule.name] = slot }
        let settled = last
        cursor.withLock { $0 = settled }
        var enqueued: [Enqueued] = []
        for row in inserted {
            let id = row.jobID
            guard let entry = due.first(where: { $0.schedule.uniqueKey(for: $0.slot) == row.uniqueKey }) else { continue }
            enqueued.append(Enqueued(name: entry.schedule.name, slot: entry.slot, jobID: id))
            logger.info("periodic job enqueued", metadata: [
                "schedule": "\(entry.schedule.name)", "slot": "\(ScheduledJob.isoTime(entry.slot))",
                LogKey.jobID: "\(id)", LogKey.jobKind: "\(entry.schedule.kind)",
            ])
        }
        return enqueued
    }

    /// The last slot of each schedule, from the database on first use (so a restart
    /// makes up a missed slot), then kept in memory.
    private func loadedCursor(now current: Date) async throws -> [String: Date] {
        if let known = cursor.withLock({ $0 }) { return known }
        let rows = try await connection.rows(QueueScheduleSlotsStatements.LatestSlots(names: schedules.map(\.name)))
        var last: [String: Date] = [:]
        for schedule in schedules { last[schedule.name] = current }
        for row in rows { last[row.name] = row.slot }
        let loaded = last
        cursor.withLock { $0 = loaded }
        return loaded
    }
}
