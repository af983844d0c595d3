//! Running the real binaries: spawn, read their machine-readable stdout lines, kill them.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

pub struct Proc {
    pub child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    pub seen: Vec<String>,
}

impl Proc {
    pub fn spawn(name: &str, args: &[&str]) -> Self {
        Self::spawn_with_env(name, args, &[])
    }

    pub fn spawn_with_env(name: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(super::bin(name))
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        Self { child, lines: BufReader::new(stdout).lines(), seen: Vec::new() }
    }

    /// Wait for a stdout line `PREFIX rest` and return `rest` (the lines before it are kept in `seen`).
    pub async fn line(&mut self, prefix: &str) -> String {
        let wanted = format!("{prefix} ");
        let found = tokio::time::timeout(Duration::from_secs(20), async {
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
            Ok(None) => panic!("stdout ended without a {prefix:?} line; saw {:?}", self.seen),
            Err(_) => panic!("no {prefix:?} line within 20 s; saw {:?}", self.seen),
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
