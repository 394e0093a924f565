import Foundation

/// A 5-field cron expression (`minute hour day-of-month month day-of-week`) in a
/// time zone, and the pure calculation of its next slot after a given instant.
///
/// Syntax: `*`, `5`, `1-5`, `*/15`, `10-50/20`, `7/10`, lists `1,15,30`, month names
/// `JAN`…`DEC`, weekday names `SUN`…`SAT` (0 and 7 are both Sunday), and the macros
/// `@yearly` `@annually` `@monthly` `@weekly` `@daily` `@midnight` `@hourly`.
/// As in Vixie cron, when both day fields are restricted (neither starts with `*`)
/// a day matches if either does; otherwise both must.
///
/// Daylight saving time (the rules cronie follows):
/// - a wall time skipped by a spring-forward gap fires once, at the first instant
///   after the gap (02:30 on a 02:00→03:00 night fires at 03:00);
/// - a wall time that occurs twice in a fall-back overlap fires at its first
///   occurrence only, unless the hour field is `*` (every hour), in which case the
///   repeated hour fires again.
/// The slot is an instant; two expressions' slots that fall on the same instant are
/// the same slot (the scheduler's unique key is the instant).
public struct CronSchedule: Sendable, Equatable, CustomStringConvertible {
    public let expression: String
    public let timeZone: TimeZone
    let minutes: UInt64
    let hours: UInt64
    let daysOfMonth: UInt64
    let months: UInt64
    let daysOfWeek: UInt64
    let dayOfMonthRestricted: Bool
    let dayOfWeekRestricted: Bool

    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    public init(_ expression: String, timeZone: TimeZone = TimeZone(identifier: "UTC")!) throws(ParseError) {
        let trimmed = expression.trimmingSpaces()
        let expanded: String
        switch trimmed.lowercased() {
        case "@yearly", "@annually": expanded = "0 0 1 1 *"
        case "@monthly": expanded = "0 0 1 * *"
        case "@weekly": expanded = "0 0 * * 0"
        case "@daily", "@midnight": expanded = "0 0 * * *"
        case "@hourly": expanded = "0 * * * *"
        default:
            if trimmed.hasPrefix("@") { throw ParseError(message: "unknown macro \"\(trimmed)\"") }
            expanded = trimmed
        }
        let fields = expanded.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 else {
            throw ParseError(message: "expected 5 fields (minute hour day-of-month month day-of-week), got \(fields.count)")
        }
        self.expression = trimmed
        self.timeZone = timeZone
        minutes = try Self.field(fields[0], name: "minute", range: 0...59, names: [:])
        hours = try Self.field(fields[1], name: "hour", range: 0...23, names: [:])
        daysOfMonth = try Self.field(fields[2], name: "day-of-month", range: 1...31, names: [:])
        months = try Self.field(fields[3], name: "month", range: 1...12, names: Self.monthNames)
        var weekdays = try Self.field(fields[4], name: "day-of-week", range: 0...7, names: Self.weekdayNames)
        if weekdays & (1 << 7) != 0 { weekdays = (weekdays | 1) & ~(1 << 7) }  // 7 is Sunday too
        daysOfWeek = weekdays
        dayOfMonthRestricted = !fields[2].hasPrefix("*")
        dayOfWeekRestricted = !fields[4].hasPrefix("*")
        if dayOfMonthRestricted && !dayOfWeekRestricted {
            // Reject what can never fire (`0 0 30 2 *`) instead of silently never running.
            let longest = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
            let possible = (1...12).contains { month in
                months & (1 << UInt64(month)) != 0 && (1...longest[month]).contains { daysOfMonth & (1 << UInt64($0)) != 0 }
            }
            guard possible else { throw ParseError(message: "\"\(trimmed)\" never matches a real date") }
        }
    }

    public var description: String { "\(expression) \(timeZone.identifier)" }

    /// Same slots: the same fields in the same zone, however they were spelled.
    public static func == (lhs: CronSchedule, rhs: CronSchedule) -> Bool {
        lhs.timeZone.identifier == rhs.timeZone.identifier && lhs.minutes == rhs.minutes && lhs.hours == rhs.hours
            && lhs.daysOfMonth == rhs.daysOfMonth && lhs.months == rhs.months && lhs.daysOfWeek == rhs.daysOfWeek
            && lhs.dayOfMonthRestricted == rhs.dayOfMonthRestricted && lhs.dayOfWeekRestricted == rhs.dayOfWeekRestricted
    }

