//! The in-memory store: objects keyed by (storage key, namespace, name), one monotonic
//! resourceVersion counter, the watch history and the change notifier.
//!
//! Walled in: its fields are private, and every write goes through one path
//! ([`State::put`] and [`State::remove`]) that assigns the resourceVersion, records the
//! change in the history, updates the event index and marks the state changed; the lock
//! guard ([`Store::lock`]) wakes the watchers when it is released after a change.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use super::pointer::Pointer;
use bytes::Bytes;
use serde_json::Value;

/// How many watch events the history keeps before the oldest are compacted away.
pub const HISTORY_LIMIT: usize = 20_000;

/// The storage key whose objects are indexed ([`EVENT_INDEX`]).
pub const INDEXED_STORAGE: &str = "events";

/// The event fields indexed for field-selector LISTs: (stored field label, JSON pointer).
pub const EVENT_INDEX: [(&str, &str); 2] = [
    ("involvedObject.uid", "/involvedObject/uid"),
    ("involvedObject.name", "/involvedObject/name"),
];

/// One stored object: its value (never mutated once stored: a write stores a new one) and
/// its JSON text, serialised the first time an answer needs it and reused after (with where
/// `metadata.managedFields` lies in it).
///
/// Reads through [`Deref`](std::ops::Deref) as the [`Value`] it holds.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    value: Value,
    json: OnceLock<(Bytes, Option<std::ops::Range<usize>>)>,
}

impl Stored {
    /// Wraps `value`.
    pub fn new(value: Value) -> Self {
        Self {
            value,
            json: OnceLock::new(),
        }
    }

    /// The value.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The value's JSON text (serialised once).
    pub fn json(&self) -> Bytes {
        self.written().0.clone()
    }

    /// The JSON text of the value's `metadata.managedFields` (a slice of [`Stored::json`]'s),
    /// if it has one.
    pub fn managed_fields_json(&self) -> Option<&[u8]> {
        let (json, span) = self.written();
        json.get(span.clone()?)
    }

    fn written(&self) -> &(Bytes, Option<std::ops::Range<usize>>) {
        self.json.get_or_init(|| {
            let (json, span) = super::response::json_bytes_marking_managed_fields(&self.value);
            (Bytes::from(json), span)
        })
    }

    /// The value, taken out.
    pub fn into_value(self) -> Value {
        self.value
    }
}

impl std::ops::Deref for Stored {
    type Target = Value;

    fn deref(&self) -> &Value {
        &self.value
    }
}

/// The kind of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Deleted.
    Deleted,
}

/// One change, as watchers replay it.
#[derive(Debug, Clone)]
pub struct Change {
    /// The revision of the change.
    pub rv: u64,
    /// The storage key of the object.
    pub storage: &'static str,
    /// What happened.
    pub kind: ChangeType,
    /// The object after the change (for a delete: the last state, with the delete revision);
    /// shared with the write's answer and every watcher rather than copied.
    pub object: Arc<Stored>,
    /// The object before the change (updates and deletes).
    pub old: Option<Arc<Stored>>,
}

/// The key of one object.
pub type Key = (&'static str, String, String);

/// A [`Key`] borrowed from the store: (storage key, namespace, name).
pub type KeyRef<'a> = (&'static str, &'a str, &'a str);

/// The objects of one namespace of one storage key, by name.
type Names = BTreeMap<String, Arc<Stored>>;

/// The objects of one storage key, by namespace (`""` for cluster-scoped ones).
type Namespaces = BTreeMap<String, Names>;

