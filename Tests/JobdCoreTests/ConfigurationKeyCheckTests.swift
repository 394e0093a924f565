import JobdAssembly
import JobdCore
import Testing

@Suite struct ConfigurationKeyCheckTests {
    @Test func editDistance() {
        #expect(ConfigurationKeyCheck.editDistance("", "") == 0)
        #expect(ConfigurationKeyCheck.editDistance("abc", "") == 3)
        #expect(ConfigurationKeyCheck.editDistance("kitten", "sitting") == 3)
        #expect(ConfigurationKeyCheck.editDistance("JOBD_LEASE", "JOBD_LEASEE") == 1)
        #expect(ConfigurationKeyCheck.editDistance("flaw", "lawn") == 2)
    }

    @Test func closestKnownKey() {
        let known = JobdSettings.keys.environmentNames
        #expect(ConfigurationKeyCheck.closest(to: "JOBD_LEESE", among: known) == "JOBD_LEASE")
        #expect(ConfigurationKeyCheck.closest(to: "JOBD_WORKER", among: known) == "JOBD_WORKERS")
        #expect(ConfigurationKeyCheck.closest(to: "jobd_redis_prefx", among: known) == "JOBD_REDIS_PREFIX")
        #expect(ConfigurationKeyCheck.closest(to: "JOBD_COMPLETED_RETENTON", among: known) == "JOBD_COMPLETED_RETENTION")
        #expect(ConfigurationKeyCheck.closest(to: "x", among: []) == nil)
    }

    @Test("only unknown JOBD_ names are reported; keys, harness and test variables and other names are not")
    func unknownEnvironment() {
        let unknown = ConfigurationKeyCheck.unknownEnvironment(
            ["JOBD_LEASE", "JOBD_LEASEE", "PATH", "JOBD_TEST_FAULTS", "JOBD_BIN", "JOBD_SHEDULES", "jobd_lease"],
            known: JobdSettings.keys.environmentNames)
        #expect(unknown == [
            .init(name: "JOBD_LEASEE", closest: "JOBD_LEASE", source: .environment),
            .init(name: "JOBD_SHEDULES", closest: "JOBD_SCHEDULES", source: .environment),
        ])
    }

    @Test("top-level keys of a YAML file: nested, list, block-scalar and comment lines are not keys")
    func fileKeys() {
        let yaml = """
            # comment: not a key
            workers: 4
            "lease": 30
            schedules: |
              nightly = 0 6 * * * digest.send {"to": "ops"}
            tags:
              - a: b
            url_thing: http://x:1/y
            poll_intervall:0.5
            ---
            """
        #expect(ConfigurationKeyCheck.topLevelKeys(yaml) == ["workers", "lease", "schedules", "tags", "url_thing"])
        let unknown = ConfigurationKeyCheck.unknownFileKeys(yaml, known: JobdSettings.keys.fileNames)
        #expect(unknown.map(\.name) == ["tags", "url_thing"])
        #expect(unknown.allSatisfy { $0.source == .file && JobdSettings.keys.fileNames.contains($0.closest) })
    }
}
