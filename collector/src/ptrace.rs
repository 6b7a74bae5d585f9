//! The ptrace fallback: capture for hosts without usable eBPF (no root, no
//! `CAP_BPF`+`CAP_PERFMON`, no BTF).
//!
//! [`PtraceSession::spawn`] forks the command under `PTRACE_TRACEME` and
//! follows every `fork`/`vfork`/`clone` and `execve` of every descendant,
//! stopping each task at every syscall entry and exit (`PTRACE_SYSCALL`).
//! At each entry stop, `PTRACE_GET_SYSCALL_INFO` (Linux >= 5.3) gives the
//! calling convention (`AUDIT_ARCH_*`) and the number, which is all a
//! seccomp filter sees too. Counts are exact: one per syscall entry the
//! kernel reports (a syscall restarted after a signal is entered, and
//! filtered, twice, and so is counted twice).
//!
//! Phases: ptrace cannot see a seccomp filter, so only two phases are
//! recorded. The launched command's own `execve` (the launcher's, made
//! right after the child's `SIGSTOP`) is [`Phase::Runtime`]; every call
//! after the first successful exec is [`Phase::Image`]. Nothing else before
//! that exec is recorded.
//!
//! Threads: ptrace is per thread. One dedicated tracer thread forks the
//! command and runs the whole `waitpid` loop, with `__WNOTHREAD` so that it
//! never reaps children of the program's other threads.
//!
//! Known limits, shared with every `PTRACE_TRACEME` tracer (strace without
//! `--seize`): a job-control stop (`SIGSTOP`, `SIGTSTP`...) of a tracee is
//! observed as a group-stop and the tracee is resumed at once, so a traced
//! workload cannot be stopped by job control.

