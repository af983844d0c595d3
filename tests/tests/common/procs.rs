//! Running the real binaries: spawn, read their machine-readable stdout lines, kill them. A program
//! started with [`Proc::spawn_logged`] also keeps everything it writes to stderr, for tests that read
//! its logs.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// A logged program's stderr as collected so far, and the task collecting it.
struct KeptStderr {
    bytes: Arc<Mutex<Vec<u8>>>,
    reader: tokio::task::JoinHandle<()>,
}

pub struct Proc {
    pub child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    pub seen: Vec<String>,
    /// How long [`Proc::line`] waits.
    line_wait: Duration,
    /// Logged programs only.
    stderr: Option<KeptStderr>,
}

impl Proc {
    pub fn spawn(name: &str, args: &[&str]) -> Self {
        Self::spawn_with_env(name, args, &[])
    }

    pub fn spawn_with_env(name: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(super::bin(name));
        cmd.args(args).envs(env.iter().copied()).stderr(Stdio::inherit());
        Self::start(&mut cmd, Duration::from_secs(20))
    }

    /// Like [`Proc::spawn_with_env`], keeping stderr (see [`Proc::finish`]).
    pub fn spawn_logged(name: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn_command_logged(Command::new(super::bin(name)).args(args).envs(env.iter().copied()))
    }

    /// `cmd` as it is (environment, umask…), keeping stderr. Programs logging at trace level start slower:
    /// their lines are waited for longer.
    pub fn spawn_command_logged(cmd: &mut Command) -> Self {
        let mut proc = Self::start(cmd.stderr(Stdio::piped()), Duration::from_secs(30));
        let mut err = proc.child.stderr.take().expect("piped stderr");
        let kept = Arc::new(Mutex::new(Vec::new()));
        let sink = kept.clone();
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 8192];
            while let Ok(n) = err.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock().expect("lock").extend_from_slice(&buf[..n]);
            }
        });
        proc.stderr = Some(KeptStderr { bytes: kept, reader });
        proc
    }

    fn start(cmd: &mut Command, line_wait: Duration) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        Self { child, lines: BufReader::new(stdout).lines(), seen: Vec::new(), line_wait, stderr: None }
    }

    /// What a logged program wrote to stderr so far (empty for others: theirs goes to the test's).
    pub fn stderr_now(&self) -> String {
        self.stderr
            .as_ref()
            .map(|kept| String::from_utf8_lossy(&kept.bytes.lock().expect("lock")).into_owned())
            .unwrap_or_default()
    }

    /// Stop the program (if it still runs) and return all it wrote to stderr.
    pub async fn finish(mut self) -> String {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await;
        if let Some(kept) = &mut self.stderr {
            let _ = tokio::time::timeout(Duration::from_secs(20), &mut kept.reader).await;
        }
        self.stderr_now()
    }

    /// Wait for a stdout line `PREFIX rest` and return `rest` (the lines before it are kept in `seen`).
    pub async fn line(&mut self, prefix: &str) -> String {
        let wanted = format!("{prefix} ");
        let found = tokio::time::timeout(self.line_wait, async {
            while let Ok(Some(line)) = self.lines.next_line().await {
                self.seen.push(line.clone());
                if line == prefix {
                    return Some(String::new());
                }
                if let Some(rest) = line.strip_prefix(&wanted) {
                    return Some(rest.to_owned());
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(rest)) => rest,
            Ok(None) => {
                panic!(
                    "stdout ended without a {prefix:?} line; saw {:?}; stderr: {}",
                    self.seen,
                    self.stderr_now()
                )
            }
            Err(_) => panic!(
                "no {prefix:?} line within {:?}; saw {:?}; stderr: {}",
                self.line_wait,
                self.seen,
                self.stderr_now()
            ),
        }
    }

    /// The rest of stdout, until the process closes it.
    pub async fn rest(&mut self) -> Vec<String> {
        while let Ok(Ok(Some(line))) =
            tokio::time::timeout(Duration::from_secs(20), self.lines.next_line()).await
        {
            self.seen.push(line);
        }
        self.seen.clone()
    }

    /// SIGINT, as Ctrl-C in its terminal: the program ends the way its user would end it.
    pub fn interrupt(&self) {
        let pid = self.child.id().expect("still running").to_string();
        let sent = std::process::Command::new("kill").args(["-INT", &pid]).status().expect("kill");
        assert!(sent.success(), "kill -INT {pid}");
    }

    /// SIGKILL: the process vanishes without a word to anyone.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("kill");
    }

    pub async fn wait(&mut self) -> std::process::ExitStatus {
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("exits")
            .expect("status")
    }
}

/// A `tether-relay` process on loopback with its data in `data_dir`, and what it printed: where it
/// listens and its certificate's fingerprint.
pub struct RelayProc {
    pub proc: Proc,
    pub addr: String,
    pub fingerprint: String,
}

impl RelayProc {
    pub async fn start(data_dir: &std::path::Path) -> Self {
        let dir = data_dir.to_str().expect("utf-8 path");
        let mut proc = Proc::spawn("tether-relay", &["--listen", "127.0.0.1:0", "--data-dir", dir]);
        let addr = proc.line("listening").await;
        let fingerprint = proc.line("fingerprint").await;
        Self { proc, addr, fingerprint }
    }
}
