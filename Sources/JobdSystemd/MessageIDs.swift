import JobdCore
import Logging

extension JobdMessageID {
    /// Logger metadata that sets the journald `MESSAGE_ID` field.
    public var metadata: Logger.Metadata { [Self.metadataKey: .string(rawValue)] }
}
