import Foundation
import JobdContent
import JobdCore
import Testing

/// Parses a payload written as JSON text, the way the handler receives it.
private func parse(_ json: String) throws -> ContentMessage {
    let value = try JSONDecoder().decode(JSONValue.self, from: Data(json.utf8))
    guard case .object(let object) = value else { throw ContentPayloadError(field: "-", reason: "not an object") }
    return try ContentMessage.parse(object)
}

/// The field a payload is rejected for, or nil when it parses.
private func rejectedField(_ json: String) -> String? {
    do {
        _ = try parse(json)
        return nil
    } catch let error as ContentPayloadError {
        return error.field
    } catch {
        return "not-json"
    }
}

/// A valid payload with `extra` spliced in (overriding fields of the same name).
private func payload(_ extra: String = "", dropping: Set<String> = []) -> String {
    var fields: [(String, String)] = [
        ("external_id", #""msg-1""#), ("tenant_id", #""acme""#), ("from", #""Shop <news@shop.example>""#),
        ("to", #"["ann@example.com"]"#), ("subject", #""Hello""#), ("text", #""Hi Ann""#),
    ]
    fields.removeAll { dropping.contains($0.0) || extra.contains("\"\($0.0)\":") }
    let body = fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ")
    return "{" + body + (extra.isEmpty ? "" : ", " + extra) + "}"
}

@Suite("ContentMessage.parse")
struct ContentMessageTests {
    @Test("a whole email parses field by field")
    func fullPayload() throws {
        let message = try parse("""
            {"external_id": "order-42-receipt", "tenant_id": "acme.eu", "campaign_id": "receipts",
             "from": "Acme <billing@acme.example>", "to": ["ann@example.com", "Bob <bob@example.org>"],
             "subject": "Your receipt", "headers": {"X-Mailer": "acme", "Reply-To": "help@acme.example"},
             "text": "Thanks!", "html": "<p>Thanks!</p>",
             "attachments": [{"filename": "receipt.txt", "content_type": "text/plain; charset=utf-8",
                              "data_base64": "aGVsbG8gd29y\\nbGQ="}]}
            """)
        #expect(message.externalID == "order-42-receipt")
        #expect(message.tenantID == "acme.eu")
        #expect(message.campaignID == "receipts")
        #expect(message.from == "Acme <billing@acme.example>")
        #expect(message.to == ["ann@example.com", "Bob <bob@example.org>"])
        #expect(message.subject == "Your receipt")
        #expect(message.headers == [.init(name: "Reply-To", value: "help@acme.example"), .init(name: "X-Mailer", value: "acme")])
        #expect(message.text == "Thanks!")
        #expect(message.html == "<p>Thanks!</p>")
        #expect(message.attachments == [.init(filename: "receipt.txt", contentType: "text/plain; charset=utf-8",
                                              data: Array("hello world".utf8))])
    }

    @Test("optional fields may be missing or null; a single string is one recipient")
    func optionalFields() throws {
        let message = try parse(payload(#""campaign_id": null, "headers": null, "attachments": null, "to": "ann@example.com""#))
        #expect(message.campaignID == nil)
        #expect(message.headers.isEmpty)
        #expect(message.attachments.isEmpty)
        #expect(message.to == ["ann@example.com"])
        #expect(message.html == nil)
        let htmlOnly = try parse(payload(#""html": "<b>x</b>""#, dropping: ["text"]))
        #expect(htmlOnly.text == nil && htmlOnly.html == "<b>x</b>")
    }

    @Test("each invalid field is named", arguments: [
        (#""surprise": 1"#, "surprise"),
        (#""external_id": """#, "external_id"),
        (#""external_id": 42"#, "external_id"),
        (#""external_id": "a\nb""#, "external_id"),
        (#""tenant_id": "acme corp""#, "tenant_id"),
        (#""tenant_id": "x'; DROP TABLE""#, "tenant_id"),
        (#""campaign_id": 7"#, "campaign_id"),
        (#""campaign_id": """#, "campaign_id"),
        (#""from": "not-an-address""#, "from"),
        (#""from": "a@b@c""#, "from"),
        (#""from": "Ann <ann@example.com""#, "from"),
        (#""from": "ann@example.com\r\nBcc: x@evil.example""#, "from"),
        (#""to": []"#, "to"),
        (#""to": {}"#, "to"),
        (#""to": ["ok@example.com", 5]"#, "to[1]"),
        (#""to": ["ok@example.com", "bad"]"#, "to[1]"),
        (#""subject": "two\nlines""#, "subject"),
        (#""subject": null"#, "subject"),
        (#""headers": []"#, "headers"),
        (#""headers": {"Bad Name": "x"}"#, "headers.Bad Name"),
        (#""headers": {"X-A": "line\r\nInjected: yes"}"#, "headers.X-A"),
        (#""headers": {"Subject": "again"}"#, "headers.Subject"),
        (#""headers": {"X-N": 1}"#, "headers.X-N"),
        (#""text": 5"#, "text"),
        (#""html": ["x"]"#, "html"),
        (#""attachments": {}"#, "attachments"),
        (#""attachments": ["x"]"#, "attachments[0]"),
        (#""attachments": [{"filename": "a.txt", "content_type": "text/plain"}]"#, "attachments[0].data_base64"),
        (#""attachments": [{"filename": "a.txt", "content_type": "text/plain", "data_base64": "!!"}]"#, "attachments[0].data_base64"),
        (#""attachments": [{"filename": "../etc/passwd", "content_type": "text/plain", "data_base64": ""}]"#, "attachments[0].filename"),
        (#""attachments": [{"filename": "a", "content_type": "textplain", "data_base64": ""}]"#, "attachments[0].content_type"),
        (#""attachments": [{"filename": "a", "content_type": "text/plain", "data_base64": "", "size": 1}]"#, "attachments[0].size"),
    ])
    func invalidField(extra: String, field: String) {
        #expect(rejectedField(payload(extra)) == field)
    }

    @Test("required fields", arguments: ["external_id", "tenant_id", "from", "to", "subject"])
    func required(field: String) {
        #expect(rejectedField(payload(dropping: [field])) == field)
    }

    @Test("a message needs a body")
    func needsBody() {
        #expect(rejectedField(payload(dropping: ["text"])) == "text")
        #expect(rejectedField(payload(#""text": null, "html": null"#)) == "text")
    }

    @Test("limits: recipients, headers, attachments, line length")
    func limits() {
        let recipients = (0...ContentMessage.maxRecipients).map { "\"r\($0)@example.com\"" }.joined(separator: ",")
        #expect(rejectedField(payload("\"to\": [\(recipients)]")) == "to")
        let headers = (0...ContentMessage.maxHeaders).map { "\"X-H\($0)\": \"v\"" }.joined(separator: ",")
        #expect(rejectedField(payload("\"headers\": {\(headers)}")) == "headers")
        let files = (0...ContentMessage.maxAttachments).map { _ in
            #"{"filename": "a", "content_type": "text/plain", "data_base64": ""}"#
        }.joined(separator: ",")
        #expect(rejectedField(payload("\"attachments\": [\(files)]")) == "attachments")
        #expect(rejectedField(payload("\"subject\": \"\(String(repeating: "s", count: 999))\"")) == "subject")
        #expect(rejectedField(payload("\"subject\": \"\(String(repeating: "s", count: 998))\"")) == nil)
    }

    @Test("the error text names the field and the rule")
    func message() {
        do {
            _ = try parse(payload(#""to": ["bad"]"#))
            Issue.record("accepted a bad address")
        } catch let error as ContentPayloadError {
            #expect(error.description == "content.write payload: to[0] is not an email address (a@example.com or Name <a@example.com>)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}

@Suite("Base64")
struct Base64Tests {
    @Test("RFC 4648 test vectors, both ways", arguments: [
        ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ])
    func vectors(plain: String, encoded: String) {
        #expect(Base64.encode(Array(plain.utf8)) == encoded)
        #expect(Base64.decode(encoded) == Array(plain.utf8))
    }

    @Test("line breaks are skipped and padding is optional")
    func lenient() {
        #expect(Base64.decode("Zm9v\r\nYmFy\n") == Array("foobar".utf8))
        #expect(Base64.decode("Zg") == Array("f".utf8))
        #expect(Base64.decode("Zm8") == Array("fo".utf8))
    }

    @Test("invalid input is refused", arguments: ["Z", "Zg=", "Zg===", "Zm9v!", "Zg==Zg==", "Zh==", "-_8=", "Zm9=v"])
    func invalid(text: String) {
        #expect(Base64.decode(text) == nil)
    }

    @Test("every byte value round trips")
    func allBytes() {
        let bytes = (0...255).map { UInt8($0) } + (0...255).reversed().map { UInt8($0) }
        for count in 0...bytes.count where count % 37 == 0 || count < 5 {
            let slice = Array(bytes.prefix(count))
            #expect(Base64.decode(Base64.encode(slice)) == slice)
        }
    }
}
