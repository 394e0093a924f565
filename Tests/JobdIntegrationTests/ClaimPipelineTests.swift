import JobdCore
import JobdPostgres
import JobdRedis
import JobdQueue
import JobdTestSupport
import Synchronization
import Testing

/// Counts how many attempts run at once, and how often each job ran.
final class PipelineConcurrencyProbe: Sendable {
    private struct State {
        var running = 0
        var peak = 0
        var runs: [JobID: Int] = [:]
    }
    private let state = Mutex(State())

    func enter(_ id: JobID) {
        state.withLock { state in
            state.running += 1
            state.peak = max(state.peak, state.running)
            state.runs[id, default: 0] += 1
        }
    }

    func leave() { state.withLock { $0.running -= 1 } }

    var peak: Int { state.withLock { $0.peak } }
    var runs: [JobID: Int] { state.withLock { $0.runs } }
}

/// `probe.sleep`: sleeps a little while being counted.
struct PipelineSleepProbeHandler: JobHandler {
    let kind = "probe.sleep"
    let probe: PipelineConcurrencyProbe
    func handle(_ job: ClaimedJob, context: JobContext) async throws {
        probe.enter(job.id)
        defer { probe.leave() }
        try await Task.sleep(for: .milliseconds(Int.random(in: 0...4)))
    }
}

/// The worker pool's claim pipelines (`JOBD_CLAIM_PIPELINES`, one by default): slots
/// are reserved before a claim, so several pipelines together never start more
/// attempts than the pool has slots, and each job still runs once.
@Suite("Claim pipelines", .serialized)
struct ClaimPipelineTests {
    @Test("a pool claims on the pipelines configured, at least one and at most one per slot")
    func pipelineCount() {
        #expect(WorkerPool.claimPipelines(forSlots: 1, configured: 1) == 1)
        #expect(WorkerPool.claimPipelines(forSlots: 4_096, configured: 1) == 1)
        #expect(WorkerPool.claimPipelines(forSlots: 32, configured: 2) == 2)
        #expect(WorkerPool.claimPipelines(forSlots: 4_096, configured: 8) == 8)
        #expect(WorkerPool.claimPipelines(forSlots: 3, configured: 8) == 3)
        #expect(WorkerPool.claimPipelines(forSlots: 1, configured: 2) == 1)
        #expect(WorkerPool.claimPipelines(forSlots: 16, configured: 0) == 1)
        #expect(DaemonConfiguration.defaults.claimPipelines == 1)
    }

    @Test("the daemon opens a claim connection per pipeline: one by default, at any pool size")
    func pipelineConnections() async throws {
        try await withWorld { world in
            for (workers, pipelines, expected) in [(64, nil, 1), (512, nil, 1), (64, 3, 3), (2, 8, 2)] as [(Int, Int?, Int)] {
                let names = Mutex<[String]>([])
                let config = world.configuration {
                    $0.workers = .shared(workers)
                    if let pipelines { $0.claimPipelines = pipelines }
                }
                _ = world.makeDaemon(config) { name in
                    if name.hasPrefix("claim-") { names.withLock { $0.append(name) } }
                    return nil
                }
                #expect(names.withLock { $0.count } == expected, "\(workers) workers, JOBD_CLAIM_PIPELINES \(pipelines ?? 1)")
            }
        }
    }

    @Test("a reservation holds slots until settled; unused ones come back free")
    func reservations() async {
        let slots = WorkerSlots(capacity: 10)
        #expect(slots.reserveFree(limit: 4) == 4)
        // Reserved slots are not "busy" (no job runs in them) but a drain waits for them.
        #expect(slots.busy == 0)
        #expect(slots.occupied == 4)
        #expect(await slots.waitForFree() == 6)
        #expect(slots.reserveFree() == 6)
        #expect(slots.reserveFree() == 0)
        // Three of the first four were claimed; the fourth is free again.
        let fences = (1...3).map { AttemptFence(id: JobID($0), attempt: 1, token: 7) }
        slots.settle(reserved: 4, occupying: fences)
        #expect(slots.busy == 3)
        #expect(slots.occupied == 9)
        #expect(Set(slots.fences) == Set(fences))
        #expect(await slots.waitForFree() == 1)
        slots.settle(reserved: 6, occupying: [])
        await slots.waitForClaims()
        #expect(await slots.waitUntilIdle(timeout: .milliseconds(50)) == false)
        for fence in fences { slots.release(fence) }
        #expect(slots.occupied == 0)
        #expect(await slots.waitUntilIdle(timeout: .seconds(10)))
    }

