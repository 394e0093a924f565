/// An IPv4 (4 bytes) or IPv6 (16 bytes) address, network byte order.
///
/// Parsing accepts only the strict textual forms an operator writes in
/// configuration: dotted decimal without leading zeros (`010.0.0.1` is refused,
/// since resolvers read it as octal) and RFC 4291 IPv6 (`::`, a trailing dotted
/// quad), without a zone. Addresses met on the wire come from `init(bytes:)`.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    public init?(parsing text: String) {
        if text.contains(":") {
            guard let bytes = Self.parseIPv6(Substring(text)) else { return nil }
            self.bytes = bytes
        } else {
            guard let bytes = Self.parseIPv4(Substring(text)) else { return nil }
            self.bytes = bytes
        }
    }

    public var isIPv4: Bool { bytes.count == 4 }

    /// The IPv4 address an IPv6 address carries and stands for when connected to:
    /// IPv4-mapped `::ffff:a.b.c.d` (an AF_INET6 socket reaches the IPv4 host),
    /// IPv4-compatible `::a.b.c.d` (deprecated) and the NAT64 well-known prefix
    /// `64:ff9b::a.b.c.d` (a translator forwards it to that IPv4 address).
    public var embeddedIPv4: IPAddress? {
        guard bytes.count == 16 else { return nil }
        let head = bytes[0..<12]
        let mapped = head.prefix(10).allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
        let compatible = head.allSatisfy { $0 == 0 } && !(bytes[12] == 0 && bytes[13] == 0 && bytes[14] == 0 && bytes[15] <= 1)
        let nat64 = Array(head) == [0x00, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0]
        guard mapped || compatible || nat64 else { return nil }
        return IPAddress(bytes: Array(bytes[12..<16]))
    }

    /// What kind of network the address belongs to (IANA special-purpose registries).
    public var scope: AddressScope {
        if let v4 = embeddedIPv4 {
            let inner = v4.scope
            // `::a.b.c.d` is deprecated and never legitimately dialled.
            if bytes[0..<12].allSatisfy({ $0 == 0 }), inner == .public { return .reserved }
            return inner
        }
        let b = bytes
        if b.count == 4 {
            switch (b[0], b[1]) {
            case (0, _): return b == [0, 0, 0, 0] ? .unspecified : .reserved  // 0.0.0.0/8 "this network"
            case (10, _): return .private
            case (100, 64...127): return .sharedCGNAT
            case (127, _): return .loopback
            case (169, 254): return .linkLocal
            case (172, 16...31): return .private
            case (192, 168): return .private
            case (224...239, _): return .multicast
            case (240...255, _): return .reserved  // 240.0.0.0/4 and the broadcast address
            default: return .public
            }
        }
        if b.allSatisfy({ $0 == 0 }) { return .unspecified }
        if b.prefix(15).allSatisfy({ $0 == 0 }) && b[15] == 1 { return .loopback }
        switch b[0] {
        case 0xFC, 0xFD: return .private  // fc00::/7, unique local
        case 0xFE:
            if b[1] & 0xC0 == 0x80 { return .linkLocal }  // fe80::/10
            if b[1] & 0xC0 == 0xC0 { return .private }  // fec0::/10, site-local (deprecated)
            return .public
        case 0xFF: return .multicast
        default: return .public
        }
    }

    /// Dotted decimal, or RFC 5952 (lower case, the longest run of zero groups as `::`,
    /// IPv4-mapped addresses as `::ffff:a.b.c.d`).
    public var description: String {
        if bytes.count == 4 { return bytes.map { String($0) }.joined(separator: ".") }
        if bytes.prefix(10).allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
            return "::ffff:" + bytes[12..<16].map { String($0) }.joined(separator: ".")
        }
        let groups = (0..<8).map { Int(bytes[2 * $0]) << 8 | Int(bytes[2 * $0 + 1]) }
        var bestStart = -1, bestLength = 0, index = 0
        while index < 8 {
            guard groups[index] == 0 else { index += 1; continue }
            var end = index
            while end < 8 && groups[end] == 0 { end += 1 }
            if end - index > bestLength { bestStart = index; bestLength = end - index }
            index = end
        }
        func hex(_ range: Range<Int>) -> String { range.map { String(groups[$0], radix: 16) }.joined(separator: ":") }
        guard bestLength >= 2 else { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }

    static func parseIPv4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isNumber }),
                  part.count == 1 || part.first != "0", let value = UInt8(part) else { return nil }
            bytes.append(value)
        }
        return bytes
    }

    static func parseIPv6(_ text: Substring) -> [UInt8]? {
        guard text.count <= 45, !text.contains("%") else { return nil }
        func groups(_ part: Substring, allowIPv4Tail: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            var result: [UInt16] = []
            for (index, piece) in pieces.enumerated() {
                if allowIPv4Tail, index == pieces.count - 1, piece.contains(".") {
                    guard let v4 = parseIPv4(piece) else { return nil }
                    result += [UInt16(v4[0]) << 8 | UInt16(v4[1]), UInt16(v4[2]) << 8 | UInt16(v4[3])]
                    continue
                }
                guard (1...4).contains(piece.count), piece.allSatisfy(\.isHexDigit), let value = UInt16(piece, radix: 16) else {
                    return nil
                }
                result.append(value)
            }
            return result
        }
        let halves = text.components(separatedBy: "::")
        var all: [UInt16]
        switch halves.count {
        case 1:
            guard let parsed = groups(text, allowIPv4Tail: true), parsed.count == 8 else { return nil }
            all = parsed
        case 2:
            guard let left = groups(Substring(halves[0]), allowIPv4Tail: false),
                  let right = groups(Substring(halves[1]), allowIPv4Tail: true),
                  left.count + right.count <= 7 else { return nil }
            all = left + Array(repeating: 0, count: 8 - left.count - right.count) + right
        default:
            return nil
        }
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }
}

