//! Test helpers: run the real `gantry` binary as a process on a free loopback port, and send
//! SigV4-signed raw requests to it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A fresh, empty directory under the system temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "gantry-test-{}-{name}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// A running `gantry server` process.
pub struct GantryProcess {
    bin: PathBuf,
    pub data_dir: PathBuf,
    pub port: u16,
    args: Vec<String>,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
    child: Option<Child>,
}

impl GantryProcess {
    /// Starts `gantry server` on a free port with `data_dir`, and waits until it serves.
    pub async fn start(bin: &Path, data_dir: &Path) -> GantryProcess {
        Self::start_with(bin, data_dir, &[]).await
    }

    /// Like [`start`](Self::start), with extra `gantry server` arguments.
    pub async fn start_with(bin: &Path, data_dir: &Path, args: &[&str]) -> GantryProcess {
        let port = free_port();
        let out = Command::new(bin)
            .args(["credentials", "--json", "--data-dir"])
            .arg(data_dir)
            .output()
            .expect("run gantry credentials");
        assert!(
            out.status.success(),
            "gantry credentials: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let creds: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("credentials JSON");
        let mut p = GantryProcess {
            bin: bin.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
            port,
            access_key_id: creds["accessKeyId"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            secret_access_key: creds["secretAccessKey"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            region: creds["region"].as_str().unwrap_or_default().to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            child: None,
        };
        p.spawn().await;
        p
    }

    async fn spawn(&mut self) {
        let child = Command::new(&self.bin)
            .args([
                "server",
                "--listen",
                &format!("127.0.0.1:{}", self.port),
                "--data-dir",
            ])
            .arg(&self.data_dir)
            .args(&self.args)
            // No DNS server for tests and benchmarks unless they ask (`--dns-listen`), and
            // never forwarding: the host's resolver is not theirs to use.
            .env("GANTRY_DNS_LISTEN", "off")
            .env("GANTRY_DNS_FORWARD", "none")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn gantry server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("{}/healthz", self.endpoint());
        let client = reqwest::Client::new();
        loop {
            if let Ok(r) = client.get(&url).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "gantry did not start serving on port {}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The token agents join this server with.
    pub fn join_token(&self) -> String {
        let out = Command::new(&self.bin)
            .args(["join-token", "--data-dir"])
            .arg(&self.data_dir)
            .output()
            .expect("run gantry join-token");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port and data directory.
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn().await;
    }

    /// Sends a signed CloudWatch Logs request; returns the HTTP status and the JSON body.
    pub async fn call_logs(&self, operation: &str, body: &str) -> (u16, serde_json::Value) {
        let endpoint = self.endpoint();
        let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
        let headers = json_headers(
            host,
            (&self.access_key_id, &self.secret_access_key, &self.region),
            ("logs", "Logs_20140328"),
            operation,
            body.as_bytes(),
        );
        let mut req = reqwest::Client::new().post(format!("{endpoint}/"));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        match req.body(body.to_string()).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let v = r.json().await.unwrap_or(serde_json::Value::Null);
                (status, v)
            }
            Err(e) => (0, serde_json::json!({"error": e.to_string()})),
        }
    }

    /// Sends a signed Query request (`Action`, `Version` and `params`, form-encoded) to the
    /// service signed as `service`; returns the HTTP status and the XML body.
    pub async fn call_query(
        &self,
        service: &str,
        version: &str,
        action: &str,
        params: &[(&str, &str)],
    ) -> (u16, String) {
        let endpoint = self.endpoint();
        let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
        let mut body = format!("Action={action}&Version={version}");
        for (k, v) in params {
            body.push('&');
            body.push_str(&form_escape(k));
            body.push('=');
            body.push_str(&form_escape(v));
        }
        let mut headers = vec![
            ("host".to_string(), host.to_string()),
            (
                "content-type".to_string(),
                "application/x-www-form-urlencoded; charset=utf-8".to_string(),
            ),
        ];
        let extra = sign_now(
            &headers,
            body.as_bytes(),
            &self.access_key_id,
            &self.secret_access_key,
            &self.region,
            service,
        );
        headers.extend(extra);
        let mut req = reqwest::Client::new().post(format!("{endpoint}/"));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        match req.body(body).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.text().await.unwrap_or_default())
            }
            Err(e) => (0, e.to_string()),
        }
    }

    /// Sends a signed ECS request; returns the HTTP status and the JSON body.
    pub async fn call(&self, operation: &str, body: &str) -> (u16, serde_json::Value) {
        signed_call(
            &self.endpoint(),
            &self.access_key_id,
            &self.secret_access_key,
            &self.region,
            operation,
            body.as_bytes(),
        )
        .await
    }
}

