import JobdCore

/// SplitMix64: a tiny, fully deterministic generator so every random draw in the
/// core tests is reproducible from its seed.
struct CoreSplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Seeds used wherever a test sweeps over several generators.
let coreTestSeeds: [UInt64] = [0, 1, 42, 0xDEAD_BEEF, 0x0123_4567_89AB_CDEF, .max]
