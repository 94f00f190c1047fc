//! The interpreter-free core of `session_cache` (see the module doc in `mod.rs`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use quick_cache::sync::{Cache, EntryAction, EntryResult};
use quick_cache::{Equivalent, Lifecycle, OptionsBuilder, Weighter};

use crate::clock::{monotonic_coarse_nanos, unix_coarse_seconds};
use crate::counters::Counter;

/// Longest token accepted by `insert` (bytes of UTF-8).
pub const MAX_TOKEN_BYTES: usize = 512;
/// Tokens up to this many bytes are stored inline in the cache slot.
pub const INLINE_TOKEN: usize = 48;
/// Longest role accepted by `insert` (bytes of UTF-8).
pub const MAX_ROLE_BYTES: usize = 256;
/// Longest TTL / idle timeout accepted: ten years.
pub const MAX_SECONDS: f64 = 10.0 * 365.0 * 86_400.0;
/// Largest byte budget accepted (1 TiB): anything above is a unit mix-up.
pub const MAX_BUDGET_BYTES: u64 = 1 << 40;
/// Largest entry budget accepted.
pub const MAX_ENTRIES: u64 = 1 << 32;
/// Distinct roles interned for the life of the process; later ones are shared `Arc`s.
const MAX_INTERNED_ROLES: usize = 1024;

// ---------------------------------------------------------------- keys

/// A cache key: the token with its precomputed hash.
#[derive(Clone, Debug)]
pub enum TokenKey {
    Inline {
        hash: u64,
        len: u8,
        bytes: [u8; INLINE_TOKEN],
    },
    Heap {
        hash: u64,
        s: Box<str>,
    },
}

impl TokenKey {
    pub fn new(hash: u64, token: &str) -> TokenKey {
        if token.len() <= INLINE_TOKEN {
            let mut bytes = [0u8; INLINE_TOKEN];
            bytes[..token.len()].copy_from_slice(token.as_bytes());
            TokenKey::Inline {
                hash,
                len: token.len() as u8,
                bytes,
            }
        } else {
            TokenKey::Heap {
                hash,
                s: token.into(),
            }
        }
    }

    #[inline]
    fn hash_value(&self) -> u64 {
        match self {
            TokenKey::Inline { hash, .. } | TokenKey::Heap { hash, .. } => *hash,
        }
    }

    #[inline]
    fn as_bytes(&self) -> &[u8] {
        match self {
            TokenKey::Inline { len, bytes, .. } => &bytes[..*len as usize],
            TokenKey::Heap { s, .. } => s.as_bytes(),
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            TokenKey::Inline { .. } => 0,
            TokenKey::Heap { s, .. } => s.len(),
        }
    }
}

impl PartialEq for TokenKey {
    fn eq(&self, other: &Self) -> bool {
        self.hash_value() == other.hash_value() && self.as_bytes() == other.as_bytes()
    }
}

impl Eq for TokenKey {}

impl Hash for TokenKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash_value());
    }
}

/// A borrowed lookup key: no copy of the token on the hot path.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    pub hash: u64,
    pub token: &'a str,
}

impl Hash for Query<'_> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl Equivalent<TokenKey> for Query<'_> {
    #[inline]
    fn equivalent(&self, key: &TokenKey) -> bool {
        self.hash == key.hash_value() && self.token.as_bytes() == key.as_bytes()
    }
}

/// Hands the precomputed hash through unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct PassThrough;

#[derive(Debug, Default)]
pub struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not used by our keys; a correct (if slow) fallback keeps the trait honest.
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

impl BuildHasher for PassThrough {
    type Hasher = PassThroughHasher;
    fn build_hasher(&self) -> PassThroughHasher {
        PassThroughHasher(0)
    }
}

/// A good 64-bit hash of a token, for callers without one (Rust tests, tools).
pub fn hash_token(token: &str) -> u64 {
    static SEED: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    SEED.get_or_init(Default::default).hash_one(token)
}

// ---------------------------------------------------------------- roles

