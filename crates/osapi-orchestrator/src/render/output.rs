//! Where the renderer's text goes. Rendered events are collected and
//! written together: by a thread of its own at most [`BATCH_WINDOW`]
//! after the first of them, or at once when asked (before user code runs,
//! so that what it prints comes after the lines drawn so far; at the end
//! of a plan). A burst of events costs one write instead of one each,
//! and a slow terminal does not hold up steps between those points.
//!
//! On a terminal, the live lines of running steps ([`Live`]) stay below
//! the text: each write replaces them with the new text followed by the
//! lines redrawn, and a tick keeps their elapsed times current.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::live::Live;
use crate::lock;

/// The longest a line waits for others to be written with it: well below
/// what a person notices.
const BATCH_WINDOW: Duration = Duration::from_millis(10);
/// Collected text is written at once from this size on.
const BATCH_BYTES: usize = 64 * 1024;
/// The largest collecting buffer kept from one write to the next.
const KEPT_BYTES: usize = 4 * BATCH_BYTES;
/// How often live lines are brought up to date while steps run.
const LIVE_TICK: Duration = Duration::from_millis(500);

#[derive(Default)]
struct Pending {
    text: Vec<u8>,
    /// Bytes collected since the start, written or not.
    collected: u64,
    closed: bool,
    /// The batching thread waits for text (rather than ticking): a write
    /// must wake it.
    parked: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    /// Signalled when text arrives in an empty buffer, and at close.
    arrived: Condvar,
    out: Mutex<Box<dyn Write + Send>>,
    /// Bytes of [`Pending::collected`] written so far (or given to the
    /// writer, whose errors are ignored).
    written: AtomicU64,
    /// Live lines, on a terminal. Locked after `out`, never with `pending`.
    live: Option<Mutex<Live>>,
}

impl Shared {
    /// Writes what is collected. The writer's lock is taken first, so two
    /// flushes write their text in the order it was collected.
    fn flush(&self) {
        let mut out = lock(&self.out);
        let (mut text, through) = {
            let mut pending = lock(&self.pending);
            (std::mem::take(&mut pending.text), pending.collected)
        };
        let framed = self
            .live
            .as_ref()
            .map(|live| lock(live).frame(&text, Instant::now()));
        match framed {
            Some(None) => {}
            Some(Some(frame)) => {
                let _ = out.write_all(&frame);
            }
            None if !text.is_empty() => {
                let _ = out.write_all(&text);
            }
            None => {}
        }
        let _ = out.flush();
        self.written.fetch_max(through, Ordering::Release);
        // The buffer goes back for the next text (unless text came
        // meanwhile): growing a new one and freeing this one for every
        // write costs more than the writing.
        if text.capacity() <= KEPT_BYTES {
            text.clear();
            let mut pending = lock(&self.pending);
            if pending.text.is_empty() {
                pending.text = text;
            }
        }
    }

    /// True while live lines need redrawing as time passes.
    fn ticking(&self) -> bool {
        self.live.as_ref().is_some_and(|l| lock(l).ticking())
    }
}

/// The renderer's writer, with its batching thread.
pub(crate) struct Output {
    shared: Arc<Shared>,
    /// `None` when no thread could be started: every write is then
    /// written at once.
    thread: Option<JoinHandle<()>>,
}

