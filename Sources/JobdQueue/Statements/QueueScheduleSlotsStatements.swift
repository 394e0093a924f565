import Foundation
import JobdCore
import JobdPostgres

/// `queue.schedule_slots`: the slots the scheduler has enqueued, one row per
/// schedule and slot, read back as each schedule's cursor after a restart.
enum QueueScheduleSlotsStatements {
    /// Claims the given slots and inserts their jobs, through
    /// `queue.enqueue_schedule_slots` (it runs as the schema owner: `jobd_daemon` may
    /// not insert jobs itself, and a slot's job may be of an internal kind with a
    /// reserved `cron:` key). One row per job this call inserted; slots another
    /// daemon claimed first have none. The arrays are parallel, one element per slot.
    struct Enqueue: PostgresStatement {
        var names: [String]
        var slots: [String]
        var kinds: [String]
        var payloads: [String]
        var uniqueKeys: [String]

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings {
            [.textArray(names.map { $0 }), .textArray(slots.map { $0 }), .textArray(kinds.map { $0 }),
             .textArray(payloads.map { $0 }), .textArray(uniqueKeys.map { $0 })]
        }

        struct Row: Sendable {
            var jobID: JobID
            var uniqueKey: String
        }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(jobID: try row.decode("job_id"), uniqueKey: try row.decode("job_unique_key"))
        }

        static let sql: SQL = """
            SELECT job_id, job_unique_key
              FROM queue.enqueue_schedule_slots($1::text[], $2::timestamptz[], $3::text[], $4::jsonb[], $5::text[])
            """
    }

    /// The latest slot of each named schedule that has one, as Unix seconds.
    struct LatestSlots: PostgresStatement {
        var names: [String]

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.textArray(names.map { $0 })] }

        struct Row: Sendable {
            var name: String
            var slot: Date
        }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(name: try row.decode("name"), slot: Date(timeIntervalSince1970: try row.decode("slot_epoch", as: Double.self)))
        }

        static let sql: SQL = """
            SELECT name, extract(epoch FROM max(slot))::float8 AS slot_epoch FROM queue.schedule_slots
             WHERE name = ANY($1::text[]) GROUP BY name
            """
    }

    /// Deletes slots older than the window, except the newest of each schedule
    /// (where a restarted scheduler resumes).
    struct Prune: PostgresStatement {
        var olderThan: Duration

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.seconds(olderThan)] }

        static let sql: SQL = """
            DELETE FROM queue.schedule_slots s
             WHERE s.slot < now() - make_interval(secs => $1::float8)
               AND s.slot < (SELECT max(slot) FROM queue.schedule_slots m WHERE m.name = s.name)
            """
    }
}