/// A role string; the common ones are interned (`&'static`) so copying a
/// record never touches a reference count.
#[derive(Clone, Debug)]
pub enum Role {
    Interned(&'static str),
    Shared(Arc<str>),
}

impl Role {
    pub fn new(role: &str) -> Role {
        static TABLE: OnceLock<Mutex<HashMap<&'static str, ()>>> = OnceLock::new();
        let table = TABLE.get_or_init(Default::default);
        let mut map = table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((k, _)) = map.get_key_value(role) {
            return Role::Interned(k);
        }
        if map.len() < MAX_INTERNED_ROLES {
            // Bounded leak by design: at most MAX_INTERNED_ROLES * MAX_ROLE_BYTES.
            let k: &'static str = Box::leak(role.into());
            map.insert(k, ());
            return Role::Interned(k);
        }
        Role::Shared(role.into())
    }

    pub fn as_str(&self) -> &str {
        match self {
            Role::Interned(s) => s,
            Role::Shared(s) => s,
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Role::Interned(_) => 0,
            Role::Shared(s) => s.len() + 16,
        }
    }
}

impl PartialEq for Role {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

// ---------------------------------------------------------------- records

/// The session record handed out on a hit.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionData {
    pub user_id: i64,
    pub role: Role,
    pub flags: u64,
    /// Absolute expiry, Unix seconds, as given at insert.
    pub expires_at: f64,
}

#[derive(Debug, Clone)]
struct Entry {
    data: SessionData,
    id: u64,
    /// Monotonic nanos (cache clock) at which the entry expires.
    deadline: u64,
    /// Monotonic nanos of the last access, refreshed lazily (see module doc).
    last_access: u64,
    bytes: u32,
}

/// Estimated footprint of one entry besides out-of-line strings: the slot, the
/// hash table's share, and the index slot.
const ENTRY_OVERHEAD: usize = std::mem::size_of::<(TokenKey, Entry)>()
    + 32 // quick_cache slot bookkeeping and hash table share
    + std::mem::size_of::<(u64, TokenKey)>()
    + 16; // index vector share

/// The largest weight any entry can have (validated token and role lengths).
pub const MAX_ENTRY_BYTES: u64 = (ENTRY_OVERHEAD + MAX_TOKEN_BYTES + MAX_ROLE_BYTES + 16) as u64;

/// Smallest byte budget: sixteen entries of the largest size. A new entry
/// waits in the cold section (1 - HOT_ALLOCATION of a shard) and quick_cache
/// drops it at once if it does not fit there, so the cold section must hold
/// at least one entry of the largest size.
pub const MIN_BUDGET_BYTES: u64 = 16 * MAX_ENTRY_BYTES;

/// Fewest entries: with the weight floor `max_bytes / max_entries`, the cold
/// section (10 % of a shard of >= 32 entries) then holds >= 3 entries.
pub const MIN_ENTRIES: u64 = 32;

/// Share of each shard for the hot (proven) entries; the rest is the cold
/// probation queue where new entries wait for a second hit. quick_cache's
/// default (0.97) gives a new session only 3 % of the cache to survive in
/// before its second request; 0.90 keeps the scan resistance (see the hit
/// ratio benchmark) with a probation window three times longer.
const HOT_ALLOCATION: f64 = 0.90;

/// Why a lookup found nothing usable, for the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dead {
    Expired,
    Idle,
}

// ---------------------------------------------------------------- user index

const INDEX_SHARDS: usize = 16;
/// A user's sessions are kept in a small vector up to this many, then in a map,
/// so a user with very many sessions (a service account) costs O(1) per removal.
const FEW: usize = 16;

/// Multiplicative hashing for entry ids (unique, sequential: no adversary).
#[derive(Debug, Clone, Copy, Default)]
struct IdHash;

#[derive(Debug, Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

impl BuildHasher for IdHash {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

/// One user's sessions: entry id -> token.
#[derive(Debug, Clone)]
enum Slots {
    Few(Vec<(u64, TokenKey)>),
    Many(HashMap<u64, TokenKey, IdHash>),
}

impl Slots {
    fn push(&mut self, id: u64, key: TokenKey) {
        match self {
            Slots::Few(v) if v.len() < FEW => v.push((id, key)),
            Slots::Few(v) => {
                let mut m: HashMap<u64, TokenKey, IdHash> = v.drain(..).collect();
                m.insert(id, key);
                *self = Slots::Many(m);
            }
            Slots::Many(m) => {
                m.insert(id, key);
            }
        }
    }

