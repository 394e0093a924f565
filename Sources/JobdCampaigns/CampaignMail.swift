import JobdCore

/// One campaign recipient as the delivery renders it.
public struct CampaignRecipient: Sendable, Equatable {
    public var contactID: Int64
    public var address: String
    public var name: String
    /// The contact's custom fields (a JSON object; anything else is treated as empty).
    public var fields: [String: JSONValue]
    /// `<contact>.<campaign>.<hmac>` from `oltp.unsubscribe_token`.
    public var unsubscribeToken: String

    public init(contactID: Int64, address: String, name: String, fields: [String: JSONValue], unsubscribeToken: String) {
        self.contactID = contactID
        self.address = address
        self.name = name
        self.fields = fields
        self.unsubscribeToken = unsubscribeToken
    }
}

/// What a campaign sends, the same for every recipient before merging.
public struct CampaignTemplate: Sendable, Equatable {
    public var campaignID: Int64
    public var fromAddress: String
    public var fromName: String
    public var subject: String
    public var html: String?
    public var text: String?
    /// `https://…` taking RFC 8058 one-click POSTs; `?token=` is appended.
    public var unsubscribeURL: String

    public init(
        campaignID: Int64, fromAddress: String, fromName: String, subject: String, html: String?, text: String?,
        unsubscribeURL: String
    ) {
        self.campaignID = campaignID
        self.fromAddress = fromAddress
        self.fromName = fromName
        self.subject = subject
        self.html = html
        self.text = text
        self.unsubscribeURL = unsubscribeURL
    }
}

/// Renders a campaign message for one recipient: merge fields, then RFC 5322 + MIME.
///
/// Merge fields are `{{name}}`, `{{email}}`, `{{unsubscribe_url}}` and any key of the
/// contact's custom fields (`{{city}}`); spaces inside the braces are ignored, an
/// unknown key renders empty. In the HTML part every merged value is HTML-escaped;
/// in the subject, each line break (CR, LF, CRLF, …) becomes a space (no header can be injected).
///
/// The message is multipart/alternative (text, then HTML) when both parts exist,
/// each part base64 so no line length or leading dot can bite. It carries Date,
/// a Message-ID derived from (campaign, contact) — a resend after the crash window
/// has the same id — and `List-Unsubscribe` (the https one-click URL and a mailto)
/// with `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058; the relay or
/// the MTA must DKIM-sign both headers for mailbox providers to honour them).
/// With attachments the message is multipart/mixed: that body first, then each
/// attachment (`CampaignAttachment`) in order.
public enum CampaignMail {
    public static func render(
        _ template: CampaignTemplate, for recipient: CampaignRecipient, date unixSeconds: Int64,
        attachments: [CampaignAttachment] = []
    ) -> String {
        let unsubscribe = unsubscribeURL(template, recipient)
        let values = mergeValues(recipient, unsubscribeURL: unsubscribe)
        let subject = merge(template.subject, values, escape: { $0 })
            .map { $0.isNewline ? " " : $0 }
        let text = template.text.map { merge($0, values, escape: { $0 }) }
        let html = template.html.map { merge($0, values, escape: escapeHTML) }
        let domain = EmailAddress.domain(template.fromAddress)
        let from = template.fromName.isEmpty
            ? "<\(template.fromAddress)>"
            : "\(EmailMessage.encodeHeader("\"\(template.fromName)\"")) <\(template.fromAddress)>"
        var lines = [
            "From: \(from)",
            "To: <\(recipient.address)>",
            "Subject: \(EmailMessage.encodeHeader(String(subject)))",
            "Date: \(EmailMessage.rfc5322Date(unixSeconds))",
            "Message-ID: \(messageID(campaignID: template.campaignID, contactID: recipient.contactID, domain: domain))",
            "List-Unsubscribe: <\(unsubscribe)>, <mailto:\(template.fromAddress)?subject=unsubscribe%20\(recipient.unsubscribeToken)>",
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            "MIME-Version: 1.0",
        ]
        var body: [String]
        switch (text, html) {
        case (let text?, let html?):
            let boundary = "=_jobd_\(template.campaignID)_\(recipient.contactID)_alt"
            body = ["Content-Type: multipart/alternative; boundary=\"\(boundary)\"", ""]
            body.append("--\(boundary)")
            body += part("text/plain", text)
            body.append("--\(boundary)")
            body += part("text/html", html)
            body.append("--\(boundary)--")
        case (let text?, nil):
            body = part("text/plain", text)
        case (nil, let html?):
            body = part("text/html", html)
        case (nil, nil):
            body = part("text/plain", "")
        }
        if attachments.isEmpty {
            lines += body
        } else {
            // Base64 never contains "=_", so no part's text can close a boundary.
            let boundary = "=_jobd_\(template.campaignID)_\(recipient.contactID)_mix"
            lines += ["Content-Type: multipart/mixed; boundary=\"\(boundary)\"", "", "--\(boundary)"]
            lines += body
            for attachment in attachments {
                lines.append("--\(boundary)")
                lines.append(attachment.part)
            }
            lines.append("--\(boundary)--")
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    public static func unsubscribeURL(_ template: CampaignTemplate, _ recipient: CampaignRecipient) -> String {
        "\(template.unsubscribeURL)?token=\(recipient.unsubscribeToken)"
    }

    /// `<c<campaign>.r<contact>.<hash>@domain>`: stable for a (campaign, contact).
    public static func messageID(campaignID: Int64, contactID: Int64, domain: String) -> String {
        let key = EmailMessage.messageID(idempotencyKey: "campaign:\(campaignID):contact:\(contactID)", from: "x@\(domain)")
        return "<c\(campaignID).r\(contactID).\(key.dropFirst())"
    }

    static func mergeValues(_ recipient: CampaignRecipient, unsubscribeURL: String) -> [String: String] {
        var values: [String: String] = [:]
        for (key, value) in recipient.fields {
            switch value {
            case .string(let text): values[key] = text
            case .number(let number):
                values[key] = number.rounded() == number && abs(number) < 1e15 ? String(Int64(number)) : String(number)
            case .bool(let flag): values[key] = flag ? "true" : "false"
            case .null, .array, .object: values[key] = ""
            }
        }
        values["name"] = recipient.name
        values["email"] = recipient.address
        values["unsubscribe_url"] = unsubscribeURL
        return values
    }

    /// Replaces every `{{ key }}`; text without a closing `}}` stays as it is.
    public static func merge(_ template: String, _ values: [String: String], escape: (String) -> String) -> String {
        var out = ""
        out.reserveCapacity(template.utf8.count)
        var rest = Substring(template)
        while let open = rest.range(of: "{{") {
            out += rest[..<open.lowerBound]
            let after = rest[open.upperBound...]
            guard let close = after.range(of: "}}") else {
                out += rest[open.lowerBound...]
                return out
            }
            let key = after[..<close.lowerBound].trimmingCharacters(in: " \t")
            out += escape(values[key] ?? "")
            rest = after[close.upperBound...]
        }
        out += rest
        return out
    }

    public static func escapeHTML(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    /// Headers and base64 body of one part, CRLF line ends in the encoded text.
    static func part(_ type: String, _ body: String) -> [String] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(body.utf8.count + body.utf8.count / 20)
        var previous: UInt8 = 0
        for byte in body.utf8 {
            if byte == UInt8(ascii: "\n") && previous != UInt8(ascii: "\r") { bytes.append(UInt8(ascii: "\r")) }
            bytes.append(byte)
            previous = byte
        }
        return ["Content-Type: \(type); charset=utf-8", "Content-Transfer-Encoding: base64", ""] + base64Lines(bytes)
    }

    /// Standard base64 in lines of 76 characters (RFC 2045's limit).
    static func base64Lines(_ bytes: [UInt8]) -> [String] {
        let encoded = Base64.encode(bytes)
        var lines: [String] = []
        lines.reserveCapacity(encoded.utf8.count / 76 + 1)
        var index = encoded.startIndex
        while index < encoded.endIndex {
            let end = encoded.index(index, offsetBy: 76, limitedBy: encoded.endIndex) ?? encoded.endIndex
            lines.append(String(encoded[index..<end]))
            index = end
        }
        return lines
    }
}