    static let monthNames = [
        "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
        "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
    ]
    static let weekdayNames = ["sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6]

    private static func field(
        _ text: String, name: String, range: ClosedRange<Int>, names: [String: Int]
    ) throws(ParseError) -> UInt64 {
        func value(_ token: Substring) throws(ParseError) -> Int {
            if let number = Int(token) {
                guard range.contains(number) else {
                    throw ParseError(message: "\(name) \(number) is outside \(range.lowerBound)-\(range.upperBound)")
                }
                return number
            }
            if let named = names[token.lowercased()] { return named }
            throw ParseError(message: "\(name): \"\(token)\" is not a number\(names.isEmpty ? "" : " or name")")
        }
        var bits: UInt64 = 0
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard !part.isEmpty else { throw ParseError(message: "\(name): empty list element in \"\(text)\"") }
            let stepParts = part.split(separator: "/", omittingEmptySubsequences: false)
            guard stepParts.count <= 2 else { throw ParseError(message: "\(name): \"\(part)\" has two steps") }
            var step = 1
            if stepParts.count == 2 {
                guard let parsed = Int(stepParts[1]), parsed >= 1, parsed <= range.upperBound + 1 else {
                    throw ParseError(message: "\(name): step \"\(stepParts[1])\" must be 1-\(range.upperBound + 1)")
                }
                step = parsed
            }
            let base = stepParts[0]
            var low: Int, high: Int
            if base == "*" {
                (low, high) = (range.lowerBound, range.upperBound)
            } else if let dash = base.firstIndex(of: "-") {
                low = try value(base[..<dash])
                high = try value(base[base.index(after: dash)...])
                guard low <= high else { throw ParseError(message: "\(name): range \"\(base)\" runs backwards") }
            } else {
                low = try value(base)
                // `7/10` means from 7 to the end in steps of 10, as in Vixie cron.
                high = stepParts.count == 2 ? range.upperBound : low
            }
            var current = low
            while current <= high {
                bits |= 1 << UInt64(current)
                current += step
            }
        }
        return bits
    }

    // MARK: Next slot

    /// The first slot strictly after `instant`, or nil if none within 28 years.
    public func nextSlot(after instant: Date) -> Date? {
        let afterSeconds = Int64(instant.timeIntervalSince1970.rounded(.down))
        // Wall time is not monotonic in a fall-back overlap: near a transition, start as
        // far back as the offsets differ, collect candidates, and stop once no later
        // wall time can give an earlier instant.
        let afterWall = afterSeconds + Int64(offset(at: afterSeconds))
        let around = nearbyOffsets(wall: afterWall)
        let startWall = (afterWall - Int64(around.max()! - around.min()!)) / 60 * 60
        var wall = WallMinute(secondsSinceEpoch: startWall)
        let limitYear = wall.year + 28
        var best: Int64?
        while let match = nextMatchingWall(from: wall, limitYear: limitYear) {
            let wallSeconds = match.secondsSinceEpoch
            let offsets = nearbyOffsets(wall: wallSeconds)
            if let best, wallSeconds - Int64(offsets.max()!) > best { break }
            for candidate in instants(for: wallSeconds, offsets: offsets) where candidate > afterSeconds {
                if best == nil || candidate < best! { best = candidate }
            }
            wall = match.adding(minutes: 1)
        }
        return best.map { Date(timeIntervalSince1970: TimeInterval($0)) }
    }

    /// The slots in `(after, through]`, oldest first, at most `limit` of them.
    public func slots(after: Date, through: Date, limit: Int = 10_000) -> [Date] {
        var result: [Date] = []
        var cursor = after
        while result.count < limit, let next = nextSlot(after: cursor), next <= through {
            result.append(next)
            cursor = next
        }
        return result
    }

    private func offset(at seconds: Int64) -> Int {
        timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }

    /// The UTC offsets in force around a wall time (two around a transition).
    private func nearbyOffsets(wall: Int64) -> [Int] {
        let before = offset(at: wall - 18 * 3_600)
        let after = offset(at: wall + 18 * 3_600)
        return before == after ? [before] : [before, after]
    }

