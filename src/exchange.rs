//! Mining a log split into parts that run at once (the tasks of a Spark job), each holding whole
//! sessions: every count the engine decides on is summed over the parts before it decides, so
//! every part takes the same decisions as one process holding the whole log would.
//!
//! The engine asks an [`Exchange`] whenever it has counted something over its sessions; alone
//! ([`Alone`]) that is the answer, in a part the answer is the sum over all parts. Counts are
//! integers, so the sum is exact whatever the order of the parts; shares are taken only after.
//! Every part must make the same calls in the same order: the engine's control flow depends only
//! on what was exchanged, never on a part's own data.

use std::hash::Hash;

use rustc_hash::FxHashMap;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A way to combine what each part of a log counted.
pub trait Exchange: Sync {
    /// How many parts the log is split into (1: the whole log is here).
    fn parts(&self) -> usize;

    /// Every part's `message`, in part order, this part's among them. Every part calls this the
    /// same number of times; a part that cannot go on ends its process (the others then fail
    /// with it, as a Spark barrier stage does).
    fn all_gather(&self, message: String) -> Vec<String>;
}

impl std::fmt::Debug for dyn Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Exchange({} parts)", self.parts())
    }
}

/// The whole log in one process: nothing to combine.
pub struct Alone;

impl Exchange for Alone {
    fn parts(&self) -> usize {
        1
    }

    fn all_gather(&self, message: String) -> Vec<String> {
        vec![message]
    }
}

/// Combines `local` with the other parts' values with `merge` (in part order). Alone, `local` is
/// returned as it is, without serialising anything.
pub fn combine<T: Serialize + DeserializeOwned>(
    ex: &dyn Exchange,
    local: T,
    merge: impl Fn(T, T) -> T,
) -> T {
    if ex.parts() == 1 {
        return local;
    }
    let message = serde_json::to_string(&local).expect("counts serialise");
    ex.all_gather(message)
        .iter()
        .map(|m| serde_json::from_str::<T>(m).expect("a part sends what this part sends"))
        .reduce(merge)
        .expect("at least one part")
}

/// Something whose counts add up over parts.
pub trait Sum: Serialize + DeserializeOwned {
    fn add(&mut self, other: Self);
}

macro_rules! sum_numbers {
    ($($t:ty),*) => {$(
        impl Sum for $t {
            fn add(&mut self, other: $t) {
                *self += other;
            }
        }
    )*};
}
sum_numbers!(usize, u64, isize, i64, i128);

impl<T: Sum> Sum for Vec<T> {
    /// Element by element; the longer vector's tail is kept.
    fn add(&mut self, other: Vec<T>) {
        let mut other = other.into_iter();
        for (a, b) in self.iter_mut().zip(other.by_ref()) {
            a.add(b);
        }
        self.extend(other);
    }
}

impl<A: Sum, B: Sum> Sum for (A, B) {
    fn add(&mut self, other: (A, B)) {
        self.0.add(other.0);
        self.1.add(other.1);
    }
}

impl<A: Sum, B: Sum, C: Sum> Sum for (A, B, C) {
    fn add(&mut self, other: (A, B, C)) {
        self.0.add(other.0);
        self.1.add(other.1);
        self.2.add(other.2);
    }
}

impl<A: Sum, B: Sum, C: Sum, D: Sum> Sum for (A, B, C, D) {
    fn add(&mut self, other: (A, B, C, D)) {
        self.0.add(other.0);
        self.1.add(other.1);
        self.2.add(other.2);
        self.3.add(other.3);
    }
}

/// A map of counts, sent as a list of pairs (JSON keys are strings only).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts<K: Hash + Eq, V>(pub FxHashMap<K, V>);

impl<K: Hash + Eq + Serialize, V: Serialize> Serialize for Counts<K, V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter())
    }
}

impl<'de, K: Hash + Eq + serde::Deserialize<'de>, V: serde::Deserialize<'de>>
    serde::Deserialize<'de> for Counts<K, V>
{
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pairs = Vec::<(K, V)>::deserialize(d)?;
        Ok(Counts(pairs.into_iter().collect()))
    }
}

impl<K, V> Sum for Counts<K, V>
where
    K: Hash + Eq + Serialize + DeserializeOwned,
    V: Sum + Default,
{
    fn add(&mut self, other: Counts<K, V>) {
        for (k, v) in other.0 {
            self.0.entry(k).or_default().add(v);
        }
    }
}

/// The sum of `local` over all parts.
pub fn sum<T: Sum>(ex: &dyn Exchange, local: T) -> T {
    combine(ex, local, |mut a, b| {
        a.add(b);
        a
    })
}

/// The sum of a map of counts over all parts.
pub fn sum_map<K, V>(ex: &dyn Exchange, local: FxHashMap<K, V>) -> FxHashMap<K, V>
where
    K: Hash + Eq + Serialize + DeserializeOwned,
    V: Sum + Default,
{
    sum(ex, Counts(local)).0
}

/// Every part's `local` values, concatenated in part order.
pub fn gather<T: Serialize + DeserializeOwned>(ex: &dyn Exchange, local: Vec<T>) -> Vec<T> {
    combine(ex, local, |mut a, b| {
        a.extend(b);
        a
    })
}

/// A 64-bit hash of a session's id that is the same in every process and on every machine
/// (FNV-1a, then a finaliser to spread it): where the engine samples sessions, it takes those
/// with the smallest keys, so that the sample does not depend on where a session was read.
pub fn session_key(id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64's finaliser: nearby ids (sess-000001, sess-000002) land far apart.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parts that gather from a fixed set of the other parts' messages, as if they had sent them.
    struct Fake(Vec<String>);

    impl Exchange for Fake {
        fn parts(&self) -> usize {
            self.0.len() + 1
        }
        fn all_gather(&self, message: String) -> Vec<String> {
            let mut all = self.0.clone();
            all.insert(0, message);
            all
        }
    }

    #[test]
    fn maps_and_vectors_add_up_over_parts() {
        let other = Counts(FxHashMap::from_iter([((1u32, 2u32), 3usize), ((4, 5), 1)]));
        let ex = Fake(vec![serde_json::to_string(&other).unwrap()]);
        let mine = FxHashMap::from_iter([((1u32, 2u32), 2usize), ((7, 7), 9)]);
        let total = sum_map(&ex, mine);
        assert_eq!(total[&(1, 2)], 5);
        assert_eq!(total[&(4, 5)], 1);
        assert_eq!(total[&(7, 7)], 9);
        let ex = Fake(vec!["[1,2,3]".into()]);
        assert_eq!(sum(&ex, vec![10usize, 20]), vec![11, 22, 3]);
        assert_eq!(gather(&Fake(vec!["[9]".into()]), vec![1u8]), vec![1, 9]);
        // Alone nothing is sent.
        assert_eq!(sum(&Alone, 4usize), 4);
    }

    #[test]
    fn session_keys_are_stable_and_spread() {
        assert_eq!(session_key("sess-000001"), session_key("sess-000001"));
        assert_ne!(session_key("sess-000001"), session_key("sess-000002"));
        // Pinned (computed apart, in Python): a key must never change between versions or
        // machines, or samples would.
        assert_eq!(session_key("sess-000001"), 0x3fd2_dad6_74d3_aa30);
        let small = (0..10_000)
            .filter(|i| session_key(&format!("s{i}")) < u64::MAX / 2)
            .count();
        assert!((4_700..5_300).contains(&small), "{small}");
    }
}
