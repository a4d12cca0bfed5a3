//! The viewer's chunk cache: chunks are read and decoded on background threads into a
//! bounded, least-recently-used cache. The UI thread only looks chunks up and hands over
//! the list it wants (most important first); a new list replaces the old one, so requests
//! for what is no longer visible are dropped before they are read. Chunks of computed
//! layers (live predictions) have their own queue and thread: a forward pass of seconds
//! never holds up the reading of the other layers. While the view keeps moving, reader
//! threads of lower priority read instead of those at the app's priority, so that
//! drawing the motion comes first.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::layer::{ChunkValues, LayerData, LayerKind};

/// Identifies one chunk of one layer's scale level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChunkKey {
    /// The layer's id in the viewer.
    pub layer: u64,
    /// The scale level (0 = finest).
    pub level: usize,
    /// The chunk's grid index along z, y, x.
    pub index: [u64; 3],
    /// Decoded as label ids (segmentation) rather than floats.
    pub labels: bool,
    /// Only the voxel-thick slab at (axis, position inside the chunk), or the whole chunk.
    pub slab: Option<(u8, u32)>,
}

/// A cached chunk: its voxels, or why it could not be read.
#[derive(Debug, Clone, PartialEq)]
pub enum Chunk {
    /// Decoded voxels.
    Ready(ChunkValues),
    /// Reading or decoding failed; the message names the array and chunk.
    Failed(String),
}

/// A chunk wanted by the view, with what is needed to read it.
#[derive(Clone)]
pub struct Request {
    /// The chunk.
    pub key: ChunkKey,
    /// Its layer.
    pub layer: Arc<LayerData>,
    /// How the layer is drawn (labels or floats).
    pub kind: LayerKind,
    /// For a slab: also read and keep every slab from this offset (inside the chunk, along
    /// the slab's axis) to the key's, in the same read (reading ahead of a plane moving
    /// along its normal).
    pub read_from: Option<u32>,
}

/// Requests for one chunk (and, for slabs, one axis) read together, in one read: a slab
/// and the slabs read ahead of it (a compressed chunk is decoded once for all of them).
type Group = Vec<Request>;

/// What requests of one [`Group`] share: the chunk, and the slab axis (`None`: the whole
/// chunk).
fn group_of(key: &ChunkKey) -> (u64, usize, [u64; 3], bool, Option<u8>) {
    (
        key.layer,
        key.level,
        key.index,
        key.labels,
        key.slab.map(|(axis, _)| axis),
    )
}

/// The slabs (offsets along the slab's axis) a group's read covers: from its lowest to its
/// highest offset, read-ahead ranges included; `None` for whole chunks.
fn slab_span(group: &[Request]) -> Option<(u8, u32, u32)> {
    let mut span: Option<(u8, u32, u32)> = None;
    for r in group {
        let (axis, offset) = r.key.slab?;
        let from = r.read_from.unwrap_or(offset);
        let (lo, hi) = (offset.min(from), offset.max(from));
        span = Some(match span {
            None => (axis, lo, hi),
            Some((a, l, h)) => (a, l.min(lo), h.max(hi)),
        });
    }
    span
}

struct Entry {
    chunk: Arc<Chunk>,
    bytes: usize,
    last_used: u64,
}

/// Work for the compute thread besides chunks (opening a network there).
type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct State {
    queue: VecDeque<Group>,
    compute_queue: VecDeque<Group>,
    jobs: VecDeque<Job>,
    in_flight: HashSet<ChunkKey>,
    ready: HashMap<ChunkKey, Entry>,
    bytes: usize,
    budget_bytes: usize,
    tick: u64,
    completed: u64,
    reads: u64,
    shutdown: bool,
    /// Until when the view counts as moving (see [`ChunkCache::view_moved`]).
    moving_until: Option<Instant>,
}

impl State {
    /// How long the view still counts as moving (zero when it rests).
    fn moving_for(&self, now: Instant) -> Duration {
        self.moving_until
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(now))
    }
}

/// What a worker thread does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// Reads chunks while the view rests, at the app's priority.
    Resting,
    /// Reads chunks while the view moves, at [`MOVING_READER_NICENESS`].
    Moving,
    /// Computes chunks of computed layers, at [`COMPUTE_NICENESS`].
    Compute,
}

type Waker = Arc<dyn Fn() + Send + Sync>;

