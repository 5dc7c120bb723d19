//! The random source port: every number shown for number matching and every token, code and
//! id the services make is drawn from it, so a test can fix them as it fixes the clock.
//!
//! Signing keys are the exception: [`crate::keys`] makes them with the operating system's
//! generator directly, because a key drawn from a test's fixed source must never exist.

use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::secret::Secret;

/// Where random bytes come from.
pub trait RandomSource: Send + Sync {
    fn fill(&self, bytes: &mut [u8]);
}

impl dyn RandomSource + '_ {
    /// `len_bytes` random bytes, hex-encoded.
    pub fn hex(&self, len_bytes: usize) -> String {
        let mut bytes = vec![0u8; len_bytes];
        self.fill(&mut bytes);
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A bearer secret: 256 random bits, base64url.
    pub fn token(&self) -> Secret {
        let mut bytes = [0u8; 32];
        self.fill(&mut bytes);
        Secret::new(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// 32 random bytes (a candidate server secret).
    pub fn key_bytes(&self) -> [u8; 32] {
        let mut bytes = [0u8; 32];
        self.fill(&mut bytes);
        bytes
    }

    /// A uniformly random value below `bound`, without modulo bias.
    pub fn below(&self, bound: u32) -> u32 {
        assert!(bound > 0);
        let zone = u32::MAX - (u32::MAX % bound);
        loop {
            let mut bytes = [0u8; 4];
            self.fill(&mut bytes);
            let value = u32::from_le_bytes(bytes);
            if value < zone {
                return value % bound;
            }
        }
    }

    /// The number a number-matching request shows: uniformly 10 to 99.
    pub fn match_number(&self) -> u8 {
        10 + self.below(90) as u8
    }
}

/// The operating system's generator (getrandom): what the server uses.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn fill(&self, bytes: &mut [u8]) {
        getrandom::fill(bytes).expect("the operating system's random source failed");
    }
}

/// A repeatable sequence from a seed (SplitMix64), for tests that must know what is drawn.
/// Never for a server: anyone who knows the seed knows every token.
#[derive(Debug)]
pub struct SeededRandom {
    state: Mutex<u64>,
}

impl SeededRandom {
    pub fn new(seed: u64) -> Self {
        SeededRandom {
            state: Mutex::new(seed),
        }
    }

    fn next(&self) -> u64 {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl RandomSource for SeededRandom {
    fn fill(&self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(8) {
            let value = self.next().to_le_bytes();
            chunk.copy_from_slice(&value[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_repeats_and_numbers_stay_in_range() {
        let a: &dyn RandomSource = &SeededRandom::new(7);
        let b: &dyn RandomSource = &SeededRandom::new(7);
        assert_eq!(a.hex(16), b.hex(16));
        let os: &dyn RandomSource = &OsRandom;
        for _ in 0..1000 {
            assert!((10..=99).contains(&os.match_number()));
            assert!((10..=99).contains(&a.match_number()));
        }
        assert_ne!(os.token().expose(), os.token().expose());
    }
}
