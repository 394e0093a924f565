import JobdCore
import JobdTestRandom

/// Seeds used wherever a test sweeps over several generators.
let coreTestSeeds: [UInt64] = [0, 1, 42, 0xDEAD_BEEF, 0x0123_4567_89AB_CDEF, .max]
