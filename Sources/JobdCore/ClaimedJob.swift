/// Identifies a job row: `queue.jobs.id`.
public typealias JobID = Int64

/// One attempt of a job, as handed to a handler after a successful claim.
///
/// `(id, attempt)` is the fencing token: the claim increments `attempt`, and every
/// completion is applied only `WHERE id = $id AND attempt = $attempt AND state = 'running'`,
/// so an attempt whose lease was taken over can never overwrite its successor.
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

    public init(
        id: JobID, kind: String, payload: String, priority: JobPriority, attempt: Int,
        maxAttempts: Int, queueWaitSeconds: Double = 0, rescues: Int = 0
    ) {
        self.id = id
        self.kind = kind
        self.payload = payload
        self.priority = priority
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.queueWaitSeconds = queueWaitSeconds
        self.rescues = rescues
    }

    public var fence: AttemptFence { AttemptFence(id: id, attempt: attempt) }
}

/// The `(id, attempt)` pair that fences completions.
public struct AttemptFence: Sendable, Hashable, Codable {
    public var id: JobID
    public var attempt: Int
    public init(id: JobID, attempt: Int) {
        self.id = id
        self.attempt = attempt
    }
}
