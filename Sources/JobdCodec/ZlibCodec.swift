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

    /// Deflates `input` into a zlib stream.
    public func compress(_ input: [UInt8]) throws(Failure) -> [UInt8] {
        var capacity = compressBound(uLong(input.count))
        var output = [UInt8](repeating: 0, count: Int(capacity))
        let code = output.withUnsafeMutableBufferPointer { out in
            input.withUnsafeBufferPointer { source in
                compress2(out.baseAddress, &capacity, source.baseAddress, uLong(source.count), Int32(level))
            }
        }
        guard code == Z_OK else { throw .library(code: code) }
        output.removeLast(output.count - Int(capacity))
        return output
    }

    /// Inflates a zlib stream, refusing to produce more than `limit` bytes, so a
    /// small hostile or corrupted input cannot exhaust memory. Output grows in
    /// 64 KiB steps; nothing beyond `limit` is ever kept.
    public func decompress(_ input: [UInt8], limit: Int) throws(Failure) -> [UInt8] {
        var stream = z_stream()
        let initCode = inflateInit_(&stream, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard initCode == Z_OK else { throw .library(code: initCode) }
        defer { inflateEnd(&stream) }

        enum Outcome {
            case done, tooLarge, truncated, trailing, zlib(Int32)
        }
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
                    return out.count - Int(stream.avail_out)
                }
                switch code {
                case Z_OK, Z_STREAM_END: break
                case Z_BUF_ERROR: return .truncated  // no progress possible: input ran out
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
        case .zlib(let code) where code == Z_DATA_ERROR || code == Z_NEED_DICT:
            throw .corrupt(stream.msg.map { String(cString: $0) } ?? "invalid data")
        case .zlib(let code): throw .library(code: code)
        }
    }
}