    fn remove(&mut self, id: u64) {
        match self {
            Slots::Few(v) => {
                if let Some(pos) = v.iter().position(|(i, _)| *i == id) {
                    v.swap_remove(pos);
                }
            }
            Slots::Many(m) => {
                m.remove(&id);
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Slots::Few(v) => v.len(),
            Slots::Many(m) => m.len(),
        }
    }

    fn to_vec(&self) -> Vec<(u64, TokenKey)> {
        match self {
            Slots::Few(v) => v.clone(),
            Slots::Many(m) => m.iter().map(|(i, k)| (*i, k.clone())).collect(),
        }
    }
}

type IndexShard = Mutex<HashMap<i64, Slots>>;

#[derive(Debug, Default)]
struct UserIndex {
    shards: [IndexShard; INDEX_SHARDS],
}

impl UserIndex {
    fn shard(&self, user_id: i64) -> &IndexShard {
        // Fibonacci hashing spreads sequential ids over the shards.
        let h = (user_id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60;
        &self.shards[h as usize % INDEX_SHARDS]
    }

    fn add(&self, user_id: i64, id: u64, key: TokenKey) {
        let mut map = self
            .shard(user_id)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.entry(user_id)
            .or_insert_with(|| Slots::Few(Vec::new()))
            .push(id, key);
    }

    fn remove(&self, user_id: i64, id: u64) {
        let mut map = self
            .shard(user_id)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(slots) = map.get_mut(&user_id) {
            slots.remove(id);
            if slots.len() == 0 {
                map.remove(&user_id);
            }
        }
    }

    fn snapshot(&self, user_id: i64) -> Vec<(u64, TokenKey)> {
        let map = self
            .shard(user_id)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.get(&user_id).map(Slots::to_vec).unwrap_or_default()
    }

    fn users(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    fn sessions(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .values()
                    .map(Slots::len)
                    .sum::<usize>()
            })
            .sum()
    }
}

// ---------------------------------------------------------------- shared state

/// State the eviction hook shares with the cache.
#[derive(Debug, Default)]
struct Shared {
    bytes: AtomicI64,
    index: UserIndex,
    hits: Counter,
    misses: Counter,
    inserts: Counter,
    evicted_size: Counter,
    evicted_expired: Counter,
    evicted_idle: Counter,
    revoked: Counter,
    /// Added to the clock: lets tests move time forward without sleeping.
    skew_nanos: AtomicU64,
}

impl Shared {
    #[inline]
    fn now(&self) -> u64 {
        monotonic_coarse_nanos().wrapping_add(self.skew_nanos.load(Ordering::Relaxed))
    }

    /// Bookkeeping for an entry that left the cache by any path.
    fn forget(&self, e: &Entry) {
        self.bytes.fetch_sub(i64::from(e.bytes), Ordering::Relaxed);
        self.index.remove(e.data.user_id, e.id);
    }
}

#[derive(Debug, Clone)]
struct Weigh {
    min_weight: u64,
}

impl Weighter<TokenKey, Entry> for Weigh {
    #[inline]
    fn weight(&self, _key: &TokenKey, val: &Entry) -> u64 {
        u64::from(val.bytes).max(self.min_weight)
    }
}

#[derive(Debug, Clone)]
struct Hooks(Arc<Shared>);

impl Lifecycle<TokenKey, Entry> for Hooks {
    // Evictions are recorded under the shard lock and their bookkeeping (an
    // index lock) done after it is released, keeping shard sections short.
    type RequestState = Vec<Entry>;

    fn begin_request(&self) -> Self::RequestState {
        Vec::new()
    }

    fn on_evict(&self, state: &mut Self::RequestState, _key: TokenKey, val: Entry) {
        self.0.evicted_size.inc();
        state.push(val);
    }