use crate::{CollectError, Result};
use schemas::{abi, Abi, Observation, Phase};
use std::collections::HashMap;
use std::ffi::{CString, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How to start the traced command.
#[derive(Clone, Debug, Default)]
pub struct PtraceOptions {
    /// Start the command with an empty environment (default: inherit ours).
    /// `argv[0]` is still resolved on *our* `PATH`.
    pub env_clear: bool,
    /// Send the command's stdout to our stderr (when our stdout carries
    /// the profile, the two must not mix).
    pub stdout_to_stderr: bool,
}

/// A command running under the ptrace tracer.
///
/// Dropping a session that was not [`wait`](PtraceSession::wait)ed kills
/// the workload (`SIGKILL` to every traced task); the tracer thread then
/// reaps it and ends by itself.
pub struct PtraceSession {
    pid: i32,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<i32>>>,
}

/// State shared between the tracer thread and the session's owner.
struct Shared {
    state: Mutex<State>,
    finished: AtomicBool,
}

#[derive(Default)]
struct State {
    obs: Observation,
    /// Every live traced task (thread ids), for `stop()` and bookkeeping.
    tasks: HashMap<i32, Task>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Task {
    /// Announced by its parent's `PTRACE_EVENT_{FORK,VFORK,CLONE}` but its
    /// initial `SIGSTOP` (the one every auto-attached tracee starts with)
    /// has not been seen yet: that `SIGSTOP` is ours to suppress.
    initial_stop_pending: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave `State` half-updated in a way that
        // matters (counters only), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn tids(&self) -> Vec<i32> {
        self.lock().tasks.keys().copied().collect()
    }
}

/// Sets `finished` when the tracer thread ends, however it ends.
struct FinishGuard(Arc<Shared>);

impl Drop for FinishGuard {
    fn drop(&mut self) {
        self.0.finished.store(true, Ordering::Release);
    }
}

impl PtraceSession {
    /// Fork and exec `argv` under ptrace, following every fork/vfork/clone
    /// and exec of every descendant.
    ///
    /// `argv[0]` is resolved here, before forking, the way `execvp` would
    /// (on our `PATH`, or as a path when it contains a `/`): a command that
    /// cannot be found, or is not an executable file, is a
    /// [`CollectError::Spawn`] (kind `NotFound` or `PermissionDenied`), not
    /// a child exiting 127. A command that is found but whose `execve`
    /// still fails (say, a bad ELF) makes the child exit 127 (`ENOENT`) or
    /// 126 (anything else), as shells do.
    pub fn spawn(argv: &[OsString], opts: &PtraceOptions) -> Result<PtraceSession> {
        let prepared = Prepared::new(argv, opts)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            finished: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::channel::<Result<i32>>();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("sandmine-ptrace".into())
            .spawn(move || {
                let _guard = FinishGuard(Arc::clone(&thread_shared));
                tracer_thread(prepared, &thread_shared, tx)
            })
            .map_err(|e| CollectError::io("starting the ptrace thread", e))?;
        match rx.recv() {
            Ok(Ok(pid)) => Ok(PtraceSession {
                pid,
                shared,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                // The thread ended without a word: it panicked before forking.
                let _ = thread.join();
                Err(CollectError::Ptrace(
                    "the tracer thread died before starting the command".into(),
                ))
            }
        }
    }

    /// Current totals (a clone of the shared state); callable from any
    /// thread while the workload runs.
    pub fn snapshot(&self) -> Observation {
        self.shared.lock().obs.clone()
    }

    /// Has the last traced process exited (or the tracer given up)?
    pub fn finished(&self) -> bool {
        self.shared.finished.load(Ordering::Acquire)
    }

    /// Pid of the first process.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Ask the workload to stop: `SIGTERM` to every traced process, then,
    /// if some traced process is still alive after `grace`, `SIGKILL` to
    /// every one. Returns as soon as the last one has exited, or after
    /// sending the `SIGKILL`s.
    pub fn stop(&self, grace: Duration) {
        signal_all(&self.shared, libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while !self.finished() {
            let now = Instant::now();
            if now >= deadline {
                signal_all(&self.shared, libc::SIGKILL);
                return;
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(5)));
        }
    }

    /// Wait for the tracer to finish. Returns the final observation and the
    /// exit status of the first process: its exit code, or 128+signal when
    /// a signal killed it.
    pub fn wait(mut self) -> Result<(Observation, i32)> {
        let handle = self
            .thread
            .take()
            .ok_or_else(|| CollectError::Ptrace("the session was already waited for".into()))?;
        let status = handle
            .join()
            .map_err(|_| CollectError::Ptrace("the tracer thread panicked".into()))??;
        Ok((self.snapshot(), status))
    }
}

impl Drop for PtraceSession {
    fn drop(&mut self) {
        if self.thread.is_some() && !self.finished() {
            signal_all(&self.shared, libc::SIGKILL);
        }
    }
}

/// Send `sig` to every traced task. Signalling a thread id signals its
/// whole process (or fails with `ESRCH` on kernels that want a tgid, which
/// is harmless since the leader is in the set too); errors are ignored,
/// since a task may exit at any moment.
fn signal_all(shared: &Shared, sig: libc::c_int) {
    for tid in shared.tids() {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe {
            libc::kill(tid, sig);
        }
    }
}

/// Everything the child needs, built before forking: after `fork` in a
/// multi-threaded program the child may only make async-signal-safe calls,
/// so no allocation happens there.
struct Prepared {
    cmd: String,
    path: CString,
    /// Owns the strings `argv_ptrs` points to.
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    _envp: Vec<CString>,
    envp_ptrs: Vec<*const libc::c_char>,
    stdout_to_stderr: bool,
}

// SAFETY: the raw pointers point into the `CString`s owned by the same
// struct, which moves to the tracer thread whole; nothing aliases them.
unsafe impl Send for Prepared {}

impl Prepared {
    fn new(argv: &[OsString], opts: &PtraceOptions) -> Result<Prepared> {
        let first = argv.first().ok_or_else(|| CollectError::Spawn {
            cmd: String::new(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "empty command"),
        })?;
        let cmd = first.to_string_lossy().into_owned();
        let spawn_err = |source: io::Error| CollectError::Spawn {
            cmd: cmd.clone(),
            source,
        };
        let path = crate::launch::resolve(first)?;
        let path = cstring(path.into_os_string().into_vec()).map_err(spawn_err)?;
        let argv_c = argv
            .iter()
            .map(|a| cstring(a.as_bytes().to_vec()))
            .collect::<io::Result<Vec<_>>>()
            .map_err(spawn_err)?;
        let envp_c = if opts.env_clear {
            Vec::new()
        } else {
            std::env::vars_os()
                .map(|(k, v)| {
                    let mut kv = k.into_vec();
                    kv.push(b'=');
                    kv.extend_from_slice(v.as_bytes());
                    cstring(kv)
                })
                .collect::<io::Result<Vec<_>>>()
                .map_err(spawn_err)?
        };
        let argv_ptrs = nul_terminated(&argv_c);
        let envp_ptrs = nul_terminated(&envp_c);
        Ok(Prepared {
            cmd,
            path,
            _argv: argv_c,
            argv_ptrs,
            _envp: envp_c,
            envp_ptrs,
            stdout_to_stderr: opts.stdout_to_stderr,
        })
    }
}

fn cstring(bytes: Vec<u8>) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "argument or environment contains a NUL byte",
        )
    })
}

fn nul_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

