//! The `awslogs` log driver, ECS's way: containers write to Docker's json-file, and the agent
//! reads that file itself (no second copy through dockerd's logs API) and ships its lines in
//! batches to the control plane, which stores them in CloudWatch Logs as the task's execution
//! role.
//!
//! Exactly once, across agent restarts: a batch names the byte range of the file it comes
//! from, and the server stores it only where the stream's record of that file ends, answering
//! how far it holds it. A follower starts by asking that, and goes on from there; nothing is
//! kept on the agent. The file is the buffer: a server that is away delays shipping, and the
//! container never waits for it (ECS's `non-blocking` mode, with the disk as the buffer).
//!
//! Stream names are ECS's: `<awslogs-stream-prefix>/<container name>/<task id>`, or the
//! container's id without a prefix. `awslogs-create-group: true` creates the group.
//! `awslogs-multiline-pattern` (a regular expression) or `awslogs-datetime-format` (strftime)
//! say where an event starts; the lines after it, up to the next start, are one event.

use crate::backoff::Backoff;
use crate::registry::TaskRegistry;
use crate::runtime::{parse_rfc3339_ns, ContainerRuntime};
use gantry_api::agent::{AssignedTask, ShipRequest, ShipResponse, LOGS_PATH};
use gantry_api::model::LogDriver;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// At most this many events, and bytes (messages plus 26 each), a batch.
const MAX_EVENTS: usize = 10_000;
const MAX_BYTES: usize = 1_000_000;
/// At most this much of the file is read at once.
const READ_CHUNK: usize = 1 << 20;
/// A multi-line event still open after this long is shipped as it is.
const FLUSH_AFTER: Duration = Duration::from_secs(5);

/// Where a container's output goes.
#[derive(Debug, Clone)]
pub struct Destination {
    pub group: String,
    pub stream: String,
    pub create_group: bool,
    /// Where a multi-line event starts (`awslogs-multiline-pattern`, or
    /// `awslogs-datetime-format` made a pattern): lines that do not match join the event before.
    pub start: Option<regex::Regex>,
}

/// Docker's `awslogs-datetime-format` (strftime) as a pattern matching the start of a line.
pub fn datetime_pattern(format: &str) -> String {
    let mut out = String::from("^");
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push_str(&regex::escape(&c.to_string()));
            continue;
        }
        let piece = match chars.next() {
            Some('a') => r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)",
            Some('A') => r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)",
            Some('b') => r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)",
            Some('B') => {
                r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
            }
            Some('d') => r"(?:0[1-9]|[1,2][0-9]|3[0,1])",
            Some('e') => r"(?:[1-9]|[1,2][0-9]|3[0,1])",
            Some('f') => r"(?:[0-9]{1,6})",
            Some('H') | Some('k') => r"(?:2[0-3]|[0,1][0-9])",
            Some('I') | Some('l') => r"(?:0[0-9]|1[0-2])",
            Some('j') => r"(?:0[0-9][1-9]|[1,2][0-9][0-9]|3[0-5][0-9]|36[0-6])",
            Some('L') => r"(?:[0-9]{3})",
            Some('m') => r"(?:1[0-2]|0[1-9])",
            Some('M') => r"(?:[0-5][0-9])",
            Some('p') => r"(?:AM|PM)",
            Some('S') => r"(?:[0-5][0-9]|60)",
            Some('y') => r"(?:\d{2})",
            Some('Y') => r"(?:\d{4})",
            Some('z') => r"(?:[+-][0-9]{4})",
            Some('Z') => r"(?:[A-Z]{1,5})",
            Some('%') => "%",
            Some(other) => {
                out.push_str(&regex::escape(&format!("%{other}")));
                continue;
            }
            None => "%",
        };
        out.push_str(piece);
    }
    out
}

