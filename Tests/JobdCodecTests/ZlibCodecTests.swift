import JobdCodec
import JobdTestRandom
import Testing

@Suite("ZlibCodec")
struct ZlibCodecTests {
    static let html = Array(String(repeating: """
        <tr><td style="padding:16px 24px;font-family:Helvetica,Arial,sans-serif;font-size:15px;color:#333333;">\
        Your order has shipped and is on its way.</td></tr>
        """, count: 200).utf8)

    @Test("round trips empty, tiny, text and random input at every level", arguments: [1, 6, 9])
    func roundTrip(level: Int) throws {
        let codec = ZlibCodec(level: level)
        var generator = SplitMix64(seed: UInt64(level))
        let random = (0..<100_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        for input in [[], [0x41], Array("hello, world".utf8), Self.html, random] {
            let compressed = try codec.compress(input)
            #expect(try codec.decompress(compressed, limit: input.count) == input)
        }
    }

    @Test("HTML shrinks a lot; level 9 is no larger than level 1")
    func compressesText() throws {
        let fast = try ZlibCodec(level: 1).compress(Self.html)
        let small = try ZlibCodec(level: 9).compress(Self.html)
        #expect(small.count <= fast.count)
        #expect(Double(small.count) / Double(Self.html.count) < 0.05)
    }

    @Test("reads a stream zlib itself wrote elsewhere (Python's zlib.compress(b'hello'))")
    func interoperates() throws {
        let stream: [UInt8] = [0x78, 0x9c, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x06, 0x2c, 0x02, 0x15]
        #expect(try ZlibCodec().decompress(stream, limit: 5) == Array("hello".utf8))
    }

    @Test("a preset dictionary: text that repeats it shrinks far more, and reading needs the same dictionary")
    func dictionary() throws {
        let codec = ZlibCodec()
        let html = Self.html
        let text = Array(String(repeating: "Your order has shipped and is on its way.\n", count: 20).utf8)
        let plain = try codec.compress(text)
        let against = try codec.compress(text, dictionary: html)
        #expect(against.count < plain.count)
        #expect(try codec.decompress(against, limit: text.count, dictionary: html) == text)
        // Only the last 32 KiB of a long dictionary count, on both sides alike.
        let long = [UInt8](repeating: 0x20, count: 100_000) + html
        #expect(try codec.decompress(try codec.compress(text, dictionary: long), limit: text.count, dictionary: long) == text)
        #expect(throws: ZlibCodec.Failure.corrupt("the stream needs a preset dictionary")) {
            try codec.decompress(against, limit: text.count)
        }
        #expect(throws: ZlibCodec.Failure.self) {
            try codec.decompress(against, limit: text.count, dictionary: Array("another dictionary".utf8))
        }
        // A dictionary given for a stream that did not use one is simply not needed.
        #expect(try codec.decompress(plain, limit: text.count, dictionary: html) == text)
    }

    @Test("a small input gets a window sized to it (header CINFO), reads back, and the window covers the dictionary")
    func windowFitsInput() throws {
        let codec = ZlibCodec()
        func windowBits(_ stream: [UInt8]) -> Int { Int(stream[0] >> 4) + 8 }
        let tiny = try codec.compress(Array("hello, world".utf8))
        #expect(windowBits(tiny) == 9)
        #expect(try codec.decompress(tiny, limit: 12) == Array("hello, world".utf8))
        let html = try codec.compress(Self.html)  // 41 KB: the full window
        #expect(windowBits(html) == 15)
        let page = Array(Self.html.prefix(5_000))
        let small = try codec.compress(page)
        #expect(windowBits(small) == 13)  // 8 KiB less the 262-byte lookahead covers 5,000 bytes
        #expect(try codec.decompress(small, limit: page.count) == page)
        // The same matches as over the full window: no larger than what a 32 KiB window
        // gives (the first 5,000 bytes of the long input's stream already hold them).
        #expect(small.count < html.count)
        // Text deflated against a dictionary: the window reaches over both.
        let text = Array(String(repeating: "Your order has shipped and is on its way.\n", count: 20).utf8)
        let against = try codec.compress(text, dictionary: page)
        #expect(windowBits(against) == 13)
        #expect(try codec.decompress(against, limit: text.count, dictionary: page) == text)
        #expect(against.count < 100)
    }

    @Test("a zip bomb stops at the limit instead of allocating what it claims")
    func bombIsBounded() throws {
        let bomb = try ZlibCodec(level: 9).compress([UInt8](repeating: 0, count: 20 << 20))
        #expect(bomb.count < 30_000)
        #expect(throws: ZlibCodec.Failure.tooLarge(limit: 1 << 20)) {
            try ZlibCodec().decompress(bomb, limit: 1 << 20)
        }
        // One byte under the true size is already too much.
        let exact = try ZlibCodec().compress(Self.html)
        #expect(throws: ZlibCodec.Failure.tooLarge(limit: Self.html.count - 1)) {
            try ZlibCodec().decompress(exact, limit: Self.html.count - 1)
        }
    }

    @Test("truncated, corrupted, foreign and over-long input is refused as corrupt")
    func corruptInput() throws {
        let good = try ZlibCodec().compress(Self.html)
        let cases: [[UInt8]] = [
            Array(good.prefix(good.count / 2)),  // truncated
            Array(good.dropLast(2)),  // checksum cut
            good.enumerated().map { $0.offset == good.count / 2 ? $0.element ^ 0xFF : $0.element },  // bit flips
            Array("not zlib at all".utf8),
            good + [0x00, 0x01],  // trailing bytes
            [],
        ]
        for input in cases {
            do {
                _ = try ZlibCodec().decompress(input, limit: 1 << 20)
                Issue.record("accepted \(input.count) corrupt bytes")
            } catch {
                guard case .corrupt = error else {
                    Issue.record("expected corrupt, got \(error)")
                    continue
                }
            }
        }
    }
}

@Suite("ContentDigest")
struct ContentDigestTests {
    @Test("SHA-256 test vectors (FIPS 180-2)")
    func vectors() {
        #expect(ContentDigest.sha256Hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(ContentDigest.sha256Hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(ContentDigest.sha256Hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test("fields are framed: moving a boundary or nil vs empty changes the digest")
    func framing() {
        func digest(_ fields: [String?]) -> String {
            var builder = ContentDigest.Builder()
            for field in fields { builder.add(field) }
            return builder.finalizeHex()
        }
        #expect(digest(["ab", "c"]) != digest(["a", "bc"]))
        #expect(digest([nil]) != digest([""]))
        #expect(digest(["x", nil]) != digest(["x"]))
        #expect(digest(["same", "fields"]) == digest(["same", "fields"]))
        #expect(digest(["a"]).count == 64)
    }
}
