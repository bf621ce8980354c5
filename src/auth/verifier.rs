//! The password verifier pool: a fixed number of threads run argon2, each reusing one memory
//! block sized for the configured hashes (released when the queue runs dry), fed by a bounded
//! queue; when the queue is full an attempt is refused at once. Unknown users are verified
//! against a dummy hash with the same parameters, so every attempt costs the same.

use argon2::password_hash::phc::Output;
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Capacity reserved for argon2 memory, in 1 KiB blocks: above glibc's largest dynamic mmap
/// threshold (32 MiB on 64-bit, see mallopt(3) `M_MMAP_THRESHOLD`), so the block is always a
/// mapping of its own and freeing it returns its pages. (A 19 MiB block below it raises glibc's
/// threshold when freed; the next one then comes from the heap, gets split by other allocations
/// and stays: measured +77 MiB.) Only the `m` blocks argon2 uses are ever touched (resident).
const MAPPED_BLOCKS: usize = 33 * 1024;

/// A parsed stored hash: everything argon2 needs, without re-parsing per attempt.
#[derive(Clone)]
pub struct Stored {
    algorithm: Algorithm,
    version: Version,
    params: Params,
    salt: Vec<u8>,
    expected: Output,
}

impl Stored {
    /// Parses an argon2 PHC string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
    pub fn parse(phc: &str) -> Result<Stored, String> {
        let ph = PasswordHash::new(phc).map_err(|e| e.to_string())?;
        let algorithm = Algorithm::try_from(ph.algorithm.as_str()).map_err(|e| e.to_string())?;
        let version = Version::try_from(ph.version.unwrap_or(0x13)).map_err(|e| e.to_string())?;
        let params = Params::try_from(&ph).map_err(|e| e.to_string())?;
        let salt = ph.salt.as_ref().ok_or("no salt")?.as_ref().to_vec();
        let expected = ph.hash.ok_or("no hash output")?;
        Ok(Stored {
            algorithm,
            version,
            params,
            salt,
            expected,
        })
    }

    /// A hash with the same parameters, salt and output lengths that no password matches
    /// (random salt and output): what an unknown user is verified against.
    pub fn dummy_like(&self) -> Option<Stored> {
        let random = |n: usize| {
            let mut v = Vec::with_capacity(n + 16);
            while v.len() < n {
                v.extend_from_slice(&argon2::password_hash::generate_salt());
            }
            v.truncate(n);
            v
        };
        Some(Stored {
            salt: random(self.salt.len()),
            expected: Output::new(&random(self.expected.len())).ok()?,
            ..self.clone()
        })
    }

    /// argon2 memory blocks (1 KiB each) a verification needs.
    pub fn blocks(&self) -> usize {
        self.params.block_count()
    }

    /// True if `password` matches; uses (and grows) `memory` instead of allocating.
    pub fn verify(&self, password: &[u8], memory: &mut Vec<Block>) -> bool {
        let n = self.blocks();
        if memory.len() < n {
            let mut v = Vec::with_capacity(n.max(MAPPED_BLOCKS));
            v.resize(n, Block::new());
            *memory = v;
        }
        let a = Argon2::new(self.algorithm, self.version, self.params.clone());
        let mut out = [0u8; 64];
        let Some(out) = out.get_mut(..self.expected.len()) else {
            return false;
        };
        a.hash_password_into_with_memory(password, &self.salt, &mut *out, &mut memory[..n])
            .is_ok()
            // constant-time comparison (phc::Output's PartialEq)
            && Output::new(out).is_ok_and(|o| o == self.expected)
    }
}

/// Counters of the pool (shown in `/status/health`).
#[derive(Default)]
pub struct Stats {
    /// argon2 verifications run
    pub verifications: AtomicU64,
    /// attempts refused because the queue was full
    pub busy: AtomicU64,
    /// attempts refused by a failed-login limit
    pub locked: AtomicU64,
}

struct Job {
    hash: Arc<Stored>,
    password: Vec<u8>,
    reply: async_channel::Sender<bool>,
}

/// Why a verification did not run.
#[derive(Debug, PartialEq, Eq)]
pub enum NotRun {
    /// the queue is full
    Busy,
    /// the pool is gone (shutdown)
    Gone,
}

/// The pool.
pub struct Verifiers {
    users: HashMap<String, Arc<Stored>>,
    dummy: Option<Arc<Stored>>,
    queue: async_channel::Sender<Job>,
    /// counters
    pub stats: Arc<Stats>,
}