/// The destination of container `name` (runtime id `id`) of `a`, when it logs with awslogs.
pub fn destination(a: &AssignedTask, name: &str, id: &str) -> Option<Destination> {
    let c = a
        .task_definition
        .container_definitions
        .iter()
        .flatten()
        .find(|c| c.name.as_deref() == Some(name))?;
    let log = c.log_configuration.as_ref()?;
    if log.log_driver != LogDriver::Awslogs {
        return None;
    }
    let opts = log.options.clone().unwrap_or_default();
    let group = opts.get("awslogs-group")?.clone();
    let task_id = a
        .task
        .task_arn
        .as_deref()
        .and_then(|t| t.rsplit('/').next())
        .unwrap_or_default();
    let stream = match opts.get("awslogs-stream-prefix") {
        Some(p) if !p.is_empty() => format!("{p}/{name}/{task_id}"),
        _ => id.to_string(),
    };
    // Docker's rule: the multiline pattern wins over the datetime format.
    let start = match (
        opts.get("awslogs-multiline-pattern"),
        opts.get("awslogs-datetime-format"),
    ) {
        (Some(p), _) => regex::Regex::new(&format!("^(?:{p})")).ok(),
        (None, Some(f)) => regex::Regex::new(&datetime_pattern(f)).ok(),
        (None, None) => None,
    };
    Some(Destination {
        group,
        stream,
        create_group: opts.get("awslogs-create-group").map(String::as_str) == Some("true"),
        start,
    })
}

/// One line of Docker's json-file log, `{"log": "...", "stream": "stdout", "time": "..."}`:
/// the text (its newline, if any, still on) and the time in milliseconds.
pub fn parse_line(line: &[u8]) -> Option<(String, i64)> {
    #[derive(serde::Deserialize)]
    struct Line<'a> {
        log: String,
        time: &'a str,
    }
    let l: Line<'_> = serde_json::from_slice(line).ok()?;
    let ms = parse_rfc3339_ns(l.time)? / 1_000_000;
    Some((l.log, ms))
}

/// A batch cut from the file's bytes: the events, and how many bytes they took (complete
/// events only: a line Docker split, without its newline yet, waits for its end; so does a
/// multi-line event until the next one starts, or `flush`).
#[derive(Debug, Default, PartialEq)]
pub struct Cut {
    pub events: Vec<(i64, String)>,
    pub consumed: usize,
}

/// The complete lines of `buf`, as they are asked for: (text without its newline, or `None`
/// for a line that is not Docker's; time in milliseconds; where the line ends in `buf`).
struct Lines<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Iterator for Lines<'_> {
    type Item = (Option<String>, i64, usize);

    fn next(&mut self) -> Option<Self::Item> {
        // A line Docker split (16 KiB at most each) goes on in the next ones, up to a newline.
        let mut pending: Option<(String, i64)> = None;
        loop {
            let nl = memchr::memchr(b'\n', &self.buf[self.pos..])?;
            let line = &self.buf[self.pos..self.pos + nl];
            self.pos += nl + 1;
            let Some((text, ms)) = parse_line(line) else {
                if pending.is_none() {
                    return Some((None, 0, self.pos));
                }
                continue;
            };
            let (mut text, ms) = match pending.take() {
                Some((mut acc, first)) => {
                    acc.push_str(&text);
                    (acc, first)
                }
                None => (text, ms),
            };
            if !text.ends_with('\n') {
                pending = Some((text, ms));
                continue;
            }
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
            return Some((Some(text), ms, self.pos));
        }
    }
}