    fn end_request(&self, state: Self::RequestState) {
        for e in &state {
            self.0.forget(e);
        }
    }
}

// ---------------------------------------------------------------- limits, stats

/// Validated construction parameters.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_entries: u64,
    pub max_bytes: u64,
    pub ttl: f64,
    pub idle_timeout: f64,
}

impl Limits {
    pub fn new(
        max_entries: u64,
        max_bytes: u64,
        ttl: f64,
        idle_timeout: f64,
    ) -> Result<Self, String> {
        if !(MIN_ENTRIES..=MAX_ENTRIES).contains(&max_entries) {
            return Err(format!(
                "max_entries must be between {MIN_ENTRIES} and {MAX_ENTRIES}, got {max_entries}"
            ));
        }
        if !(MIN_BUDGET_BYTES..=MAX_BUDGET_BYTES).contains(&max_bytes) {
            return Err(format!(
                "max_bytes must be between {MIN_BUDGET_BYTES} (16 entries of the largest size) \
                 and {MAX_BUDGET_BYTES}, got {max_bytes}"
            ));
        }
        for (name, v) in [("ttl", ttl), ("idle_timeout", idle_timeout)] {
            if !(v.is_finite() && v > 0.0 && v <= MAX_SECONDS) {
                return Err(format!(
                    "{name} must be a finite number of seconds in (0, {MAX_SECONDS}], got {v}"
                ));
            }
        }
        Ok(Limits {
            max_entries,
            max_bytes,
            ttl,
            idle_timeout,
        })
    }
}

/// Why `insert` refused an argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadInsert(pub String);

/// A snapshot of the statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub hits: u64,
    pub misses: u64,
    pub inserts: u64,
    pub entries: u64,
    pub bytes: u64,
    pub evicted_size: u64,
    pub evicted_expired: u64,
    pub evicted_idle: u64,
    pub revoked: u64,
}

// ---------------------------------------------------------------- the cache

type Inner = Cache<TokenKey, Entry, Weigh, PassThrough, Hooks>;

/// The interpreter-free session cache.
pub struct SessionCore {
    cache: Inner,
    shared: Arc<Shared>,
    limits: Limits,
    ttl_nanos: u64,
    idle_nanos: u64,
    refresh_nanos: u64,
    next_id: AtomicU64,
    /// Bumped by every revocation (and clear), before it removes anything;
    /// see [`SessionCore::insert_fetched`].
    epoch: AtomicU64,
}

impl std::fmt::Debug for SessionCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCore")
            .field("limits", &self.limits)
            .field("len", &self.cache.len())
            .finish()
    }
}

fn secs_to_nanos(s: f64) -> u64 {
    (s * 1e9).min(u64::MAX as f64 / 4.0) as u64
}