/// Everything behind the lock.
#[derive(Debug, Default)]
pub struct State {
    /// The latest revision handed out.
    rv: u64,
    /// The objects, in their stored form, by storage key, namespace and name: in the order
    /// etcd orders keys (that of [`Key`]); each shared with the watch history and the
    /// answers that show it (a write replaces it, never mutates it). Nested rather than one
    /// map by [`Key`]: a lookup compares names only, not the storage key and namespace
    /// again at every step. No namespace or storage key is left without objects.
    objects: BTreeMap<&'static str, Namespaces>,
    /// Changes after `compacted`, oldest first.
    history: VecDeque<Change>,
    /// Changes at or below this revision are gone (a watch from an older revision gets 410).
    compacted: u64,
    /// Claims removed since the controllers last ran: (namespace, name, uid).
    removed_claims: Vec<(String, String, String)>,
    /// The seed uids and generated names derive from (with `uid_counter`).
    seed: u64,
    /// Whether a write happened since the watchers were last woken.
    changed: bool,
    /// The indexes every write keeps ([`Indexes`]).
    indexes: Indexes,
    uid_counter: u64,
}

/// The indexes of the store, beside the objects so a write updates them while it holds
/// the slot of its object (the key is borrowed from the map, not copied).
#[derive(Debug, Default, Clone)]
struct Indexes {
    /// Events by `involvedObject.uid` and `involvedObject.name` (the field selectors kubectl
    /// describe and the poster use): a LIST with such a term reads its candidates here
    /// instead of scanning. May hold keys of objects gone or changed since (they are checked
    /// again); never misses one.
    /// One map per field of [`EVENT_INDEX`], in its order, by the field's value; each set
    /// of keys a sorted list without duplicates ([`KeyList`]).
    event_index: [HashMap<String, KeyList>; EVENT_INDEX.len()],
    /// Objects with a `deletionTimestamp` (waiting on finalizers), of the kinds whose
    /// controllers run inside writes (claims, volumes): what [`settle`] reads instead of
    /// scanning every claim and volume after each write.
    ///
    /// [`settle`]: super::controllers::settle
    terminating: BTreeSet<Key>,
    /// PersistentVolumes by the (namespace, name) of their `spec.claimRef`: the volumes the
    /// PV controller looks at when a claim goes.
    volumes_by_claim: HashMap<(String, String), BTreeSet<Key>>,
}

/// `key` borrowed.
fn key_ref(key: &Key) -> KeyRef<'_> {
    (key.0, key.1.as_str(), key.2.as_str())
}

/// `key` copied.
fn owned(key: KeyRef<'_>) -> Key {
    (key.0, key.1.to_owned(), key.2.to_owned())
}

impl Indexes {
    fn add(&mut self, key: KeyRef<'_>, object: &Value) {
        if TRACKED_TERMINATING.contains(&key.0) {
            let deleting = object
                .get("metadata")
                .and_then(|m| m.get("deletionTimestamp"))
                .and_then(Value::as_str)
                .is_some_and(|t| !t.is_empty());
            if deleting {
                self.terminating.insert(owned(key));
            }
            if key.0 == "persistentvolumes"
                && let Some(claim) = claim_ref_of(object)
            {
                self.volumes_by_claim
                    .entry(claim)
                    .or_default()
                    .insert(owned(key));
            }
            return;
        }
        if key.0 != INDEXED_STORAGE {
            return;
        }
        // Every indexed field sits in `involvedObject`: looked up once for all of them.
        let involved = object.get("involvedObject");
        for (index, (_, pointer)) in self.event_index.iter_mut().zip(EVENT_INDEX) {
            let field = pointer.strip_prefix("/involvedObject/");
            let found = match (involved, field) {
                (Some(involved), Some(field)) => involved.get(field),
                (None, Some(_)) => None,
                (_, None) => object.ptr(pointer),
            };
            debug_assert_eq!(found, object.ptr(pointer));
            if let Some(value) = found.and_then(Value::as_str) {
                // Looked up by the borrowed value: its text is copied only for a new entry.
                match index.get_mut(value) {
                    Some(set) => set.insert(key),
                    None => {
                        index.insert(value.to_string(), KeyList(vec![owned(key)]));
                    }
                }
            }
        }
    }

