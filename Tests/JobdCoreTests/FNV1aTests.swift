import JobdCore
import Testing

@Suite("FNV-1a")
struct FNV1aTests {
    @Test("the published 64-bit test vectors; a second basis gives another hash")
    func vectors() {
        #expect(FNV1a.hash("".utf8) == 0xcbf2_9ce4_8422_2325)
        #expect(FNV1a.hash("a".utf8) == 0xaf63_dc4c_8601_ec8c)
        #expect(FNV1a.hash("foobar".utf8) == 0x8594_4171_f739_67e8)
        #expect(FNV1a.hash("order-42".utf8, basis: 0x6c62_272e_07bb_0142) == 0x5d79_d500_d697_3f33)
    }

    @Test("Duration.seconds is fractional seconds")
    func durationSeconds() {
        #expect(Duration.milliseconds(1500).seconds == 1.5)
        #expect(Duration.zero.seconds == 0)
        #expect(Duration.microseconds(-250).seconds == -0.00025)
    }
}
