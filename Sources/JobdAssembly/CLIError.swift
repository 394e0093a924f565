/// A one-line, user-facing failure: ArgumentParser prints `Error: <description>` and
/// exits non-zero. Thrown by the CLI's commands and by what they build on (connections,
/// migrations, the bench).
public struct CLIError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// This build's identity, as `jobd --version` prints it and the notification tier
/// sends it (`User-Agent: jobd/<version>`).
public enum JobdBuild {
    public static let version = "0.1.0"
}
