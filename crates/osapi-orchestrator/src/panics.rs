//! Panics in user code (guards, predicates, custom steps) become errors in
//! the step's report, without the panic message and backtrace the default
//! hook prints on stderr: while user code runs under [`catch`] or
//! [`CatchPanic`], a hook installed once (and chaining to the one it
//! replaced for every other panic) stays quiet.

use std::any::Any;
use std::cell::Cell;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Once;
use std::task::{Context, Poll};

thread_local! {
    /// How many quiet sections this thread is in.
    static QUIET: Cell<u32> = const { Cell::new(0) };
}

/// Installs the hook that skips panics raised in quiet sections.
fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) == 0 {
                previous(info);
            }
        }));
    });
}

/// Leaves the quiet section when dropped (also while unwinding).
struct Section;

impl Section {
    fn enter() -> Section {
        install();
        QUIET.with(|q| q.set(q.get() + 1));
        Section
    }
}

impl Drop for Section {
    fn drop(&mut self) {
        QUIET.with(|q| q.set(q.get().saturating_sub(1)));
    }
}

/// Runs `f`; a panic is returned as its message, not printed.
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    let _quiet = Section::enter();
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|p| panic_text(&p))
}

/// A future whose panics are returned as their message, not printed.
pub(crate) struct CatchPanic<F>(pub(crate) Pin<Box<F>>);

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let _quiet = Section::enter();
        let inner = self.0.as_mut();
        match panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(p) => Poll::Ready(Err(panic_text(&p))),
        }
    }
}

/// The message of a panic payload.
fn panic_text(panic: &Box<dyn Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}
