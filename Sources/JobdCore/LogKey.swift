/// Every logger metadata key, in one place, so a journald field or a grep is
/// spelled the same everywhere (journald upper-cases them: `job_id` → `JOB_ID`).
public enum LogKey {
    public static let jobID = "job_id"
    public static let jobKind = "job_kind"
    public static let jobAttempt = "job_attempt"
    public static let jobPriority = "job_priority"
    public static let daemon = "daemon"
    public static let service = "service"
    public static let count = "count"
    /// At most how many jobs a failed claim may have taken without hearing so (`WorkerPool`).
    public static let unconfirmed = "unconfirmed_jobs"
    public static let error = "error"
    public static let errorCode = "error_code"
    public static let tier = "tier"
    public static let durationMs = "duration_ms"
    public static let messageID = "message_id"
    public static let outcome = "outcome"
    public static let retryIn = "retry_in_s"
    public static let notificationKey = "notification_key"
    public static let notificationID = "notification_id"
    public static let notificationChannel = "notification_channel"
    public static let destination = "destination"
    public static let statusCode = "status_code"
    /// A worker pool's resize: which pool, its size before and after, why, and what
    /// its sample showed (jobs waiting in its lists, the longest queue wait).
    public static let pool = "pool"
    public static let from = "from"
    public static let to = "to"
    public static let reason = "reason"
    public static let backlog = "backlog"
    public static let waitMs = "wait_ms"
}
