import JobdCore
import JobdQueue
import Logging
import Testing

@Suite("Job context")
struct JobContextTests {
    private let job = ClaimedJob(id: 42, kind: "content.write", payload: "{}", priority: .high, attempt: 3, maxAttempts: 5)
    private var base: Logger {
        // A handler that keeps metadata (the no-op one drops it); nothing is logged.
        var logger = Logger(label: "test", factory: { label in StreamLogHandler.standardError(label: label) })
        logger.logLevel = .critical
        logger[metadataKey: "daemon"] = "d1"
        return logger
    }

    @Test("a job's context logger carries the job's id, kind, attempt and priority beside the daemon's metadata")
    func carriesJobMetadata() {
        let logger = JobContext(logger: base, job: job).logger
        #expect(logger[metadataKey: LogKey.jobID] == "42")
        #expect(logger[metadataKey: LogKey.jobKind] == "content.write")
        #expect(logger[metadataKey: LogKey.jobAttempt] == "3")
        #expect(logger[metadataKey: LogKey.jobPriority] == "high")
        #expect(logger[metadataKey: "daemon"] == "d1")
    }

    @Test("metadata a handler adds is kept with the job's; a context without a job has the logger as given")
    func handlerMetadataKept() {
        var context = JobContext(logger: base, job: job)
        context.logger[metadataKey: "message_id"] = "m1"
        #expect(context.logger[metadataKey: "message_id"] == "m1")
        #expect(context.logger[metadataKey: LogKey.jobID] == "42")
        let plain = JobContext(logger: base).logger
        #expect(plain[metadataKey: LogKey.jobID] == nil)
        #expect(plain[metadataKey: "daemon"] == "d1")
    }
}
