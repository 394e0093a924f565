/// `jobd.migrations` and the migrators' advisory lock. Planned per execution: they
/// run once per `jobd migrate`, next to DDL.
enum MigrationStatements {
    /// Arbitrary but fixed: the key of the advisory lock all migrators share.
    static let advisoryLockKey: Int64 = 7_241_030_113

    /// A large migration may outlast the daemon's statement timeout.
    static let raiseStatementTimeout: SQL = "SET statement_timeout = '10min'"

    static let createLedger: SQL = """
        CREATE SCHEMA IF NOT EXISTS jobd;
        CREATE TABLE IF NOT EXISTS jobd.migrations (
            version    integer PRIMARY KEY,
            name       text NOT NULL,
            checksum   text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        );
        """

    static let begin: SQL = "BEGIN"
    static let commit: SQL = "COMMIT"
    static let rollback: SQL = "ROLLBACK"

    struct Lock: PostgresStatement {
        static let planning = PostgresPlanning.perExecution
        var bindings: PostgresBindings { [.int(advisoryLockKey)] }
        static let sql: SQL = "SELECT pg_advisory_lock($1::bigint)"
    }

    struct Unlock: PostgresStatement {
        static let planning = PostgresPlanning.perExecution
        var bindings: PostgresBindings { [.int(advisoryLockKey)] }
        static let sql: SQL = "SELECT pg_advisory_unlock($1::bigint)"
    }

    struct LedgerExists: PostgresStatement {
        static let planning = PostgresPlanning.perExecution
        var bindings: PostgresBindings { [] }
        static func decode(_ row: PostgresRow) throws -> Bool { try row.decode("present") }
        static let sql: SQL = "SELECT to_regclass('jobd.migrations') IS NOT NULL AS present"
    }

    struct Applied: PostgresStatement {
        struct Row: Sendable {
            var version: Int
            var checksum: String
        }

        static let planning = PostgresPlanning.perExecution
        var bindings: PostgresBindings { [] }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(version: try row.decode("version"), checksum: try row.decode("checksum"))
        }

        static let sql: SQL = "SELECT version, checksum FROM jobd.migrations"
    }

    struct Record: PostgresStatement {
        var migration: Migration

        static let planning = PostgresPlanning.perExecution
        var bindings: PostgresBindings { [.int(migration.version), .text(migration.name), .text(migration.checksum)] }
        static let sql: SQL = "INSERT INTO jobd.migrations (version, name, checksum) VALUES ($1::int, $2, $3)"
    }
}