    @Test("two pipelines never run more jobs at once than there are slots, and each job once")
    func neverOverCommits() async throws {
        try await withWorld { world in
            let probe = PipelineConcurrencyProbe()
            let jobs = 3_000
            try await world.exec(
                "INSERT INTO queue.jobs (kind) SELECT 'probe.sleep' FROM generate_series(1, $1::int)", [String(jobs)])
            let daemon = world.makeDaemon(
                world.configuration {
                    $0.workers = .shared(32)
                    $0.claimPipelines = 2
                }, handlers: [PipelineSleepProbeHandler(probe: probe)])
            try await world.running([daemon]) {
                try await world.waitForState("completed", count: jobs, timeout: 120)
                #expect(daemon.workerUsage.total == 32)
            }
            #expect(probe.peak <= 32)
            #expect(probe.peak > 1, "the pool ran jobs concurrently")
            #expect(probe.runs.count == jobs)
            #expect(probe.runs.values.allSatisfy { $0 == 1 })
            #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE attempt <> 1") == 0)
            // Both pipelines' connections were used and closed with the pool.
            #expect(daemon.workerUsage.busy == 0)
        }
    }

    @Test("a claim that gets no reply logs how many jobs it may have taken; they run once, after the cause is gone")
    func unconfirmedClaim() async throws {
        try await withWorld { world in
            try await world.exec("INSERT INTO queue.jobs (kind) SELECT 'noop' FROM generate_series(1, 5)")
            // Every claim (an UPDATE) waits behind this lock past its deadline; the
            // promoter's read of due jobs does not, so the ids reach Redis and are popped.
            let locker = world.database.connection("locker")
            _ = try await locker.query("BEGIN")
            _ = try await locker.query("LOCK TABLE queue.jobs IN SHARE MODE")
            let daemon = world.makeDaemon(world.configuration { $0.commandTimeout = .seconds(1) })
            try await world.running([daemon]) {
                try await waitUntil(timeout: 20, "a failed claim of the 5 popped ids") {
                    world.logs.messages("fetch failed; retrying").contains { $0.metadata[LogKey.unconfirmed] == "5" }
                }
                #expect(try await world.count(state: "completed") == 0)
                _ = try await locker.query("ROLLBACK")
                // The ids went back to the lists, and the server ended the claim with its
                // statement_timeout: nothing was taken, so each job runs once, at attempt 1.
                try await world.waitForState("completed", count: 5, timeout: 30)
            }
            await locker.close()
            #expect(try await world.int("SELECT count(*) FROM queue.completed_jobs WHERE attempt <> 1") == 0)
        }
    }

    @Test("claims pause while completions cannot be written: the unwritten ones stay bounded")
    func completionBackpressure() async throws {
        try await withWorld { world in
            let jobs = 3_000
            try await world.exec("INSERT INTO queue.jobs (kind) SELECT 'noop' FROM generate_series(1, $1::int)", [String(jobs)])
            let config = world.configuration {
                $0.workers = .shared(4)
                $0.lease = .seconds(120)  // no rescue while the completions are stuck
            }
            // The pool's completion connection points at a closed port: every write of a
            // completion (and every lease heartbeat) fails and is retried.
            let daemon = world.makeDaemon(config, id: "stuck") { name in
                name.hasPrefix("complete-") ? "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1" : nil
            }
            let limit = try #require(daemon.pools.first).maxUnwrittenCompletions
            #expect(limit == 512)
            await withTaskGroup(of: Void.self) { group in
                for service in daemon.services { group.addTask { try? await service.run() } }
                // Noop jobs run in microseconds: without the pause all 3,000 would be
                // claimed (and run) within a second or two.
                try? await Task.sleep(for: .seconds(4))
                let running = (try? await world.int("SELECT count(*) FROM queue.jobs WHERE state = 'running'")) ?? -1
                #expect(running >= limit, "claimed up to the limit")
                // The limit, plus what the pool's slots held and its last claim took.
                #expect(running <= limit + 2 * config.workers.pools[0].slots, "claims paused at the limit: \(running) running")
                // The setup holds: no completion could be written.
                #expect((try? await world.count(state: "completed")) == 0)
                group.cancelAll()
            }
        }
    }
}
