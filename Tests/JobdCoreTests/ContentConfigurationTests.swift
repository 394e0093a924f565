import JobdContent
import JobdCore
import Testing

@Suite("Configuration: content keys (ContentSettings.read)")
struct ContentConfigurationTests {
    typealias Key = ConfigurationKey

    private func parse(_ values: [Key: String]) throws(ConfigurationError) -> ContentSettings {
        try ContentSettings.read(ConfigurationReader { values[$0] })
    }

    private func rejection(_ values: [Key: String]) -> ConfigurationError? {
        do {
            _ = try parse(values)
            return nil
        } catch {
            return error
        }
    }

    @Test("defaults: level 6, keep forever, purge, batches of 1000 and 500, index every second")
    func defaults() throws {
        let settings = try parse([:])
        #expect(settings == ContentSettings.defaults)
        #expect(settings.compressionLevel == 6)
        #expect(settings.retention == nil)
        #expect(settings.retentionAction == .purge)
        #expect(settings.purgeBatch == 1_000)
        #expect(settings.indexBatch == 500)
        #expect(settings.indexInterval == .seconds(1))
        #expect(settings.indexMaxDelay == .seconds(5))
    }

    @Test("every key parses, from env names and file names alike")
    func parsesAll() throws {
        let settings = try parse([
            .contentCompressionLevel: "9", .contentRetention: "90d", .contentRetentionAction: "Archive",
            .contentPurgeBatch: "250", .contentIndexBatch: "2000", .contentIndexInterval: "250ms",
            .contentIndexMaxDelay: "0",
        ])
        #expect(settings == ContentSettings(
            compressionLevel: 9, retention: .seconds(90 * 86_400), retentionAction: .archive, purgeBatch: 250,
            indexBatch: 2_000, indexInterval: .milliseconds(250), indexMaxDelay: .zero))
        #expect(Key.contentRetention.fileKey == "content_retention")
        #expect(Key.contentCompressionLevel.fileKey == "content_compression_level")
    }

    @Test("off, none and forever switch retention off", arguments: ["off", "OFF", "none", "forever"])
    func retentionOff(text: String) throws {
        #expect(try parse([.contentRetention: text]).retention == nil)
    }

    @Test("bad values are refused naming the key", arguments: [
        (Key.contentCompressionLevel, "0"), (.contentCompressionLevel, "10"), (.contentCompressionLevel, "fast"),
        (.contentRetention, "soon"), (.contentRetention, "30s"), (.contentRetentionAction, "delete"),
        (.contentPurgeBatch, "0"), (.contentIndexBatch, "-1"), (.contentIndexInterval, "0"),
        (.contentIndexMaxDelay, "-1"), (.contentIndexMaxDelay, "2h"),
    ])
    func rejects(key: Key, value: String) {
        let error = rejection([key: value])
        #expect(error?.key == key.rawValue)
        #expect(error?.reason.contains("\"\(value)\"") == true)
    }
}
