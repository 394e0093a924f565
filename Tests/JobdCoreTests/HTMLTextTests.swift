import JobdContent
import JobdCore
import Testing

@Suite("HTMLText.extract")
struct HTMLTextTests {
    @Test("tags go, text stays, whitespace collapses as a browser would")
    func basics() {
        #expect(HTMLText.extract("<p>Hello <b>world</b></p>") == "Hello world")
        #expect(HTMLText.extract("  lots \n\n of\t\tspace  ") == "lots of space")
        #expect(HTMLText.extract("<span>a</span><span>b</span>") == "ab")  // inline: no gap
        #expect(HTMLText.extract("") == "")
    }

    @Test("script, style, head and title vanish with their content")
    func droppedElements() {
        let html = """
            <html><head><title>Subject line</title><style type="text/css">.a { color: red; } td > p {}</style>
            <meta charset="utf-8"></head><body><script>var x = "<p>not text</p>";</script>
            <p>Visible</p><STYLE>p{}</STYLE><noscript>enable js</noscript></body></html>
            """
        #expect(HTMLText.extract(html) == "Visible")
    }

    @Test("comments, Outlook conditionals and doctype are dropped")
    func comments() {
        let html = """
            <!DOCTYPE html><!-- a comment with <p>markup</p> --><!--[if mso]><table><tr><td>outlook only</td></tr></table><![endif]-->
            <p>Shown</p><!-- unterminated
            """
        #expect(HTMLText.extract(html) == "Shown")
    }

    @Test("cells are separated by spaces, rows and blocks by line breaks")
    func structure() {
        let html = "<table><tr><td>Item</td><td>Qty</td></tr><tr><td>Mug</td><td>2</td></tr></table><p>Total</p>"
        #expect(HTMLText.extract(html) == "Item Qty\nMug 2\n\nTotal")
        #expect(HTMLText.extract("one<br>two<br/>three<div>four</div>") == "one\ntwo\nthree\nfour")
        #expect(HTMLText.extract("<ul><li>a</li><li>b</li></ul>") == "a\nb")
    }

    @Test("character references decode; unknown ones stay literal")
    func entities() {
        #expect(HTMLText.extract("Tom &amp; Jerry &lt;3 &quot;hi&quot; &#39;x&#39;") == "Tom & Jerry <3 \"hi\" 'x'")
        #expect(HTMLText.extract("&copy; 2026 &mdash; &euro;5 &#8364;5 &#x20AC;5 caf&eacute;") == "© 2026 — €5 €5 €5 café")
        #expect(HTMLText.extract("AT&T &notanentity; a & b &#0; &") == "AT&T &notanentity; a & b &#0; &")
    }

    @Test("invisible preheader filler disappears; no-break spaces are spaces")
    func preheader() {
        let html = "<div style=\"display:none\">Big sale&nbsp;&zwnj;&nbsp;&zwnj;&nbsp;&#847;&shy;\u{200C}\u{A0}</div><p>Shop\u{A0}now</p>"
        #expect(HTMLText.extract(html) == "Big sale\n\nShop now")
    }

    @Test("attributes may hold > inside quotes; a literal < in text survives")
    func attributes() {
        #expect(HTMLText.extract(#"<a href="x?a>b" title='c>d'>link</a> 3 < 4"#) == "link 3 < 4")
        #expect(HTMLText.extract("<img src=\"logo.png\" alt=\"Logo\">Brand") == "Brand")
    }

    @Test("non-ASCII text passes through unchanged")
    func unicode() {
        #expect(HTMLText.extract("<p>Grüße aus Köln — 東京 🚚</p>") == "Grüße aus Köln — 東京 🚚")
    }

    @Test("an unterminated tag or element ends the text instead of hanging")
    func truncatedInput() {
        #expect(HTMLText.extract("text <a href=\"x") == "text")
        #expect(HTMLText.extract("before<script>never closed") == "before")
    }
}
