import JobdCore
import JobdPostgres
import Logging

/// `queue.bulk_action`: works through a bulk action an operator confirmed (payload
/// `{"bulk_action_id": N}`), one keyset batch per statement (`queue.bulk_action_step`:
/// the batch's rows changed and the progress recorded in one transaction), until none
/// is left. After `timeBudget` it snoozes (the attempt is not spent) and carries on, so
/// a million-row action never holds a worker or a lease for long. A re-run resumes at
/// the recorded position: each batch is applied once.
public struct BulkActionHandler: JobHandler {
    public let kind = "queue.bulk_action"
    public var isInternal: Bool { true }
    let connection: PostgresConnection
    let timeBudget: Duration

    public init(connection: PostgresConnection, timeBudget: Duration = .seconds(20)) {
        self.connection = connection
        self.timeBudget = timeBudget
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
        let deadline = ContinuousClock.now + timeBudget
        while true {
            let step = try await admin.bulkActionStep(id: id)
            if step.done {
                context.logger.notice("bulk action finished", metadata: [
                    "bulk_action_id": "\(id)", "user": "\(action.requestedBy)", "action": "\(action.action)",
                    "target": "\(action.target)", "expected": "\(action.expected)",
                    "processed": "\(step.processed)", "affected": "\(step.affected)",
                ])
                return
            }
            if ContinuousClock.now >= deadline {
                throw JobSnooze(for: .milliseconds(200), code: "bulk_action_continues",
                                message: "bulk action \(id): \(step.processed) of \(action.expected) done; continuing")
            }
        }
    }
}