// ---------------------------------------------------------------------------
// The child, between fork and exec.

/// Runs in the forked child: become a tracee, stop so that the tracer can
/// set its options, then exec. Only async-signal-safe calls.
///
/// # Safety
/// Must only be called in the child right after `fork`.
unsafe fn child_exec(p: &Prepared, err_fd: libc::c_int) -> ! {
    // Undo what the Rust runtime and the tracer thread's mask did to us:
    // the command starts with default SIGPIPE and an empty signal mask.
    let mut set: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut set);
    libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    if p.stdout_to_stderr {
        libc::dup2(2, 1);
    }

    let null = std::ptr::null_mut::<libc::c_void>();
    if libc::ptrace(libc::PTRACE_TRACEME, 0, null, null) != 0 {
        report_errno(err_fd);
        libc::_exit(126);
    }
    libc::raise(libc::SIGSTOP);
    // With a `/` in the path, execvpe does no PATH search: it is execve,
    // plus the `/bin/sh` fallback for scripts without a `#!` line.
    libc::execvpe(p.path.as_ptr(), p.argv_ptrs.as_ptr(), p.envp_ptrs.as_ptr());
    let errno = report_errno(err_fd);
    libc::_exit(if errno == libc::ENOENT { 127 } else { 126 });
}

/// Write errno to the status pipe (best effort); returns it.
unsafe fn report_errno(fd: libc::c_int) -> libc::c_int {
    let errno = *libc::__errno_location();
    let bytes = errno.to_ne_bytes();
    libc::write(fd, bytes.as_ptr().cast(), bytes.len());
    errno
}

// ---------------------------------------------------------------------------
// The tracer thread.

const PTRACE_GET_SYSCALL_INFO: libc::c_uint = 0x420e;
const PTRACE_SYSCALL_INFO_ENTRY: u8 = 1;
const PTRACE_SYSCALL_INFO_EXIT: u8 = 2;

/// `struct ptrace_syscall_info` (`<linux/ptrace.h>`), entry view, with room
/// for the larger seccomp view and later extensions; the kernel copies at
/// most the size we pass.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct SyscallInfo {
    op: u8,
    pad: [u8; 3],
    arch: u32,
    instruction_pointer: u64,
    stack_pointer: u64,
    nr: u64,
    args: [u64; 6],
    rest: [u64; 4],
}

/// Syscall numbers at or above this are counted in `out_of_range`.
const NR_LIMIT: u64 = 1024;

/// `execve` and `execveat` per ABI: before the first exec, these are the
/// only calls recorded.
const EXEC_CALLS: [(Abi, u32); 8] = [
    (Abi::X86_64, 59),
    (Abi::X86_64, 322),
    (Abi::I386, 11),
    (Abi::I386, 358),
    (Abi::X32, 520),
    (Abi::X32, 545),
    (Abi::Aarch64, 221),
    (Abi::Aarch64, 281),
];

fn ptrace_err(what: &str, tid: i32) -> CollectError {
    CollectError::Ptrace(format!(
        "{what} on task {tid}: {}",
        io::Error::last_os_error()
    ))
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn tracer_thread(p: Prepared, shared: &Arc<Shared>, tx: mpsc::Sender<Result<i32>>) -> Result<i32> {
    match start_child(&p) {
        Ok(pid) => {
            shared.lock().tasks.insert(pid, Task::default());
            let _ = tx.send(Ok(pid));
            drop(tx);
            let mut tracer = Tracer {
                root: pid,
                shared: Arc::clone(shared),
                image: false,
                root_status: None,
            };
            tracer.run()
        }
        Err(e) => {
            let msg = e.to_string();
            let _ = tx.send(Err(e));
            Err(CollectError::Ptrace(msg))
        }
    }
}

/// Fork the child, wait for its first stop and set the tracing options.
/// On success the child is in its `SIGSTOP` signal-delivery-stop.
fn start_child(p: &Prepared) -> Result<i32> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(CollectError::io("pipe2", io::Error::last_os_error()));
    }
    let [rd, wr] = fds;
    // SAFETY: fork in a (possibly) multi-threaded program; the child only
    // runs `child_exec`, which is async-signal-safe.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: we are the child, right after fork.
        unsafe { child_exec(p, wr) }
    }
    let fork_err = io::Error::last_os_error();
    // SAFETY: closing our copy of the write end.
    unsafe { libc::close(wr) };
    let result = if pid < 0 {
        Err(CollectError::Spawn {
            cmd: p.cmd.clone(),
            source: fork_err,
        })
    } else {
        first_stop(pid, rd, &p.cmd)
    };
    // SAFETY: closing the read end, which nothing else uses.
    unsafe { libc::close(rd) };
    result
}

