/// 64-bit FNV-1a: a fast, stable, non-cryptographic hash of bytes. Stable across
/// processes and builds (unlike `Hasher`), so it may name things that persist:
/// migration checksums, prepared statement names, Message-IDs.
public enum FNV1a {
    /// The standard 64-bit offset basis.
    public static let offsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325
    static let prime: UInt64 = 0x0000_0100_0000_01b3

    /// The hash of `bytes`, starting from `basis` (another basis gives an
    /// independent second hash of the same bytes).
    public static func hash(_ bytes: some Sequence<UInt8>, basis: UInt64 = offsetBasis) -> UInt64 {
        var hash = basis
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* prime
        }
        return hash
    }
}
