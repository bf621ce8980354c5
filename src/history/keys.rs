//! Key layout of `Tree::History` (on disk: never change an existing byte):
//! `e <kind> <id> 0x00 <rev u64 BE>` an event, `s <kind> <id> 0x00 <rev u64 BE>` a snapshot
//! (the entity's whole state at that revision), `t <bucket start ms u64 BE> <kind> <id>` the
//! time index (the entity wrote an event in that bucket; retention walks it oldest first),
//! `h <kind> <id>` the persisted headers of a creation whose event is deferred (`deferred.rs`),
//! `c` the kept totals. IDs never contain control characters, so `0x00` ends them unambiguously.

/// Which entity a history belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Thing,
    Policy,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Kind::Thing => b't',
            Kind::Policy => b'p',
        }
    }

    fn from_byte(b: u8) -> Option<Kind> {
        match b {
            b't' => Some(Kind::Thing),
            b'p' => Some(Kind::Policy),
            _ => None,
        }
    }

    /// `thing` / `policy` (logs, health).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Thing => "thing",
            Kind::Policy => "policy",
        }
    }
}

const EVENT: u8 = b'e';
const SNAPSHOT: u8 = b's';
const TIME: u8 = b't';
const HEADERS: u8 = b'h';

/// `tag kind id 0x00`: every event (or snapshot) key of one entity starts with this.
fn entity_prefix(tag: u8, kind: Kind, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(id.len() + 11);
    k.push(tag);
    k.push(kind.byte());
    k.extend_from_slice(id.as_bytes());
    k.push(0);
    k
}

fn with_rev(mut prefix: Vec<u8>, rev: u64) -> Vec<u8> {
    prefix.extend_from_slice(&rev.to_be_bytes());
    prefix
}

/// Prefix of every event key of an entity (in revision order).
pub fn events_of(kind: Kind, id: &str) -> Vec<u8> {
    entity_prefix(EVENT, kind, id)
}

/// Prefix of every snapshot key of an entity.
pub fn snapshots_of(kind: Kind, id: &str) -> Vec<u8> {
    entity_prefix(SNAPSHOT, kind, id)
}

pub fn event(kind: Kind, id: &str, rev: u64) -> Vec<u8> {
    with_rev(events_of(kind, id), rev)
}

pub fn snapshot(kind: Kind, id: &str, rev: u64) -> Vec<u8> {
    with_rev(snapshots_of(kind, id), rev)
}

/// The revision at the end of an event or snapshot key.
pub fn revision(key: &[u8]) -> Option<u64> {
    let tail = key.len().checked_sub(8).map(|i| &key[i..])?;
    let mut b = [0u8; 8];
    b.copy_from_slice(tail);
    Some(u64::from_be_bytes(b))
}

/// (kind, id) of an entity's event prefix (`events_of`), `None` for any other prefix.
pub fn parse_events_of(prefix: &[u8]) -> Option<(Kind, &str)> {
    match prefix {
        [EVENT, kind, id @ .., 0] => Some((Kind::from_byte(*kind)?, std::str::from_utf8(id).ok()?)),
        _ => None,
    }
}

/// (kind, id, revision) of an event key.
pub fn parse_event(key: &[u8]) -> Option<(Kind, &str, u64)> {
    let rev = revision(key)?;
    let (kind, id) = parse_events_of(&key[..key.len() - 8])?;
    Some((kind, id, rev))
}

/// The persisted headers of a deferred creation of `kind id`.
pub fn headers(kind: Kind, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(id.len() + 2);
    k.push(HEADERS);
    k.push(kind.byte());
    k.extend_from_slice(id.as_bytes());
    k
}

/// Prefix of the whole time index.
pub const TIME_PREFIX: &[u8] = &[TIME];

/// The totals of what is kept (`History::counts_op`): 16 bytes, kept bytes and events (i64 LE).
pub const COUNTS: &[u8] = b"c";

/// The time index entry: `kind id` wrote an event in the bucket starting at `bucket_ms`.
pub fn time(bucket_ms: i64, kind: Kind, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(id.len() + 10);
    k.push(TIME);
    k.extend_from_slice(&(bucket_ms.max(0) as u64).to_be_bytes());
    k.push(kind.byte());
    k.extend_from_slice(id.as_bytes());
    k
}

/// (bucket start, kind, id) of a time index key.
pub fn parse_time(key: &[u8]) -> Option<(i64, Kind, String)> {
    if key.len() < 10 || key[0] != TIME {
        return None;
    }
    let mut b = [0u8; 8];
    b.copy_from_slice(&key[1..9]);
    let kind = Kind::from_byte(key[9])?;
    let id = std::str::from_utf8(&key[10..]).ok()?;
    Some((u64::from_be_bytes(b) as i64, kind, id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_sort_by_entity_then_revision() {
        let a1 = event(Kind::Thing, "n:a", 1);
        let a2 = event(Kind::Thing, "n:a", 2);
        let a256 = event(Kind::Thing, "n:a", 256);
        let ab1 = event(Kind::Thing, "n:ab", 1);
        assert!(a1 < a2 && a2 < a256 && a256 < ab1, "n:a sorts before n:ab");
        assert!(a256.starts_with(&events_of(Kind::Thing, "n:a")));
        assert!(!ab1.starts_with(&events_of(Kind::Thing, "n:a")));
        assert_eq!(revision(&a256), Some(256));
        assert_ne!(event(Kind::Policy, "n:a", 1), a1);
        assert_ne!(snapshot(Kind::Thing, "n:a", 1), a1);
        assert_eq!(parse_event(&a256), Some((Kind::Thing, "n:a", 256)));
        assert_eq!(
            parse_events_of(&events_of(Kind::Policy, "p:q")),
            Some((Kind::Policy, "p:q"))
        );
        assert_eq!(parse_events_of(&snapshots_of(Kind::Thing, "n:a")), None);
        assert_eq!(parse_event(&snapshot(Kind::Thing, "n:a", 1)), None);
        assert_eq!(parse_event(b"e"), None);
    }

    #[test]
    fn time_keys_sort_by_time_and_round_trip() {
        let k1 = time(1_000, Kind::Thing, "n:z");
        let k2 = time(2_000, Kind::Thing, "n:a");
        assert!(k1 < k2);
        assert!(k1.starts_with(TIME_PREFIX));
        assert_eq!(parse_time(&k2), Some((2_000, Kind::Thing, "n:a".into())));
        assert_eq!(
            parse_time(&time(5, Kind::Policy, "p:q")),
            Some((5, Kind::Policy, "p:q".into()))
        );
        assert_eq!(parse_time(b"x"), None);
    }
}
