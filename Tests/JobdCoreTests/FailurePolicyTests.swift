import JobdCore
import JobdTestRandom
import Testing

@Suite("FailurePolicy")
struct FailurePolicyTests {
    let backoff = RetryBackoff(base: .seconds(2), maximum: .seconds(300), jitter: 0.5)
    var policy: FailurePolicy { FailurePolicy(backoff: backoff) }

    func job(attempt: Int, maxAttempts: Int = 5, id: JobID = 42) -> ClaimedJob {
        ClaimedJob(id: id, kind: "email.send", payload: "{}", priority: .normal, attempt: attempt, maxAttempts: maxAttempts)
    }

    @Test("success completes, carries the fence and run time, no error")
    func success() {
        var generator = SplitMix64(seed: 1)
        let completion = policy.completion(for: job(attempt: 3, id: 9), result: .succeeded, runSeconds: 1.25, using: &generator)
        #expect(completion.outcome == .completed)
        #expect(completion.fence == AttemptFence(id: 9, attempt: 3, token: 0))
        #expect(completion.runSeconds == 1.25)
        #expect(completion.delay == .zero)
        #expect(completion.errorCode == nil)
        #expect(completion.errorMessage == nil)
    }

    @Test("transient failure with attempts left retries within the backoff range", arguments: 1...4)
    func transientRetries(attempt: Int) {
        for seed in coreTestSeeds {
            var generator = SplitMix64(seed: seed)
            let failure = JobFailure.transient("connection reset", code: "upstream")
            let completion = policy.completion(for: job(attempt: attempt), result: .failed(failure), runSeconds: 0.5, using: &generator)
            #expect(completion.outcome == .retry)
            #expect(completion.errorCode == "upstream")
            #expect(completion.errorMessage == "connection reset")
            #expect(completion.fence == AttemptFence(id: 42, attempt: attempt, token: 0))
            #expect(completion.runSeconds == 0.5)
            let ceiling = backoff.ceiling(forAttempt: attempt)
            #expect(completion.delay >= ceiling * 0.5)
            #expect(completion.delay <= ceiling)
        }
    }

    @Test("the retry delay is the backoff's draw for that attempt")
    func retryDelayMatchesBackoff() {
        var forPolicy = SplitMix64(seed: 1234)
        var forBackoff = SplitMix64(seed: 1234)
        let completion = policy.completion(
            for: job(attempt: 4), result: .failed(.transient("x")), runSeconds: 0, using: &forPolicy
        )
        #expect(completion.delay == backoff.delay(forAttempt: 4, using: &forBackoff))
    }

    @Test("the retry delay grows with the attempt (jitter 0)")
    func retryDelayGrows() {
        let fixed = FailurePolicy(backoff: RetryBackoff(base: .seconds(1), maximum: .seconds(10), jitter: 0))
        var generator = SplitMix64(seed: 0)
        let delays = (1...6).map {
            fixed.completion(for: job(attempt: $0, maxAttempts: 10), result: .failed(.transient("x")), runSeconds: 0, using: &generator).delay
        }
        #expect(delays == [1, 2, 4, 8, 10, 10].map { Duration.seconds($0) })
    }

    @Test("transient failure on the last attempt is dead and keeps the error code", arguments: [1, 2, 5, 20])
    func transientOnLastAttempt(maxAttempts: Int) {
        var generator = SplitMix64(seed: 5)
        let failure = JobFailure.transient("timed out", code: "timeout")
        let completion = policy.completion(
            for: job(attempt: maxAttempts, maxAttempts: maxAttempts), result: .failed(failure), runSeconds: 3, using: &generator
        )
        #expect(completion.outcome == .dead)
        #expect(completion.errorCode == "timeout")
        #expect(completion.errorMessage == "timed out")
        #expect(completion.delay == .zero)
        #expect(completion.runSeconds == 3)
    }

    @Test("an attempt past max_attempts is dead too")
    func pastLastAttempt() {
        var generator = SplitMix64(seed: 5)
        let completion = policy.completion(for: job(attempt: 7, maxAttempts: 5), result: .failed(.transient("x")), runSeconds: 0, using: &generator)
        #expect(completion.outcome == .dead)
        #expect(completion.errorCode == "handler_error")
    }