fn first_stop(pid: i32, rd: libc::c_int, cmd: &str) -> Result<i32> {
    let status = loop {
        let mut status = 0;
        // SAFETY: plain waitpid on our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r == pid {
            break status;
        }
        if errno() != libc::EINTR {
            return Err(CollectError::Ptrace(format!(
                "waitpid on the new child: {}",
                io::Error::last_os_error()
            )));
        }
    };
    if !(libc::WIFSTOPPED(status) && libc::WSTOPSIG(status) == libc::SIGSTOP) {
        // The child died before its SIGSTOP: PTRACE_TRACEME failed.
        let mut buf = [0u8; 4];
        // SAFETY: reading at most 4 bytes into `buf`.
        let n = unsafe { libc::read(rd, buf.as_mut_ptr().cast(), buf.len()) };
        let why = if n == 4 {
            format!("PTRACE_TRACEME failed: {} (is ptrace forbidden here? see kernel.yama.ptrace_scope, seccomp, or the container's capabilities)", io::Error::from_raw_os_error(i32::from_ne_bytes(buf)))
        } else {
            format!(
                "the child of {cmd:?} ended before it could be traced (wait status {status:#x})"
            )
        };
        if libc::WIFSTOPPED(status) {
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), libc::__WALL);
            }
        }
        return Err(CollectError::Ptrace(why));
    }
    let opts = libc::PTRACE_O_TRACESYSGOOD
        | libc::PTRACE_O_TRACEFORK
        | libc::PTRACE_O_TRACEVFORK
        | libc::PTRACE_O_TRACECLONE
        | libc::PTRACE_O_TRACEEXEC
        | libc::PTRACE_O_EXITKILL;
    // SAFETY: PTRACE_SETOPTIONS takes the options in `data`.
    if unsafe {
        libc::ptrace(
            libc::PTRACE_SETOPTIONS,
            pid,
            std::ptr::null_mut::<libc::c_void>(),
            opts as libc::c_long,
        )
    } != 0
    {
        let e = ptrace_err("PTRACE_SETOPTIONS", pid);
        // SAFETY: killing and reaping our own child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), libc::__WALL);
        }
        return Err(e);
    }
    Ok(pid)
}

struct Tracer {
    root: i32,
    shared: Arc<Shared>,
    /// The root has made its first successful exec.
    image: bool,
    root_status: Option<i32>,
}

