import JobdCore

/// One email as `content.write` receives it, validated field by field.
///
/// The payload (a JSON object; unknown fields are rejected so typos surface):
///
/// | field | type | rule |
/// |---|---|---|
/// | `external_id` | string | required; the idempotency key; 1–256 bytes, no control characters |
/// | `tenant_id` | string | required; 1–128 of letters, digits and `- _ . : @` |
/// | `campaign_id` | string or null | optional; 1–256 bytes, no control characters |
/// | `from` | string | required; `a@example.com` or `Name <a@example.com>` |
/// | `to` | array of strings (or one string) | required; 1–1000 addresses like `from` |
/// | `subject` | string | required, may be empty; at most 998 bytes, one line |
/// | `headers` | object of strings | optional; at most 100; names are RFC 5322 field names other than From, To, Subject; values one line of at most 998 bytes |
/// | `text` | string | the plain-text body; `text`, `html` or both are required |
/// | `html` | string | the HTML body |
/// | `attachments` | array of objects | optional; at most 100, each `{filename, content_type, data_base64}`: filename 1–255 bytes without `/`, `\` or control characters; content_type `type/subtype` with optional `; parameters`; data_base64 standard base64 (line breaks allowed) |
public struct ContentMessage: Sendable, Equatable {
    public var externalID: String
    public var tenantID: String
    public var campaignID: String?
    public var from: String
    public var to: [String]
    public var subject: String
    /// Sorted by name, so the same headers always store and hash the same.
    public var headers: [Header]
    public var text: String?
    public var html: String?
    public var attachments: [Attachment]

    public struct Header: Sendable, Equatable {
        public var name: String
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    public struct Attachment: Sendable, Equatable {
        public var filename: String
        public var contentType: String
        public var data: [UInt8]

        public init(filename: String, contentType: String, data: [UInt8]) {
            self.filename = filename
            self.contentType = contentType
            self.data = data
        }
    }

    public init(
        externalID: String, tenantID: String, campaignID: String? = nil, from: String, to: [String],
        subject: String, headers: [Header] = [], text: String? = nil, html: String? = nil,
        attachments: [Attachment] = []
    ) {
        self.externalID = externalID
        self.tenantID = tenantID
        self.campaignID = campaignID
        self.from = from
        self.to = to
        self.subject = subject
        self.headers = headers.sorted { $0.name < $1.name }
        self.text = text
        self.html = html
        self.attachments = attachments
    }

    public static let fields = [
        "external_id", "tenant_id", "campaign_id", "from", "to", "subject", "headers", "text", "html", "attachments",
    ]
    public static let attachmentFields = ["filename", "content_type", "data_base64"]
    public static let maxRecipients = 1_000
    public static let maxHeaders = 100
    public static let maxAttachments = 100
    /// RFC 5322's line limit, for one-line fields.
    public static let maxLineBytes = 998
}

/// Why a payload is not a valid message; `field` is a path such as `to[2]` or
/// `attachments[0].data_base64`.
public struct ContentPayloadError: Error, Sendable, Equatable, CustomStringConvertible {
    public var field: String
    public var reason: String

    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String { "content.write payload: \(field) \(reason)" }
}

extension ContentMessage {
    /// Validates a decoded payload object.
    public static func parse(_ object: [String: JSONValue]) throws(ContentPayloadError) -> ContentMessage {
        for key in object.keys.sorted() where !fields.contains(key) {
            throw ContentPayloadError(field: key, reason: "is not a known field (known: \(fields.joined(separator: ", ")))")
        }
        let externalID = try requiredString(object, "external_id", maxBytes: 256)
        guard !externalID.isEmpty, !externalID.unicodeScalars.contains(where: isControl) else {
            throw ContentPayloadError(field: "external_id", reason: "must be 1–256 bytes without control characters")
        }
        let tenantID = try requiredString(object, "tenant_id", maxBytes: 128)
        guard !tenantID.isEmpty, tenantID.unicodeScalars.allSatisfy(isTenantCharacter) else {
            throw ContentPayloadError(field: "tenant_id", reason: "must be 1–128 letters, digits or - _ . : @")
        }
        var campaignID: String?
        if let value = object["campaign_id"], value != .null {
            guard case .string(let text) = value, !text.isEmpty, text.utf8.count <= 256,
                  !text.unicodeScalars.contains(where: isControl)
            else {
                throw ContentPayloadError(field: "campaign_id", reason: "must be null or a string of 1–256 bytes without control characters")
            }
            campaignID = text
        }
        let from = try address(requiredString(object, "from", maxBytes: maxLineBytes), field: "from")

        var to: [String] = []
        switch object["to"] {
        case .string(let single)?:
            to = [try address(single, field: "to")]
        case .array(let items)?:
            guard (1...maxRecipients).contains(items.count) else {
                throw ContentPayloadError(field: "to", reason: "must list 1–\(maxRecipients) addresses")
            }
            for (index, item) in items.enumerated() {
                guard case .string(let text) = item else {
                    throw ContentPayloadError(field: "to[\(index)]", reason: "must be a string")
                }
                to.append(try address(text, field: "to[\(index)]"))
            }
        case nil:
            throw ContentPayloadError(field: "to", reason: "is required")
        default:
            throw ContentPayloadError(field: "to", reason: "must be an array of addresses")
        }

        let subject = try requiredString(object, "subject", maxBytes: maxLineBytes)
        guard !subject.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" }) else {
            throw ContentPayloadError(field: "subject", reason: "must be one line (no CR or LF)")
        }

