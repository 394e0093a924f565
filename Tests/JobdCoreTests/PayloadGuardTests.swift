import Foundation
import JobdCore
import Testing

@Suite("PayloadGuard")
struct PayloadGuardTests {
    func nested(_ depth: Int) -> String {
        "{\"a\": " + String(repeating: "[", count: depth - 1) + String(repeating: "]", count: depth - 1) + "}"
    }

    @Test(
        "ordinary payloads pass",
        arguments: [
            "{}", #"{"sleep_ms": 5}"#, #"{"a": [1, {"b": [null, true]}], "c": "x"}"#, "[]", "1", #""s""#,
            // Brackets inside strings are text, not nesting.
            #"{"s": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{{"}"#,
            // An escaped quote does not end the string: the brackets after it stay text.
            #"{"s": "\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}"#,
            #"{"s": "\\", "t": []}"#,
        ]
    )
    func ordinary(text: String) {
        #expect(PayloadGuard.check(text) == nil)
    }

    @Test("nesting up to the limit passes; one level more is payload_too_deep")
    func depthLimit() {
        #expect(PayloadGuard.check(nested(PayloadGuard.maxDepth)) == nil)
        let failure = PayloadGuard.check(nested(PayloadGuard.maxDepth + 1))
        #expect(failure?.code == "payload_too_deep")
        #expect(failure?.severity == .permanent)
        #expect(PayloadGuard.check(nested(3), maxDepth: 2)?.code == "payload_too_deep")
    }

    @Test("a document nested 100,000 deep is refused in one pass, without recursion")
    func hostileDepth() {
        let text = nested(100_000)
        let started = ContinuousClock.now
        #expect(PayloadGuard.check(text)?.code == "payload_too_deep")
        // Generous, so a loaded host cannot break it: it only catches a pass that is
        // quadratic in the depth (10^10 steps here), not a slow machine. Speed is the bench's.
        #expect(started.duration(to: .now) < .seconds(30))
    }

    @Test("a NUL byte is payload_invalid")
    func nul() {
        #expect(PayloadGuard.check("{\"a\": \"x\u{0}y\"}")?.code == "payload_invalid")
        #expect(PayloadGuard.check("{}\u{0}")?.code == "payload_invalid")
    }
}
