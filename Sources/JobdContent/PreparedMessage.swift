import Foundation
import JobdCodec
import JobdCore
import JobdQueue

/// A validated message turned into exactly what the content tables store: bodies
/// and attachments compressed, attachments hashed and de-duplicated, the text for
/// the search index extracted, and the digest that identifies the content.
///
/// Pure CPU work, done before a connection is taken so the connection is held only
/// for the one statement that writes it all.
public struct PreparedMessage: Sendable {
    public struct Body: Sendable, Equatable {
        public var part: String
        public var codec: String
        public var rawBytes: Int
        public var data: [UInt8]
    }

    public struct Blob: Sendable, Equatable {
        public var sha256: String
        public var codec: String
        public var rawBytes: Int
        public var data: [UInt8]
    }

    public struct Link: Sendable, Equatable {
        public var filename: String
        public var contentType: String
        public var sha256: String
        public var rawBytes: Int
    }

    public var message: ContentMessage
    public var bodies: [Body]
    /// One per distinct attachment (by SHA-256) of this message.
    public var blobs: [Blob]
    /// One per attachment, in payload order.
    public var links: [Link]
    public var digest: String
    public var indexText: String
    /// Headers as a JSON object, keys sorted.
    public var headersJSON: String

    /// The codec of a text part deflated with the message's HTML part as zlib's
    /// preset dictionary (only its last 32 KiB count); reading it needs the HTML first.
    public static let textAgainstHTMLCodec = "zlib+html"

    /// The index keeps this much plain text per message: enough for any real mail,
    /// and far below the 1 MB a tsvector may hold.
    public static let maxIndexTextBytes = 256 * 1024

    public init(_ message: ContentMessage, codec: ZlibCodec) throws {
        self.message = message
        func encode(_ bytes: [UInt8], dictionary: [UInt8]? = nil) throws -> (codec: String, data: [UInt8]) {
            let compressed = try codec.compress(bytes, dictionary: dictionary)
            // Already-compressed files (PDF, PNG, ZIP) do not shrink: keep them as they are.
            guard compressed.count < bytes.count else { return ("identity", bytes) }
            return (dictionary == nil ? ZlibCodec.name : Self.textAgainstHTMLCodec, compressed)
        }
        var bodies: [Body] = []
        let html = message.html.map { Array($0.utf8) }
        if let html {
            let encoded = try encode(html)
            bodies.append(Body(part: "html", codec: encoded.codec, rawBytes: html.count, data: encoded.data))
        }
        if let text = message.text.map({ Array($0.utf8) }) {
            // The text part mostly repeats the HTML's words: deflate it against them.
            let encoded = try encode(text, dictionary: html)
            bodies.append(Body(part: "text", codec: encoded.codec, rawBytes: text.count, data: encoded.data))
        }
        self.bodies = bodies

        var blobs: [Blob] = []
        var links: [Link] = []
        var seen: Set<String> = []
        for attachment in message.attachments {
            let sha = ContentDigest.sha256Hex(attachment.data)
            links.append(Link(filename: attachment.filename, contentType: attachment.contentType, sha256: sha,
                              rawBytes: attachment.data.count))
            if seen.insert(sha).inserted {
                let encoded = try encode(attachment.data)
                blobs.append(Blob(sha256: sha, codec: encoded.codec, rawBytes: attachment.data.count, data: encoded.data))
            }
        }
        self.blobs = blobs
        self.links = links

        var digest = ContentDigest.Builder()
        digest.add(message.externalID)
        digest.add(message.tenantID)
        digest.add(message.campaignID)
        digest.add(message.from)
        digest.add(String(message.to.count))
        for address in message.to { digest.add(address) }
        digest.add(message.subject)
        digest.add(String(message.headers.count))
        for header in message.headers {
            digest.add(header.name)
            digest.add(header.value)
        }
        digest.add(message.text)
        digest.add(message.html)
        digest.add(String(links.count))
        for link in links {
            digest.add(link.filename)
            digest.add(link.contentType)
            digest.add(link.sha256)
        }
        self.digest = digest.finalizeHex()

        // The HTML part is what readers see; the text part stands in when there is none.
        let plain = message.html.map(HTMLText.extract) ?? message.text ?? ""
        indexText = Self.truncated(plain, toBytes: Self.maxIndexTextBytes)

        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let headerObject = Dictionary(message.headers.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
        headersJSON = String(decoding: try encoder.encode(headerObject), as: UTF8.self)
    }

    /// Raw size: bodies and attachments as received (attachments decoded from base64).
    public var rawBytes: Int { bodies.reduce(0) { $0 + $1.rawBytes } + links.reduce(0) { $0 + $1.rawBytes } }

    /// Stored size of this message alone: bodies plus each attachment, compressed,
    /// before de-duplication against what the tenant already holds.
    public var storedBytes: Int {
        let blobSizes = Dictionary(blobs.map { ($0.sha256, $0.data.count) }, uniquingKeysWith: { first, _ in first })
        return bodies.reduce(0) { $0 + $1.data.count } + links.reduce(0) { $0 + (blobSizes[$1.sha256] ?? 0) }
    }

    static func truncated(_ text: String, toBytes limit: Int) -> String {
        guard text.utf8.count > limit else { return text }
        var cut = String(decoding: text.utf8.prefix(limit), as: UTF8.self)
        while cut.last == "\u{FFFD}" { cut.removeLast() }  // a split multi-byte character
        return cut
    }
}
