import JobdAssembly
import JobdCore
import Testing

@Suite("ReloadPlan")
struct ReloadPlanTests {
    typealias Key = ConfigurationKey

    @Test("nothing changed, nothing to do")
    func unchanged() {
        let values: [Key: String] = [.workers: "8", .logLevel: "info", .databaseURL: "postgresql:///jobs"]
        let plan = ReloadPlan(old: values, new: values, keys: JobdSettings.keys)
        #expect(plan.changed.isEmpty)
        #expect(plan.live.isEmpty)
        #expect(plan.needRestart.isEmpty)
    }

    @Test("log level and workers apply live; connection settings need a restart")
    func splitsLiveFromRestart() {
        let plan = ReloadPlan(
            old: [.workers: "8", .logLevel: "info", .databaseURL: "postgresql:///a", .redisURL: "redis://r"],
            new: [.workers: "16", .logLevel: "debug", .databaseURL: "postgresql:///b", .redisURL: "redis://r"],
            keys: JobdSettings.keys)
        #expect(plan.changed == [.databaseURL, .workers, .logLevel])
        #expect(plan.live == [.workers, .logLevel])
        #expect(plan.needRestart == [.databaseURL])
    }

    @Test("a key removed or added counts as changed; blank equals unset; spaces don't matter")
    func presenceAndWhitespace() {
        let plan = ReloadPlan(
            old: [.lease: "30", .pollInterval: " ", .workers: "4"],
            new: [.redisPrefix: "other", .workers: " 4 "], keys: JobdSettings.keys)
        #expect(plan.changed == [.redisPrefix, .lease])
        #expect(plan.needRestart == [.redisPrefix, .lease])
    }

    @Test("only the log level and worker counts are reloadable")
    func reloadableKeys() {
        #expect(JobdSettings.keys.filter(\.isReloadable) == [.workers, .logLevel])
    }
}