struct Shared {
    state: Mutex<State>,
    wake_workers: Condvar,
    waker: Mutex<Option<Waker>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A worker that panicked while holding the lock leaves valid data behind (every
        // update is a single insert or removal); keep going rather than poison the viewer.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Counts of what the cache holds and does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Chunks held.
    pub chunks: usize,
    /// Bytes held.
    pub bytes: usize,
    /// The byte budget.
    pub budget_bytes: usize,
    /// Chunks waiting to be read.
    pub queued: usize,
    /// Chunks being read now.
    pub in_flight: usize,
    /// Chunks (or slabs) read since the cache was made.
    pub completed: u64,
    /// Reads of the stores since the cache was made (one read can bring several slabs of
    /// one chunk).
    pub reads: u64,
    /// Whether the view is moving, so that chunks are read at a lower priority than
    /// drawing (see [`ChunkCache::view_moved`]).
    pub view_moving: bool,
}

/// One layer's chunks in the cache, by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct LayerChunkCounts {
    /// Waiting to be read (or computed).
    pub queued: usize,
    /// Being read (or computed) now.
    pub loading: usize,
    /// Decoded and held.
    pub in_memory: usize,
    /// Bytes of those.
    pub in_memory_bytes: usize,
    /// Held as failed reads.
    pub failed: usize,
}

/// The chunk cache with its reader threads.
pub struct ChunkCache {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

/// The default CPU cache budget (2 GB).
pub const DEFAULT_CPU_CACHE_BYTES: usize = 2 << 30;

impl ChunkCache {
    /// A cache holding at most `budget_bytes` of decoded chunks, read by `threads` threads,
    /// with one thread computing the chunks of computed layers.
    pub fn new(budget_bytes: usize, threads: usize) -> Self {
        Self::with_compute_lanes(budget_bytes, threads, 1)
    }