    fn remove(&mut self, key: KeyRef<'_>, object: &Value) {
        if TRACKED_TERMINATING.contains(&key.0) {
            // The sets are looked up by an owned key, copied only when one may hold it.
            if !self.terminating.is_empty() {
                self.terminating.remove(&owned(key));
            }
            if key.0 == "persistentvolumes"
                && let Some(claim) = claim_ref_of(object)
                && let Some(set) = self.volumes_by_claim.get_mut(&claim)
            {
                set.remove(&owned(key));
                if set.is_empty() {
                    self.volumes_by_claim.remove(&claim);
                }
            }
            return;
        }
        if key.0 != INDEXED_STORAGE {
            return;
        }
        for (index, (_, pointer)) in self.event_index.iter_mut().zip(EVENT_INDEX) {
            if let Some(value) = object.ptr(pointer).and_then(Value::as_str)
                && let Some(set) = index.get_mut(value)
            {
                set.remove(key);
                if set.is_empty() {
                    index.remove(value);
                }
            }
        }
    }
}

/// A set of keys as a sorted list without duplicates: what a `BTreeSet` of them holds, with
/// an insert after the last key (the usual case: names generated in order) at the cost of one
/// comparison and no node to allocate.
#[derive(Debug, Default, Clone)]
struct KeyList(Vec<Key>);

impl KeyList {
    /// Adds `key` (copied) unless it is there.
    fn insert(&mut self, key: KeyRef<'_>) {
        let at = if self.0.last().is_none_or(|last| key_ref(last) < key) {
            self.0.len()
        } else {
            match self.0.binary_search_by(|k| key_ref(k).cmp(&key)) {
                Ok(_) => return,
                Err(at) => at,
            }
        };
        self.0.insert(at, owned(key));
        // Still sorted, without duplicates, around the new key.
        debug_assert!(at == 0 || self.0[at - 1] < self.0[at]);
        debug_assert!(self.0.get(at + 1).is_none_or(|next| self.0[at] < *next));
    }

    /// Takes `key` out when it is there.
    fn remove(&mut self, key: KeyRef<'_>) {
        if let Ok(at) = self.0.binary_search_by(|k| key_ref(k).cmp(&key)) {
            self.0.remove(at);
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The keys, in order.
    fn iter(&self) -> std::slice::Iter<'_, Key> {
        self.0.iter()
    }
}

/// The storage keys whose terminating objects [`State::terminating`] tracks.
const TRACKED_TERMINATING: [&str; 2] = ["persistentvolumeclaims", "persistentvolumes"];

/// The (namespace, name) of a PersistentVolume's `spec.claimRef`, when it names one.
fn claim_ref_of(volume: &Value) -> Option<(String, String)> {
    let claim_ref = volume.get("spec")?.get("claimRef")?;
    let field = |name: &str| claim_ref.get(name).and_then(Value::as_str).unwrap_or("");
    let name = field("name");
    if name.is_empty() {
        return None;
    }
    Some((field("namespace").to_owned(), name.to_owned()))
}

impl State {
    /// The object stored under `key`.
    pub fn get(&self, key: &Key) -> Option<&Arc<Stored>> {
        self.get_ref(key_ref(key))
    }

    /// The object stored under a borrowed key (no key is built for the lookup).
    pub fn get_ref(&self, (storage, namespace, name): KeyRef<'_>) -> Option<&Arc<Stored>> {
        self.objects.get(storage)?.get(namespace)?.get(name)
    }

    /// Whether an object is stored under `key`.
    pub fn contains(&self, key: &Key) -> bool {
        self.get(key).is_some()
    }