impl Drop for GantryProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The headers of a signed ECS request (`host`, `content-type`, `x-amz-target`, `x-amz-date`,
/// `authorization`).
pub fn signed_headers(
    host: &str,
    access_key_id: &str,
    secret_access_key: &str,
    region: &str,
    operation: &str,
    body: &[u8],
) -> Vec<(String, String)> {
    json_headers(
        host,
        (access_key_id, secret_access_key, region),
        ("ecs", "AmazonEC2ContainerServiceV20141113"),
        operation,
        body,
    )
}

/// The headers of a signed AWS JSON 1.1 request to the service signed as `service.0` whose
/// targets start with `service.1`, with `keys` (access key id, secret, region).
pub fn json_headers(
    host: &str,
    keys: (&str, &str, &str),
    service: (&str, &str),
    operation: &str,
    body: &[u8],
) -> Vec<(String, String)> {
    let (access_key_id, secret_access_key, region) = keys;
    let target = format!("{}.{operation}", service.1);
    let mut headers = vec![
        ("host".to_string(), host.to_string()),
        (
            "content-type".to_string(),
            "application/x-amz-json-1.1".to_string(),
        ),
        ("x-amz-target".to_string(), target),
    ];
    let extra = sign_now(
        &headers,
        body,
        access_key_id,
        secret_access_key,
        region,
        service.0,
    );
    headers.extend(extra);
    headers
}

/// `application/x-www-form-urlencoded`'s escaping of one key or value.
fn form_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The SigV4 headers (`x-amz-date`, `authorization`) for a `POST /` with `headers` and `body`,
/// signed now.
fn sign_now(
    headers: &[(String, String)],
    body: &[u8],
    access_key_id: &str,
    secret_access_key: &str,
    region: &str,
    service: &str,
) -> Vec<(String, String)> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let parts = gantry_auth::RequestParts {
        method: "POST",
        path: "/",
        query: "",
        headers: headers
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect(),
        body,
    };
    gantry_auth::sign(
        &parts,
        access_key_id,
        secret_access_key,
        region,
        service,
        now,
    )
}

/// POSTs a signed Query request (`Action=...&Version=...`) to a Query service (`iam`, `sts`)
/// at `endpoint`; the status and the XML answer.
pub async fn query_call(
    endpoint: &str,
    access_key_id: &str,
    secret_access_key: &str,
    service: &str,
    params: &[(&str, &str)],
) -> Option<(u16, String)> {
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let body: String = params
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let headers = [
        ("host".to_string(), host.to_string()),
        (
            "content-type".to_string(),
            "application/x-www-form-urlencoded; charset=utf-8".to_string(),
        ),
    ];
    let signed = sign_now(
        &headers,
        body.as_bytes(),
        access_key_id,
        secret_access_key,
        "us-east-1",
        service,
    );
    let mut req = reqwest::Client::new()
        .post(format!("{endpoint}/"))
        .body(body.clone());
    for (k, v) in headers
        .iter()
        .chain(signed.iter())
        .filter(|(k, _)| k != "host")
    {
        req = req.header(k, v);
    }
    let resp = req.send().await.ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.text().await.ok()?))
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The text of the first `<name>` element of an XML answer.
pub fn xml_text<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(&xml[start..end])
}

/// POSTs a signed request to `endpoint` (`http://host:port`).
pub async fn signed_call(
    endpoint: &str,
    access_key_id: &str,
    secret_access_key: &str,
    region: &str,
    operation: &str,
    body: &[u8],
) -> (u16, serde_json::Value) {
    try_signed_call(
        endpoint,
        access_key_id,
        secret_access_key,
        region,
        operation,
        body,
    )
    .await
    .expect("send request")
}

/// [`signed_call`], with `None` when no answer came (the server died mid-request).
pub async fn try_signed_call(
    endpoint: &str,
    access_key_id: &str,
    secret_access_key: &str,
    region: &str,
    operation: &str,
    body: &[u8],
) -> Option<(u16, serde_json::Value)> {
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let headers = signed_headers(
        host,
        access_key_id,
        secret_access_key,
        region,
        operation,
        body,
    );
    let mut req = reqwest::Client::new()
        .post(format!("{endpoint}/"))
        .body(body.to_vec());
    for (k, v) in headers.iter().filter(|(k, _)| k != "host") {
        req = req.header(k, v);
    }
    let resp = req.send().await.ok()?;
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.ok()?;
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Some((status, json))
}