    @Test("the attempt before the last still retries")
    func penultimateRetries() {
        var generator = SplitMix64(seed: 5)
        let completion = policy.completion(for: job(attempt: 4, maxAttempts: 5), result: .failed(.transient("x")), runSeconds: 0, using: &generator)
        #expect(completion.outcome == .retry)
        #expect(completion.delay > .zero)
    }

    @Test("permanent failure is dead at once, even on attempt 1")
    func permanentIsDead() {
        var generator = SplitMix64(seed: 8)
        let failure = JobFailure.permanent("payload has no \"to\" field", code: "payload_invalid")
        let completion = policy.completion(for: job(attempt: 1, maxAttempts: 20), result: .failed(failure), runSeconds: 0.01, using: &generator)
        #expect(completion.outcome == .dead)
        #expect(completion.errorCode == "payload_invalid")
        #expect(completion.errorMessage == "payload has no \"to\" field")
        #expect(completion.delay == .zero)
        #expect(completion.fence == AttemptFence(id: 42, attempt: 1, token: 0))
    }

    @Test("snooze keeps the given delay and records no error",
          arguments: [Duration.zero, .milliseconds(1_500), .seconds(30), .seconds(86_400), JobSnooze.maxDelay])
    func snooze(delay: Duration) {
        var generator = SplitMix64(seed: 2)
        let completion = policy.completion(for: job(attempt: 5, maxAttempts: 5), result: .snoozed(JobSnooze(for: delay, code: "test", message: "test snooze")), runSeconds: 0.2, using: &generator)
        #expect(completion.outcome == .snooze)
        #expect(completion.delay == delay)
        #expect(completion.errorCode == nil)
        #expect(completion.errorMessage == nil)
        #expect(completion.runSeconds == 0.2)
    }

    @Test("a snooze keeping its place is flagged for the completion to read the row's run_at: no delay, whatever its wait and run time")
    func snoozeKeepingPlace() {
        var generator = SplitMix64(seed: 2)
        var claimed = job(attempt: 2)
        claimed.queueWaitSeconds = 30.5
        let snooze = JobSnooze.keepingPlace(code: "goes_on", message: "more to do")
        #expect(snooze.keepsPlace && snooze.delay == .zero && snooze.code == "goes_on")
        let completion = policy.completion(for: claimed, result: .snoozed(snooze), runSeconds: 20.25, using: &generator)
        #expect(completion.outcome == .snooze)
        #expect(completion.keepsPlace)
        #expect(completion.delay == .zero)
        #expect(completion.errorCode == nil && completion.errorMessage == nil)
        let plain = policy.completion(
            for: claimed, result: .snoozed(JobSnooze(for: .seconds(1), code: "c", message: "m")), runSeconds: 1, using: &generator)
        #expect(!plain.keepsPlace && plain.delay == .seconds(1))
    }

    @Test("interrupted goes back to available")
    func interrupted() {
        var generator = SplitMix64(seed: 2)
        let completion = policy.completion(for: job(attempt: 5, maxAttempts: 5), result: .interrupted, runSeconds: 29, using: &generator)
        #expect(completion.outcome == .release)
        #expect(completion.delay == .zero)
        #expect(completion.errorCode == "interrupted")
        #expect(completion.runSeconds == 29)
        #expect(completion.fence == AttemptFence(id: 42, attempt: 5, token: 0))
    }

    @Test("long error messages are bounded")
    func longMessageBounded() throws {
        var generator = SplitMix64(seed: 2)
        let long = String(repeating: "x", count: 10_000)
        let completion = policy.completion(for: job(attempt: 1), result: .failed(.transient(long)), runSeconds: 0, using: &generator)
        let message = try #require(completion.errorMessage)
        #expect(message.utf8.count <= policy.maxErrorLength + "…".utf8.count)
        #expect(message.utf8.count < long.utf8.count)
        #expect(message.hasPrefix(String(repeating: "x", count: policy.maxErrorLength)))
        #expect(message.hasSuffix("…"))
    }

    @Test("permanent and dead messages are bounded too")
    func deadMessageBounded() throws {
        var generator = SplitMix64(seed: 2)
        let small = FailurePolicy(backoff: backoff, maxErrorLength: 10)
        let completion = small.completion(for: job(attempt: 1), result: .failed(.permanent(String(repeating: "y", count: 50))), runSeconds: 0, using: &generator)
        #expect(completion.errorMessage == String(repeating: "y", count: 10) + "…")
    }

