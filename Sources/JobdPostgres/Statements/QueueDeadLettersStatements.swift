import JobdCore

/// `queue.dead_letters`: the operator's view of jobs that died, and the re-drive,
/// discard and purge commands.
enum QueueDeadLettersStatements {
    /// The conflict clause of every insert of a dead letter (the completion's and the
    /// rescuer's): a job that dies again replaces its dead letter with the job as it
    /// died now. Begins and ends with a line break, so it composes between lines.
    ///
    /// A job's kind, payload and priority never change after its insert, so for the
    /// rescuer, which before wrote only the attempt's fields, overwriting them too
    /// writes the values the row already holds.
    static let upsertOnConflict: SQL = """

        ON CONFLICT (job_id) DO UPDATE
           SET kind = EXCLUDED.kind, payload = EXCLUDED.payload, priority = EXCLUDED.priority,
               attempts = EXCLUDED.attempts, reason = EXCLUDED.reason,
               last_error = EXCLUDED.last_error, errors = EXCLUDED.errors, dead_at = now()

        """

    /// Dead letters, newest first, optionally of one kind.
    struct List: PostgresStatement {
        var limit: Int
        var kind: String?

        // Plain, so the server plans with the values bound and `$2 IS NULL OR …` folds away.
        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.int(limit), .text(kind)] }

        static func decode(_ row: PostgresRow) throws -> QueueAdmin.DeadLetter {
            QueueAdmin.DeadLetter(
                jobID: try row.decode("job_id"), kind: try row.decode("kind"), priority: try row.decode("priority"),
                attempts: try row.decode("attempts"), reason: try row.decode("reason"),
                lastError: try row.decode("last_error", as: String?.self), deadAt: try row.decode("dead_at"),
                errors: try row.decode("errors"), payload: try row.decode("payload"))
        }

        // Ordered by the table's columns (`d.`): the bare name `dead_at` would be the output
        // column, the text, which no index serves (every row read and sorted).
        static let sql: SQL = """
            SELECT d.job_id, d.kind, d.priority, d.attempts, d.reason, d.last_error, d.dead_at::text AS dead_at,
                   d.errors::text AS errors, d.payload::text AS payload
              FROM queue.dead_letters d
             WHERE $2::text IS NULL OR d.kind = $2
             ORDER BY d.dead_at DESC, d.job_id DESC
             LIMIT $1::int
            """
    }

    /// A keyset page of dead letters, newest first (`dead_at`, then job id), after the
    /// cursor when one is given: through `dead_letters_dead_at_job_idx` (or, of one kind,
    /// `dead_letters_kind_idx`), whose order is the page's, so each page reads its rows
    /// and no more however deep. `dead_at_micros` is the row's cursor.
    struct Page: PostgresStatement {
        var limit: Int
        var kind: String?
        var before: QueueAdmin.DeadLetterCursor?

        // Plain, so the server plans with the values bound and `$n IS NULL OR …` folds away.
        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings {
            [.int(limit), .text(kind), .int(before?.deadAtMicros), .int(before?.jobID)]
        }

        static func decode(_ row: PostgresRow) throws -> (letter: QueueAdmin.DeadLetter, cursor: QueueAdmin.DeadLetterCursor) {
            let letter = try List.decode(row)
            return (letter, QueueAdmin.DeadLetterCursor(deadAtMicros: try row.decode("dead_at_micros"), jobID: letter.jobID))
        }

        // Ordered by the table's columns, as `List`.
        static let sql: SQL = """
            SELECT d.job_id, d.kind, d.priority, d.attempts, d.reason, d.last_error, d.dead_at::text AS dead_at,
                   d.errors::text AS errors, d.payload::text AS payload,
                   (extract(epoch FROM d.dead_at) * 1000000)::bigint AS dead_at_micros
              FROM queue.dead_letters d
             WHERE ($2::text IS NULL OR d.kind = $2)
               AND ($3::bigint IS NULL
                    OR (d.dead_at, d.job_id) < (timestamptz 'epoch' + $3::bigint * interval '1 microsecond', $4::bigint))
             ORDER BY d.dead_at DESC, d.job_id DESC
             LIMIT $1::int
            """
    }

    /// Re-drives dead jobs (nil: all of them) back to `available`, attempts reset.
    struct Retry: PostgresStatement {
        var ids: [JobID]?

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [ids.map { .intArray($0) } ?? .null] }

        static func decode(_ row: PostgresRow) throws -> JobID { try row.decode("id") }

        static let sql: SQL = """
            WITH redriven AS (
                DELETE FROM queue.dead_letters
                 WHERE $1::bigint[] IS NULL OR job_id = ANY($1::bigint[])
                RETURNING job_id
            )
            UPDATE queue.jobs j
               SET state = 'available', attempt = 0, rescues = 0, run_at = now(),
                   finished_at = NULL, promoted_at = NULL, leased_by = NULL, lease_expires_at = NULL
              FROM redriven r
             WHERE j.id = r.job_id AND j.state = 'dead'
            RETURNING j.id
            """
    }

    /// Moves dead jobs to `cancelled` and deletes their dead letters.
    struct Discard: PostgresStatement {
        var ids: [JobID]

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.intArray(ids)] }

        static func decode(_ row: PostgresRow) throws -> JobID { try row.decode("id") }

        static let sql: SQL = """
            WITH gone AS (
                DELETE FROM queue.dead_letters WHERE job_id = ANY($1::bigint[]) RETURNING job_id
            )
            UPDATE queue.jobs j SET state = 'cancelled', finished_at = now()
              FROM gone g
             WHERE j.id = g.job_id AND j.state = 'dead'
            RETURNING j.id
            """
    }

    /// Deletes dead jobs (and their dead letters) dead for more than `olderThanSeconds`.
    struct Purge: PostgresStatement {
        var olderThanSeconds: Double

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.double(olderThanSeconds)] }

        static let sql: SQL = """
            DELETE FROM queue.jobs j
             USING queue.dead_letters d
             WHERE d.job_id = j.id AND j.state = 'dead'
               AND d.dead_at < now() - make_interval(secs => $1::float8)
            """
    }
}
