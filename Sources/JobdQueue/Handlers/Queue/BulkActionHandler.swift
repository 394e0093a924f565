import JobdCore
import JobdPostgres
import Logging

/// `queue.bulk_action`: works through a bulk action an operator confirmed (payload
/// `{"bulk_action_id": N}`), one keyset step per statement (`queue.bulk_action_step`:
/// the step's rows changed and the progress recorded in one transaction), until none
/// is left. Each step's row count is sized by the time the previous ones took
/// (`BulkStepSizer`, at most the action's `batch`), so a step stays near `stepTarget`
/// on a loaded host too, instead of holding its rows and writing their index entries
/// for seconds. After `timeBudget` of steps it snoozes (the attempt is not spent) and
/// carries on, so a million-row action never holds a worker or a lease for long. The
/// snooze keeps the job's place in its lane (`JobSnooze.keepingPlace`: due again as of
/// a second before it was last due, so from before the operator's confirm): the jobs
/// a retry re-drove are due from their step on, so the job goes on ahead of them
/// instead of waiting for its lane to work through them. A re-run resumes at the
/// recorded position: each row is worked through once.
///
/// A cancelled action job stops at the next step: the step sees the job's cancel
/// request before it touches a row, records `cancelled_at`, and the handler ends the
/// attempt with a snooze, which a cancel request turns into `cancelled`.
public struct BulkActionHandler: JobHandler {
    public let kind = "queue.bulk_action"
    public var isInternal: Bool { true }
    let connection: PostgresConnection
    let timeBudget: Duration
    let stepTarget: ClosedRange<Duration>
    let clock: any MonotonicClock

    public init(
        connection: PostgresConnection, timeBudget: Duration = .seconds(20),
        stepTarget: ClosedRange<Duration> = BulkStepSizer.defaultTarget, clock: any MonotonicClock = ContinuousClock()
    ) {
        self.connection = connection
        self.timeBudget = timeBudget
        self.stepTarget = stepTarget
        self.clock = clock
    }

    public func handle(_ job: ClaimedJob, context: JobContext) async throws {
        let object = try JSONPayload.object(job.payload, kind: kind)
        guard object.count == 1, let value = object["bulk_action_id"] else {
            throw JobFailure.permanent("queue.bulk_action payload: {\"bulk_action_id\": N} and nothing else",
                                       code: "payload_invalid")
        }
        let id = Int64(try JSONPayload.integer(value, field: "bulk_action_id", kind: kind, range: 1...Int.max))
        let admin = QueueAdmin(connection: connection)
        guard let action = try await admin.bulkAction(id: id) else {
            throw JobFailure.permanent("no bulk action \(id)", code: "bulk_action_missing")
        }
        var sizer = BulkStepSizer(target: stepTarget, limits: 1...max(1, action.batch))
        var spent = Duration.zero
        while true {
            let asked = sizer.size
            let started = clock.now
            let step = try await admin.bulkActionStep(id: id, limit: asked)
            let elapsed = started.duration(to: clock.now)
            if step.cancelled {
                context.logger.notice("bulk action cancelled", metadata: [
                    "bulk_action_id": "\(id)", "user": "\(action.requestedBy)", "action": "\(action.action)",
                    "expected": "\(action.expected)", "processed": "\(step.processed)", "affected": "\(step.affected)",
                ])
                throw JobSnooze(for: .milliseconds(200), code: "bulk_action_cancelled",
                                message: "bulk action \(id) cancelled after \(step.processed) of \(action.expected)")
            }
            if step.done {
                context.logger.notice("bulk action finished", metadata: [
                    "bulk_action_id": "\(id)", "user": "\(action.requestedBy)", "action": "\(action.action)",
                    "target": "\(action.target)", "expected": "\(action.expected)",
                    "processed": "\(step.processed)", "affected": "\(step.affected)",
                ])
                return
            }
            // Not done: the step found every row it asked for.
            sizer.record(asked: asked, rows: asked, elapsed: elapsed)
            spent += elapsed
            if spent >= timeBudget {
                throw JobSnooze.keepingPlace(
                    code: "bulk_action_continues",
                    message: "bulk action \(id): \(step.processed) of \(action.expected) done; continuing")
            }
        }
    }
}
