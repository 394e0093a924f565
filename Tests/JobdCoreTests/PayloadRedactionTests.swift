import JobdCore
import Testing

@Suite("Payload redaction for the web console")
struct PayloadRedactionTests {
    static let payload: JSONValue = .object([
        "to": .string("ann@example.com"),
        "html": .string("<p>Hello</p>"),
        "headers": .object(["Authorization": .string("Bearer abc"), "X-Id": .number(7)]),
        "api_key": .string("k-123"),
        "notes": .array([.string(String(repeating: "x", count: 300)), .string("short")]),
        "attachments": .array([.object(["data_base64": .string("AAAA")])]),
        "count": .number(42),
        "smtp-password": .null,
    ])

    @Test("secrets are hidden from everyone; bodies and long strings only from read-only viewers")
    func redaction() throws {
        let forOperator = PayloadRedaction.redact(Self.payload, for: .operator)
        let forReader = PayloadRedaction.redact(Self.payload, for: .readOnly)
        guard case .object(let op) = forOperator, case .object(let ro) = forReader else {
            Issue.record("not objects")
            return
        }
        #expect(op["api_key"] == .string("‹secret hidden›"))
        #expect(op["headers"] == .object(["Authorization": .string("‹secret hidden›"), "X-Id": .number(7)]))
        #expect(op["html"] == .string("<p>Hello</p>"))
        #expect(op["attachments"] == Self.payload.objectValue?["attachments"])
        #expect(op["smtp-password"] == .null)  // nothing to hide
        #expect(ro["api_key"] == .string("‹secret hidden›"))
        #expect(ro["html"] == .string("‹body hidden: 14 bytes›"))
        #expect(ro["to"] == .string("ann@example.com"))
        #expect(ro["count"] == .number(42))
        #expect(ro["notes"] == .array([.string("‹body hidden: 300 bytes›"), .string("short")]))
        guard case .string(let attachments)? = ro["attachments"] else {
            Issue.record("attachments not hidden")
            return
        }
        #expect(attachments.hasPrefix("‹body hidden"))
        let text = PayloadRedaction.pretty(forReader)
        #expect(!text.contains("Bearer abc") && !text.contains("k-123") && !text.contains("Hello") && !text.contains("AAAA"))
    }

    @Test("pretty printing: sorted keys, escapes, integers without a fraction")
    func pretty() {
        let value: JSONValue = .object(["b": .array([.number(1), .number(2.5)]), "a": .string("q\"\n\u{1}")])
        #expect(PayloadRedaction.pretty(value) == "{\n  \"a\": \"q\\\"\\n\\u0001\",\n  \"b\": [\n    1,\n    2.5\n  ]\n}")
        #expect(PayloadRedaction.pretty(.object([:])) == "{}")
    }
}

extension JSONValue {
    fileprivate var objectValue: [String: JSONValue]? {
        if case .object(let fields) = self { return fields }
        return nil
    }
}