impl Output {
    /// Writes to `out`, with `live` lines below the text when given.
    pub(crate) fn new(out: Box<dyn Write + Send>, live: Option<Live>) -> Output {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            arrived: Condvar::new(),
            out: Mutex::new(out),
            written: AtomicU64::new(0),
            live: live.map(Mutex::new),
        });
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name("osapi-render".into())
            .spawn(move || batch_loop(&for_thread))
            .ok();
        Output { shared, thread }
    }

    /// Collects `text` (written whole: lines of parallel steps never
    /// interleave).
    pub(crate) fn write(&self, text: &str) {
        let write_now = {
            let mut pending = lock(&self.shared.pending);
            pending.text.extend_from_slice(text.as_bytes());
            pending.collected += text.len() as u64;
            if pending.parked {
                pending.parked = false;
                self.shared.arrived.notify_one();
            }
            self.thread.is_none() || pending.text.len() >= BATCH_BYTES
        };
        if write_now {
            self.shared.flush();
        }
    }

    /// Writes everything collected so far, now.
    pub(crate) fn flush(&self) {
        self.shared.flush();
    }

    /// How much text was collected so far (a mark for
    /// [`Output::flush_through`]).
    pub(crate) fn collected(&self) -> u64 {
        lock(&self.shared.pending).collected
    }

    /// Writes everything collected so far, unless the text collected up to
    /// `mark` has been written already.
    pub(crate) fn flush_through(&self, mark: u64) {
        if self.shared.written.load(Ordering::Acquire) < mark {
            self.shared.flush();
        }
    }

    /// Updates the live lines (drawn with the next write or tick); `f`
    /// is not called without them.
    pub(crate) fn live<R: Default>(&self, f: impl FnOnce(&mut Live) -> R) -> R {
        match &self.shared.live {
            Some(live) => f(&mut lock(live)),
            None => R::default(),
        }
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        lock(&self.shared.pending).closed = true;
        self.shared.arrived.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // Live lines never outlive the renderer.
        self.live(Live::clear);
        self.shared.flush();
    }
}

/// Ticks every [`BATCH_WINDOW`] while text keeps coming, writing what
/// gathered; after a tick with nothing to write it parks until text
/// arrives (so a busy renderer does not wake it for every event, and an
/// idle one costs nothing) — or, while live lines are shown, until the
/// next [`LIVE_TICK`], to redraw them.
fn batch_loop(shared: &Shared) {
    loop {
        let ticking = shared.ticking();
        {
            let mut pending = lock(&shared.pending);
            if pending.text.is_empty() && !pending.closed {
                pending.parked = true;
                pending = if ticking {
                    shared
                        .arrived
                        .wait_timeout(pending, LIVE_TICK)
                        .map(|(p, _)| p)
                        .unwrap_or_else(|p| p.into_inner().0)
                } else {
                    shared
                        .arrived
                        .wait(pending)
                        .unwrap_or_else(|p| p.into_inner())
                };
                pending.parked = false;
            }
            if pending.closed {
                return;
            }
            if pending.text.is_empty() {
                drop(pending);
                if ticking {
                    shared.flush();
                }
                continue;
            }
        }
        std::thread::sleep(BATCH_WINDOW);
        shared.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the writes it gets.
    #[derive(Clone, Default)]
    struct Counting(Arc<Mutex<(usize, Vec<u8>)>>);

    impl Write for Counting {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let mut inner = lock(&self.0);
            inner.0 += 1;
            inner.1.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn flushing_through_a_mark_writes_everything_before_it_once() {
        // The batching thread may write too (within 10 ms): only what the
        // marks guarantee is checked.
        let sink = Counting::default();
        let writes = || lock(&sink.0).0;
        let written = || String::from_utf8(lock(&sink.0).1.clone()).unwrap();
        let out = Output::new(Box::new(sink.clone()), None);
        out.write("[start] a\n");
        let a = out.collected();
        out.write("[start] b\n");
        let b = out.collected();
        assert!(b > a);
        // a's step: everything collected so far is written, b's line too.
        out.flush_through(a);
        assert_eq!(written(), "[start] a\n[start] b\n");
        // b's step (and a's again) find their lines written: no write.
        let before = writes();
        out.flush_through(b);
        out.flush_through(a);
        assert_eq!(writes(), before);
        // Text after a mark is written by the next step that needs it.
        out.write("[start] c\n");
        out.flush_through(out.collected());
        assert_eq!(written(), "[start] a\n[start] b\n[start] c\n");
        // A mark past everything (an observer whose mark failed) writes
        // what is there.
        out.write("d\n");
        out.flush_through(u64::MAX);
        assert!(written().ends_with("[start] c\nd\n"));
    }
}
