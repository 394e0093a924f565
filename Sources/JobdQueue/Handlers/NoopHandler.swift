import Foundation
import JobdCore

/// The built-in `noop` kind, for smoke tests, fault tests and benchmarks.
///
/// Payload (all keys optional; unknown keys are an error so typos are caught):
/// - `{}` succeeds;
/// - `{"sleep_ms": N}` sleeps N ms first (0…3,600,000);
/// - `{"fail": true}` always fails, transiently;
/// - `{"fail_attempts": N}` fails its first N attempts, then succeeds;
/// - `{"permanent": true}` fails permanently (dead-lettered at once).
///
/// Fault tests only: with `testFaults` (the CLI sets it when `JOBD_TEST_FAULTS=1`),
/// `{"abort": true}` kills the whole process with SIGABRT, as a handler with a fatal
/// bug would. Otherwise `abort` is an unknown field like any other, so a payload can
/// never crash a production daemon.
public struct NoopHandler: JobHandler {
    public let kind = "noop"
    public let testFaults: Bool

    public init(testFaults: Bool = false) {
        self.testFaults = testFaults
    }

    struct Payload {
        var sleepMs = 0
        var fail = false
        var failAttempts = 0
        var permanent = false
        var abort = false
    }

    public func handle(_ job: ClaimedJob, context: JobContext) async throws {
        let payload = try Self.decode(job.payload, testFaults: testFaults)
        if payload.abort {
            context.logger.critical("noop aborts the process (JOBD_TEST_FAULTS)")
            abort()
        }
        if payload.sleepMs > 0 {
            try await Task.sleep(for: .milliseconds(payload.sleepMs))
        }
        if payload.permanent {
            throw JobFailure.permanent("noop asked to fail permanently", code: "noop_permanent")
        }
        if payload.fail {
            throw JobFailure.transient("noop asked to fail (attempt \(job.attempt))", code: "noop_fail")
        }
        if job.attempt <= payload.failAttempts {
            throw JobFailure.transient(
                "noop fails its first \(payload.failAttempts) attempts (this is attempt \(job.attempt))",
                code: "noop_fail")
        }
    }

    static func decode(_ text: String, testFaults: Bool = false) throws -> Payload {
        // The benchmark's and smoke tests' payload: skip the JSON decoder (a tenth of
        // the daemon's CPU per no-op job in the profile).
        if text == "{}" { return Payload() }
        let object = try JSONPayload.object(text, kind: "noop")
        var payload = Payload()
        for (key, value) in object {
            switch key {
            case "sleep_ms":
                payload.sleepMs = try JSONPayload.integer(value, field: key, kind: "noop", range: 0...3_600_000)
            case "fail":
                payload.fail = try JSONPayload.bool(value, field: key, kind: "noop")
            case "fail_attempts":
                payload.failAttempts = try JSONPayload.integer(value, field: key, kind: "noop", range: 0...1_000)
            case "permanent":
                payload.permanent = try JSONPayload.bool(value, field: key, kind: "noop")
            case "abort" where testFaults:
                payload.abort = try JSONPayload.bool(value, field: key, kind: "noop")
            default:
                throw JobFailure.permanent(
                    "noop payload: unknown field \"\(key)\" (known: sleep_ms, fail, fail_attempts, permanent)",
                    code: "payload_invalid")
            }
        }
        return payload
    }
}

/// Decoding helpers that turn malformed payloads into permanent failures naming the
/// field, so a bad payload is dead-lettered once with a clear reason.
public enum JSONPayload {
    public static func object(_ text: String, kind: String) throws -> [String: JSONValue] {
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        } catch {
            throw JobFailure.permanent("\(kind) payload is not valid JSON", code: "payload_invalid")
        }
        guard case .object(let object) = value else {
            throw JobFailure.permanent("\(kind) payload must be a JSON object", code: "payload_invalid")
        }
        return object
    }

    public static func integer(_ value: JSONValue, field: String, kind: String, range: ClosedRange<Int>) throws -> Int {
        guard case .number(let number) = value, let int = Int(exactly: number), range.contains(int) else {
            throw JobFailure.permanent(
                "\(kind) payload: \(field) must be a whole number in \(range.lowerBound)…\(range.upperBound)",
                code: "payload_invalid")
        }
        return int
    }

    public static func bool(_ value: JSONValue, field: String, kind: String) throws -> Bool {
        guard case .bool(let bool) = value else {
            throw JobFailure.permanent("\(kind) payload: \(field) must be true or false", code: "payload_invalid")
        }
        return bool
    }

    public static func string(_ value: JSONValue, field: String, kind: String, maxLength: Int = 1 << 20) throws -> String {
        guard case .string(let string) = value, string.utf8.count <= maxLength else {
            throw JobFailure.permanent("\(kind) payload: \(field) must be a string of at most \(maxLength) bytes",
                                       code: "payload_invalid")
        }
        return string
    }
}
