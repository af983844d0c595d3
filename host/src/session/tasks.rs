//! A participant's tasks, in one [`JoinSet`], each tagged with what it is, so the session can tell
//! which one finished, stop all but the ones the end still needs (our `Bye`'s writer, a leaving
//! viewer's input), and wait for the rest to stop.

use std::collections::HashMap;
use std::future::Future;

use tokio::task::{AbortHandle, JoinSet};

use super::Step;

/// What a task of the session does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Task {
    Video,
    Input,
    Control,
    Writer,
    Cursor,
    Monitors,
    Requests,
    Files,
    /// Tells the viewer who is in the session.
    Participants,
}

#[derive(Default)]
pub(super) struct Tasks {
    set: JoinSet<(Task, Step)>,
    running: HashMap<Task, AbortHandle>,
}

impl Tasks {
    pub fn spawn(&mut self, task: Task, run: impl Future<Output = Step> + Send + 'static) {
        let handle = self.set.spawn(async move { (task, run.await) });
        self.running.insert(task, handle);
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Has `task` finished (or was it stopped)?
    pub fn finished(&self, task: Task) -> bool {
        !self.running.contains_key(&task)
    }

    /// The next task to finish, and how; `None` for one that was stopped.
    pub async fn next(&mut self) -> Option<Step> {
        match self.set.join_next().await? {
            Ok((task, step)) => {
                self.running.remove(&task);
                Some(step)
            }
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => None,
        }
    }

    /// Stop every task but `keep` and `also`.
    pub fn stop_all_but(&mut self, keep: Task, also: Option<Task>) {
        self.running.retain(|task, handle| {
            let kept = *task == keep || Some(*task) == also;
            if !kept {
                handle.abort();
            }
            kept
        });
    }

    /// Stop them all and wait until they have.
    pub async fn shutdown(&mut self) {
        self.running.clear();
        self.set.shutdown().await;
    }
}