impl Tracer {
    fn run(&mut self) -> Result<i32> {
        // The root sits in its initial SIGSTOP: suppress it.
        self.resume(self.root, 0);
        let mut fatal: Option<CollectError> = None;
        loop {
            let mut status = 0;
            // SAFETY: waitpid writes the status to `status`.
            let tid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL | libc::__WNOTHREAD) };
            if tid < 0 {
                match errno() {
                    libc::EINTR => continue,
                    libc::ECHILD => break,
                    _ => {
                        return Err(CollectError::Ptrace(format!(
                            "waitpid: {}",
                            io::Error::last_os_error()
                        )))
                    }
                }
            }
            if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
                self.shared.lock().tasks.remove(&tid);
                if tid == self.root {
                    self.root_status = Some(if libc::WIFEXITED(status) {
                        libc::WEXITSTATUS(status)
                    } else {
                        128 + libc::WTERMSIG(status)
                    });
                }
                continue;
            }
            if !libc::WIFSTOPPED(status) {
                continue;
            }
            if fatal.is_some() {
                // Draining after a fatal error: everyone has been sent
                // SIGKILL; let them die.
                self.resume(tid, libc::SIGKILL);
                continue;
            }
            match self.on_stop(tid, status) {
                Ok(sig) => self.resume(tid, sig),
                Err(e) => {
                    log::error!("ptrace: {e}; killing the workload");
                    fatal = Some(e);
                    signal_all(&self.shared, libc::SIGKILL);
                    self.resume(tid, libc::SIGKILL);
                }
            }
        }
        if let Some(e) = fatal {
            return Err(e);
        }
        self.root_status.ok_or_else(|| {
            CollectError::Ptrace(format!("lost the exit status of process {}", self.root))
        })
    }

    fn resume(&self, tid: i32, sig: i32) {
        // SAFETY: PTRACE_SYSCALL takes the signal to deliver in `data`.
        let r = unsafe {
            libc::ptrace(
                libc::PTRACE_SYSCALL,
                tid,
                std::ptr::null_mut::<libc::c_void>(),
                sig as libc::c_long,
            )
        };
        if r != 0 && errno() != libc::ESRCH {
            // ESRCH: the task was killed meanwhile; its death is reported
            // by waitpid.
            log::warn!("ptrace: {}", ptrace_err("PTRACE_SYSCALL", tid));
        }
    }

    /// Handle one ptrace-stop; returns the signal to deliver when resuming
    /// the task with `PTRACE_SYSCALL` (0: none).
    fn on_stop(&mut self, tid: i32, status: i32) -> Result<i32> {
        let sig = libc::WSTOPSIG(status);
        let event = (status >> 16) & 0xffff;
        if sig == libc::SIGTRAP | 0x80 {
            self.on_syscall_stop(tid)?;
            return Ok(0);
        }
        if sig == libc::SIGTRAP && event != 0 {
            self.on_event(tid, event)?;
            return Ok(0);
        }
        if sig == libc::SIGSTOP {
            let mut st = self.shared.lock();
            match st.tasks.get_mut(&tid) {
                // A new task reporting its initial stop before its parent's
                // fork/clone event: ours to suppress.
                None => {
                    st.tasks.insert(tid, Task::default());
                    return Ok(0);
                }
                Some(t) if t.initial_stop_pending => {
                    t.initial_stop_pending = false;
                    return Ok(0);
                }
                Some(_) => {}
            }
        }
        if matches!(
            sig,
            libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
        ) && is_group_stop(tid)
        {
            // Group-stop: the signal was already delivered. Without
            // PTRACE_SEIZE the only way on is to resume the task.
            return Ok(0);
        }
        // Signal-delivery-stop of a signal that is not ours: re-inject it.
        Ok(sig)
    }

    fn on_event(&mut self, tid: i32, event: i32) -> Result<()> {
        match event {
            libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE => {
                let child = event_msg(tid)? as i32;
                self.shared.lock().tasks.entry(child).or_insert(Task {
                    initial_stop_pending: true,
                });
            }
            libc::PTRACE_EVENT_EXEC => {
                // A non-leader thread that execs takes the leader's tid; its
                // former tid disappears without an exit report.
                let former = event_msg(tid)? as i32;
                let mut st = self.shared.lock();
                if former != tid {
                    st.tasks.remove(&former);
                }
                st.tasks.entry(tid).or_default();
                if tid == self.root {
                    self.image = true;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn on_syscall_stop(&mut self, tid: i32) -> Result<()> {
        let mut info = SyscallInfo::default();
        // SAFETY: the kernel writes at most `size_of::<SyscallInfo>()` bytes
        // into `info`.
        let r = unsafe {
            libc::ptrace(
                PTRACE_GET_SYSCALL_INFO as _,
                tid,
                std::mem::size_of::<SyscallInfo>() as *mut libc::c_void,
                &mut info as *mut SyscallInfo as libc::c_long,
            )
        };
        if r < 0 {
            if errno() == libc::ESRCH {
                return Ok(()); // killed while stopped
            }
            return Err(CollectError::Ptrace(format!(
                "PTRACE_GET_SYSCALL_INFO on task {tid}: {} (Linux >= 5.3 is required)",
                io::Error::last_os_error()
            )));
        }
        // The kernel says which stop this is: no entry/exit bookkeeping to
        // get wrong (notably the exit stop of an execve that replaced the
        // image comes without a matching entry in the new image).
        match info.op {
            PTRACE_SYSCALL_INFO_ENTRY => {}
            PTRACE_SYSCALL_INFO_EXIT => return Ok(()),
            _ => return Ok(()),
        }
        let key = classify(info.arch, info.nr);
        let mut st = self.shared.lock();
        if !self.image {
            // Before the first exec only the launcher's execve counts.
            if let Some((abi, nr)) = key {
                if tid == self.root && EXEC_CALLS.contains(&(abi, nr)) {
                    st.obs.record(abi, nr, Phase::Runtime, 1);
                }
            }
            return Ok(());
        }
        match key {
            Some((abi, nr)) => st.obs.record(abi, nr, Phase::Image, 1),
            None => st.obs.out_of_range += 1,
        }
        Ok(())
    }
}

/// Map `(AUDIT_ARCH_*, nr)` to an ABI and a syscall number, or `None` when
/// the number is out of range (negative or >= 1024) or the architecture
/// unknown (both are counted as `out_of_range`).
fn classify(arch: u32, nr: u64) -> Option<(Abi, u32)> {
    let (abi, nr) = match arch {
        abi::AUDIT_ARCH_X86_64 => {
            if (nr as i64) < 0 {
                return None;
            }
            if nr & u64::from(abi::X32_SYSCALL_BIT) != 0 {
                (Abi::X32, nr & !u64::from(abi::X32_SYSCALL_BIT))
            } else {
                (Abi::X86_64, nr)
            }
        }
        // Compat syscall numbers are 32-bit; the register may hold them
        // zero- or sign-extended.
        abi::AUDIT_ARCH_I386 => (Abi::I386, u64::from(nr as u32)),
        abi::AUDIT_ARCH_AARCH64 => (Abi::Aarch64, nr),
        _ => return None,
    };
    if nr >= NR_LIMIT {
        return None;
    }
    u32::try_from(nr).ok().map(|nr| (abi, nr))
}

fn event_msg(tid: i32) -> Result<libc::c_ulong> {
    let mut msg: libc::c_ulong = 0;
    // SAFETY: the kernel writes one unsigned long to `msg`.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_GETEVENTMSG,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            &mut msg as *mut libc::c_ulong,
        )
    };
    if r != 0 {
        return Err(ptrace_err("PTRACE_GETEVENTMSG", tid));
    }
    Ok(msg)
}

/// A stop with a stop signal is a group-stop when the task has no pending
/// siginfo (`PTRACE_GETSIGINFO` fails with `EINVAL`); otherwise it is a
/// signal-delivery-stop.
fn is_group_stop(tid: i32) -> bool {
    // SAFETY: an all-zero siginfo_t is a valid value.
    let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes one siginfo_t to `si`.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_GETSIGINFO,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            &mut si as *mut libc::siginfo_t,
        )
    };
    r != 0 && errno() == libc::EINVAL
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::process::Command;

    fn argv(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn calls(obs: &Observation, abi: Abi, nr: u32) -> u64 {
        obs.syscalls
            .get(&schemas::SyscallKey { abi, nr })
            .map_or(0, |u| u.calls)
    }

    fn phases(obs: &Observation, abi: Abi, nr: u32) -> schemas::PhaseSet {
        obs.syscalls
            .get(&schemas::SyscallKey { abi, nr })
            .map(|u| u.phases)
            .unwrap_or_default()
    }

    /// A scratch directory, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let d =
                std::env::temp_dir().join(format!("sandmine-ptrace-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).expect("create temp dir");
            TempDir(d)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Compile `src` with `cc` into `dir`; returns the binary's path.
    fn compile(dir: &TempDir, name: &str, src: &str, extra: &[&str]) -> PathBuf {
        let c = dir.0.join(format!("{name}.c"));
        let bin = dir.0.join(name);
        std::fs::write(&c, src).expect("write C source");
        let out = Command::new("cc")
            .args(["-O2", "-o"])
            .arg(&bin)
            .arg(&c)
            .args(extra)
            .output()
            .expect("run cc");
        assert!(
            out.status.success(),
            "cc failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        bin
    }

    /// Run to completion, with a watchdog so a tracer bug fails the test
    /// instead of hanging it.
    fn run(args: Vec<OsString>, opts: &PtraceOptions) -> (Observation, i32) {
        let s = PtraceSession::spawn(&args, opts).expect("spawn");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !s.finished() {
            if Instant::now() > deadline {
                s.stop(Duration::from_millis(100));
                panic!("traced command {args:?} did not finish");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        s.wait().expect("wait")
    }

    const X86_64_EXECVE: u32 = 59;
    const X86_64_VFORK: u32 = 58;
    const X86_64_WAIT4: u32 = 61;
    const X86_64_EXIT_GROUP: u32 = 231;
    const X86_64_GETPPID: u32 = 110;
    const X86_64_CLONE: u32 = 56;
    const X86_64_CLONE3: u32 = 435;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn follows_children_and_grandchildren() {
        // dash: the outer sh vforks the inner sh, which vforks two
        // /bin/true (grandchildren), and each waits with wait4 (checked
        // with `strace -f`).
        let (obs, status) = run(
            argv(&["sh", "-c", "/bin/sh -c '/bin/true; /bin/true'; true"]),
            &PtraceOptions::default(),
        );
        assert_eq!(status, 0);
        let exec = phases(&obs, Abi::X86_64, X86_64_EXECVE);
        assert!(
            exec.contains(Phase::Runtime) && exec.contains(Phase::Image),
            "{obs:?}"
        );
        // The launcher's execve, the inner sh's and the two /bin/true's.
        assert_eq!(calls(&obs, Abi::X86_64, X86_64_EXECVE), 4, "{obs:?}");
        // Four processes each end with exit_group: the grandchildren's calls
        // are in.
        assert_eq!(calls(&obs, Abi::X86_64, X86_64_EXIT_GROUP), 4, "{obs:?}");
        assert!(calls(&obs, Abi::X86_64, X86_64_WAIT4) >= 2, "{obs:?}");
        assert!(calls(&obs, Abi::X86_64, X86_64_VFORK) >= 2, "{obs:?}");
        // Only the launcher's execve is in the Runtime phase.
        assert_eq!(obs.count_in(Phase::Runtime), 1);
        assert_eq!(obs.out_of_range, 0);
    }

    const GETPPID_LOOP: &str = r#"
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000;
    for (long i = 0; i < n; i++) syscall(SYS_getppid);
    return 0;
}
"#;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn exact_counts() {
        // glibc's start-up never calls getppid (checked with strace).
        let dir = TempDir::new("getppid");
        let bin = compile(&dir, "getppid", GETPPID_LOOP, &[]);
        let (obs, status) = run(
            vec![bin.into_os_string(), "1000".into()],
            &PtraceOptions::default(),
        );
        assert_eq!(status, 0);
        assert_eq!(calls(&obs, Abi::X86_64, X86_64_GETPPID), 1000, "{obs:?}");
        assert_eq!(
            phases(&obs, Abi::X86_64, X86_64_GETPPID),
            schemas::PhaseSet(Phase::Image.bit())
        );
        // One execve, made before the image: Runtime only.
        assert_eq!(calls(&obs, Abi::X86_64, X86_64_EXECVE), 1);
        assert_eq!(
            phases(&obs, Abi::X86_64, X86_64_EXECVE),
            schemas::PhaseSet(Phase::Runtime.bit())
        );
        assert_eq!(calls(&obs, Abi::X86_64, X86_64_EXIT_GROUP), 1);
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn i386_int80_from_64_bit_code() {
        let dir = TempDir::new("int80");
        let src = r#"
int main(void) {
    for (int i = 0; i < 3; i++) {
        long r;
        __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
        if (r <= 0) return 1;
    }
    return 0;
}
"#;
        let bin = compile(&dir, "int80", src, &[]);
        let (obs, status) = run(vec![bin.into_os_string()], &PtraceOptions::default());
        assert_eq!(
            status, 0,
            "int 0x80 getpid failed (kernel without IA32 emulation?)"
        );
        assert_eq!(calls(&obs, Abi::I386, 20), 3, "{obs:?}");
        // And not mistaken for x86_64 syscall 20 (writev).
        assert_eq!(calls(&obs, Abi::X86_64, 20), 0, "{obs:?}");
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn threads() {
        let dir = TempDir::new("threads");
        let src = r#"
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>
static void *work(void *arg) {
    (void)arg;
    for (int i = 0; i < 100; i++) syscall(SYS_getppid);
    return 0;
}
int main(void) {
    pthread_t t[4];
    for (int i = 0; i < 4; i++) if (pthread_create(&t[i], 0, work, 0)) return 1;
    for (int i = 0; i < 4; i++) pthread_join(t[i], 0);
    return 0;
}
"#;
        let bin = compile(&dir, "threads", src, &["-pthread"]);
        let (obs, status) = run(vec![bin.into_os_string()], &PtraceOptions::default());
        assert_eq!(status, 0);
        assert_eq!(calls(&obs, Abi::X86_64, X86_64_GETPPID), 400, "{obs:?}");
        assert!(
            calls(&obs, Abi::X86_64, X86_64_CLONE3) + calls(&obs, Abi::X86_64, X86_64_CLONE) >= 4,
            "{obs:?}"
        );
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn stop_terminates_the_workload() {
        let s = PtraceSession::spawn(&argv(&["sleep", "100"]), &PtraceOptions::default())
            .expect("spawn");
        assert!(s.pid() > 0);
        // Let sleep reach its nanosleep.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !s
            .snapshot()
            .syscalls
            .keys()
            .any(|k| k.abi == Abi::X86_64 && (k.nr == 35 || k.nr == 230))
        {
            assert!(
                Instant::now() < deadline,
                "sleep never slept: {:?}",
                s.snapshot()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!s.finished());
        let t0 = Instant::now();
        s.stop(Duration::from_secs(1));
        let (obs, status) = s.wait().expect("wait");
        assert!(
            t0.elapsed() < Duration::from_millis(900),
            "SIGTERM alone should have ended sleep: {:?}",
            t0.elapsed()
        );
        assert_eq!(status, 128 + libc::SIGTERM);
        assert!(
            calls(&obs, Abi::X86_64, 35) + calls(&obs, Abi::X86_64, 230) >= 1,
            "{obs:?}"
        );
    }

    #[test]
    fn stop_kills_after_grace() {
        // The shell ignores SIGTERM; SIGKILL ends it after the grace.
        let s = PtraceSession::spawn(
            &argv(&["sh", "-c", "trap '' TERM; while :; do sleep 1; done"]),
            &PtraceOptions::default(),
        )
        .expect("spawn");
        std::thread::sleep(Duration::from_millis(200));
        let t0 = Instant::now();
        s.stop(Duration::from_millis(300));
        let (_, status) = s.wait().expect("wait");
        assert!(t0.elapsed() >= Duration::from_millis(300));
        assert!(t0.elapsed() < Duration::from_secs(5));
        assert_eq!(status, 128 + libc::SIGKILL);
    }

    #[test]
    fn missing_command_is_a_spawn_error() {
        // Documented choice: resolved on PATH before forking.
        for cmd in ["sandmine-no-such-command-xyz", "/nonexistent/sandmine-xyz"] {
            match PtraceSession::spawn(&argv(&[cmd]), &PtraceOptions::default()) {
                Err(CollectError::Spawn { cmd: c, source }) => {
                    assert_eq!(c, cmd);
                    assert_eq!(source.kind(), io::ErrorKind::NotFound, "{source}");
                }
                Err(e) => panic!("wrong error: {e}"),
                Ok(_) => panic!("spawned {cmd}"),
            }
        }
        assert!(matches!(
            PtraceSession::spawn(&[], &PtraceOptions::default()),
            Err(CollectError::Spawn { .. })
        ));
        // A directory is not executable.
        assert!(matches!(
            PtraceSession::spawn(&argv(&["/"]), &PtraceOptions::default()),
            Err(CollectError::Spawn { .. })
        ));
    }

    #[test]
    fn signals_and_exit_codes() {
        // A signal sent to a tracee is re-injected: the trap runs.
        let (_, status) = run(
            argv(&["sh", "-c", "trap 'exit 7' USR1; kill -USR1 $$; exit 1"]),
            &PtraceOptions::default(),
        );
        assert_eq!(status, 7);
        // A job-control stop does not hang the tracee (it is resumed).
        let (_, status) = run(
            argv(&["sh", "-c", "kill -STOP $$; exit 5"]),
            &PtraceOptions::default(),
        );
        assert_eq!(status, 5);
        // Death by signal: 128 + signal.
        let (_, status) = run(
            argv(&["sh", "-c", "kill -KILL $$"]),
            &PtraceOptions::default(),
        );
        assert_eq!(status, 128 + libc::SIGKILL);
    }

    #[test]
    fn env_clear() {
        let script = "[ -z \"$SANDMINE_PTRACE_TEST\" ]";
        // Set in this process for both runs; only the cleared one lacks it.
        std::env::set_var("SANDMINE_PTRACE_TEST", "1");
        let (_, kept) = run(argv(&["sh", "-c", script]), &PtraceOptions::default());
        let (_, cleared) = run(
            argv(&["sh", "-c", script]),
            &PtraceOptions {
                env_clear: true,
                ..PtraceOptions::default()
            },
        );
        assert_eq!(kept, 1);
        assert_eq!(cleared, 0);
    }

    #[test]
    fn classify_numbers() {
        assert_eq!(
            classify(abi::AUDIT_ARCH_X86_64, 59),
            Some((Abi::X86_64, 59))
        );
        assert_eq!(
            classify(abi::AUDIT_ARCH_X86_64, 0x4000_0000 | 520),
            Some((Abi::X32, 520))
        );
        assert_eq!(classify(abi::AUDIT_ARCH_I386, 20), Some((Abi::I386, 20)));
        assert_eq!(
            classify(abi::AUDIT_ARCH_AARCH64, 221),
            Some((Abi::Aarch64, 221))
        );
        assert_eq!(classify(abi::AUDIT_ARCH_X86_64, u64::MAX), None);
        assert_eq!(classify(abi::AUDIT_ARCH_X86_64, 1024), None);
        assert_eq!(classify(abi::AUDIT_ARCH_I386, 0xffff_ffff), None);
        assert_eq!(classify(0x4000_0028 /* AUDIT_ARCH_ARM */, 1), None);
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn out_of_range_numbers() {
        let dir = TempDir::new("oor");
        let src = r#"
#include <sys/syscall.h>
#include <unistd.h>
int main(void) { syscall(-1L); syscall(5000L); syscall(0x40000000L | 5000L); return 0; }
"#;
        let bin = compile(&dir, "oor", src, &[]);
        let (obs, status) = run(vec![bin.into_os_string()], &PtraceOptions::default());
        assert_eq!(status, 0);
        assert_eq!(obs.out_of_range, 3, "{obs:?}");
    }
}