    /// Every object, in key order (read only: writes go through [`put`](Self::put) and
    /// [`remove`](Self::remove)).
    pub fn objects(&self) -> impl Iterator<Item = (KeyRef<'_>, &Arc<Stored>)> + '_ {
        self.objects.iter().flat_map(|(storage, namespaces)| {
            namespaces.iter().flat_map(move |(ns, names)| {
                names
                    .iter()
                    .map(move |(name, object)| ((*storage, ns.as_str(), name.as_str()), object))
            })
        })
    }

    /// The objects of one storage key, of one namespace (`Some`) or of all (`None`), in key
    /// order: read from their maps, not found by a scan.
    pub fn objects_of<'a>(
        &'a self,
        storage: &str,
        namespace: Option<&str>,
    ) -> impl Iterator<Item = (KeyRef<'a>, &'a Arc<Stored>)> + use<'a> {
        use std::ops::Bound;
        let bounds = match namespace {
            Some(ns) => (Bound::Included(ns), Bound::Included(ns)),
            None => (Bound::Unbounded, Bound::Unbounded),
        };
        // The range is taken now: the iterator borrows the maps only, not the arguments.
        let namespaces = self
            .objects
            .get_key_value(storage)
            .map(|(storage, by_namespace)| (*storage, by_namespace.range::<str, _>(bounds)));
        namespaces
            .into_iter()
            .flat_map(move |(storage, namespaces)| {
                namespaces.flat_map(move |(ns, names)| {
                    names
                        .iter()
                        .map(move |(name, object)| ((storage, ns.as_str(), name.as_str()), object))
                })
            })
    }

    /// Takes the object under `key` out of the maps (and any map it leaves empty).
    fn take(&mut self, key: &Key) -> Option<Arc<Stored>> {
        let namespaces = self.objects.get_mut(key.0)?;
        let names = namespaces.get_mut(key.1.as_str())?;
        let old = names.remove(key.2.as_str())?;
        if names.is_empty() {
            namespaces.remove(key.1.as_str());
            if namespaces.is_empty() {
                self.objects.remove(key.0);
            }
        }
        Some(old)
    }

    /// The latest revision handed out.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    /// Changes at or below this revision are gone from the history.
    pub fn compacted(&self) -> u64 {
        self.compacted
    }

    /// The changes after [`compacted`](Self::compacted), oldest first.
    pub fn history(&self) -> &VecDeque<Change> {
        &self.history
    }

    /// The claims removed since the last call: (namespace, name, uid), for the controllers.
    pub fn take_removed_claims(&mut self) -> Vec<(String, String, String)> {
        std::mem::take(&mut self.removed_claims)
    }