impl SessionCore {
    pub fn new(limits: Limits) -> SessionCore {
        // Shards: a power of two, at most 16, each holding >= 32 entries and
        // >= two largest entries, so quick_cache keeps our count (it would
        // otherwise halve it itself and change the per-shard capacity).
        let mut shards: u64 = 16;
        while shards > 1
            && (limits.max_entries / shards < 32 || limits.max_bytes / shards < MIN_BUDGET_BYTES)
        {
            shards /= 2;
        }
        // Each shard gets ceil(capacity / shards): a multiple of `shards` keeps
        // the total at or below max_bytes exactly.
        let capacity = limits.max_bytes / shards * shards;
        let min_weight = limits.max_bytes.div_ceil(limits.max_entries);
        let shared = Arc::new(Shared::default());
        let options = OptionsBuilder::new()
            .estimated_items_capacity(limits.max_entries.min(1 << 24) as usize)
            .weight_capacity(capacity)
            .shards(shards as usize)
            .hot_allocation(HOT_ALLOCATION)
            .build()
            .expect("options are within quick_cache's bounds");
        let cache = Cache::with_options(
            options,
            Weigh { min_weight },
            PassThrough,
            Hooks(shared.clone()),
        );
        let idle_nanos = secs_to_nanos(limits.idle_timeout);
        SessionCore {
            cache,
            shared,
            limits,
            ttl_nanos: secs_to_nanos(limits.ttl),
            idle_nanos,
            refresh_nanos: idle_nanos / 8,
            next_id: AtomicU64::new(1),
            epoch: AtomicU64::new(0),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    #[inline]
    fn check(&self, e: &Entry, now: u64) -> Result<(), Dead> {
        if now >= e.deadline {
            return Err(Dead::Expired);
        }
        if now.saturating_sub(e.last_access) > self.idle_nanos {
            return Err(Dead::Idle);
        }
        Ok(())
    }

    fn count_dead(&self, why: Dead) {
        match why {
            Dead::Expired => self.shared.evicted_expired.inc(),
            Dead::Idle => self.shared.evicted_idle.inc(),
        }
    }

    /// The live record for `token` (whose hash is `hash`); an expired or idle
    /// entry is removed and counts as a miss.
    #[inline]
    pub fn get(&self, hash: u64, token: &str) -> Option<SessionData> {
        let q = Query { hash, token };
        let Some(e) = self.cache.get(&q) else {
            self.shared.misses.inc();
            return None;
        };
        let now = self.shared.now();
        if let Err(why) = self.check(&e, now) {
            self.shared.misses.inc();
            if let Some((_, gone)) = self.cache.remove_if(&q, |v| v.id == e.id) {
                self.count_dead(why);
                self.shared.forget(&gone);
            }
            return None;
        }
        if now - e.last_access > self.refresh_nanos {
            self.touch(&q, e.id, now);
        }
        self.shared.hits.inc();
        Some(e.data)
    }

    #[cold]
    fn touch(&self, q: &Query<'_>, id: u64, now: u64) {
        let key = TokenKey::new(q.hash, q.token);
        // A vacant result (evicted meanwhile) hands us a placeholder guard;
        // dropping it removes the placeholder again.
        let _ = self.cache.entry(&key, None, |_, v| {
            if v.id == id && v.last_access < now {
                v.last_access = now;
            }
            EntryAction::Retain(())
        });
    }

    /// Caches `data` under `token` for at most `min(ttl, expires_at - now)`.
    /// Returns `Ok(false)` when the session is already expired (and drops any
    /// cached entry for the token, which is stale by the caller's word).
    pub fn insert(&self, hash: u64, token: &str, data: SessionData) -> Result<bool, BadInsert> {
        self.insert_fetched(hash, token, data, None)
    }

    /// The revocation epoch: read it before fetching a session from the
    /// database and pass it to [`Self::insert_fetched`].
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Like [`Self::insert`], but refused (`Ok(false)`) when any revocation
    /// happened since `epoch` was read, which closes the race "fill reads
    /// the session, a revoke runs, the fill caches the revoked session".
    /// Revocations bump the epoch before removing, and this re-checks after
    /// inserting (removing its own entry if it lost), so in every order either
    /// the revoke removes the entry or the insert takes it back.
    pub fn insert_fetched(
        &self,
        hash: u64,
        token: &str,
        data: SessionData,
        epoch: Option<u64>,
    ) -> Result<bool, BadInsert> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Err(BadInsert(format!(
                "token must be 1..={MAX_TOKEN_BYTES} bytes of UTF-8, got {}",
                token.len()
            )));
        }
        if data.role.as_str().len() > MAX_ROLE_BYTES {
            return Err(BadInsert(format!(
                "role must be at most {MAX_ROLE_BYTES} bytes of UTF-8, got {}",
                data.role.as_str().len()
            )));
        }
        if !data.expires_at.is_finite() {
            return Err(BadInsert(format!(
                "expires_at must be a finite Unix time in seconds, got {}",
                data.expires_at
            )));
        }
        let left = data.expires_at - unix_coarse_seconds();
        if left <= 0.0 {
            self.remove(hash, token);
            return Ok(false);
        }
        let now = self.shared.now();
        let key = TokenKey::new(hash, token);
        let bytes = (ENTRY_OVERHEAD + 2 * key.heap_bytes() + data.role.heap_bytes()) as u32;
        let entry = Entry {
            data,
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            deadline: now.saturating_add(secs_to_nanos(left).min(self.ttl_nanos)),
            last_access: now,
            bytes,
        };
        // Bookkeeping first: if the cache evicts (or refuses) the new entry
        // during the insert, the eviction hook undoes exactly this.
        self.shared
            .index
            .add(entry.data.user_id, entry.id, key.clone());
        self.shared
            .bytes
            .fetch_add(i64::from(bytes), Ordering::Relaxed);
        if epoch.is_some_and(|e| e != self.epoch()) {
            self.shared.forget(&entry);
            return Ok(false);
        }
        self.shared.inserts.inc();
        let Some(epoch) = epoch else {
            self.put(key, entry);
            return Ok(true);
        };
        let id = entry.id;
        self.put(key.clone(), entry);
        if self.epoch() != epoch {
            if let Some((_, gone)) = self.cache.remove_if(&key, |v| v.id == id) {
                self.shared.forget(&gone);
            }
            return Ok(false);
        }
        Ok(true)
    }

