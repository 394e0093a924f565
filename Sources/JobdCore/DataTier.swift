/// The data tiers jobd moves work between. Each is its own schema and may live in
/// its own database — its own failure domain — so a tier that is down stalls only
/// the jobs that write to it. The name is also the first word of its migration files
/// (`Migrations/content/0004_content_….sql`).
public enum DataTier: String, CaseIterable, Sendable, Hashable, Comparable {
    /// `queue.jobs` and friends: the daemon's own state. Always `JOBD_DATABASE_URL`.
    case queue
    /// Email bodies and attachments (`content.write`).
    case content
    /// Outgoing webhooks, email and SMS with their audit trail (`notification.send`).
    case notifications
    /// Application events and daily rollups (`metrics.emit`, `analytics.rollup`; per-attempt figures come from the queue ledger).
    case analytics
    /// Workspaces, contacts, lists, campaigns and their deliveries (`campaign.prepare`, `campaign.deliver`).
    case oltp

    public static func < (lhs: DataTier, rhs: DataTier) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}
