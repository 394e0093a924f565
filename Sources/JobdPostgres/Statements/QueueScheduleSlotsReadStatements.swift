import JobdCore

/// The console's read of `queue.schedule_slots`: each schedule's latest enqueued slot.
enum QueueScheduleSlotsReadStatements {
    struct Latest: PostgresStatement {
        var names: [String]

        static let planning = PostgresPlanning.perExecution

        var bindings: PostgresBindings { [.textArray(names.map { Optional($0) })] }

        static func decode(_ row: PostgresRow) throws -> (name: String, slot: String, enqueuedAt: String) {
            (try row.decode("name"), try row.decode("slot"), try row.decode("enqueued_at"))
        }

        // One index probe per name (primary key (name, slot), read backwards).
        static let sql: SQL = """
            SELECT n.name, to_char(s.slot AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS slot,
                   s.enqueued_at::text AS enqueued_at
              FROM unnest($1::text[]) AS n(name)
              JOIN LATERAL (SELECT slot, enqueued_at FROM queue.schedule_slots
                             WHERE name = n.name ORDER BY slot DESC LIMIT 1) s ON true
            """
    }
}

extension QueueAdmin {
    public struct LatestSlot: Sendable, Equatable, Codable {
        public var slot: String
        public var enqueuedAt: String
    }

    /// The latest slot each named schedule enqueued; schedules without any are absent.
    public func latestScheduleSlots(names: [String]) async throws -> [String: LatestSlot] {
        var result: [String: LatestSlot] = [:]
        for row in try await connection.rows(QueueScheduleSlotsReadStatements.Latest(names: names)) {
            result[row.name] = LatestSlot(slot: row.slot, enqueuedAt: row.enqueuedAt)
        }
        return result
    }
}
