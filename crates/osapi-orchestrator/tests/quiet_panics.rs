//! Panics in guards and custom steps are reported in the step's error, not
//! printed by the panic hook; panics anywhere else still reach the hook the
//! program had. Its own test binary: the panic hook is per process.
#![allow(clippy::unwrap_used)] // test code: a panic is how it fails

use std::sync::atomic::{AtomicUsize, Ordering};

use osapi_orchestrator::prelude::*;

static PRINTED: AtomicUsize = AtomicUsize::new(0);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_panics_are_reported_not_printed() {
    // The program's own hook, standing in for the default one (which
    // prints the message and a backtrace on stderr).
    std::panic::set_hook(Box::new(|_| {
        PRINTED.fetch_add(1, Ordering::SeqCst);
    }));
    let o = Orchestrator::builder("http://127.0.0.1:1", "unused")
        .quiet()
        .build()
        .unwrap();
    o.task_fn("explodes", |_, _| async {
        if true {
            panic!("kaboom");
        }
        Ok(TaskOutput::done_unchanged())
    })
    .continue_on_error();
    o.task_fn("guarded", |_, _| async { Ok(TaskOutput::done_unchanged()) })
        .when(|_| panic!("guard kaboom"))
        .continue_on_error();
    let report = o.run().await.unwrap();
    assert_eq!(
        report.step("explodes").unwrap().error.as_deref(),
        Some("step panicked: kaboom")
    );
    assert_eq!(
        report.step("guarded").unwrap().error.as_deref(),
        Some("when guard panicked: guard kaboom")
    );
    assert_eq!(PRINTED.load(Ordering::SeqCst), 0, "nothing printed");

    // A panic outside the orchestrator's care still reaches the hook.
    let _ = std::thread::spawn(|| panic!("elsewhere")).join();
    assert_eq!(PRINTED.load(Ordering::SeqCst), 1);
}
