/// Parses human durations into seconds: `1.5` (seconds), `250ms`, `30s`, `5m`, `2h`,
/// `7d`, and sums such as `1h30m`. Used for configuration and CLI flags alike, so the
/// same text means the same thing everywhere.
public enum DurationText {
    public static func seconds(_ text: String) -> Double? {
        let trimmed = text.trimmingSpaces()
        guard !trimmed.isEmpty else { return nil }
        if let plain = Double(trimmed) { return plain.isFinite && plain >= 0 ? plain : nil }
        var total = 0.0
        var number = ""
        var unit = ""
        var sawPart = false
        func flush() -> Bool {
            guard let value = Double(number), value.isFinite, value >= 0 else { return false }
            let factor: Double
            switch unit {
            case "ms": factor = 0.001
            case "s", "sec": factor = 1
            case "m", "min": factor = 60
            case "h": factor = 3600
            case "d": factor = 86_400
            case "w": factor = 604_800
            default: return false
            }
            total += value * factor
            number = ""
            unit = ""
            sawPart = true
            return true
        }
        for ch in trimmed {
            if ch.isNumber || ch == "." {
                if !unit.isEmpty { guard flush() else { return nil } }
                number.append(ch)
            } else if ch.isLetter {
                guard !number.isEmpty else { return nil }
                unit.append(ch)
            } else {
                return nil
            }
        }
        guard !number.isEmpty, !unit.isEmpty, flush(), sawPart, total.isFinite else { return nil }
        return total
    }
}

extension String {
    package func trimmingSpaces() -> String {
        var view = Substring(self)
        while let first = view.first, first.isWhitespace { view.removeFirst() }
        while let last = view.last, last.isWhitespace { view.removeLast() }
        return String(view)
    }
}