    /// Hands out the next revision.
    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// The field labels indexed for objects under `storage` (see [`EVENT_INDEX`]): a LIST
    /// with an exact term on one reads its candidates from [`indexed`](Self::indexed).
    pub fn index_labels(&self, storage: &str) -> &'static [&'static str] {
        const EVENT_LABELS: [&str; 2] = [EVENT_INDEX[0].0, EVENT_INDEX[1].0];
        if storage == INDEXED_STORAGE {
            &EVENT_LABELS
        } else {
            &[]
        }
    }

    /// The keys of the objects under `storage` (claims or volumes) that have a
    /// `deletionTimestamp`, in key order; empty for other storage keys.
    pub fn terminating(&self, storage: &'static str) -> Vec<Key> {
        self.indexes
            .terminating
            .range((storage, String::new(), String::new())..)
            .take_while(|k| k.0 == storage)
            .cloned()
            .collect()
    }

    /// The keys of the PersistentVolumes whose `spec.claimRef` names `namespace`/`name`.
    pub fn volumes_claiming(&self, namespace: &str, name: &str) -> Vec<Key> {
        self.indexes
            .volumes_by_claim
            .get(&(namespace.to_owned(), name.to_owned()))
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The keys of events whose indexed `label` (see [`EVENT_INDEX`]) is `value`; `None`
    /// when `label` is not indexed.
    pub fn indexed(&self, label: &str, value: &str) -> Option<Vec<Key>> {
        let index = EVENT_INDEX.iter().position(|(l, _)| *l == label)?;
        Some(
            self.indexes.event_index[index]
                .get(value)
                .map(|set| set.iter().cloned().collect())
                .unwrap_or_default(),
        )
    }

    /// Stores `object` under `key` at a new revision and records the change.
    ///
    /// The object's `metadata.resourceVersion` is set to the new revision. The answer is the
    /// stored object as the watch history keeps it (shared, not copied).
    pub fn put(&mut self, key: Key, object: Value, kind: ChangeType) -> Arc<Stored> {
        match self.write(key, object, kind, true) {
            Ok(stored) => stored,
            // A write that may replace never finds its key taken.
            Err(object) => Arc::new(Stored::new(object)),
        }
    }

    /// Stores `object` under `key` like [`put`](Self::put), unless `key` is taken: then
    /// nothing changes and the object comes back (one lookup for the check and the insert).
    pub fn put_new(&mut self, key: Key, object: Value) -> Result<Arc<Stored>, Value> {
        self.write(key, object, ChangeType::Added, false)
    }

    /// The one write path of [`put`](Self::put) and [`put_new`](Self::put_new).
    fn write(
        &mut self,
        key: Key,
        mut object: Value,
        kind: ChangeType,
        replace: bool,
    ) -> Result<Arc<Stored>, Value> {
        use std::collections::btree_map::Entry;
        let (storage, ns, name) = key;
        let namespaces = self.objects.entry(storage).or_default();
        // The namespace's name is copied only for the first object in it.
        if !namespaces.contains_key(ns.as_str()) {
            namespaces.insert(ns.clone(), Names::new());
        }
        let Some(names) = namespaces.get_mut(ns.as_str()) else {
            // Inserted just above.
            return Err(object);
        };
        // One search of the names for the check and the write; the name moves into its slot.
        let entry = names.entry(name);
        if !replace && matches!(entry, Entry::Occupied(_)) {
            return Err(object);
        }
        self.rv += 1;
        let rv = self.rv;
        set_rv(&mut object, rv);
        let object = Arc::new(Stored::new(object));
        // The indexes read the key in its slot (no copy of it for the lookup).
        let old = match entry {
            Entry::Occupied(mut slot) => {
                let old = slot.insert(Arc::clone(&object));
                let key = (storage, ns.as_str(), slot.key().as_str());
                self.indexes.remove(key, &old);
                self.indexes.add(key, &object);
                Some(old)
            }
            Entry::Vacant(slot) => {
                self.indexes
                    .add((storage, ns.as_str(), slot.key().as_str()), &object);
                slot.insert(Arc::clone(&object));
                None
            }
        };
        self.record(Change {
            rv,
            storage,
            kind,
            object: Arc::clone(&object),
            old,
        });
        Ok(object)
    }

    /// Removes the object under `key` at a new revision; returns its last state.
    pub fn remove(&mut self, key: &Key) -> Option<Value> {
        let old = self.take(key)?;
        self.removed(key, old)
    }

    /// Removes the object under `key` at a new revision, recording `last` as its final state
    /// (a write that removed the last finalizer of an object being deleted); returns it with
    /// the delete revision. `None` when nothing is stored under `key`.
    pub fn remove_as(&mut self, key: &Key, last: Value) -> Option<Value> {
        let previous = self.take(key)?;
        self.indexes.remove(key_ref(key), &previous);
        self.removed(key, Arc::new(Stored::new(last)))
    }

    fn removed(&mut self, key: &Key, old: Arc<Stored>) -> Option<Value> {
        self.indexes.remove(key_ref(key), &old);
        if key.0 == "persistentvolumeclaims" {
            let uid = old
                .ptr("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            self.removed_claims
                .push((key.1.clone(), key.2.clone(), uid));
        }
        let rv = self.next_rv();
        let mut last = Value::clone(&old);
        set_rv(&mut last, rv);
        self.record(Change {
            rv,
            storage: key.0,
            kind: ChangeType::Deleted,
            object: Arc::new(Stored::new(last.clone())),
            old: Some(old),
        });
        Some(last)
    }

    fn record(&mut self, change: Change) {
        self.changed = true;
        self.history.push_back(change);
        while self.history.len() > HISTORY_LIMIT {
            if let Some(c) = self.history.pop_front() {
                self.compacted = c.rv;
            }
        }
    }

    /// Drops all history: a watch from any revision before now gets 410 Gone.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.rv;
    }

    /// A new random-looking UUID (version 4 layout), a function of the seed and how many
    /// ids came before: the same seed and the same requests give the same uids.
    pub fn new_uid(&mut self) -> String {
        self.uid_counter += 1;
        let a = random_u64(self.seed, self.uid_counter);
        let b = random_u64(self.seed ^ 0x5555_5555_5555_5555, self.uid_counter);
        // `{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}` of these fields, written digit by digit.
        let fields = [
            ((a >> 32) & 0xffff_ffff, 8, ""),
            ((a >> 16) & 0xffff, 4, "-"),
            (a & 0x0fff, 3, "-4"),
            (((b >> 48) & 0x3fff) | 0x8000, 4, "-"),
            (b & 0xffff_ffff_ffff, 12, "-"),
        ];
        let mut out = String::with_capacity(36);
        for (value, digits, before) in fields {
            out.push_str(before);
            for i in (0..digits).rev() {
                let nibble = ((value >> (4 * i)) & 0xf) as u32;
                out.push(char::from_digit(nibble, 16).unwrap_or('0'));
            }
        }
        out
    }

    /// Takes the id a `generateName` suffix derives from ([`name_suffix`](Self::name_suffix)),
    /// whether or not the suffix is then written: the ids after it are the same either way.
    pub fn suffix_id(&mut self) -> u64 {
        self.uid_counter += 1;
        self.uid_counter
    }

    /// The 5-character suffix for `generateName` (apiserver's `utilrand.String(5)` alphabet)
    /// of the id [`suffix_id`](Self::suffix_id) took.
    pub fn name_suffix(&self, id: u64) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut n = random_u64(self.seed, id);
        let mut out = String::new();
        for _ in 0..5 {
            out.push(ALPHABET[(n % ALPHABET.len() as u64) as usize] as char);
            n /= ALPHABET.len() as u64;
        }
        out
    }
}

