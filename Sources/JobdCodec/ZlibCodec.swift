import CZlib

/// zlib (RFC 1950) compression for the content tier: bodies and attachments are
/// stored deflated, with the codec name beside them so another codec can follow.
///
/// Pure CPU work on the caller's thread. The inputs are bounded by the job payload
/// limit (1 MiB by default), where a call takes milliseconds, so it runs inline
/// like any other parsing of a payload.
public struct ZlibCodec: Sendable, Equatable {
    /// 1 (fastest) … 9 (smallest); 6 is zlib's own default.
    public var level: Int

    public static let name = "zlib"

    public init(level: Int = 6) {
        precondition((1...9).contains(level), "zlib level must be 1…9")
        self.level = level
    }

    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        /// The input is not a complete zlib stream (truncated, corrupted, wrong codec).
        case corrupt(String)
        /// Inflating would produce more than the caller allowed: a zip bomb, or a row
        /// whose recorded size is wrong.
        case tooLarge(limit: Int)
        /// zlib itself failed (out of memory, version mismatch).
        case library(code: Int32)

        public var description: String {
            switch self {
            case .corrupt(let reason): "zlib data is corrupt: \(reason)"
            case .tooLarge(let limit): "zlib data inflates to more than \(limit) bytes"
            case .library(let code): "zlib failed with code \(code)"
            }
        }
    }

    /// zlib's window: a preset dictionary helps only with its last 32 KiB.
    public static let windowBytes = 32 * 1024

    /// zlib's default memory level (its hash table: 2^(level + 7) entries).
    static let memoryLevel: Int32 = 8

    /// The smallest window (9…15 bits) whose reach covers `bytes` (input plus
    /// dictionary): a match can point back at most the window less zlib's 262-byte
    /// lookahead. Over such a window deflate finds the same matches as over the full
    /// 32 KiB, so the output's size is the same, while setting up and clearing the
    /// window and its match chains (most of a small message's cost) shrinks with it.
    /// Any inflater reads the stream: its header names the window, and a reader with
    /// the full window (as `decompress`) takes every smaller one.
    static func windowBits(covering bytes: Int) -> Int32 {
        var bits: Int32 = 9
        while bits < 15 && (1 << bits) - 262 < bytes { bits += 1 }
        return bits
    }

    /// Deflates `input` into a zlib stream. With a `dictionary` (RFC 1950 FDICT),
    /// text that repeats it costs almost nothing: a mail's plain-text part is a
    /// rendering of its HTML part, so deflating it against the HTML shrinks it
    /// several times further. The same dictionary must be given to `decompress`;
    /// only its last 32 KiB count.
    public func compress(_ input: [UInt8], dictionary: [UInt8]? = nil) throws(Failure) -> [UInt8] {
        var stream = z_stream()
        let tail = dictionary.map { Array($0.suffix(Self.windowBytes)) }
        var code = deflateInit2_(
            &stream, Int32(level), Z_DEFLATED, Self.windowBits(covering: input.count + (tail?.count ?? 0)),
            Self.memoryLevel, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard code == Z_OK else { throw .library(code: code) }
        defer { deflateEnd(&stream) }
        if let tail {
            code = tail.withUnsafeBufferPointer { deflateSetDictionary(&stream, $0.baseAddress, uInt($0.count)) }
            guard code == Z_OK else { throw .library(code: code) }
        }
        // deflateBound covers any input; the slack covers the dictionary id.
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(input.count))) + 16)
        let written = output.withUnsafeMutableBufferPointer { out in
            input.withUnsafeBufferPointer { source -> Int in
                // zlib never writes through next_in; the C field is merely not const.
                stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
                stream.avail_in = uInt(source.count)
                stream.next_out = out.baseAddress
                stream.avail_out = uInt(out.count)
                code = deflate(&stream, Z_FINISH)
                return out.count - Int(stream.avail_out)
            }
        }
        // With room for deflateBound, one Z_FINISH call always completes.
        guard code == Z_STREAM_END else { throw .library(code: code) }
        output.removeLast(output.count - written)
        return output
    }

    /// Inflates a zlib stream, refusing to produce more than `limit` bytes, so a
    /// small hostile or corrupted input cannot exhaust memory. Output grows in
    /// 64 KiB steps; nothing beyond `limit` is ever kept.
    public func decompress(_ input: [UInt8], limit: Int, dictionary: [UInt8]? = nil) throws(Failure) -> [UInt8] {
        var stream = z_stream()
        let initCode = inflateInit_(&stream, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard initCode == Z_OK else { throw .library(code: initCode) }
        defer { inflateEnd(&stream) }

        enum Outcome {
            case done, tooLarge, truncated, trailing, missingDictionary, zlib(Int32)
        }
        let tail = dictionary.map { Array($0.suffix(Self.windowBytes)) }
        var output: [UInt8] = []
        // Guess 4× the input (typical for text), within the limit.
        output.reserveCapacity(min(limit, max(64, input.count * 4)))
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        let outcome = input.withUnsafeBufferPointer { source -> Outcome in
            // zlib never writes through next_in; the C field is merely not const.
            stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
            stream.avail_in = uInt(source.count)
            while true {
                var code = Z_OK
                let produced: Int = chunk.withUnsafeMutableBufferPointer { out in
                    stream.next_out = out.baseAddress
                    stream.avail_out = uInt(out.count)
                    code = inflate(&stream, Z_NO_FLUSH)
                    if code == Z_NEED_DICT, let tail {
                        code = tail.withUnsafeBufferPointer { inflateSetDictionary(&stream, $0.baseAddress, uInt($0.count)) }
                        if code == Z_OK { code = inflate(&stream, Z_NO_FLUSH) }
                    }
                    return out.count - Int(stream.avail_out)
                }
                switch code {
                case Z_OK, Z_STREAM_END: break
                case Z_BUF_ERROR: return .truncated  // no progress possible: input ran out
                case Z_NEED_DICT: return .missingDictionary
                default: return .zlib(code)
                }
                if output.count + produced > limit { return .tooLarge }
                output.append(contentsOf: chunk[0..<produced])
                if code == Z_STREAM_END { return stream.avail_in == 0 ? .done : .trailing }
                if produced == 0 && stream.avail_in == 0 { return .truncated }
            }
        }
        switch outcome {
        case .done: return output
        case .tooLarge: throw .tooLarge(limit: limit)
        case .truncated: throw .corrupt("the stream is truncated")
        case .trailing: throw .corrupt("bytes follow the end of the stream")
        case .missingDictionary: throw .corrupt("the stream needs a preset dictionary")
        case .zlib(let code) where code == Z_DATA_ERROR:
            throw .corrupt(stream.msg.map { String(cString: $0) } ?? "invalid data")
        case .zlib(let code): throw .library(code: code)
        }
    }
}