/// The kind of network an address belongs to. Everything but `public` is internal.
public enum AddressScope: String, Sendable, Equatable, CaseIterable {
    /// 0.0.0.0, `::` (Linux connects them to the local host).
    case unspecified
    /// 127.0.0.0/8, ::1.
    case loopback
    /// RFC 1918 (10/8, 172.16/12, 192.168/16), unique local fc00::/7, site-local fec0::/10.
    case `private`
    /// 169.254.0.0/16 (cloud metadata services live here), fe80::/10.
    case linkLocal = "link-local"
    /// 100.64.0.0/10, carrier-grade NAT (RFC 6598).
    case sharedCGNAT = "shared"
    /// 224.0.0.0/4, ff00::/8.
    case multicast
    /// 0.0.0.0/8 beyond 0.0.0.0, 240.0.0.0/4 with the broadcast address, IPv4-compatible `::a.b.c.d`.
    case reserved
    case `public`
}

/// A network in CIDR notation: `10.0.0.0/8`, `::1/128`; a bare address is a single host.
/// The address must be the network's first (host bits zero), so `10.0.0.1/8` is refused
/// instead of silently meaning something else than what was written.
public struct CIDRBlock: Sendable, Hashable, CustomStringConvertible {
    public let network: IPAddress
    public let prefixLength: Int

    public init?(parsing text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let address = IPAddress(parsing: String(parts[0])) else { return nil }
        let bits = address.bytes.count * 8
        var length = bits
        if parts.count == 2 {
            let digits = parts[1]
            guard (1...3).contains(digits.count), digits.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let value = Int(digits), value <= bits else { return nil }
            length = value
        }
        guard Self.masked(address.bytes, length) == address.bytes else { return nil }
        network = address
        prefixLength = length
    }

    /// Whether `address` (of the same family) lies in the block.
    public func contains(_ address: IPAddress) -> Bool {
        address.bytes.count == network.bytes.count && Self.masked(address.bytes, prefixLength) == network.bytes
    }

    public var description: String { "\(network)/\(prefixLength)" }

    static func masked(_ bytes: [UInt8], _ length: Int) -> [UInt8] {
        bytes.enumerated().map { index, byte in
            let keep = min(8, max(0, length - index * 8))
            return keep == 8 ? byte : byte & ~(UInt8(0xFF) >> keep)
        }
    }
}

/// Which addresses an outbound notification request may connect to.
///
/// Public addresses always; internal ones (`AddressScope` other than `public`) only
/// inside a block of `allowed` (`JOBD_NOTIFY_ALLOWED_NETWORKS`). An IPv6 address that
/// carries an IPv4 address is judged as that IPv4 address, and is opened by a block
/// containing either form. The transport applies the decision to each address it is
/// about to connect to, after resolution, so no spelling of a host and no DNS answer
/// (a rebinding one included) reaches an address the decision refuses.
public struct OutboundNetworkPolicy: Sendable, Equatable {
    public var allowed: [CIDRBlock]

    public init(allowed: [CIDRBlock] = []) {
        self.allowed = allowed
    }

    public enum Decision: Sendable, Equatable {
        case allow
        case refuse(AddressScope)
    }

    public func decide(_ address: IPAddress) -> Decision {
        let scope = address.scope
        if scope == .public { return .allow }
        let forms = [address] + (address.embeddedIPv4.map { [$0] } ?? [])
        if allowed.contains(where: { block in forms.contains(where: block.contains) }) { return .allow }
        return .refuse(scope)
    }

    /// `127.0.0.0/8,::1/128` (commas or spaces between blocks); nil when a block is malformed.
    public static func parseNetworks(_ text: String) -> [CIDRBlock]? {
        let parts = text.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" }).map(String.init)
        var blocks: [CIDRBlock] = []
        for part in parts {
            guard let block = CIDRBlock(parsing: part) else { return nil }
            blocks.append(block)
        }
        return blocks.isEmpty ? nil : blocks
    }
}
