//! The bridge between the asynchronous Docker API and drydock's synchronous callers:
//! one small tokio runtime per process drives every request ([`block_on`]), from plain
//! threads and from a daemon's async workers alike, and an exec session
//! ([`ExecProcess`]) runs on it while the caller reads and writes ordinary pipes.
//! Its own module so the runtime contract (`runtime.rs`, whose `exec` returns an
//! [`ExecProcess`]) and the Docker adapter both depend on it, not on each other.

use std::sync::OnceLock;

pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("drydock-docker")
            .enable_all()
            .build()
            .expect("a tokio runtime for the Docker API")
    })
}

/// Runs one API future to completion on drydock's own runtime, from any caller.
///
/// From ordinary code it blocks on the runtime directly. From inside a tokio runtime
/// (a daemon's async worker) blocking on another runtime in that thread panics, so the
/// wait happens on a helper thread; on a multi-threaded runtime the worker is handed
/// over first (`block_in_place`), so the caller's other tasks go on meanwhile. The
/// connection stays on our runtime either way: a client used from two runtimes loses
/// its pooled connections when one of them ends.
pub(crate) fn block_on<F>(f: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    use tokio::runtime::{Handle, RuntimeFlavor};
    let Ok(caller) = Handle::try_current() else {
        return runtime().block_on(f);
    };
    let wait = || {
        std::thread::scope(|scope| {
            let waiter = std::thread::Builder::new()
                .name("drydock-docker-wait".into())
                .spawn_scoped(scope, || runtime().block_on(f))
                .expect("a thread to wait for the Docker API");
            waiter
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    };
    match caller.runtime_flavor() {
        RuntimeFlavor::MultiThread => tokio::task::block_in_place(wait),
        _ => wait(),
    }
}

/// A command running inside a container.
pub struct ExecProcess {
    pub stdin: Option<std::io::PipeWriter>,
    pub stdout: Option<std::io::PipeReader>,
    pub stderr: Option<std::io::PipeReader>,
    pub(crate) session: Option<tokio::task::JoinHandle<Result<Option<i64>, String>>>,
}

/// Ends an exec session from another thread.
#[derive(Clone)]
pub struct ExecKill(tokio::task::AbortHandle);

impl ExecKill {
    /// Drops the session's connection: the process loses its stdin and stdout and ends
    /// at its next write.
    pub fn kill(&self) {
        self.0.abort();
    }
}

impl ExecProcess {
    pub fn kill_handle(&self) -> Option<ExecKill> {
        self.session.as_ref().map(|s| ExecKill(s.abort_handle()))
    }

    /// Waits for the command; its exit code (`None` when the daemon did not say).
    pub fn wait(&mut self) -> Result<Option<i64>, String> {
        self.stdin.take();
        let Some(session) = self.session.take() else {
            return Err("already finished".into());
        };
        match block_on(session) {
            Ok(r) => r,
            Err(e) if e.is_cancelled() => Err("killed".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    pub fn kill(&mut self) {
        if let Some(s) = self.session.take() {
            s.abort();
        }
    }
}

impl Drop for ExecProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
