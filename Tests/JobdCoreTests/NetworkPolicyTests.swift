import JobdCore
import Testing

/// The parsed address; a text that does not parse is a test failure (and 0.0.0.0).
private func ip(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> IPAddress {
    if let address = IPAddress(parsing: text) { return address }
    Issue.record("\(text) does not parse", sourceLocation: sourceLocation)
    return IPAddress(bytes: [0, 0, 0, 0])!
}

@Suite("outbound network policy")
struct NetworkPolicyTests {
    @Test("IPv4 and IPv6 addresses parse to their bytes and print canonically", arguments: [
        ("0.0.0.0", "0.0.0.0"), ("255.255.255.255", "255.255.255.255"), ("192.0.2.1", "192.0.2.1"),
        ("::", "::"), ("::1", "::1"), ("1::", "1::"), ("2001:DB8::1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0002:0001", "2001:db8::2:1"), ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"), ("fe80::1:2", "fe80::1:2"), ("::ffff:7f00:1", "::ffff:127.0.0.1"),
        ("::ffff:10.0.0.1", "::ffff:10.0.0.1"), ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
        ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"), ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"),
    ])
    func parsesAndPrints(text: String, printed: String) throws {
        #expect(ip(text).description == printed)
        #expect(IPAddress(parsing: ip(text).description) == ip(text))
    }

    @Test("malformed or ambiguous spellings are refused", arguments: [
        "", "1.2.3", "1.2.3.4.5", "256.0.0.1", "01.2.3.4", "0177.0.0.1", "0x7f.0.0.1", "2130706433", "1.2.3.-4", " 1.2.3.4",
        ":", ":::", "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::", "g::1", "fe80::1%eth0", "::1.2.3", "1.2.3.4::",
        "1:2:3:4:5:6:7::8", "::ffff:1.2.3.256",
    ])
    func refusesMalformed(text: String) {
        #expect(IPAddress(parsing: text) == nil)
    }

    @Test("addresses are classified by the IANA special-purpose ranges, edges included", arguments: [
        ("0.0.0.0", AddressScope.unspecified), ("0.1.2.3", .reserved), ("1.0.0.0", .public),
        ("9.255.255.255", .public), ("10.0.0.0", .private), ("10.255.255.255", .private), ("11.0.0.0", .public),
        ("100.63.255.255", .public), ("100.64.0.0", .sharedCGNAT), ("100.127.255.255", .sharedCGNAT), ("100.128.0.0", .public),
        ("126.255.255.255", .public), ("127.0.0.1", .loopback), ("127.255.255.254", .loopback), ("128.0.0.0", .public),
        ("169.253.255.255", .public), ("169.254.169.254", .linkLocal), ("169.254.0.0", .linkLocal), ("169.255.0.0", .public),
        ("172.15.255.255", .public), ("172.16.0.0", .private), ("172.31.255.255", .private), ("172.32.0.0", .public),
        ("192.167.255.255", .public), ("192.168.0.0", .private), ("192.168.255.255", .private), ("192.169.0.0", .public),
        ("223.255.255.255", .public), ("224.0.0.0", .multicast), ("239.255.255.255", .multicast), ("240.0.0.0", .reserved),
        ("255.255.255.255", .reserved), ("8.8.8.8", .public),
        ("::", .unspecified), ("::1", .loopback), ("::2", .reserved), ("2001:db8::1", .public), ("2606:4700::1111", .public),
        ("fbff:ffff::1", .public), ("fc00::", .private), ("fdff:ffff::1", .private), ("fe00::1", .public),
        ("fe7f:ffff::1", .public), ("fe80::", .linkLocal), ("febf:ffff::1", .linkLocal), ("fec0::1", .private),
        ("ff02::1", .multicast), ("ff00::", .multicast),
        // IPv6 forms of IPv4 addresses are judged as the IPv4 address they reach.
        ("::ffff:127.0.0.1", .loopback), ("::ffff:169.254.169.254", .linkLocal), ("::ffff:10.1.2.3", .private),
        ("::ffff:0.0.0.0", .unspecified), ("::ffff:8.8.8.8", .public), ("::127.0.0.1", .loopback), ("::8.8.8.8", .reserved),
        ("64:ff9b::127.0.0.1", .loopback), ("64:ff9b::10.0.0.1", .private), ("64:ff9b::8.8.8.8", .public),
    ])
    func classifies(text: String, scope: AddressScope) throws {
        #expect(ip(text).scope == scope)
    }

    @Test("a CIDR block contains exactly its range; host bits, bad lengths and mixed families are refused")
    func cidr() throws {
        let block = try #require(CIDRBlock(parsing: "172.16.0.0/12"))
        #expect(block.contains(ip("172.16.0.0")) && block.contains(ip("172.31.255.255")))
        #expect(!block.contains(ip("172.32.0.0")) && !block.contains(ip("172.15.255.255")))
        #expect(!block.contains(ip("::ffff:172.16.0.1")))  // another family: the policy unwraps it
        let all = try #require(CIDRBlock(parsing: "0.0.0.0/0"))
        #expect(all.contains(ip("255.255.255.255")) && all.contains(ip("0.0.0.0")))
        let host = try #require(CIDRBlock(parsing: "10.1.2.3"))
        #expect(host.prefixLength == 32 && host.contains(ip("10.1.2.3")) && !host.contains(ip("10.1.2.4")))
        let v6 = try #require(CIDRBlock(parsing: "fe80::/10"))
        #expect(v6.contains(ip("febf::1")) && !v6.contains(ip("fec0::1")))
        let odd = try #require(CIDRBlock(parsing: "2001:db8::/127"))
        #expect(odd.contains(ip("2001:db8::1")) && !odd.contains(ip("2001:db8::2")))
        #expect(try #require(CIDRBlock(parsing: "::/0")).contains(ip("ffff::1")))
        #expect(try #require(CIDRBlock(parsing: "::1/128")).contains(ip("::1")))
        #expect(try #require(CIDRBlock(parsing: "10.0.0.0/31")).contains(ip("10.0.0.1")))
        for bad in ["10.0.0.1/8", "10.0.0.0/33", "::/129", "::1/127", "10.0.0.0/-1", "10.0.0.0/", "/8", "10.0.0.0/8/8",
                    "10.0.0.0/08x", "host/8", "10.0.0.0/0008"] {
            #expect(CIDRBlock(parsing: bad) == nil, "\(bad)")
        }
    }

    @Test("the default policy refuses every internal scope and allows public addresses")
    func defaultPolicy() throws {
        let policy = OutboundNetworkPolicy()
        for text in ["127.0.0.1", "10.0.0.1", "169.254.169.254", "100.64.0.1", "224.0.0.1", "0.0.0.0", "::", "::1", "fd00::1",
                     "fe80::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "240.0.0.1"] {
            #expect(policy.decide(ip(text)) == .refuse(ip(text).scope), "\(text)")
        }
        for text in ["8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "172.32.0.1"] {
            #expect(policy.decide(ip(text)) == .allow, "\(text)")
        }
    }

    @Test("allowed networks open their ranges, for IPv4-mapped forms too, and nothing else")
    func allowedNetworks() throws {
        let blocks = try #require(OutboundNetworkPolicy.parseNetworks("127.0.0.0/8,::1/128"))
        let policy = OutboundNetworkPolicy(allowed: blocks)
        #expect(policy.decide(ip("127.0.0.1")) == .allow)
        #expect(policy.decide(ip("127.1.2.3")) == .allow)
        #expect(policy.decide(ip("::1")) == .allow)
        #expect(policy.decide(ip("::ffff:127.0.0.1")) == .allow)
        #expect(policy.decide(ip("169.254.169.254")) == .refuse(.linkLocal))
        #expect(policy.decide(ip("10.0.0.1")) == .refuse(.private))
        #expect(policy.decide(ip("::ffff:10.0.0.1")) == .refuse(.private))
        let mappedOnly = OutboundNetworkPolicy(allowed: [try #require(CIDRBlock(parsing: "::ffff:10.0.0.0/104"))])
        #expect(mappedOnly.decide(ip("::ffff:10.9.9.9")) == .allow)
        #expect(mappedOnly.decide(ip("10.9.9.9")) == .refuse(.private))
        let everything = OutboundNetworkPolicy(allowed: try #require(OutboundNetworkPolicy.parseNetworks("0.0.0.0/0 ::/0")))
        #expect(everything.decide(ip("169.254.169.254")) == .allow && everything.decide(ip("fe80::1")) == .allow)
        #expect(OutboundNetworkPolicy.parseNetworks("") == nil && OutboundNetworkPolicy.parseNetworks("127.0.0.0/8,nope") == nil)
    }

    @Test("addresses from the wire: 4 or 16 bytes only")
    func fromBytes() {
        #expect(IPAddress(bytes: [127, 0, 0, 1])?.scope == .loopback)
        #expect(IPAddress(bytes: Array(repeating: 0, count: 15) + [1])?.description == "::1")
        #expect(IPAddress(bytes: [1, 2, 3]) == nil && IPAddress(bytes: []) == nil)
    }
}