        var headers: [Header] = []
        switch object["headers"] {
        case nil, .null?:
            break
        case .object(let fields)?:
            guard fields.count <= maxHeaders else {
                throw ContentPayloadError(field: "headers", reason: "must have at most \(maxHeaders) entries")
            }
            for (name, value) in fields {
                let path = "headers.\(name)"
                guard !name.isEmpty, name.utf8.count <= 76,
                      name.utf8.allSatisfy({ (33...126).contains($0) && $0 != UInt8(ascii: ":") })
                else {
                    throw ContentPayloadError(field: path, reason: "is not a valid header name (printable ASCII without ':', at most 76)")
                }
                guard !["from", "to", "subject"].contains(name.lowercased()) else {
                    throw ContentPayloadError(field: path, reason: "is set by its own field (from, to, subject), not in headers")
                }
                guard case .string(let text) = value, text.utf8.count <= maxLineBytes,
                      !text.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" })
                else {
                    throw ContentPayloadError(field: path, reason: "must be one line of at most \(maxLineBytes) bytes")
                }
                headers.append(Header(name: name, value: text))
            }
        default:
            throw ContentPayloadError(field: "headers", reason: "must be an object of strings")
        }

        let text = try optionalBody(object, "text")
        let html = try optionalBody(object, "html")
        guard text != nil || html != nil else {
            throw ContentPayloadError(field: "text", reason: "or html is required (a message needs a body)")
        }

        var attachments: [Attachment] = []
        switch object["attachments"] {
        case nil, .null?:
            break
        case .array(let items)?:
            guard items.count <= maxAttachments else {
                throw ContentPayloadError(field: "attachments", reason: "must have at most \(maxAttachments) entries")
            }
            for (index, item) in items.enumerated() {
                attachments.append(try attachment(item, path: "attachments[\(index)]"))
            }
        default:
            throw ContentPayloadError(field: "attachments", reason: "must be an array of objects")
        }

        return ContentMessage(
            externalID: externalID, tenantID: tenantID, campaignID: campaignID, from: from, to: to,
            subject: subject, headers: headers, text: text, html: html, attachments: attachments)
    }

    private static func requiredString(_ object: [String: JSONValue], _ field: String, maxBytes: Int) throws(ContentPayloadError) -> String {
        guard let value = object[field] else { throw ContentPayloadError(field: field, reason: "is required") }
        guard case .string(let text) = value, text.utf8.count <= maxBytes else {
            throw ContentPayloadError(field: field, reason: "must be a string of at most \(maxBytes) bytes")
        }
        return text
    }

