//! Keyed fast hashing for the hash maps a twin command touches (the store overlay, the twin
//! cache, history's recent revisions): foldhash, seeded from the OS's randomness through std's
//! keyed SipHash, in place of std's SipHash-1-3 (hashing was 3.1 % of the server at 100
//! twins, 1.4 after).

use std::collections::hash_map::RandomState as StdState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::OnceLock;

use foldhash::fast::{FoldHasher, SeedableRandomState};
use foldhash::SharedSeed;

/// A `HashMap` hashed by [`Keyed`].
pub type Map<K, V> = HashMap<K, V, Keyed>;

/// Keys of these maps come from untrusted input (thing IDs, attribute values), so the hash is
/// keyed against flooding (many keys made to collide in one bucket): a process-wide seed and a
/// per-map seed, both random (std's `RandomState` draws its keys from the OS; a SipHash of a
/// constant under such a key is an unpredictable 64-bit value). foldhash's own `RandomState`
/// seeds from addresses (ASLR) only, hence this one.
#[derive(Clone, Debug)]
pub struct Keyed(SeedableRandomState);

/// 64 unpredictable bits (a fresh std key per call).
fn random_u64() -> u64 {
    StdState::new().hash_one(0x9e37_79b9_7f4a_7c15u64)
}

fn shared() -> &'static SharedSeed {
    static SEED: OnceLock<SharedSeed> = OnceLock::new();
    SEED.get_or_init(|| SharedSeed::from_u64(random_u64()))
}

impl Default for Keyed {
    fn default() -> Keyed {
        Keyed(SeedableRandomState::with_seed(random_u64(), shared()))
    }
}

impl BuildHasher for Keyed {
    type Hasher = FoldHasher<'static>;

    #[inline]
    fn build_hasher(&self) -> FoldHasher<'static> {
        self.0.build_hasher()
    }
}

/// An empty map with room for `n` entries.
pub fn map_with_capacity<K, V>(n: usize) -> Map<K, V> {
    HashMap::with_capacity_and_hasher(n, Keyed::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn maps_are_seeded_apart_and_hash_consistently() {
        let (a, b) = (Keyed::default(), Keyed::default());
        let key = b"things/org.eclipse:thing-1".to_vec();
        // one map hashes a key the same way every time (a lookup finds its insert)
        assert_eq!(a.hash_one(&key), a.hash_one(&key));
        assert_eq!(a.clone().hash_one(&key), a.hash_one(&key));
        // two maps (or two processes) do not share a key: an attacker cannot precompute
        // colliding keys; 8 keys all equal under two random seeds would be a broken seed
        let differ = (0..8u8)
            .filter(|i| {
                let k = [key.as_slice(), &[*i]].concat();
                a.hash_one(&k) != b.hash_one(&k)
            })
            .count();
        assert!(differ > 0, "two maps hash alike: the seed is not random");
        let mut m: Map<Vec<u8>, u32> = map_with_capacity(4);
        for i in 0..1000u32 {
            m.insert(i.to_be_bytes().to_vec(), i);
        }
        assert!((0..1000u32).all(|i| m.get(&i.to_be_bytes()[..]) == Some(&i)));
    }
}
