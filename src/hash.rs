//! SplitMix64, the one hash behind every deterministic "random" choice: synthetic content and
//! the pixels `verify` samples. Stable across runs, platforms and Rust versions.

/// The SplitMix64 output for state `x`: a fast, well-mixed 64-bit hash.
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The next number of a SplitMix64 stream whose state is `state` (advanced in place).
pub fn splitmix64_next(state: &mut u64) -> u64 {
    let value = splitmix64(*state);
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_the_reference_splitmix64() {
        // Reference values of SplitMix64 seeded with 1234567 (Vigna's splitmix64.c).
        let mut state = 1234567;
        let got: Vec<u64> = (0..3).map(|_| splitmix64_next(&mut state)).collect();
        assert_eq!(
            got,
            [
                6457827717110365317,
                3203168211198807973,
                9817491932198370423
            ]
        );
    }
}