    private static func optionalBody(_ object: [String: JSONValue], _ field: String) throws(ContentPayloadError) -> String? {
        switch object[field] {
        case nil, .null?: return nil
        case .string(let text)?: return text
        default: throw ContentPayloadError(field: field, reason: "must be a string")
        }
    }

    private static func attachment(_ value: JSONValue, path: String) throws(ContentPayloadError) -> Attachment {
        guard case .object(let fields) = value else {
            throw ContentPayloadError(field: path, reason: "must be an object {filename, content_type, data_base64}")
        }
        for key in fields.keys.sorted() where !attachmentFields.contains(key) {
            throw ContentPayloadError(field: "\(path).\(key)", reason: "is not a known field (known: \(attachmentFields.joined(separator: ", ")))")
        }
        let filename = try requiredString(fields, "filename", maxBytes: 255, path: path)
        guard !filename.isEmpty, !filename.unicodeScalars.contains(where: { isControl($0) || $0 == "/" || $0 == "\\" }) else {
            throw ContentPayloadError(field: "\(path).filename", reason: "must be 1–255 bytes without /, \\ or control characters")
        }
        let contentType = try requiredString(fields, "content_type", maxBytes: 255, path: path)
        guard isMediaType(contentType) else {
            throw ContentPayloadError(field: "\(path).content_type", reason: "must be a media type such as application/pdf")
        }
        let encoded = try requiredString(fields, "data_base64", maxBytes: Int.max, path: path)
        guard let data = Base64.decode(encoded) else {
            throw ContentPayloadError(field: "\(path).data_base64", reason: "is not valid base64")
        }
        return Attachment(filename: filename, contentType: contentType, data: data)
    }

    private static func requiredString(
        _ object: [String: JSONValue], _ field: String, maxBytes: Int, path: String
    ) throws(ContentPayloadError) -> String {
        do {
            return try requiredString(object, field, maxBytes: maxBytes)
        } catch {
            throw ContentPayloadError(field: "\(path).\(error.field)", reason: error.reason)
        }
    }

    /// `a@example.com` or `Display Name <a@example.com>`; returned as given, trimmed.
    static func address(_ raw: String, field: String) throws(ContentPayloadError) -> String {
        let text = raw.trimmingSpaces()
        let invalid = ContentPayloadError(field: field, reason: "is not an email address (a@example.com or Name <a@example.com>)")
        guard !text.isEmpty, text.utf8.count <= maxLineBytes, !text.unicodeScalars.contains(where: isControl) else {
            throw invalid
        }
        var spec = Substring(text)
        if text.hasSuffix(">") {
            guard let open = text.lastIndex(of: "<") else { throw invalid }
            spec = text[text.index(after: open)..<text.index(before: text.endIndex)]
        }
        let parts = spec.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw invalid }
        let local = parts[0]
        let domain = parts[1]
        guard (1...64).contains(local.utf8.count), (1...253).contains(domain.utf8.count),
              !spec.contains(where: { $0.isWhitespace || $0 == "<" || $0 == ">" || $0 == "," }),
              !domain.hasPrefix("."), !domain.hasSuffix("."), !domain.contains("..")
        else { throw invalid }
        return text
    }

    /// `type/subtype`, optionally followed by `; parameters` (`text/calendar; method=REQUEST`).
    static func isMediaType(_ text: String) -> Bool {
        let pieces = text.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)
        if pieces.count == 2, pieces[1].unicodeScalars.contains(where: isControl) { return false }
        let parts = pieces[0].split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return false }
        let token: (Substring) -> Bool = { part in
            !part.isEmpty && part.utf8.count <= 127 && part.utf8.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                    || Array("!#$&-^_.+".utf8).contains(byte)
            }
        }
        return token(parts[0]) && token(parts[1])
    }
}

private func isControl(_ scalar: Unicode.Scalar) -> Bool {
    scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
}

private func isTenantCharacter(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar {
    case "a"..."z", "A"..."Z", "0"..."9", "-", "_", ".", ":", "@": true
    default: false
    }
}