impl Verifiers {
    /// `threads` verifier threads (started only if there are users) and a queue of `queue`.
    pub fn new(users: &[(String, String)], threads: usize, queue: usize) -> Verifiers {
        let users_in_order = users;
        let users: HashMap<String, Arc<Stored>> = users
            .iter()
            .filter_map(|(name, phc)| match Stored::parse(phc) {
                Ok(s) => Some((name.clone(), Arc::new(s))),
                Err(e) => {
                    tracing::error!(user = %name, error = %e, "user disabled: bad password_hash");
                    None
                }
            })
            .collect();
        // The first configured user's parameters (all users normally share them).
        let dummy = users_in_order
            .iter()
            .find_map(|(name, _)| users.get(name))
            .and_then(|s| s.dummy_like())
            .map(Arc::new);
        let (tx, rx) = async_channel::bounded::<Job>(queue.max(1));
        let stats = Arc::new(Stats::default());
        if !users.is_empty() {
            for i in 0..threads.max(1) {
                let (rx, stats) = (rx.clone(), stats.clone());
                let spawned = std::thread::Builder::new()
                    .name(format!("edgetwin-verify-{i}"))
                    .spawn(move || work(rx, stats));
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "cannot start a password verifier thread");
                }
            }
        }
        Verifiers {
            users,
            dummy,
            queue: tx,
            stats,
        }
    }

    /// Verifies `password` for `user` (an unknown user against the dummy hash, so it costs the
    /// same and answers false); refuses at once when the queue is full.
    pub async fn verify(&self, user: &str, password: &str) -> Result<bool, NotRun> {
        let known = self.users.get(user);
        let Some(hash) = known.or(self.dummy.as_ref()).cloned() else {
            return Ok(false);
        };
        let (reply, answer) = async_channel::bounded(1);
        let job = Job {
            hash,
            password: password.as_bytes().to_vec(),
            reply,
        };
        match self.queue.try_send(job) {
            Ok(()) => {}
            Err(async_channel::TrySendError::Full(_)) => {
                self.stats.busy.fetch_add(1, Ordering::Relaxed);
                return Err(NotRun::Busy);
            }
            Err(async_channel::TrySendError::Closed(_)) => return Err(NotRun::Gone),
        }
        let ok = answer.recv().await.map_err(|_| NotRun::Gone)?;
        Ok(ok && known.is_some())
    }

    /// True if `name` is a configured user (with a usable hash).
    pub fn is_user(&self, name: &str) -> bool {
        self.users.contains_key(name)
    }
}

/// A verifier thread: one memory block, reused while attempts keep coming and given back to the
/// system whenever the queue runs dry (an idle gateway holds none).
fn work(rx: async_channel::Receiver<Job>, stats: Arc<Stats>) {
    let mut memory: Vec<Block> = Vec::new();
    while let Ok(job) = rx.recv_blocking() {
        // nobody waits any more (the client went away): the failure is counted already
        if !job.reply.is_closed() {
            let ok = job.hash.verify(&job.password, &mut memory);
            stats.verifications.fetch_add(1, Ordering::Relaxed);
            let _ = job.reply.try_send(ok);
        }
        if rx.is_empty() {
            memory = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_with_reused_memory_and_the_dummy_never_matches() {
        let phc = crate::auth::hash_password("pw").unwrap();
        let s = Stored::parse(&phc).unwrap();
        let mut mem = Vec::new();
        assert!(s.verify(b"pw", &mut mem));
        assert_eq!(mem.len(), s.blocks());
        assert_eq!(s.blocks(), 19 * 1024);
        let ptr = mem.as_ptr();
        assert!(!s.verify(b"nope", &mut mem));
        assert_eq!(mem.as_ptr(), ptr, "memory reused");
        let d = s.dummy_like().unwrap();
        assert_eq!(d.blocks(), s.blocks());
        assert_eq!(d.salt.len(), s.salt.len());
        assert!(!d.verify(b"pw", &mut mem));
        assert!(Stored::parse("$argon2id$v=19$m=1,t=1,p=1$").is_err());
    }

    #[test]
    fn unknown_users_take_the_same_path() {
        let phc = crate::auth::hash_password("pw").unwrap();
        let v = Verifiers::new(&[("alice".into(), phc)], 1, 4);
        smol::block_on(async {
            assert_eq!(v.verify("alice", "pw").await, Ok(true));
            assert_eq!(v.verify("alice", "x").await, Ok(false));
            assert_eq!(v.verify("mallory", "pw").await, Ok(false));
        });
        assert_eq!(v.stats.verifications.load(Ordering::Relaxed), 3);
    }
}
