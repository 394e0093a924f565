/// The life of a row in `queue.jobs`. Each case names the loop that moves jobs out of it.
///
/// ```
///            insert                      promoter                 worker claim
///  (app) ──────────────▶ available ─────────────▶ promoted ──────────────────▶ running
///                            ▲  ▲                     │                        │ │ │
///                            │  └── reconciler ───────┘                        │ │ │
///                            │      (Redis lost it)          completion batch  │ │ │
///              promoter ◀── retryable ◀────────────────────────────────────────┘ │ │
///                            ▲                                                   │ │
///                            └────── rescuer (lease expired, attempts left) ─────┘ │
///      completed ◀───────────────────────────────────────────────────────────────┘ │
///      dead ◀──────────── completion batch (spent / permanent) or rescuer ─────────┘
///      dead ──▶ available   (`jobd dead-letter retry`)
/// ```
public enum JobState: String, CaseIterable, Sendable, Codable {
    /// Waiting in Postgres until `run_at`. Left by the **promoter**, which pushes due
    /// jobs to Redis (`promoted`).
    case available
    /// Pushed to a Redis list, waiting for a worker. Left when a **worker claims** it
    /// (`running`), or by the **reconciler** (back to `available`) when Redis lost it.
    case promoted
    /// Leased by one attempt of one daemon until `lease_expires_at`. Left through the
    /// **completion batch** (`completed`, `retryable`, `dead`), a graceful **drain**
    /// (`available`), or the **rescuer** once the lease expires.
    case running
    /// Failed, waiting for its backoff to pass (`run_at`). Left by the **promoter**,
    /// exactly like `available`.
    case retryable
    /// Done. Terminal; removed by the retention prune.
    case completed
    /// Spent or poisoned; a copy with its error history is in `queue.dead_letters`.
    /// Left only by an operator's **re-drive** (`jobd dead-letter retry`).
    case dead
    /// Withdrawn by an operator before it ran. Terminal.
    case cancelled

    /// States the promoter takes from once `run_at` has passed.
    public static let promotable: [JobState] = [.available, .retryable]
    /// States after which a `unique_key` may be used again.
    public static let finished: [JobState] = [.completed, .dead, .cancelled]
}