/// Cuts the next batch from `buf` (bytes of the file from the last shipped point).
pub fn cut(buf: &[u8], start: Option<&regex::Regex>, flush: bool) -> Cut {
    let mut out = Cut::default();
    let mut bytes = 0usize;
    // The event being built: text, time, where it ends.
    let mut current: Option<(String, i64, usize)> = None;
    let day = 86_400_000;
    let mut full = false;
    let mut push = |out: &mut Cut, (text, ms, end): (String, i64, usize)| -> bool {
        let size = text.len() + 26;
        let spans = out.events.first().is_some_and(|(t, _)| ms - *t > day);
        if out.events.len() >= MAX_EVENTS || bytes + size > MAX_BYTES || spans {
            return false;
        }
        bytes += size;
        out.events.push((ms, text));
        out.consumed = end;
        true
    };
    for (text, ms, end) in (Lines { buf, pos: 0 }) {
        let Some(text) = text else {
            // Not a line of Docker's: skipped (with the event it interrupts, its bytes go).
            if current.is_none() {
                out.consumed = end;
            }
            continue;
        };
        match start {
            None => {
                if !push(&mut out, (text, ms, end)) {
                    full = true;
                    break;
                }
            }
            Some(re) => match current.as_mut() {
                Some(c) if !re.is_match(&text) => {
                    c.0.push('\n');
                    c.0.push_str(&text);
                    c.2 = end;
                }
                _ => {
                    if let Some(done) = current.take() {
                        if !push(&mut out, done) {
                            full = true;
                            break;
                        }
                    }
                    current = Some((text, ms, end));
                }
            },
        }
    }
    if flush && !full {
        if let Some(done) = current.take() {
            push(&mut out, done);
        }
    }
    // CloudWatch wants a batch in time order; Docker's times can step back with the clock.
    let mut last = i64::MIN;
    for e in &mut out.events {
        e.0 = e.0.max(last);
        last = e.0;
    }
    out
}

/// The client a follower ships with.
#[derive(Clone)]
pub struct Shipper {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
    pub instance: Arc<Mutex<String>>,
    /// How often a follower looks for new lines.
    pub poll: Duration,
    pub retry: Duration,
    pub retry_cap: Duration,
}

