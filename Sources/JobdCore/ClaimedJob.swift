/// Identifies a job row: `queue.jobs.id`.
public typealias JobID = Int64

/// One attempt of a job, as handed to a handler after a successful claim.
///
/// `(id, attempt, leaseToken)` fences the attempt: the claim increments `attempt` and
/// writes a fresh random `lease_token`, and every completion is applied only
/// `WHERE id = $id AND attempt = $attempt AND lease_token = $token AND state = 'running'`,
/// so an attempt whose lease was taken over can never overwrite its successor — not
/// even one whose claim a server crash lost (its successor has the same attempt
/// number, but another token).
public struct ClaimedJob: Sendable, Equatable {
    public var id: JobID
    public var kind: String
    /// The payload as JSON text, exactly as Postgres rendered the `jsonb`.
    public var payload: String
    public var priority: JobPriority
    /// 1 for the first attempt.
    public var attempt: Int
    public var maxAttempts: Int
    /// Seconds between the job becoming due (`run_at`) and this attempt's start,
    /// measured by Postgres.
    public var queueWaitSeconds: Double
    /// Times the rescuer has reclaimed this job from a daemon that vanished mid-attempt.
    public var rescues: Int
    /// The claim's random token (`queue.jobs.lease_token`).
    public var leaseToken: Int64

    public init(
        id: JobID, kind: String, payload: String, priority: JobPriority, attempt: Int,
        maxAttempts: Int, queueWaitSeconds: Double = 0, rescues: Int = 0, leaseToken: Int64 = 0
    ) {
        self.id = id
        self.kind = kind
        self.payload = payload
        self.priority = priority
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.queueWaitSeconds = queueWaitSeconds
        self.rescues = rescues
        self.leaseToken = leaseToken
    }

    public var fence: AttemptFence { AttemptFence(id: id, attempt: attempt, token: leaseToken) }
}

/// What fences an attempt's completion, lease extensions and solo mark: the job, its
/// attempt number and the random token its claim wrote.
public struct AttemptFence: Sendable, Hashable, Codable {
    public var id: JobID
    public var attempt: Int
    public var token: Int64
    public init(id: JobID, attempt: Int, token: Int64) {
        self.id = id
        self.attempt = attempt
        self.token = token
    }
}
