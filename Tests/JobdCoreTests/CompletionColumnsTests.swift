import JobdCore
import Testing

@Suite("CompletionColumns")
struct CompletionColumnsTests {
    @Test("every field of every completion lands in its column, in the batch's order")
    func columns() {
        let batch = [
            AttemptCompletion(fence: AttemptFence(id: 9_007_199_254_740_993, attempt: 3, token: Int64.max), outcome: .completed, runSeconds: 0.000012),
            AttemptCompletion(
                fence: AttemptFence(id: 2, attempt: 1, token: 1), outcome: .retry, delay: .milliseconds(1_500),
                errorCode: "noop_fail", errorMessage: "failed", runSeconds: 2, queueWaitSeconds: 0.25),
            AttemptCompletion(fence: AttemptFence(id: 3, attempt: 20, token: -5_000_000_000), outcome: .dead, errorCode: "payload_invalid"),
            AttemptCompletion(fence: AttemptFence(id: 4, attempt: 2, token: 9), outcome: .snooze, keepsPlace: true),
            AttemptCompletion(fence: AttemptFence(id: 5, attempt: 2, token: 9), outcome: .release, delay: JobSnooze.maxDelay),
        ]
        let columns = CompletionColumns(batch)
        #expect(columns.count == 5)
        #expect(columns.ids == [9_007_199_254_740_993, 2, 3, 4, 5])
        #expect(columns.attempts == [3, 1, 20, 2, 2])
        #expect(columns.tokens == [Int64.max, 1, -5_000_000_000, 9, 9])
        #expect(columns.outcomes == ["completed", "retry", "dead", "snooze", "release"])
        #expect(columns.delays == [0, 1.5, 0, 0, 31_622_400])
        #expect(columns.codes == [nil, "noop_fail", "payload_invalid", nil, nil])
        #expect(columns.errors == [nil, "failed", nil, nil, nil])
        #expect(columns.runs == [0.000012, 2, 0, 0, 0])
        #expect(columns.waits == [0, 0.25, 0, 0, 0])
        #expect(columns.places == [false, false, false, true, false])
    }

    @Test("NUL in a code or an error text becomes U+FFFD; every other character is kept")
    func noNUL() {
        let message = "quote \" backslash \\ newline \n bell \u{07} nul \u{0} twice \u{0}\u{0} unicode é 😀"
        let columns = CompletionColumns([AttemptCompletion(
            fence: AttemptFence(id: 1, attempt: 1, token: 1), outcome: .retry, errorCode: "c\u{0}de", errorMessage: message)])
        #expect(columns.errors == [message.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}")])
        #expect(columns.codes == ["c\u{FFFD}de"])
        #expect(!(columns.errors[0] ?? "").utf8.contains(0))
    }

    @Test("non-finite run and wait seconds are 0, never a value the batch could fail on", arguments: [
        Double.nan, .infinity, -.infinity, .signalingNaN,
    ])
    func nonFinite(value: Double) {
        let columns = CompletionColumns([AttemptCompletion(
            fence: AttemptFence(id: 1, attempt: 1, token: 1), outcome: .snooze, runSeconds: value, queueWaitSeconds: value)])
        #expect(columns.runs == [0])
        #expect(columns.waits == [0])
    }

    @Test("the delay goes out as seconds, to the nanosecond", arguments: [
        (Duration.zero, 0.0), (.milliseconds(200), 0.2), (.milliseconds(1_500), 1.5), (.nanoseconds(1), 1e-09),
        (JobSnooze.maxDelay, 31_622_400.0),
    ])
    func delaySeconds(delay: Duration, seconds: Double) {
        let columns = CompletionColumns([AttemptCompletion(fence: AttemptFence(id: 1, attempt: 1, token: 1), outcome: .retry, delay: delay)])
        #expect(columns.delays == [seconds])
    }

    @Test("an empty batch is empty columns")
    func empty() {
        let columns = CompletionColumns([])
        #expect(columns.count == 0 && columns.outcomes.isEmpty && columns.places.isEmpty)
    }
}
