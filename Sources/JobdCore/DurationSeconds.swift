extension Duration {
    /// The duration in seconds, fractional: for `Double`-second settings, logs and
    /// metrics. Exact to well under a nanosecond for any duration the daemon uses.
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
