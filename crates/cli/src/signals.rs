//! SIGINT and SIGTERM belong to the binary, not the engine: they cancel the running
//! operation's [`Cancel`] token, whose hooks start again what the run stopped
//! (containers stopped while their data is read), and then the process ends with
//! 128 + the signal. The process does not wait for the operation to reach a safe point:
//! it may be blocked on a server that never answers, and the cancellation has already
//! undone what matters.
//!
//! A long-running command (`serve`) hands the signals a hook instead
//! ([`on_signal_instead`]): each signal then calls it and the process does not end
//! here; the command stops its jobs within its timeout and returns as usual.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

use drydock_domain::Cancel;
use signal_hook::consts::{SIGINT, SIGTERM};

/// The signal that cancelled the run, 0 while none has.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// What a signal calls instead of cancelling and ending the process (see the module doc).
type Hook = Box<dyn Fn(&'static str) + Send>;

static INSTEAD: Mutex<Option<Hook>> = Mutex::new(None);

/// From now on, each SIGINT/SIGTERM calls `hook` with its name (`SIGTERM`) and the
/// process goes on: the caller stops what runs and returns.
pub fn on_signal_instead(hook: impl Fn(&'static str) + Send + 'static) {
    *INSTEAD.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(hook));
}

/// The exit code of a run cancelled by a signal: 128 + the signal (130 for SIGINT,
/// 143 for SIGTERM), as shells report it.
pub fn exit_code() -> u8 {
    let signal = match RECEIVED.load(Ordering::SeqCst) {
        0 => SIGTERM,
        s => s,
    };
    (128 + signal) as u8
}

/// Watches for SIGINT and SIGTERM on a thread of its own; the first one cancels
/// `cancel` and ends the process. Later signals wait: nothing is left stopped.
pub fn install(cancel: Cancel) -> Result<(), String> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|e| format!("cannot install the SIGINT/SIGTERM handler: {e}"))?;
    std::thread::Builder::new()
        .name("drydock-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                RECEIVED.store(signal, Ordering::SeqCst);
                let name = if signal == SIGINT { "SIGINT" } else { "SIGTERM" };
                if let Some(hook) = INSTEAD.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                    hook(name);
                    continue;
                }
                eprintln!("drydock: {name} received; ending the run (what it stopped is started again first)");
                cancel.cancel(name);
                std::process::exit(i32::from(exit_code()));
            }
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the signal thread: {e}"))
}
