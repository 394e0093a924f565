
/// Fixed journald MESSAGE_ID values for the events an operator may want to find or alert on
/// (`journalctl MESSAGE_ID=<id>`). Each id has an entry in `systemd/jobd.catalog`, so
/// `journalctl -x` explains it. Never change an id once shipped: alerts and the catalog key on it.
public enum JobdMessageID: String, CaseIterable, Sendable {
    case daemonReady = "b0bfd3ee2a744c70b3f5edcb032dd20b"
    case drainStarted = "6f36e0ef69a646d49747c591bccdb1ab"
    case jobDeadLettered = "9037d575314d4a17a1e5870dec259411"
    case jobRescued = "a85f8d5701d8497d8d2844863a22b1e8"
    case staleCompletionRefused = "a37a1738cadf407bbbe60bd3c21306b1"
    case redisLostDispatchRebuilt = "1409635227a9489cb04c5d34ae9f709f"
    case tierUnavailable = "b57623f63f084844b78da3afaa8bec8a"
    case tierRecovered = "9e4e97a2d9304a15a78ee11aeed956e3"
    case watchdogStalled = "c61d596c17624954b673af42f350efd3"
    case configurationReloaded = "1607752901054b4785cd54ba6b202715"
    case notificationCircuitOpened = "2e24a841464d4049a2e39e5cc7a1eafe"
    case notificationCircuitClosed = "5804cd7055c8427a8e4ddaa15cc0dcab"
    case poolResized = "4d3e038fe22044b1ab96592b8380cf3d"

    /// The metadata key that `JournalLogHandler` turns into the journald `MESSAGE_ID` field.
    public static let metadataKey = "message_id"

    /// The 32 lowercase hex digits journald expects.
    public var id: String { rawValue }
}