/// One attachment of a campaign, its MIME part encoded once for every message of
/// a batch (the base64 text is the bulk of a message with attachments).
///
/// `Content-Disposition: attachment; filename="…"` (and the same `name` on
/// Content-Type, for older clients) when the name is printable ASCII without `"`
/// or `\`; otherwise RFC 2231's `filename*=utf-8''…` with every other byte
/// percent-encoded, so no name, whatever its characters, can end a header line. A
/// content type that is not a bare `type/subtype` is sent as
/// `application/octet-stream`. The door (`oltp.campaign_attachments`) refuses such
/// values already; this holds for any stored value all the same.
public struct CampaignAttachment: Sendable, Equatable {
    public let filename: String
    public let contentType: String
    public let size: Int
    /// Headers, blank line and base64 lines of the part, CRLF-separated, no final CRLF.
    public let part: String

    public init(filename: String, contentType: String, data: [UInt8]) {
        self.filename = filename
        self.contentType = contentType
        size = data.count
        let type = Self.isMediaType(contentType) ? contentType : "application/octet-stream"
        var lines = [
            "Content-Type: \(type);", " \(Self.parameter("name", filename))",
            "Content-Disposition: attachment;", " \(Self.parameter("filename", filename))",
            "Content-Transfer-Encoding: base64", "",
        ]
        lines += CampaignMail.base64Lines(data)
        part = lines.joined(separator: "\r\n")
    }

    /// `name="value"` for printable ASCII without `"` and `\`, else `name*=utf-8''%XX…` (RFC 2231).
    static func parameter(_ name: String, _ value: String) -> String {
        let bytes = Array(value.utf8)
        if !bytes.isEmpty, bytes.allSatisfy({ (0x20...0x7E).contains($0) && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            return "\(name)=\"\(value)\""
        }
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = Array("\(name)*=utf-8''".utf8)
        for byte in bytes {
            if isAttributeChar(byte) {
                out.append(byte)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// RFC 2231 / 5987 `attr-char`: letters, digits and `!#$&+-.^_`|~`.
    static func isAttributeChar(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            "!#$&+-.^_`|~".utf8.contains(byte)
        }
    }

    /// `type/subtype` of RFC 6838 restricted names (1–127 characters each), no parameters.
    public static func isMediaType(_ text: String) -> Bool {
        let halves = text.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        guard halves.count == 2 else { return false }
        return halves.allSatisfy { name in
            guard let first = name.first, (1...127).contains(name.count), isAlphanumeric(first) else { return false }
            return name.allSatisfy { isAlphanumeric($0) || "!#$&^_.+-".utf8.contains($0) }
        }
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        default: false
        }
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var view = self
        while let first = view.first, set.contains(first) { view.removeFirst() }
        while let last = view.last, set.contains(last) { view.removeLast() }
        return String(view)
    }
}