    /// Like [`ChunkCache::new`], with `lanes` threads computing chunks of computed layers
    /// side by side.
    pub fn with_compute_lanes(budget_bytes: usize, threads: usize, lanes: usize) -> Self {
        // The shared thread pool is started here, at the caller's priority, before the
        // lower-priority chunk threads could start it with theirs (threads inherit it).
        let _ = rayon::current_num_threads();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                budget_bytes,
                ..State::default()
            }),
            wake_workers: Condvar::new(),
            waker: Mutex::new(None),
        });
        let lanes = (0..threads.max(1))
            .map(|i| (format!("segno-chunks-{i}"), Lane::Resting))
            .chain((0..threads.max(1)).map(|i| (format!("segno-chunks-moving-{i}"), Lane::Moving)))
            .chain((0..lanes.max(1)).map(|i| {
                let name = if i == 0 {
                    "segno-compute".to_string()
                } else {
                    format!("segno-compute-{i}")
                };
                (name, Lane::Compute)
            }));
        let workers = lanes
            .map(|(name, lane)| {
                let s = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(name)
                    .spawn(move || worker(&s, lane))
            })
            .filter_map(Result::ok)
            .collect();
        Self { shared, workers }
    }

    /// Calls `waker` (from a reader thread) whenever a chunk has been read, e.g. to ask the
    /// UI for a repaint.
    pub fn set_waker(&self, waker: impl Fn() + Send + Sync + 'static) {
        *self.shared.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(waker));
    }

    /// The function [`ChunkCache::set_waker`] installed, for other background work whose
    /// results the interface should show.
    pub fn waker(&self) -> Option<Arc<dyn Fn() + Send + Sync>> {
        self.shared
            .waker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Changes the byte budget; chunks beyond it are evicted least recently used first.
    pub fn set_budget(&self, budget_bytes: usize) {
        let mut st = self.shared.lock();
        st.budget_bytes = budget_bytes;
        evict(&mut st);
    }

    /// Says that the view keeps moving (panning, scrolling through slices): for
    /// [`VIEW_MOVING_HOLD`] from now chunks are read by reader threads of lower priority
    /// ([`MOVING_READER_NICENESS`], and on Linux the idle scheduling class), so the frames
    /// of the motion come first and the finest data follows as it can (coarser levels
    /// stand in). Once the view rests, the
    /// readers at the app's own priority take over, so a busy machine (a training run)
    /// slows loading down but never stops it for a view at rest.
    pub fn view_moved(&self) {
        let now = Instant::now();
        let mut st = self.shared.lock();
        let was_moving = !st.moving_for(now).is_zero();
        st.moving_until = Some(now + VIEW_MOVING_HOLD);
        drop(st);
        if !was_moving {
            self.shared.wake_workers.notify_all();
        }
    }

    /// Whether the view counts as moving now (see [`ChunkCache::view_moved`]).
    pub fn view_moving(&self) -> bool {
        self.stats().view_moving
    }

    /// Starts a new frame: chunks looked up from now on count as in use and are not evicted
    /// while the frame lasts.
    pub fn begin_frame(&self) {
        self.shared.lock().tick += 1;
    }

    /// The chunk if it is cached (marking it as used).
    pub fn get(&self, key: &ChunkKey) -> Option<Arc<Chunk>> {
        let mut st = self.shared.lock();
        let tick = st.tick;
        st.ready.get_mut(key).map(|e| {
            e.last_used = tick;
            Arc::clone(&e.chunk)
        })
    }

    /// Runs `job` on the compute thread, before the chunks queued there. Opening a network
    /// there (with its first, warm-up pass) sets up that thread's allocator and thread
    /// team for it, so its first blocks cost no more than the later ones.
    pub fn run_on_compute_thread(&self, job: Box<dyn FnOnce() + Send>) {
        self.shared.lock().jobs.push_back(job);
        self.shared.wake_workers.notify_all();
    }

    /// Those of `keys` that are in the cache (read or failed).
    pub fn ready_among(&self, keys: &[ChunkKey]) -> Vec<ChunkKey> {
        let st = self.shared.lock();
        keys.iter()
            .filter(|k| st.ready.contains_key(k))
            .copied()
            .collect()
    }

    /// Replaces the wanted chunks by `requests`, most important first. Chunks already
    /// cached or being read are skipped; earlier requests not in the list are dropped.
    /// Slabs read ahead (`read_from`) are read with the first request for their chunk and
    /// axis, when it is due. Returns how many are queued.
    pub fn request(&self, requests: Vec<Request>) -> usize {
        let mut st = self.shared.lock();
        let mut seen = HashSet::new();
        // Only read-ahead requests look their chunk's group up: without them (a view at
        // rest, a pan in the plane) no group is indexed.
        let ahead = requests.iter().any(|r| r.read_from.is_some());
        let mut groups: HashMap<_, usize> = HashMap::new();
        let (mut read, mut compute): (VecDeque<Group>, VecDeque<Group>) = Default::default();
        let mut n = 0;
        for r in requests {
            if st.ready.contains_key(&r.key) || st.in_flight.contains(&r.key) || !seen.insert(r.key)
            {
                continue;
            }
            n += 1;
            // A layer is computed or not: a group's requests share one queue.
            let queue = if r.layer.computed {
                &mut compute
            } else {
                &mut read
            };
            // Reading ahead joins the chunk's first request (one decode for both); other
            // slabs are read on their own, so that a visible slab never waits for the
            // next slices of its chunk.
            if ahead {
                let group = group_of(&r.key);
                if r.read_from.is_some() {
                    if let Some(&i) = groups.get(&group) {
                        queue[i].push(r);
                        continue;
                    }
                }
                groups.entry(group).or_insert(queue.len());
            }
            queue.push_back(vec![r]);
        }
        st.queue = read;
        st.compute_queue = compute;
        drop(st);
        self.shared.wake_workers.notify_all();
        n
    }

    /// Forgets every chunk of `layer` (e.g. to retry failed reads after the data changed).
    pub fn forget_layer(&self, layer: u64) {
        let mut st = self.shared.lock();
        let keys: Vec<ChunkKey> = st
            .ready
            .keys()
            .filter(|k| k.layer == layer)
            .copied()
            .collect();
        for k in keys {
            if let Some(e) = st.ready.remove(&k) {
                st.bytes -= e.bytes;
            }
        }
        st.queue
            .retain(|g| g.first().is_some_and(|r| r.key.layer != layer));
        st.compute_queue
            .retain(|g| g.first().is_some_and(|r| r.key.layer != layer));
    }

    /// What the cache holds and does now.
    pub fn stats(&self) -> CacheStats {
        let st = self.shared.lock();
        CacheStats {
            chunks: st.ready.len(),
            bytes: st.bytes,
            budget_bytes: st.budget_bytes,
            queued: st.queue.iter().chain(&st.compute_queue).map(Vec::len).sum(),
            in_flight: st.in_flight.len(),
            completed: st.completed,
            reads: st.reads,
            view_moving: !st.moving_for(Instant::now()).is_zero(),
        }
    }

    /// What the cache holds and does per layer id.
    pub fn counts_by_layer(&self) -> HashMap<u64, LayerChunkCounts> {
        let st = self.shared.lock();
        let mut out: HashMap<u64, LayerChunkCounts> = HashMap::new();
        for r in st.queue.iter().chain(&st.compute_queue).flatten() {
            out.entry(r.key.layer).or_default().queued += 1;
        }
        for k in &st.in_flight {
            out.entry(k.layer).or_default().loading += 1;
        }
        for (k, e) in &st.ready {
            let c = out.entry(k.layer).or_default();
            match e.chunk.as_ref() {
                Chunk::Ready(_) => {
                    c.in_memory += 1;
                    c.in_memory_bytes += e.bytes;
                }
                Chunk::Failed(_) => c.failed += 1,
            }
        }
        out
    }

    /// Blocks until nothing is queued or being read, or `timeout` passes; true when idle.
    /// For tests, benchmarks and headless screenshots, never the UI thread.
    pub fn wait_idle(&self, timeout: std::time::Duration) -> bool {
        let start = std::time::Instant::now();
        loop {
            {
                let st = self.shared.lock();
                if st.queue.is_empty()
                    && st.compute_queue.is_empty()
                    && st.jobs.is_empty()
                    && st.in_flight.is_empty()
                {
                    return true;
                }
            }
            if start.elapsed() > timeout {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
}

impl Drop for ChunkCache {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.wake_workers.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// How long the view counts as moving after [`ChunkCache::view_moved`]: longer than the
/// gap between two frames of a continuous pan (also at a few frames per second).
pub const VIEW_MOVING_HOLD: Duration = Duration::from_millis(250);

/// Niceness of the reader threads that read while the view moves: drawing the motion's
/// frames comes first. On Linux they are in the idle scheduling class as well, so they
/// only use processor time that drawing leaves.
pub const MOVING_READER_NICENESS: i32 = 10;

/// Niceness of the compute thread (and the threads its network starts): computing blocks
/// yields the processor to drawing and reading whenever both want it, so panning stays as
/// smooth as without a model layer; alone, it runs at full speed.
pub const COMPUTE_NICENESS: i32 = 10;

/// Lowers the calling thread's scheduling priority to `niceness` unless it is lower
/// already (Linux; elsewhere nothing happens). Threads it starts afterwards inherit it.
fn lower_priority(niceness: i32) {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on this thread's own id only changes its scheduling weight.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        // Already nicer (a process started with `nice`): keep that.
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        if now < niceness && libc::setpriority(libc::PRIO_PROCESS, tid, niceness) != 0 {
            tracing::debug!("could not lower a chunk thread's priority to {niceness}");
        }
    }
}

/// Puts the calling thread in the scheduler's idle class (Linux's `SCHED_IDLE`; elsewhere
/// nothing happens): it runs only on a processor that nothing else wants, and a thread
/// that wakes up to draw takes the processor from it at once. At niceness 10 alone, a
/// reader could keep a processor for the rest of its time slice while the renderer's
/// threads waited, and panning 4 panels took 1.2–1.4× as long per frame.
fn idle_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: sched_setscheduler on this thread's own id only changes how it is scheduled;
    // the parameter is a valid sched_param (priority 0, as SCHED_IDLE requires).
    unsafe {
        let tid = libc::gettid();
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(tid, libc::SCHED_IDLE, &param) != 0 {
            tracing::debug!("could not put a chunk reader in the idle scheduling class");
        }
    }
}

/// A reader thread (of the view at rest or of the moving view) or a compute thread: takes
/// requests from its queue until the cache is dropped.
fn worker(shared: &Shared, lane: Lane) {
    // The readers of a view at rest keep the caller's priority: a lower one would yield
    // to drawing, but also to every other busy process on the machine (training, a test
    // suite), and the view would stop loading while they run.
    match lane {
        Lane::Resting => {}
        Lane::Moving => {
            lower_priority(MOVING_READER_NICENESS);
            idle_priority();
        }
        Lane::Compute => lower_priority(COMPUTE_NICENESS),
    }
    let computed = lane == Lane::Compute;
    loop {
        let work = {
            let mut st = shared.lock();
            loop {
                if st.shutdown {
                    return;
                }
                if computed {
                    if let Some(job) = st.jobs.pop_front() {
                        drop(st);
                        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                            tracing::error!("a job on the compute thread panicked");
                        }
                        st = shared.lock();
                        continue;
                    }
                }
                let moving_for = st.moving_for(Instant::now());
                if lane == Lane::Resting && !moving_for.is_zero() && !st.queue.is_empty() {
                    // Until the view rests.
                    st = shared
                        .wake_workers
                        .wait_timeout(st, moving_for)
                        .map_or_else(|p| p.into_inner().0, |(g, _)| g);
                    continue;
                }
                if lane == Lane::Moving && moving_for.is_zero() {
                    // Until the view moves again.
                    st = shared
                        .wake_workers
                        .wait(st)
                        .unwrap_or_else(|p| p.into_inner());
                    continue;
                }
                let next = if computed {
                    st.compute_queue.pop_front()
                } else {
                    st.queue.pop_front()
                };
                if let Some(mut group) = next {
                    // What an earlier read (reading ahead) brought or brings is not read
                    // again.
                    group.retain(|r| {
                        !st.ready.contains_key(&r.key) && !st.in_flight.contains(&r.key)
                    });
                    let span = slab_span(&group);
                    let keys = keys_read(&group, span);
                    if keys.is_empty() {
                        continue;
                    }
                    st.in_flight.extend(keys.iter().copied());
                    break (group, span, keys);
                }
                st = shared
                    .wake_workers
                    .wait(st)
                    .unwrap_or_else(|p| p.into_inner());
            }
        };
        let (group, span, keys) = work;
        let results = read_group(&group, span, &keys);
        {
            let mut st = shared.lock();
            let tick = st.tick;
            for key in &keys {
                st.in_flight.remove(key);
            }
            st.reads += 1;
            for (key, chunk) in results {
                let bytes = match &chunk {
                    Chunk::Ready(v) => v.bytes(),
                    Chunk::Failed(m) => m.len(),
                };
                st.bytes += bytes;
                if let Some(old) = st.ready.insert(
                    key,
                    Entry {
                        chunk: Arc::new(chunk),
                        bytes,
                        last_used: tick,
                    },
                ) {
                    st.bytes -= old.bytes;
                }
                st.completed += 1;
            }
            evict(&mut st);
        }
        let waker = shared
            .waker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(w) = waker {
            w();
        }
    }
}

/// The keys one read of `group` (of slab span `span`, see [`slab_span`]) brings: every
/// slab of the span, or its one whole chunk.
fn keys_read(group: &[Request], span: Option<(u8, u32, u32)>) -> Vec<ChunkKey> {
    let Some(first) = group.first() else {
        return Vec::new();
    };
    match span {
        Some((axis, lo, hi)) => (lo..=hi)
            .map(|o| ChunkKey {
                slab: Some((axis, o)),
                ..first.key
            })
            .collect(),
        None => group.iter().map(|r| r.key).collect(),
    }
}

/// Reads `group` (of slab span `span`, whose read brings `keys`) in one read of its store:
/// each key with its voxels, or, when the read fails, the requested keys with the error
/// (slabs only read ahead are then left out, to be asked for again if they are shown).
fn read_group(
    group: &[Request],
    span: Option<(u8, u32, u32)>,
    keys: &[ChunkKey],
) -> Vec<(ChunkKey, Chunk)> {
    let Some(first) = group.first() else {
        return Vec::new();
    };
    let key = first.key;
    let layer = &first.layer;
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match span {
        Some((axis, lo, hi)) => layer.read_slabs(
            key.level,
            key.index,
            usize::from(axis),
            u64::from(lo)..=u64::from(hi),
            first.kind,
        ),
        None => layer
            .read_slab(key.level, key.index, None, first.kind)
            .map(|v| vec![v]),
    }));
    let message = match read {
        Ok(Ok(values)) if values.len() == keys.len() => {
            return keys
                .iter()
                .copied()
                .zip(values.into_iter().map(Chunk::Ready))
                .collect();
        }
        Ok(Ok(values)) => format!(
            "{}: chunk {:?} of level {} gave {} slabs, expected {}",
            layer.path.display(),
            key.index,
            key.level,
            values.len(),
            keys.len()
        ),
        Ok(Err(message)) => message,
        Err(_) => format!(
            "{}: reading chunk {:?} of level {} crashed",
            layer.path.display(),
            key.index,
            key.level
        ),
    };
    group
        .iter()
        .map(|r| (r.key, Chunk::Failed(message.clone())))
        .collect()
}