    /// The instants whose local wall time is `wall`: one normally, none in a gap
    /// (then the first instant after the gap), two in an overlap (the second only
    /// when every hour matches).
    private func instants(for wall: Int64, offsets: [Int]) -> [Int64] {
        let exact = Set(offsets.map { wall - Int64($0) }).filter { Int64(offset(at: $0)) + $0 == wall }.sorted()
        switch exact.count {
        case 0:
            // Spring-forward gap: the transition lies between the two candidates.
            let candidates = offsets.map { wall - Int64($0) }
            var low = candidates.min()!, high = candidates.max()!
            let lowOffset = offset(at: low)
            while high - low > 1 {
                let middle = low + (high - low) / 2
                if offset(at: middle) == lowOffset { low = middle } else { high = middle }
            }
            return [high]
        case 1:
            return exact
        default:
            return hours == Self.allHours ? exact : [exact[0]]
        }
    }

    private static let allHours: UInt64 = (1 << 24) - 1

    private func dayMatches(_ wall: WallMinute) -> Bool {
        let dom = daysOfMonth & (1 << UInt64(wall.day)) != 0
        let dow = daysOfWeek & (1 << UInt64(wall.weekday)) != 0
        switch (dayOfMonthRestricted, dayOfWeekRestricted) {
        case (true, true): return dom || dow
        case (true, false): return dom
        case (false, true): return dow
        case (false, false): return true
        }
    }

    /// The first wall minute at or after `start` that matches every field, jumping
    /// by the coarsest field that does not match.
    private func nextMatchingWall(from start: WallMinute, limitYear: Int) -> WallMinute? {
        var wall = start
        while wall.year <= limitYear {
            if months & (1 << UInt64(wall.month)) == 0 {
                wall = wall.startOfNextMonth()
            } else if !dayMatches(wall) {
                wall = wall.startOfNextDay()
            } else if hours & (1 << UInt64(wall.hour)) == 0 {
                wall = wall.startOfNextHour()
            } else if minutes & (1 << UInt64(wall.minute)) == 0 {
                wall = wall.adding(minutes: 1)
            } else {
                return wall
            }
        }
        return nil
    }
}

/// A calendar minute in wall-clock time, with pure proleptic-Gregorian arithmetic
/// (Howard Hinnant's days-from-civil), so the search needs no Calendar.
public struct WallMinute: Sendable, Equatable {
    public var year: Int, month: Int, day: Int, hour: Int, minute: Int

    public init(year: Int, month: Int, day: Int, hour: Int, minute: Int) {
        (self.year, self.month, self.day, self.hour, self.minute) = (year, month, day, hour, minute)
    }

    public init(secondsSinceEpoch seconds: Int64) {
        let days = Int(seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400)
        let rest = Int(seconds - Int64(days) * 86_400)
        let (y, m, d) = WallMinute.civil(fromDays: days)
        self.init(year: y, month: m, day: d, hour: rest / 3_600, minute: rest % 3_600 / 60)
    }

    public var daysSinceEpoch: Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    public static func civil(fromDays days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    public var secondsSinceEpoch: Int64 { Int64(daysSinceEpoch) * 86_400 + Int64(hour * 3_600 + minute * 60) }

    /// 0 = Sunday. 1970-01-01 was a Thursday.
    public var weekday: Int { ((daysSinceEpoch % 7) + 11) % 7 }

    public static func daysIn(year: Int, month: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    public func adding(minutes count: Int) -> WallMinute {
        WallMinute(secondsSinceEpoch: secondsSinceEpoch + Int64(count) * 60)
    }

    public func startOfNextHour() -> WallMinute {
        WallMinute(secondsSinceEpoch: secondsSinceEpoch - Int64(minute * 60) + 3_600)
    }

    public func startOfNextDay() -> WallMinute {
        WallMinute(secondsSinceEpoch: Int64(daysSinceEpoch + 1) * 86_400)
    }

    public func startOfNextMonth() -> WallMinute {
        month == 12
            ? WallMinute(year: year + 1, month: 1, day: 1, hour: 0, minute: 0)
            : WallMinute(year: year, month: month + 1, day: 1, hour: 0, minute: 0)
    }
}
