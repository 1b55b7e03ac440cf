//! Where the renderer's text goes. Rendered events are collected and
//! written together: by a thread of its own at most [`BATCH_WINDOW`]
//! after the first of them, or at once when asked (before user code runs,
//! so that what it prints comes after the lines drawn so far; at the end
//! of a plan). A burst of events costs one write instead of one each,
//! and a slow terminal does not hold up steps between those points.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::lock;

/// The longest a line waits for others to be written with it: well below
/// what a person notices.
const BATCH_WINDOW: Duration = Duration::from_millis(10);
/// Collected text is written at once from this size on.
const BATCH_BYTES: usize = 64 * 1024;

#[derive(Default)]
struct Pending {
    text: Vec<u8>,
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
}

impl Shared {
    /// Writes what is collected. The writer's lock is taken first, so two
    /// flushes write their text in the order it was collected.
    fn flush(&self) {
        let mut out = lock(&self.out);
        let text = std::mem::take(&mut lock(&self.pending).text);
        if !text.is_empty() {
            let _ = out.write_all(&text);
        }
        let _ = out.flush();
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
    pub(crate) fn new(out: Box<dyn Write + Send>) -> Output {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            arrived: Condvar::new(),
            out: Mutex::new(out),
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
}

impl Drop for Output {
    fn drop(&mut self) {
        lock(&self.shared.pending).closed = true;
        self.shared.arrived.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.shared.flush();
    }
}

/// Ticks every [`BATCH_WINDOW`] while text keeps coming, writing what
/// gathered; after a tick with nothing to write it parks until text
/// arrives (so a busy renderer does not wake it for every event, and an
/// idle one costs nothing).
fn batch_loop(shared: &Shared) {
    loop {
        {
            let mut pending = lock(&shared.pending);
            while pending.text.is_empty() && !pending.closed {
                pending.parked = true;
                pending = shared
                    .arrived
                    .wait(pending)
                    .unwrap_or_else(|p| p.into_inner());
            }
            pending.parked = false;
            if pending.closed {
                return;
            }
        }
        std::thread::sleep(BATCH_WINDOW);
        shared.flush();
    }
}