/// Evicts least recently used chunks until the budget holds with a sixteenth to spare
/// (so that a cache at its budget sorts its chunks by age once per many reads, not once
/// per read); chunks used in the current frame stay even when that exceeds the budget
/// (they are on screen).
fn evict(st: &mut State) {
    if st.bytes <= st.budget_bytes {
        return;
    }
    let target = st.budget_bytes - st.budget_bytes / 16;
    let mut by_age: Vec<(u64, ChunkKey)> = st
        .ready
        .iter()
        .filter(|(_, e)| e.last_used < st.tick)
        .map(|(k, e)| (e.last_used, *k))
        .collect();
    by_age.sort_unstable_by_key(|(t, _)| *t);
    for (_, k) in by_age {
        if st.bytes <= target {
            break;
        }
        if let Some(e) = st.ready.remove(&k) {
            st.bytes -= e.bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::array::transform::InMemory;
    use crate::array::{ArrayData, ArrayError, ArrayInfo, ArraySource};
    use crate::geometry::{Coordinate, Roi};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A gate: reads wait until it holds true.
    type Gate = Arc<(Mutex<bool>, Condvar)>;

    /// An 8×8×24 float array in chunks of 8³ whose reads wait until its gate opens.
    struct Gated {
        inner: InMemory,
        info: ArrayInfo,
        open: Gate,
        reads: Arc<AtomicUsize>,
    }

    impl ArraySource for Gated {
        fn info(&self) -> &ArrayInfo {
            &self.info
        }

        fn read(&self, roi: &Roi) -> Result<ArrayData, ArrayError> {
            let (lock, opened) = &*self.open;
            let mut open = lock.lock().unwrap();
            while !*open {
                open = opened.wait(open).unwrap();
            }
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.inner.read(roi)
        }
    }

    /// A float array of `shape` voxels of 1 nm whose value is the voxel's x index.
    fn x_ramp(name: &str, shape: &[usize]) -> InMemory {
        let data = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(shape), |ix| ix[2] as f32);
        InMemory::new(
            name,
            "test",
            ArrayData::F32(data),
            Coordinate::from([1, 1, 1]),
            Coordinate::from([0, 0, 0]),
            false,
        )
        .unwrap()
    }

    /// A layer reading `source` (read from storage unless `computed`).
    fn layer_of(name: &str, source: Box<dyn ArraySource>, computed: bool) -> Arc<LayerData> {
        let layer =
            crate::render::layer::computed_layer(std::path::Path::new(name), name, source).unwrap();
        let mut layer = Arc::try_unwrap(layer).unwrap();
        layer.computed = computed;
        Arc::new(layer)
    }

    fn layer(computed: bool, open: bool) -> (Arc<LayerData>, Gate, Arc<AtomicUsize>) {
        let inner = x_ramp("gated", &[8, 8, 24]);
        let mut info = inner.info().clone();
        info.chunk_shape = vec![8, 8, 8];
        let gate = Arc::new((Mutex::new(open), Condvar::new()));
        let reads = Arc::new(AtomicUsize::new(0));
        let source = Gated {
            inner,
            info,
            open: Arc::clone(&gate),
            reads: Arc::clone(&reads),
        };
        (layer_of("gated", Box::new(source), computed), gate, reads)
    }

    /// Opens a gate when dropped: whatever fails in a test, the blocked thread ends.
    struct OpenOnDrop(Gate);

    impl Drop for OpenOnDrop {
        fn drop(&mut self) {
            if let Ok(mut open) = self.0 .0.lock() {
                *open = true;
            }
            self.0 .1.notify_all();
        }
    }

    fn request(layer: &Arc<LayerData>, uid: u64, x: u64) -> Request {
        Request {
            read_from: None,
            key: ChunkKey {
                layer: uid,
                level: 0,
                index: [0, 0, x],
                labels: false,
                slab: None,
            },
            layer: Arc::clone(layer),
            kind: LayerKind::Prediction,
        }
    }

    fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let t0 = std::time::Instant::now();
        while !done() {
            assert!(t0.elapsed().as_secs() < 10, "{what}");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// An 8³ float array that records the niceness and the scheduling policy of the thread
    /// reading it.
    struct NiceProbe {
        inner: InMemory,
        nice: Arc<std::sync::atomic::AtomicI32>,
        policy: Arc<std::sync::atomic::AtomicI32>,
    }

    impl ArraySource for NiceProbe {
        fn info(&self) -> &ArrayInfo {
            self.inner.info()
        }

        fn read(&self, roi: &Roi) -> Result<ArrayData, ArrayError> {
            let (nice, policy) = scheduling();
            self.nice.store(nice, Ordering::SeqCst);
            self.policy.store(policy, Ordering::SeqCst);
            self.inner.read(roi)
        }
    }

    /// The calling thread's niceness and scheduling policy (0 and 0 outside Linux).
    fn scheduling() -> (i32, i32) {
        #[cfg(target_os = "linux")]
        // SAFETY: reads this thread's own priority and scheduling policy.
        unsafe {
            let tid = libc::gettid();
            (
                libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t),
                libc::sched_getscheduler(tid),
            )
        }
        #[cfg(not(target_os = "linux"))]
        (0, 0)
    }

    /// A request for the slab at `offset` along x of chunk `x`, reading ahead from `from`.
    fn slab_request(layer: &Arc<LayerData>, x: u64, offset: u32, from: Option<u32>) -> Request {
        let mut r = request(layer, 1, x);
        r.key.slab = Some((2, offset));
        r.read_from = from;
        r
    }

    #[test]
    fn slabs_read_ahead_come_with_their_chunks_first_slab_in_one_read() {
        let (layer, _gate, reads) = layer(false, true);
        let cache = ChunkCache::new(1 << 20, 2);
        let queued = cache.request(vec![
            slab_request(&layer, 1, 3, None),
            slab_request(&layer, 0, 5, None),
            slab_request(&layer, 1, 2, None),
            slab_request(&layer, 1, 4, None),
            // Ahead of the plane: slab 7, read from slab 5.
            slab_request(&layer, 1, 7, Some(5)),
            // Outside the chunk (8 voxels along x): fails alone.
            slab_request(&layer, 2, 9, None),
        ]);
        assert_eq!(queued, 6);
        assert!(cache.wait_idle(std::time::Duration::from_secs(10)));
        // Slab 3 and those read ahead (5 to 7) in one read of the store, slab 2 and chunk 0's
        // slab in one each; slab 4 came with the first read (it is not read again); the
        // failed read. Six slabs of chunk 1 (2 to 7) and one of chunk 0 in the cache, and
        // the failure.
        assert_eq!(reads.load(Ordering::SeqCst), 3);
        let st = cache.stats();
        assert_eq!((st.reads, st.completed, st.chunks), (4, 8, 8));
        for (x, offset) in [(1u64, 2u32), (1, 3), (1, 4), (1, 5), (1, 6), (1, 7), (0, 5)] {
            let key = slab_request(&layer, x, offset, None).key;
            match cache.get(&key).as_deref() {
                Some(Chunk::Ready(ChunkValues::Float { values, shape, .. })) => {
                    assert_eq!(*shape, [8, 8, 1]);
                    let want = (x * 8 + u64::from(offset)) as f32;
                    assert!(
                        values.len() == 64 && values.iter().all(|v| *v == want),
                        "{key:?}"
                    );
                }
                other => panic!("{key:?}: {other:?}"),
            }
        }
        for offset in [0, 1] {
            assert!(cache
                .get(&slab_request(&layer, 1, offset, None).key)
                .is_none());
        }
        match cache.get(&slab_request(&layer, 2, 9, None).key).as_deref() {
            Some(Chunk::Failed(m)) => assert!(m.contains("outside chunk [0, 0, 2]"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn chunks_are_read_at_the_callers_priority_and_lower_while_the_view_moves() {
        let cache = ChunkCache::new(1 << 20, 1);
        let inner = x_ramp("probe", &[8, 8, 8]);
        let nice = Arc::new(std::sync::atomic::AtomicI32::new(-100));
        let policy = Arc::new(std::sync::atomic::AtomicI32::new(-100));
        let probe = NiceProbe {
            inner,
            nice: Arc::clone(&nice),
            policy: Arc::clone(&policy),
        };
        let layer = layer_of("probe", Box::new(probe), false);
        let read_once = || {
            cache.forget_layer(1);
            assert_eq!(cache.request(vec![request(&layer, 1, 0)]), 1);
            assert!(cache.wait_idle(std::time::Duration::from_secs(10)));
            assert!(matches!(
                cache.get(&request(&layer, 1, 0).key).as_deref(),
                Some(Chunk::Ready(_))
            ));
            (nice.load(Ordering::SeqCst), policy.load(Ordering::SeqCst))
        };
        let (own, own_policy) = scheduling();
        let (at_rest, policy_at_rest) = read_once();
        assert_eq!(at_rest, own, "read at niceness {at_rest}, made at {own}");
        assert_eq!(policy_at_rest, own_policy);
        assert!(
            at_rest < MOVING_READER_NICENESS,
            "read at niceness {at_rest}"
        );
        // While the view moves, a reader of lower priority reads. It runs only when a
        // processor is free, so the view keeps moving until it has (a busy machine, such
        // as a parallel test run, may keep it waiting longer than one hold).
        cache.forget_layer(1);
        cache.view_moved();
        assert_eq!(cache.request(vec![request(&layer, 1, 0)]), 1);
        wait_for("the moving reader reads", || {
            cache.view_moved();
            cache.get(&request(&layer, 1, 0).key).is_some()
        });
        let (moving, policy_moving) = (nice.load(Ordering::SeqCst), policy.load(Ordering::SeqCst));
        #[cfg(target_os = "linux")]
        {
            assert_eq!(
                moving,
                MOVING_READER_NICENESS.max(own),
                "read at niceness {moving}"
            );
            // In the idle class: drawing takes the processor from it at once.
            assert_eq!(policy_moving, libc::SCHED_IDLE);
        }
        let _ = (moving, policy_moving);
        // Once it rests, the caller's priority again.
        std::thread::sleep(VIEW_MOVING_HOLD + std::time::Duration::from_millis(20));
        assert_eq!(read_once(), (own, own_policy));
    }

    #[test]
    fn a_view_at_rest_is_read_whatever_the_moving_readers_do() {
        // The moving reader is stuck in a read; the view rests, and the reader at the
        // app's priority reads the next chunk.
        let cache = ChunkCache::new(1 << 20, 1);
        let (stuck, gate, _) = layer(false, false);
        let (raw, _, read) = layer(false, true);
        let _open = OpenOnDrop(Arc::clone(&gate));
        cache.view_moved();
        cache.request(vec![request(&stuck, 1, 0)]);
        // The moving reader runs only when a processor is free: the view keeps moving
        // until it has taken the chunk.
        wait_for("the moving reader takes the chunk", || {
            cache.view_moved();
            cache.stats().in_flight == 1
        });
        std::thread::sleep(VIEW_MOVING_HOLD);
        cache.request(vec![request(&raw, 2, 1)]);
        wait_for("the resting reader reads", || {
            cache.get(&request(&raw, 2, 1).key).is_some()
        });
        assert_eq!(read.load(Ordering::SeqCst), 1);
        // While the view moves, the resting reader leaves the queue alone.
        cache.view_moved();
        cache.request(vec![request(&raw, 2, 2)]);
        std::thread::sleep(VIEW_MOVING_HOLD / 2);
        assert_eq!(read.load(Ordering::SeqCst), 1);
        assert_eq!(cache.stats().queued, 1);
        wait_for("read once the view rests", || {
            cache.get(&request(&raw, 2, 2).key).is_some()
        });
    }

    #[test]
    fn jobs_run_on_the_compute_thread_at_low_priority() {
        let cache = ChunkCache::new(1 << 20, 1);
        let (send, receive) = std::sync::mpsc::channel();
        cache.run_on_compute_thread(Box::new(move || {
            let name = std::thread::current().name().map(str::to_string);
            #[cfg(target_os = "linux")]
            // SAFETY: reads this thread's own priority.
            let nice =
                unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
            #[cfg(not(target_os = "linux"))]
            let nice = COMPUTE_NICENESS;
            let _ = send.send((name, nice));
        }));
        let (name, nice) = receive
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        assert_eq!(name.as_deref(), Some("segno-compute"));
        // Raising niceness never needs privileges, so it took effect.
        assert!(nice >= COMPUTE_NICENESS, "niceness {nice}");
        // A panicking job does not stop the thread.
        cache.run_on_compute_thread(Box::new(|| panic!("a job that fails")));
        let (send, receive) = std::sync::mpsc::channel();
        cache.run_on_compute_thread(Box::new(move || {
            let _ = send.send(());
        }));
        assert!(receive
            .recv_timeout(std::time::Duration::from_secs(10))
            .is_ok());
    }

    #[test]
    fn computed_chunks_never_hold_up_reads_and_leave_the_queue_with_the_view() {
        let cache = ChunkCache::new(1 << 20, 1);
        let (model, gate, computed) = layer(true, false);
        let (raw, _, read) = layer(false, true);
        // Whatever fails below, the gate opens, so that the blocked thread ends.
        let _open = OpenOnDrop(Arc::clone(&gate));
        // The compute thread blocks on the model's first chunk; the one reader still reads.
        cache.request(vec![
            request(&model, 1, 0),
            request(&model, 1, 1),
            request(&model, 1, 2),
            request(&raw, 2, 0),
        ]);
        wait_for("the raw chunk is read", || {
            cache.get(&request(&raw, 2, 0).key).is_some()
        });
        assert_eq!(read.load(Ordering::SeqCst), 1);
        // (The compute thread may pick its first block up after the read finished.)
        wait_for("the model's first block is computing", || {
            cache.stats().in_flight == 1
        });
        // The view moves on: the queued blocks are dropped; the one in flight finishes.
        cache.request(Vec::new());
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        assert!(cache.wait_idle(std::time::Duration::from_secs(10)));
        assert_eq!(computed.load(Ordering::SeqCst), 1);
        assert!(cache.get(&request(&model, 1, 0).key).is_some());
        assert!(cache.get(&request(&model, 1, 1).key).is_none());
        match cache.get(&request(&model, 1, 0).key).as_deref() {
            Some(Chunk::Ready(ChunkValues::Float { values, .. })) => {
                assert_eq!(values[7], 7.0)
            }
            other => panic!("{other:?}"),
        }
    }
}
