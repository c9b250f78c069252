//! Command tools: a program run once per call, parameters as JSON on stdin, the result as JSON
//! on stdout, in a process group of its own that ends with the call.

use std::path::PathBuf;
use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::tool::{BoxFuture, Tool, ToolError};

/// A program run once per call.
pub struct CommandTool {
    pub program: PathBuf,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
}

/// How much of a failing command's stderr is kept in its error.
const MAX_STDERR: usize = 4000;
/// The most a command tool may print on stdout: its result is kept in memory, in the checkpoint
/// and in the run log.
const MAX_OUTPUT: usize = 64 << 20;
/// How long the pipes of a tool that exited are still read (a grandchild may hold them open).
const PIPE_GRACE: std::time::Duration = std::time::Duration::from_millis(300);

/// A pipe read in the background into memory: at most `limit` bytes (then the process group is
/// killed), the last [`MAX_STDERR`] bytes when unlimited.
struct Captured {
    bytes: std::sync::Arc<std::sync::Mutex<(Vec<u8>, bool)>>,
    task: tokio::task::JoinHandle<()>,
}

impl Captured {
    fn start(
        mut pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
        limit: usize,
        group: Option<u32>,
    ) -> Captured {
        use tokio::io::AsyncReadExt;
        let bytes = std::sync::Arc::new(std::sync::Mutex::new((Vec::new(), false)));
        let shared = bytes.clone();
        let task = tokio::spawn(async move {
            let mut chunk = vec![0u8; 64 << 10];
            while let Ok(n @ 1..) = pipe.read(&mut chunk).await {
                let mut guard = shared.lock().expect("not poisoned");
                let (buf, overflow) = &mut *guard;
                buf.extend_from_slice(&chunk[..n]);
                if limit == usize::MAX && buf.len() > 2 * MAX_STDERR {
                    buf.drain(..buf.len() - MAX_STDERR);
                }
                if buf.len() > limit {
                    *overflow = true;
                    buf.truncate(limit);
                    if let Some(pid) = group {
                        kill_group(pid);
                    }
                    return;
                }
            }
        });
        Captured { bytes, task }
    }

    /// What was read, once the pipe closed or a moment passed; and whether it overflowed.
    async fn finish(self) -> (Vec<u8>, bool) {
        let mut task = self.task;
        if tokio::time::timeout(PIPE_GRACE, &mut task).await.is_err() {
            task.abort();
        }
        std::mem::take(&mut *self.bytes.lock().expect("not poisoned"))
    }
}

impl Tool for CommandTool {
    fn call<'a>(&'a self, params: &'a Value) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            let mut command = tokio::process::Command::new(&self.program);
            command
                .args(&self.argv[1..])
                .envs(self.env.iter().map(|(k, v)| (k, v)))
                .current_dir(&self.cwd)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                // Its own process group, so that a timeout or Ctrl-C can kill what it started.
                .process_group(0)
                .kill_on_drop(true);
            // Killed with patterns, however patterns ends (SIGKILL included): never an orphan that
            // a `--resume` would run a second time beside.
            let parent = std::process::id();
            // SAFETY: between fork and exec only async-signal-safe calls (prctl, getppid).
            unsafe {
                command.pre_exec(move || {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    match libc::getppid() as u32 == parent {
                        true => Ok(()),
                        false => Err(std::io::Error::other("patterns ended")),
                    }
                })
            };
            let mut child = command
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", self.argv[0]))?;
            let _group = ProcessGroup(child.id());
            let mut stdin = child.stdin.take().expect("stdin is piped");
            let input = params.to_string();
            let feed = async move {
                // A tool that ignores its input may exit before reading it: not an error.
                stdin.write_all(input.as_bytes()).await.ok();
            };
            let stdout = Captured::start(
                child.stdout.take().expect("stdout is piped"),
                MAX_OUTPUT,
                child.id(),
            );
            let stderr = Captured::start(
                child.stderr.take().expect("stderr is piped"),
                usize::MAX,
                None,
            );
            let (_, status) = tokio::join!(feed, child.wait());
            let status = status.map_err(|e| format!("waiting for {}: {e}", self.argv[0]))?;
            // The pipes close when every process holding them has closed them: a grandchild
            // left running in the background keeps them open. What came by a moment after the
            // tool exited is its output.
            let (stdout, overflow) = stdout.finish().await;
            let (stderr, _) = stderr.finish().await;
            if overflow {
                return Err(format!(
                    "{} printed more than {} MB on stdout; it was stopped",
                    self.argv[0],
                    MAX_OUTPUT >> 20
                )
                .into());
            }
            let output = std::process::Output {
                status,
                stdout,
                stderr,
            };
            if !output.status.success() {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let stderr = stderr.trim();
                let tail =
                    &stderr[stderr.floor_char_boundary(stderr.len().saturating_sub(MAX_STDERR))..];
                let status = match output.status.code() {
                    Some(code) => format!("exit status {code}"),
                    None => "killed by a signal".to_string(),
                };
                return Err(if tail.is_empty() {
                    status
                } else {
                    format!("{status}: {tail}")
                }
                .into());
            }
            let stdout = String::from_utf8_lossy(&output.stdout);
            Ok(serde_json::from_str(stdout.trim())
                .unwrap_or_else(|_| json!({ "output": stdout.trim_end() })))
        })
    }

    fn describe(&self) -> String {
        let mut s = format!("command {:?}", self.argv);
        if !self.env.is_empty() {
            let keys: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
            s.push_str(&format!(" env {}", keys.join(",")));
        }
        s
    }
}

/// Kills a tool's process group when its call ends: a cancelled call's (timeout, abort,
/// Ctrl-C) while it runs, and after a tool exits, what it left running in the background, so
/// that nothing of a step outlives it (a daemon a tool means to leave must leave its group:
/// `setsid`).
struct ProcessGroup(Option<u32>);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            kill_group(pid);
        }
    }
}

/// Kills the process group that `pid` leads.
pub fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) with a negative pid signals the group the child leads; it has no
        // memory effects. The group exists until its last member is reaped.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
}
