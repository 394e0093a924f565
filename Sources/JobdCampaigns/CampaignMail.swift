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
public enum CampaignMail {
    public static func render(_ template: CampaignTemplate, for recipient: CampaignRecipient, date unixSeconds: Int64) -> String {
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
        switch (text, html) {
        case (let text?, let html?):
            let boundary = "=_jobd_\(template.campaignID)_\(recipient.contactID)_alt"
            lines.append("Content-Type: multipart/alternative; boundary=\"\(boundary)\"")
            lines.append("")
            lines.append("--\(boundary)")
            lines += part("text/plain", text)
            lines.append("--\(boundary)")
            lines += part("text/html", html)
            lines.append("--\(boundary)--")
        case (let text?, nil):
            lines += part("text/plain", text)
        case (nil, let html?):
            lines += part("text/html", html)
        case (nil, nil):
            lines += part("text/plain", "")
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
        var lines = ["Content-Type: \(type); charset=utf-8", "Content-Transfer-Encoding: base64", ""]
        let encoded = Base64.encode(bytes)
        var index = encoded.startIndex
        while index < encoded.endIndex {
            let end = encoded.index(index, offsetBy: 76, limitedBy: encoded.endIndex) ?? encoded.endIndex
            lines.append(String(encoded[index..<end]))
            index = end
        }
        return lines
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