    /// Inserts or replaces, accounting for the entry it replaces.
    fn put(&self, key: TokenKey, entry: Entry) {
        let weigh = Weigh { min_weight: 0 };
        let mut pending = Some(entry);
        loop {
            let result = self.cache.entry(&key, None, |k, v| {
                let new = pending.as_ref().expect("taken only on success");
                if weigh.weight(k, new) <= weigh.weight(k, v) {
                    // Same or smaller weight: replace in place, the budget holds.
                    EntryAction::Retain(Some(std::mem::replace(v, pending.take().unwrap())))
                } else {
                    // Heavier: remove and insert normally, so eviction makes room.
                    EntryAction::Remove
                }
            });
            match result {
                EntryResult::Retained(old) => {
                    if let Some(old) = old {
                        self.shared.forget(&old);
                    }
                    return;
                }
                EntryResult::Removed(_, old) => {
                    self.shared.forget(&old);
                }
                EntryResult::Vacant(guard) => {
                    let e = pending.take().expect("still pending");
                    if let Err(e) = guard.insert(e) {
                        // The placeholder was removed under us (a racing
                        // revoke): the entry never entered the cache.
                        self.shared.forget(&e);
                    }
                    return;
                }
                EntryResult::Replaced(guard, old) => {
                    // Not requested by our callback; handle it like a vacancy.
                    self.shared.forget(&old);
                    let e = pending.take().expect("still pending");
                    if let Err(e) = guard.insert(e) {
                        self.shared.forget(&e);
                    }
                    return;
                }
                EntryResult::Timeout => unreachable!("no timeout was given"),
            }
        }
    }

    fn remove(&self, hash: u64, token: &str) -> bool {
        match self.cache.remove(&Query { hash, token }) {
            Some((_, gone)) => {
                self.shared.forget(&gone);
                true
            }
            None => false,
        }
    }

    pub fn revoke(&self, hash: u64, token: &str) -> bool {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let removed = self.remove(hash, token);
        if removed {
            self.shared.revoked.inc();
        }
        removed
    }

    pub fn revoke_user(&self, user_id: i64) -> u64 {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let mut n = 0;
        for (id, key) in self.shared.index.snapshot(user_id) {
            if let Some((_, gone)) = self.cache.remove_if(&key, |e| e.id == id) {
                self.shared.forget(&gone);
                n += 1;
            }
        }
        self.shared.revoked.add(n);
        n
    }

    /// Removes every entry `keep` rejects, with the bookkeeping.
    fn sweep(&self, keep: impl Fn(&Entry) -> bool) -> Vec<Entry> {
        let gone: RefCell<Vec<Entry>> = RefCell::new(Vec::new());
        self.cache.retain(|_, e| {
            let k = keep(e);
            if !k {
                gone.borrow_mut().push(e.clone());
            }
            k
        });
        let gone = gone.into_inner();
        for e in &gone {
            self.shared.forget(e);
        }
        gone
    }

    /// Removes every expired or idle entry now; returns how many.
    pub fn purge_expired(&self) -> u64 {
        let now = self.shared.now();
        let gone = self.sweep(|e| self.check(e, now).is_ok());
        for e in &gone {
            if let Err(why) = self.check(e, now) {
                self.count_dead(why);
            }
        }
        gone.len() as u64
    }

    pub fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.sweep(|_| false);
    }

    pub fn len(&self) -> usize {
        self.cache.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }

    /// Tests: moves this cache's clock forward.
    pub fn advance_clock(&self, seconds: f64) {
        self.shared
            .skew_nanos
            .fetch_add(secs_to_nanos(seconds), Ordering::Relaxed);
    }

    /// Users with at least one indexed session.
    pub fn indexed_users(&self) -> usize {
        self.shared.index.users()
    }

    /// Index slots (should equal `len()` when the cache is quiet).
    pub fn indexed_sessions(&self) -> usize {
        self.shared.index.sessions()
    }

    /// The weight quick_cache accounts (the bound actually enforced).
    pub fn weight(&self) -> u64 {
        self.cache.weight()
    }

    pub fn stats(&self) -> Stats {
        let s = &self.shared;
        Stats {
            hits: s.hits.get(),
            misses: s.misses.get(),
            inserts: s.inserts.get(),
            entries: self.cache.len() as u64,
            bytes: s.bytes.load(Ordering::Relaxed).max(0) as u64,
            evicted_size: s.evicted_size.get(),
            evicted_expired: s.evicted_expired.get(),
            evicted_idle: s.evicted_idle.get(),
            revoked: s.revoked.get(),
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