    @Test("the default bound is 2000 bytes")
    func defaultBound() {
        #expect(FailurePolicy(backoff: backoff).maxErrorLength == 2_000)
    }

    @Test("a message at or under the bound is unchanged", arguments: [0, 1, 9, 10])
    func shortMessageUnchanged(length: Int) {
        let small = FailurePolicy(backoff: backoff, maxErrorLength: 10)
        let text = String(repeating: "z", count: length)
        #expect(small.bounded(text) == text)
    }

    @Test("an ASCII message one byte over the bound is cut at the bound")
    func oneOver() {
        let small = FailurePolicy(backoff: backoff, maxErrorLength: 10)
        #expect(small.bounded("abcdefghijk") == "abcdefghij…")
    }

    @Test(
        "cutting through a multi-byte character leaves no U+FFFD",
        arguments: [
            ("é", 2), ("€", 3), ("🦊", 4),
        ]
    )
    func multiByteCut(character: String, width: Int) {
        #expect(character.utf8.count == width)
        let text = String(repeating: character, count: 20)
        for limit in 1...(width * 5) {
            let small = FailurePolicy(backoff: backoff, maxErrorLength: limit)
            let cut = small.bounded(text)
            #expect(!cut.unicodeScalars.contains("\u{FFFD}"), "limit \(limit): \(cut)")
            #expect(cut.hasSuffix("…"))
            let body = cut.dropLast()
            #expect(body.utf8.count <= limit)
            #expect(body.utf8.count == (limit / width) * width, "limit \(limit) keeps every whole character")
            #expect(body.allSatisfy { String($0) == character })
        }
    }

    @Test("a mixed message is cut on a character boundary")
    func mixedCut() {
        let small = FailurePolicy(backoff: backoff, maxErrorLength: 6)
        // "ab" (2) + "€" (3) + "🦊" (4): the cut at byte 6 lands inside the fox.
        #expect(small.bounded("ab€🦊cd") == "ab€…")
    }

    @Test("JobFailure helpers and description")
    func jobFailure() {
        let transient = JobFailure.transient("boom")
        #expect(transient.severity == .transient)
        #expect(transient.code == "handler_error")
        let permanent = JobFailure.permanent("bad")
        #expect(permanent.severity == .permanent)
        #expect(permanent.code == "permanent")
        #expect(JobFailure(.transient, code: "rate", message: "slow down").description == "rate: slow down")
    }

    @Test("JobSnooze holds a delay in 0…maxDelay", arguments: [
        (Duration.seconds(-5), Duration.zero), (.zero, .zero), (.milliseconds(2_500), .milliseconds(2_500)),
        (JobSnooze.maxDelay, JobSnooze.maxDelay), (JobSnooze.maxDelay + .nanoseconds(1), JobSnooze.maxDelay),
    ])
    func snoozeClamp(input: Duration, expected: Duration) {
        #expect(JobSnooze(for: input, code: "c", message: "m").delay == expected)
    }

    @Test("a snooze's delay set out of range after it was made is bounded where the completion is written")
    func snoozeBoundedAgain() {
        var snooze = JobSnooze(for: .seconds(1), code: "c", message: "m")
        snooze.delay = .seconds(-1)
        var generator = SplitMix64(seed: 3)
        #expect(policy.completion(for: job(attempt: 1), result: .snoozed(snooze), runSeconds: 0, using: &generator).delay == .zero)
        snooze.delay = JobSnooze.maxDelay * 2
        #expect(policy.completion(for: job(attempt: 1), result: .snoozed(snooze), runSeconds: 0, using: &generator).delay == JobSnooze.maxDelay)
    }

    @Test("the fence is (id, attempt, lease token)")
    func fence() {
        let claimed = ClaimedJob(id: 77, kind: "k", payload: "{}", priority: .low, attempt: 2, maxAttempts: 3, leaseToken: 41)
        #expect(claimed.fence == AttemptFence(id: 77, attempt: 2, token: 41))
        #expect(claimed.fence != AttemptFence(id: 77, attempt: 3, token: 41))
        // The same attempt number under another claim (one a server crash lost).
        #expect(claimed.fence != AttemptFence(id: 77, attempt: 2, token: 42))
        #expect(claimed.queueWaitSeconds == 0)
        #expect(claimed.rescues == 0)
    }
}