/// The locked state ([`Store::lock`]); reads and writes it as a [`State`]. Released, it
/// wakes the watchers if a write happened (they take the lock once this guard lets go).
#[derive(Debug)]
pub struct Guard<'a> {
    state: MutexGuard<'a, State>,
    notify: &'a tokio::sync::watch::Sender<u64>,
}

impl std::ops::Deref for Guard<'_> {
    type Target = State;

    fn deref(&self) -> &State {
        &self.state
    }
}

impl std::ops::DerefMut for Guard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if std::mem::take(&mut self.state.changed) {
            self.notify.send_replace(self.state.rv);
        }
    }
}

/// SplitMix64 of (seed, n): well mixed, and the same on every run and platform.
fn random_u64(seed: u64, n: u64) -> u64 {
    let mut z = seed
        .wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Sets `metadata.resourceVersion`.
pub fn set_rv(object: &mut Value, rv: u64) {
    if let Some(map) = object.as_object_mut() {
        // One lookup (`entry` would copy the key even when it is there).
        match map.get_mut("metadata") {
            Some(Value::Object(meta)) => match meta.get_mut("resourceVersion") {
                // The old text's buffer reused, the key left in place.
                Some(Value::String(text)) => {
                    text.clear();
                    push_decimal(text, rv);
                }
                Some(old) => *old = Value::String(rv.to_string()),
                None => {
                    meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
                }
            },
            Some(_) => {}
            None => {
                let mut meta = serde_json::Map::new();
                meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
                map.insert("metadata".into(), Value::Object(meta));
            }
        }
    }
}

/// Appends `n` in decimal (what `n.to_string()` writes, without the formatting machinery).
fn push_decimal(out: &mut String, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        // A digit: `rest % 10` is below 10.
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for &digit in &digits[at..] {
        out.push(char::from(digit));
    }
    debug_assert!(out.ends_with(&n.to_string()));
}

/// The store: state behind a lock, plus a notifier carrying the latest revision.
#[derive(Debug)]
pub struct Store {
    state: Mutex<State>,
    notify: tokio::sync::watch::Sender<u64>,
}

impl Store {
    /// An empty store whose uids and generated names derive from `seed`.
    pub fn seeded(seed: u64) -> Self {
        Self {
            state: Mutex::new(State {
                seed,
                ..State::default()
            }),
            notify: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl Default for Store {
    fn default() -> Self {
        Self {
            state: Mutex::new(State::default()),
            notify: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl Store {
    /// A detached copy of the objects and revision (no history, no watchers): where dry-run
    /// requests write.
    pub fn scratch(&self) -> Store {
        let state = self.lock();
        let copy = State {
            rv: state.rv,
            objects: state.objects.clone(),
            compacted: state.rv,
            seed: state.seed ^ state.uid_counter,
            indexes: state.indexes.clone(),
            ..State::default()
        };
        Store {
            state: Mutex::new(copy),
            notify: tokio::sync::watch::Sender::new(state.rv),
        }
    }

    /// Locks the state. Callers never hold it across an await. When the guard is released
    /// after a write, the watchers are woken.
    pub fn lock(&self) -> Guard<'_> {
        // A poisoned lock means a thread panicked while holding it; every write leaves the
        // state consistent before anything that could panic, so carry on.
        Guard {
            state: self.state.lock().unwrap_or_else(|p| p.into_inner()),
            notify: &self.notify,
        }
    }

    /// How many receivers (open watches, mostly) are subscribed.
    pub fn subscribers(&self) -> usize {
        self.notify.receiver_count()
    }

    /// A receiver that changes whenever a write happens.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.notify.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_written_as_the_formatted_fields() {
        let mut state = State {
            seed: 42,
            ..State::default()
        };
        for _ in 0..200 {
            let uid = state.new_uid();
            let n = state.uid_counter;
            let a = random_u64(42, n);
            let b = random_u64(42 ^ 0x5555_5555_5555_5555, n);
            let formatted = format!(
                "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
                (a >> 32) as u32,
                (a >> 16) as u16,
                (a & 0x0fff) as u16,
                ((b >> 48) as u16 & 0x3fff) | 0x8000,
                b & 0xffff_ffff_ffff
            );
            assert_eq!(uid, formatted);
        }
    }

    #[test]
    fn the_nested_maps_read_as_one_map_by_key() {
        let mut state = State::default();
        let mut keys = std::collections::BTreeSet::new();
        let object = |name: &str| serde_json::json!({"metadata": {"name": name}});
        for (storage, ns, name) in [
            ("pods", "b", "x"),
            ("events", "a", "z"),
            ("pods", "", "y"),
            ("events", "a", "y"),
            ("pods", "b", "a"),
            ("events", "c", "y"),
        ] {
            let key: Key = (storage, ns.into(), name.into());
            assert!(state.put_new(key.clone(), object(name)).is_ok());
            assert!(state.put_new(key.clone(), object(name)).is_err());
            keys.insert(key);
        }
        let listed: Vec<Key> = state.objects().map(|(k, _)| owned(k)).collect();
        assert_eq!(listed, keys.iter().cloned().collect::<Vec<_>>());
        let of = |state: &State, storage: &str, ns: Option<&str>| -> Vec<Key> {
            state
                .objects_of(storage, ns)
                .map(|(k, _)| owned(k))
                .collect()
        };
        for (storage, ns) in [("pods", None), ("pods", Some("b")), ("events", Some("a"))] {
            let expected: Vec<Key> = keys
                .iter()
                .filter(|k| k.0 == storage && ns.is_none_or(|ns| k.1 == ns))
                .cloned()
                .collect();
            assert_eq!(of(&state, storage, ns), expected);
        }
        assert!(of(&state, "nodes", None).is_empty());
        for key in &keys {
            assert!(state.contains(key));
            assert!(state.remove(key).is_some());
            assert!(!state.contains(key));
        }
        // No map is left without objects.
        assert!(state.objects.is_empty());
    }
}
