//! The runner's one seeded generator: everything a scenario's `seed` decides (the uids of
//! objects that never existed, the poster's retry jitter) comes from here, so two runs of
//! one file give byte-identical transcripts.
//!
//! ```
//! use csi_events::scenario::seeded::Seeded;
//! let uid = Seeded::new(7).uid("vms/disk-0");
//! assert_eq!(uid, Seeded::new(7).uid("vms/disk-0"));
//! assert_ne!(uid, Seeded::new(8).uid("vms/disk-0"));
//! assert_eq!(uid.len(), 36);
//! ```

use crate::RetryPolicy;

/// SplitMix64 over the scenario's seed (the same generator the poster's jitter uses).
#[derive(Debug, Clone, Copy)]
pub struct Seeded {
    seed: u64,
}

impl Seeded {
    /// The scenario's seed.
    pub fn new(seed: u64) -> Self {
        Self { seed }
    }

    /// A stream of numbers for `what` (a name): the same name gives the same stream.
    pub fn stream(self, what: &str) -> SplitMix64 {
        let mut state = self.seed ^ 0x9e37_79b9_7f4a_7c15;
        for byte in what.bytes() {
            state = (state ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        SplitMix64(state)
    }

    /// A version-4-shaped uid for `what`.
    pub fn uid(self, what: &str) -> String {
        let mut stream = self.stream(what);
        let (a, b) = (stream.next_u64(), stream.next_u64());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            (a >> 32) as u32,
            (a >> 16) as u16,
            (a & 0x0fff) as u16,
            ((b >> 48) as u16 & 0x3fff) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }

    /// The poster's retry policy: the default one, its jitter seeded by the scenario.
    pub fn retry_policy(self) -> RetryPolicy {
        RetryPolicy {
            seed: RetryPolicy::default().seed ^ self.seed,
            ..RetryPolicy::default()
        }
    }
}

/// SplitMix64: small, fast, deterministic.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
