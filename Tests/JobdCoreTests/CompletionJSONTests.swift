import Foundation
import JobdCore
import Testing

@Suite("CompletionJSON")
struct CompletionJSONTests {
    /// Decodes with Foundation's parser, which is strict about JSON syntax.
    func decode(_ text: String) throws -> [[String: Any]] {
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
        return try #require(object as? [[String: Any]])
    }

    @Test("every field of every completion survives a strict JSON parser")
    func roundTrip() throws {
        let batch = [
            AttemptCompletion(fence: AttemptFence(id: 9_007_199_254_740_993, attempt: 3, token: Int64.max), outcome: .completed, runSeconds: 0.000012),
            AttemptCompletion(
                fence: AttemptFence(id: 2, attempt: 1, token: 1), outcome: .retry, delay: .milliseconds(1_500),
                errorCode: "noop_fail", errorMessage: "failed", runSeconds: 2, queueWaitSeconds: 0.25),
            AttemptCompletion(fence: AttemptFence(id: 3, attempt: 20, token: 5_000_000_000), outcome: .dead, errorCode: "payload_invalid", errorMessage: nil),
        ]
        let rows = try decode(CompletionJSON.encode(batch))
        #expect(rows.count == 3)
        #expect((rows[0]["id"] as? NSNumber)?.int64Value == 9_007_199_254_740_993)
        #expect((rows[0]["attempt"] as? NSNumber)?.intValue == 3)
        // Lease tokens use all 63 bits; Postgres reads JSON numbers as numeric, exactly.
        #expect((rows[0]["token"] as? NSNumber)?.int64Value == Int64.max)
        #expect((rows[2]["token"] as? NSNumber)?.int64Value == 5_000_000_000)
        #expect(rows[0]["outcome"] as? String == "completed")
        #expect((rows[0]["run"] as? NSNumber)?.doubleValue == 0.000012)
        #expect(rows[0]["code"] == nil && rows[0]["error"] == nil)
        #expect((rows[1]["delay"] as? NSNumber)?.doubleValue == 1.5)
        #expect((rows[1]["wait"] as? NSNumber)?.doubleValue == 0.25)
        #expect((rows[0]["wait"] as? NSNumber)?.doubleValue == 0)
        #expect(rows[1]["code"] as? String == "noop_fail")
        #expect(rows[1]["error"] as? String == "failed")
        #expect(rows[2]["outcome"] as? String == "dead")
        #expect(rows[2]["code"] as? String == "payload_invalid")
        #expect(rows[2]["error"] == nil)
    }

    @Test("hostile error texts stay one valid string; NUL becomes U+FFFD")
    func escaping() throws {
        let message = "quote \" backslash \\ newline \n tab \t cr \r bell \u{07} nul \u{0} unicode é 😀 </script>"
        let batch = [AttemptCompletion(
            fence: AttemptFence(id: 1, attempt: 1, token: 1), outcome: .retry, errorCode: "c\"ode", errorMessage: message)]
        let rows = try decode(CompletionJSON.encode(batch))
        #expect(rows[0]["error"] as? String == message.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}"))
        #expect(rows[0]["code"] as? String == "c\"ode")
    }

    @Test("non-finite numbers are written as 0, never as invalid JSON")
    func nonFinite() throws {
        let batch = [AttemptCompletion(
            fence: AttemptFence(id: 1, attempt: 1, token: 1), outcome: .snooze, runSeconds: .nan, queueWaitSeconds: .infinity)]
        let rows = try decode(CompletionJSON.encode(batch))
        #expect((rows[0]["run"] as? NSNumber)?.doubleValue == 0)
        #expect((rows[0]["wait"] as? NSNumber)?.doubleValue == 0)
    }

    @Test("the delay goes out as seconds in Swift's shortest form, as the batch statement's float8 reads it", arguments: [
        (Duration.zero, #""delay":0.0,"#), (.milliseconds(200), #""delay":0.2,"#), (.milliseconds(1_500), #""delay":1.5,"#),
        (.nanoseconds(1), #""delay":1e-09,"#), (JobSnooze.maxDelay, #""delay":31622400.0,"#),
    ])
    func delaySeconds(delay: Duration, text: String) {
        let batch = [AttemptCompletion(fence: AttemptFence(id: 1, attempt: 1, token: 1), outcome: .retry, delay: delay)]
        #expect(CompletionJSON.encode(batch).contains(text))
    }

    @Test("a snooze keeping its place carries place: true; no other completion carries the key")
    func keepsPlace() throws {
        let fence = AttemptFence(id: 1, attempt: 1, token: 1)
        let rows = try decode(CompletionJSON.encode([
            AttemptCompletion(fence: fence, outcome: .snooze, keepsPlace: true),
            AttemptCompletion(fence: fence, outcome: .snooze, delay: .seconds(5)),
        ]))
        #expect(rows[0]["place"] as? Bool == true)
        #expect((rows[0]["delay"] as? NSNumber)?.doubleValue == 0)
        #expect(rows[1]["place"] == nil)
    }

    @Test("an empty batch is an empty array")
    func empty() {
        #expect(CompletionJSON.encode([]) == "[]")
    }
}