/// A running `gantry agent` process.
pub struct AgentProcess {
    bin: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl AgentProcess {
    /// Starts `gantry agent` for `server`'s cluster `cluster`, with its state in `data_dir`.
    pub fn start(
        bin: &Path,
        server: &GantryProcess,
        cluster: &str,
        data_dir: &Path,
        extra: &[&str],
    ) -> AgentProcess {
        let mut args: Vec<String> = vec![
            "agent".into(),
            "--server".into(),
            server.endpoint(),
            "--cluster".into(),
            cluster.into(),
            "--join-token".into(),
            server.join_token(),
            "--data-dir".into(),
            data_dir.display().to_string(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let mut a = AgentProcess {
            bin: bin.to_path_buf(),
            args,
            child: None,
        };
        a.spawn();
        a
    }

    /// [`start`](Self::start) and wait until it is the cluster's first container instance;
    /// returns the agent and that instance's ARN.
    pub async fn start_registered(
        bin: &Path,
        server: &GantryProcess,
        data_dir: &Path,
        extra: &[&str],
    ) -> (AgentProcess, String) {
        let agent = Self::start(bin, server, "default", data_dir, extra);
        let instance = wait_for("the agent to register", Duration::from_secs(30), || async {
            let (_, v) = server.call("ListContainerInstances", "{}").await;
            v["containerInstanceArns"][0].as_str().map(String::from)
        })
        .await;
        (agent, instance)
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.bin)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn gantry agent");
        self.child = Some(child);
    }

    /// SIGKILL: the agent dies; its containers keep running.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs the docker CLI; returns its trimmed stdout (panics when it fails).
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Removes (with `rm -f`) every container carrying the label `name=value`: the cleanup of tests
/// and benchmarks. Failures to remove are ignored.
pub fn remove_labelled(name: &str, value: &str) {
    let ids = docker(&["ps", "-aq", "--filter", &format!("label={name}={value}")]);
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if !ids.is_empty() {
        let _ = Command::new("docker").args(["rm", "-f"]).args(ids).output();
    }
}

/// The test image: `FROM scratch` with Debian's busybox-static, built locally once (no registry).
pub const BUSYBOX_IMAGE: &str = "gantry-test/busybox:1";

pub fn ensure_busybox_image() {
    let present = Command::new("docker")
        .args(["image", "inspect", BUSYBOX_IMAGE])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return;
    }
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "/bin/busybox is missing: apt-get install busybox-static"
    );
    let dir = temp_dir("image");
    std::fs::copy(busybox, dir.join("busybox")).expect("copy busybox");
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\",\"--install\",\"-s\",\"/bin\"]\n",
    )
    .expect("write Dockerfile");
    docker(&[
        "build",
        "-q",
        "-t",
        BUSYBOX_IMAGE,
        &dir.display().to_string(),
    ]);
}

/// Polls `f` until it returns `Some`, or panics after `timeout` with `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A control plane in this process, on the in-memory store, driven through its real router
/// (signature checks included) without a socket.
pub struct InProcess {
    pub server: std::sync::Arc<gantry_server::Server>,
}

/// The admin key of [`InProcess`] servers.
pub const IN_PROCESS_KEY: (&str, &str) = ("AKIDINPROCESS", "in-process-secret");
/// The join token of [`InProcess`] servers.
pub const IN_PROCESS_JOIN_TOKEN: &str = "in-process-join-token";

impl InProcess {
    pub async fn new() -> InProcess {
        Self::with_store(std::sync::Arc::new(gantry_store::MemStore::new())).await
    }

    /// An in-process server on `store` (a [`gantry_store::FailingStore`], say).
    pub async fn with_store(store: std::sync::Arc<dyn gantry_store::Store>) -> InProcess {
        let mut keys = gantry_auth::KeySet::new();
        keys.insert(
            IN_PROCESS_KEY.0,
            gantry_auth::Secret::long_term(IN_PROCESS_KEY.1, "root"),
        );
        let mut cfg = gantry_server::ServerConfig::new("us-east-1", "000000000000", keys);
        cfg.join_token = Some(IN_PROCESS_JOIN_TOKEN.into());
        let server = gantry_server::Server::new(cfg, store)
            .await
            .expect("start an in-process server");
        InProcess { server }
    }

    async fn send(&self, req: axum::http::Request<axum::body::Body>) -> (u16, serde_json::Value) {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let resp = gantry_server::http::router(self.server.clone())
            .oneshot(req)
            .await
            .expect("router");
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    /// A signed ECS API call with a raw body.
    pub async fn call_raw(&self, operation: &str, body: &[u8]) -> (u16, serde_json::Value) {
        let headers = signed_headers(
            "gantry",
            IN_PROCESS_KEY.0,
            IN_PROCESS_KEY.1,
            "us-east-1",
            operation,
            body,
        );
        let mut req = axum::http::Request::post("/");
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        self.send(
            req.body(axum::body::Body::from(body.to_vec()))
                .expect("request"),
        )
        .await
    }

    /// A signed ECS API call.
    pub async fn call(&self, operation: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.call_raw(operation, body.to_string().as_bytes()).await
    }

    /// A call to the agent endpoint (`/agent/v1/...`) with the join token.
    pub async fn agent(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let req = axum::http::Request::post(path)
            .header("authorization", format!("Bearer {IN_PROCESS_JOIN_TOKEN}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .expect("request");
        self.send(req).await
    }
}

/// Any `gantry` subcommand as a background process, killed when dropped.
pub struct Background(Child);

impl Background {
    pub fn spawn(bin: &Path, args: &[&str]) -> Background {
        let child = Command::new(bin)
            .args(args)
            .env("GANTRY_DNS_LISTEN", "off")
            .env("GANTRY_DNS_FORWARD", "none")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn gantry");
        Background(child)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
