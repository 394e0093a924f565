/// The life of a row in `queue.jobs`. Each case names the loop that moves jobs out of it.
///
/// ```
///            insert              worker claim (id popped from Redis)
///  (app) ──────────────▶ available ───────────────────────────────────────▶ running
///                            ▲                                             │ │ │ │
///                            └──── drain (release) ────────────────────────┘ │ │ │
///              worker claim ◀── retryable ◀──────── completion batch ────────┘ │ │
///                            ▲                                                 │ │
///                            └────── rescuer (lease expired, attempts left) ───┘ │
///      completed (row deleted; in the ledger) ◀─ completion batch ────────────────┤
///      dead ◀──────────── completion batch (spent / permanent) or rescuer ───────┘
///      dead ──▶ available   (`jobd dead-letter retry`)
/// ```
///
/// The promoter moves no row: it pushes the ids of due `available` and `retryable`
/// jobs to Redis and writes nothing to Postgres; the claim moves a popped job from
/// there to `running`.
public enum JobState: String, CaseIterable, Sendable, Codable {
    /// Waiting in Postgres until `run_at`, its id pushed to a Redis list once due (by
    /// the elected **promoter**). Left when a **worker claims** it (`running`).
    case available
    /// Not entered any more (migration 0023 returned such rows to `available`); kept
    /// so that the table's CHECK and old rows in archives still decode.
    case promoted
    /// Leased by one attempt of one daemon until `lease_expires_at`. Left through the
    /// **completion batch** (`completed`, `retryable`, `dead`), a graceful **drain**
    /// (`available`), or the **rescuer** once the lease expires.
    case running
    /// Failed, waiting for its backoff to pass (`run_at`). Left by a **worker's claim**,
    /// exactly like `available`.
    case retryable
    /// Done. The completion batch deletes the job row as it completes the attempt; the
    /// attempt's `end` row in `queue.attempts` carries the job (kind, priority, payload,
    /// unique key, times), and operators read the completed job there until the
    /// ledger's retention (**`queue.trim`**) deletes it. Rows completed before the
    /// ledger carried the job stay here until the retention **prune** (`queue.prune`).
    case completed
    /// Spent or poisoned; a copy with its error history is in `queue.dead_letters`.
    /// Left only by an operator's **re-drive** (`jobd dead-letter retry`).
    case dead
    /// Withdrawn by an operator before it ran. Terminal.
    case cancelled

    /// States the promoter pushes, and the claim takes from, once `run_at` has passed.
    public static let promotable: [JobState] = [.available, .retryable]
    /// States after which a `unique_key` may be used again.
    public static let finished: [JobState] = [.completed, .dead, .cancelled]
}
