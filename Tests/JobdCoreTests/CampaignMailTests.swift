import Foundation
import JobdCampaigns
import JobdCore
import Testing

@Suite("Campaign mail rendering")
struct CampaignMailTests {
    let template = CampaignTemplate(
        campaignID: 7, fromAddress: "news@acme.test", fromName: "Acme", subject: "Hi {{ name }}\r\nBcc: x@y",
        html: "<b>{{name}}</b> {{city}} {{missing}}", text: "Hello {{name}}, {{city}} {{n}}",
        unsubscribeURL: "https://acme.test/u")
    let recipient = CampaignRecipient(
        contactID: 42, address: "ada@example.org", name: "Ada <&>",
        fields: ["city": .string("Lon\"don"), "n": .number(3)], unsubscribeToken: "42.7.abc")

    @Test("merge fields: escaped in HTML, raw in text, unknown keys empty, unclosed braces kept")
    func merge() {
        let values = ["name": "Ada <&>"]
        #expect(CampaignMail.merge("<b>{{name}}</b>", values, escape: CampaignMail.escapeHTML) == "<b>Ada &lt;&amp;&gt;</b>")
        #expect(CampaignMail.merge("{{ name }}/{{nope}}/{{name", values, escape: { $0 }) == "Ada <&>//{{name")
    }

    @Test("the message: multipart/alternative, one-click unsubscribe headers, no injected header")
    func message() throws {
        let text = CampaignMail.render(template, for: recipient, date: 0)
        let head = try #require(text.components(separatedBy: "\r\n\r\n").first)
        let headers = head.components(separatedBy: "\r\n")
        #expect(headers.contains("Subject: Hi Ada <&> Bcc: x@y"))
        #expect(!headers.contains { $0.hasPrefix("Bcc:") })
        #expect(headers.contains("Date: Thu, 01 Jan 1970 00:00:00 +0000"))
        #expect(headers.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"))
        #expect(headers.contains(
            "List-Unsubscribe: <https://acme.test/u?token=42.7.abc>, <mailto:news@acme.test?subject=unsubscribe%2042.7.abc>"))
        #expect(headers.contains { $0.hasPrefix("Content-Type: multipart/alternative; boundary=") })
        let id = try #require(headers.first { $0.hasPrefix("Message-ID: ") })
        #expect(id.hasPrefix("Message-ID: <c7.r42.") && id.hasSuffix("@acme.test>"))
        // The same recipient of the same campaign gets the same id; another does not.
        #expect(CampaignMail.render(template, for: recipient, date: 99).contains(id))
        var other = recipient
        other.contactID = 43
        #expect(!CampaignMail.render(template, for: other, date: 0).contains(id))
        let parts = text.components(separatedBy: "Content-Transfer-Encoding: base64\r\n\r\n").dropFirst()
        #expect(parts.count == 2)
        let bodies = parts.map { part in
            String(decoding: Base64.decode(part.components(separatedBy: "--").first!.replacingOccurrences(of: "\r\n", with: "")) ?? [],
                   as: UTF8.self)
        }
        #expect(bodies[0] == "Hello Ada <&>, Lon\"don 3")
        #expect(bodies[1] == "<b>Ada &lt;&amp;&gt;</b> Lon&quot;don ")
    }
}
