//! [`Watch`]: the change feed of a key prefix, shared by the backends.
//!
//! A backend keeps a change log (every event of every revision it still keeps) and, after each
//! commit, broadcasts what it committed. A watch subscribes to the broadcast *before* it reads
//! the log, so every commit is either in what it read (it committed before the read began) or in
//! what it receives (it was broadcast after the subscription), and usually both: the watch keeps
//! the next revision it owes and drops anything older, so it delivers each revision once, in
//! order. A watch that falls behind the broadcast (its buffer overflowed) subscribes afresh and
//! goes back to the log from its next revision, by the same argument; if the log no longer
//! reaches back that far it ends with [`StoreError::Compacted`].

use crate::{BoxFuture, Event, Revision, StoreError};
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::broadcast;

/// At most this many revisions are read from a change log at once.
pub(crate) const PAGE_REVISIONS: u64 = 1024;

/// What one commit batch changed, as broadcast to live watches: revisions `first..=last`, all
/// of which are in this message (a revision without events is simply absent from `events`).
#[derive(Debug)]
pub(crate) struct Change {
    pub first: Revision,
    pub last: Revision,
    pub events: Vec<Event>,
}

/// Part of a change log.
pub(crate) struct Page {
    /// The events under the prefix at revisions `from..=through`, in order.
    pub events: Vec<Event>,
    /// The last revision this page covers (below `from` when `from` is in the future).
    pub through: Revision,
    /// The newest committed revision when the page was read.
    pub head: Revision,
}

/// A backend's change log, as a watch reads it.
pub(crate) trait History: Send + Sync + 'static {
    /// The events under `prefix` from revision `from` on, up to [`PAGE_REVISIONS`] revisions;
    /// [`StoreError::Compacted`] when the log no longer holds revision `from`.
    fn read(&self, prefix: String, from: Revision) -> BoxFuture<'static, Result<Page, StoreError>>;
}

/// The sending side of live changes.
pub(crate) type Feed = broadcast::Sender<Arc<Change>>;

/// A stream of the changes under a key prefix, in revision order: first those already in the
/// store's history, then live ones as they commit. Made by [`crate::Store::watch`].
///
/// Each event is delivered once: no revision is skipped and none is repeated. The stream ends
/// (`None`) only after yielding an error: [`StoreError::Compacted`] if the watch fell so far
/// behind that the history it still needed was compacted away (start again from a fresh
/// [`crate::Store::range`]), or [`StoreError::Closed`] when the store closes.
pub struct Watch {
    prefix: String,
    next_revision: Revision,
    ready: VecDeque<Event>,
    live: broadcast::Receiver<Arc<Change>>,
    history: Arc<dyn History>,
    replaying: bool,
    ended: bool,
    /// Bytes cut from the front of every delivered key (a namespace view's prefix).
    strip: usize,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("prefix", &self.prefix)
            .field("next_revision", &self.next_revision)
            .field("ready", &self.ready.len())
            .field("replaying", &self.replaying)
            .field("ended", &self.ended)
            .finish()
    }
}

impl Watch {
    /// Starts a watch on `live` (which must already be subscribed) and reads the first page of
    /// `history`, so that a compacted `from` fails here rather than on the first event.
    pub(crate) async fn start(
        prefix: &str,
        from: Revision,
        live: broadcast::Receiver<Arc<Change>>,
        history: Arc<dyn History>,
    ) -> Result<Watch, StoreError> {
        let mut watch = Watch {
            prefix: prefix.to_string(),
            // Revision 0 holds no change: "from 0" is "from the first revision".
            next_revision: from.max(1),
            ready: VecDeque::new(),
            live,
            history,
            replaying: true,
            ended: false,
            strip: 0,
        };
        watch.replay_page().await?;
        Ok(watch)
    }

    /// The prefix this watch follows.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The revision of the next event this watch will deliver. After an error (when nothing
    /// is left to deliver), every revision before it was delivered in full, and a new watch
    /// from here resumes exactly where this one stopped, if the store still keeps that
    /// revision. (Between two events of one revision, it is that revision.)
    pub fn next_revision(&self) -> Revision {
        self.ready
            .front()
            .map_or(self.next_revision, Event::revision)
    }

    /// The same watch, delivering keys without their first `n` bytes: what a view of the
    /// store under a prefix of `n` bytes hands its callers. Every key a watch delivers starts
    /// with its prefix, so a view's own prefix is always there to cut.
    pub fn stripping(mut self, n: usize) -> Watch {
        self.strip += n;
        self
    }

    /// The next event; `None` once the watch has ended (after an error).
    pub async fn next(&mut self) -> Option<Result<Event, StoreError>> {
        loop {
            if let Some(mut event) = self.ready.pop_front() {
                if self.strip > 0 {
                    let cut = |k: &mut String, n: usize| {
                        *k = k.get(n..).unwrap_or_default().to_string();
                    };
                    match &mut event {
                        Event::Put(kv) => cut(&mut kv.key, self.strip),
                        Event::Delete { key, .. } => cut(key, self.strip),
                    }
                }
                return Some(Ok(event));
            }
            if self.ended {
                return None;
            }
            if self.replaying {
                if let Err(e) = self.replay_page().await {
                    self.ended = true;
                    return Some(Err(e));
                }
                continue;
            }
            match self.live.recv().await {
                Ok(change) => self.take_live(&change),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(
                        prefix = %self.prefix,
                        missed,
                        "watch fell behind; replaying from the change log"
                    );
                    // As at the start: subscribe afresh (skipping what is still queued), then
                    // read the log, which holds everything committed before the subscription.
                    self.live = self.live.resubscribe();
                    self.replaying = true;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    self.ended = true;
                    return Some(Err(StoreError::Closed));
                }
            }
        }
    }

    async fn replay_page(&mut self) -> Result<(), StoreError> {
        let page = self
            .history
            .read(self.prefix.clone(), self.next_revision)
            .await?;
        self.ready.extend(page.events);
        self.next_revision = self.next_revision.max(page.through + 1);
        if page.through >= page.head {
            self.replaying = false;
        }
        Ok(())
    }

    fn take_live(&mut self, change: &Change) {
        if change.first > self.next_revision {
            // Revisions between were neither read nor received: cannot happen while the
            // backends broadcast every commit, but the log can fill the gap if it does.
            self.replaying = true;
            return;
        }
        if change.last < self.next_revision {
            return;
        }
        let from = self.next_revision;
        self.ready.extend(
            change
                .events
                .iter()
                .filter(|e| e.revision() >= from && e.key().starts_with(&self.prefix))
                .cloned(),
        );
        self.next_revision = change.last + 1;
    }
}