impl Shipper {
    async fn send(&self, req: &ShipRequest) -> Result<u64, String> {
        let resp = self
            .http
            .post(format!("{}{LOGS_PATH}", self.base.trim_end_matches('/')))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(30))
            .json(req)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(String::from_utf8_lossy(&body).into_owned());
        }
        serde_json::from_slice::<ShipResponse>(&body)
            .map(|r| r.stored_to)
            .map_err(|e| e.to_string())
    }

    /// Sends until the server answers, backing off between failures; `None` once the task has
    /// left the registry (its containers are gone, and their lines with them).
    async fn send_until_done(&self, req: &ShipRequest, registry: &TaskRegistry) -> Option<u64> {
        let mut backoff = Backoff::new(self.retry, self.retry_cap);
        loop {
            match self.send(req).await {
                Ok(n) => return Some(n),
                Err(_) if registry.get(&req.task_arn).is_none() => return None,
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(task = %req.task_arn, container = %req.container, error = %e, retry_in = ?delay, "shipping logs failed; the lines wait in the container's log file");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

/// Ships one container's log file from where its stream holds it, until the container has
/// stopped and every line is shipped (or the file is gone).
async fn follow(
    shipper: Shipper,
    registry: TaskRegistry,
    task_arn: String,
    container: String,
    id: String,
    path: String,
    dest: Destination,
) {
    let req = ShipRequest {
        container_instance_arn: shipper
            .instance
            .lock()
            .map(|i| i.clone())
            .unwrap_or_default(),
        task_arn: task_arn.clone(),
        container: container.clone(),
        group: dest.group.clone(),
        stream: dest.stream.clone(),
        create_group: dest.create_group,
        source: id.clone(),
        from: 0,
        to: 0,
        events: Vec::new(),
    };
    let Some(held) = shipper.send_until_done(&req, &registry).await else {
        return;
    };
    // `buf` holds the file from `base` on. One batch is in flight while the next is cut: the
    // server stores a range only where the last one ended, so they go one after the other.
    let mut base = held;
    let mut buf: Vec<u8> = Vec::new();
    let mut inflight: Option<(u64, tokio::task::JoinHandle<Option<u64>>)> = None;
    let mut pending_since: Option<Instant> = None;
    loop {
        let stopped = registry
            .get(&task_arn)
            .and_then(|t| t.container(&container).map(|c| c.last_status == "STOPPED"))
            .unwrap_or(true);
        let read = read_from(&path, base + buf.len() as u64, &mut buf).await;
        // A multi-line event goes once the next starts, the container stops, or it has
        // waited `FLUSH_AFTER` (Docker's awslogs-force-flush-interval-seconds).
        let waiting = *pending_since.get_or_insert_with(Instant::now);
        let flush = stopped || waiting.elapsed() >= FLUSH_AFTER;
        let c = cut(&buf, dest.start.as_ref(), flush);
        if let Some((to, sending)) = inflight.take() {
            let Some(stored) = sending.await.ok().flatten() else {
                return;
            };
            if stored != to {
                // The stream holds another point of the file: go on from there.
                buf.clear();
                base = stored;
                continue;
            }
        }
        if c.consumed > 0 {
            let batch = ShipRequest {
                container_instance_arn: shipper
                    .instance
                    .lock()
                    .map(|i| i.clone())
                    .unwrap_or_default(),
                from: base,
                to: base + c.consumed as u64,
                events: c.events,
                ..req.clone()
            };
            buf.drain(..c.consumed);
            base = batch.to;
            pending_since = None;
            let (shipper, registry) = (shipper.clone(), registry.clone());
            let sending =
                tokio::spawn(async move { shipper.send_until_done(&batch, &registry).await });
            inflight = Some((base, sending));
            continue;
        }
        match read {
            Ok(0) if stopped => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => tracing::warn!(%path, error = %e, "reading a container's log file failed"),
            Ok(_) => {}
        }
        tokio::time::sleep(shipper.poll).await;
    }
}

/// Appends to `buf` what the file holds from `at` (up to a chunk); returns how much.
async fn read_from(path: &str, at: u64, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut f = tokio::fs::File::open(path).await?;
    f.seek(std::io::SeekFrom::Start(at)).await?;
    let mut chunk = vec![0u8; READ_CHUNK];
    let n = f.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// Keeps a follower running for every awslogs container the registry lists, forever.
pub async fn supervise<R: ContainerRuntime>(rt: Arc<R>, registry: TaskRegistry, shipper: Shipper) {
    let mut followers: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    // Containers whose follower has shipped everything (they have stopped).
    let mut done: std::collections::HashSet<String> = Default::default();
    loop {
        followers.retain(|id, j| {
            if j.is_finished() {
                done.insert(id.clone());
            }
            !j.is_finished()
        });
        let tasks = registry.list();
        done.retain(|id| {
            tasks.iter().any(|t| {
                t.containers
                    .iter()
                    .any(|c| c.id.as_deref() == Some(id.as_str()))
            })
        });
        for t in tasks {
            for c in &t.containers {
                let Some(id) = &c.id else { continue };
                if followers.contains_key(id) || done.contains(id) {
                    continue;
                }
                let Some(dest) = destination(&t.assignment, &c.name, id) else {
                    continue;
                };
                let Ok(Some(o)) = rt.inspect(id).await else {
                    continue;
                };
                let Some(path) = o.log_path else { continue };
                if !o.started {
                    continue;
                }
                let j = tokio::spawn(follow(
                    shipper.clone(),
                    registry.clone(),
                    t.task_arn.clone(),
                    c.name.clone(),
                    id.clone(),
                    path,
                    dest,
                ));
                followers.insert(id.clone(), j);
            }
        }
        tokio::time::sleep(shipper.poll).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(log: &str, time: &str) -> String {
        format!(
            "{}\n",
            serde_json::json!({"log": log, "stream": "stdout", "time": time})
        )
    }

    #[test]
    fn complete_lines_become_events_and_split_lines_wait_for_their_end() {
        let mut file = line("one\n", "2026-12-02T10:00:00.5Z");
        file += &line("part ", "2026-12-02T10:00:01Z");
        let first = cut(file.as_bytes(), None, false);
        assert_eq!(first.events, vec![(1_796_205_600_500, "one".to_string())]);
        assert_eq!(
            first.consumed,
            line("one\n", "2026-12-02T10:00:00.5Z").len()
        );
        file += &line("two\n", "2026-12-02T10:00:01.1Z");
        let all = cut(file.as_bytes(), None, false);
        assert_eq!(all.events[1].1, "part two");
        assert_eq!(all.events[1].0, 1_796_205_601_000);
        assert_eq!(all.consumed, file.len());
        // A half-written last line is not consumed.
        let torn = format!("{}{{\"log\":\"x", line("a\n", "2026-12-02T10:00:00Z"));
        assert_eq!(cut(torn.as_bytes(), None, false).events.len(), 1);
        assert!(cut(torn.as_bytes(), None, false).consumed < torn.len());
    }

    #[test]
    fn multiline_events_start_where_the_pattern_says() {
        let re = regex::Regex::new(&datetime_pattern("%Y-%m-%d %H:%M:%S")).unwrap();
        let mut file = String::new();
        for l in [
            "2026-12-02 10:00:00 ERROR boom\n",
            "  at frame 1\n",
            "  at frame 2\n",
            "2026-12-02 10:00:01 INFO ok\n",
            "  trailing\n",
        ] {
            file += &line(l, "2026-12-02T10:00:00Z");
        }
        let c = cut(file.as_bytes(), Some(&re), false);
        assert_eq!(
            c.events.iter().map(|e| e.1.as_str()).collect::<Vec<_>>(),
            vec!["2026-12-02 10:00:00 ERROR boom\n  at frame 1\n  at frame 2"]
        );
        // The open event waits; a flush ships it.
        assert!(c.consumed < file.len());
        let all = cut(file.as_bytes(), Some(&re), true);
        assert_eq!(all.events[1].1, "2026-12-02 10:00:01 INFO ok\n  trailing");
        assert_eq!(all.consumed, file.len());
    }

    #[test]
    fn datetime_formats_become_patterns() {
        let re = regex::Regex::new(&datetime_pattern("[%b %d, %Y %H:%M:%S]")).unwrap();
        assert!(re.is_match("[Dec 02, 2026 10:00:00] started"));
        assert!(!re.is_match("  [Dec 02, 2026 10:00:00]"));
        assert!(!re.is_match("[Foo 02, 2026 10:00:00]"));
    }

    #[test]
    fn batches_stay_within_cloudwatchs_limits_and_in_time_order() {
        let mut file = String::new();
        for i in 0..10_050 {
            file += &line(&format!("{i}\n"), "2026-12-02T10:00:00Z");
        }
        let c = cut(file.as_bytes(), None, false);
        assert_eq!(c.events.len(), MAX_EVENTS);
        let back =
            line("late\n", "2026-12-02T10:00:05Z") + &line("early\n", "2026-12-02T10:00:01Z");
        let c = cut(back.as_bytes(), None, false);
        assert!(c.events[1].0 >= c.events[0].0);
    }

    #[test]
    fn streams_are_named_as_ecs_names_them() {
        use gantry_api::model::{ContainerDefinition, LogConfiguration, Task, TaskDefinition};
        let opts = |prefix: bool| {
            let mut o: std::collections::BTreeMap<String, String> =
                [("awslogs-group".to_string(), "/ecs/web".to_string())].into();
            if prefix {
                o.insert("awslogs-stream-prefix".into(), "web".into());
                o.insert("awslogs-create-group".into(), "true".into());
            }
            o
        };
        let a = |prefix: bool| AssignedTask {
            task: Task {
                task_arn: Some("arn:aws:ecs:r:1:task/c/abc".into()),
                ..Task::default()
            },
            task_definition: TaskDefinition {
                container_definitions: Some(vec![ContainerDefinition {
                    name: Some("app".into()),
                    log_configuration: Some(LogConfiguration {
                        log_driver: LogDriver::Awslogs,
                        options: Some(opts(prefix)),
                        secret_options: None,
                    }),
                    ..ContainerDefinition::default()
                }]),
                ..TaskDefinition::default()
            },
            firewall: None,
            secrets: Default::default(),
            secrets_error: None,
            credentials: None,
        };
        let d = destination(&a(true), "app", "d0c").unwrap();
        assert!(d.start.is_none());
        assert_eq!((d.stream.as_str(), d.create_group), ("web/app/abc", true));
        let d = destination(&a(false), "app", "d0c").unwrap();
        assert_eq!((d.stream.as_str(), d.create_group), ("d0c", false));
        assert!(destination(&a(false), "other", "d0c").is_none());
    }
}
