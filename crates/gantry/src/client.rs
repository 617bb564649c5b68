//! A small signed ECS client for the binary's own commands.

use anyhow::{bail, Context};
use serde_json::Value;

/// How a JSON service is addressed.
#[derive(Clone, Copy)]
struct JsonService {
    prefix: &'static str,
    signing_name: &'static str,
    content_type: &'static str,
}

const ECS: JsonService = JsonService {
    prefix: "AmazonEC2ContainerServiceV20141113",
    signing_name: "ecs",
    content_type: "application/x-amz-json-1.1",
};

const GANTRY: JsonService = JsonService {
    prefix: "GantryV1",
    signing_name: "gantry",
    content_type: "application/x-amz-json-1.0",
};

const LOGS: JsonService = JsonService {
    prefix: "Logs_20140328",
    signing_name: "logs",
    content_type: "application/x-amz-json-1.1",
};

pub struct EcsClient {
    pub endpoint: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
    http: reqwest::Client,
}

impl EcsClient {
    /// A client of `endpoint`, trusting the PEM CA `ca_file` for HTTPS when given.
    pub fn new(
        endpoint: String,
        access_key_id: String,
        secret_access_key: String,
        region: String,
        ca_file: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        let ca = match ca_file {
            Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
            None => None,
        };
        Ok(EcsClient {
            endpoint,
            access_key_id,
            secret_access_key,
            region,
            http: gantry_agent::http_client(ca.as_deref())?,
        })
    }

    /// Calls an ECS operation; an ECS error becomes an `Err` naming its `__type`.
    pub async fn call(&self, operation: &str, body: Value) -> anyhow::Result<Value> {
        self.call_service(ECS, operation, body).await
    }

    /// Calls one of gantry's own operations (`GantryV1`, AWS JSON 1.0, signed for `gantry`).
    pub async fn call_gantry(&self, operation: &str, body: Value) -> anyhow::Result<Value> {
        self.call_service(GANTRY, operation, body).await
    }

    /// Calls a CloudWatch Logs operation.
    pub async fn call_logs(&self, operation: &str, body: Value) -> anyhow::Result<Value> {
        self.call_service(LOGS, operation, body).await
    }

    /// Calls an operation of a JSON service.
    async fn call_service(
        &self,
        service: JsonService,
        operation: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let JsonService {
            prefix,
            signing_name,
            content_type,
        } = service;
        let body = serde_json::to_vec(&body)?;
        let host = self.host();
        let target = format!("{prefix}.{operation}");
        let headers = [
            ("host", host.as_str()),
            ("content-type", content_type),
            ("x-amz-target", target.as_str()),
        ];
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs() as i64;
        let parts = gantry_auth::RequestParts {
            method: "POST",
            path: "/",
            query: "",
            headers: headers.to_vec(),
            body: &body,
        };
        let signed = gantry_auth::sign(
            &parts,
            &self.access_key_id,
            &self.secret_access_key,
            &self.region,
            signing_name,
            now,
        );
        let mut req = self
            .http
            .post(format!("{}/", self.endpoint.trim_end_matches('/')))
            .body(body.clone());
        for (k, v) in headers.iter().filter(|(k, _)| *k != "host") {
            req = req.header(*k, *v);
        }
        for (k, v) in &signed {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("calling {operation} on {}", self.endpoint))?;
        let status = resp.status();
        let v: Value = serde_json::from_slice(&resp.bytes().await?).unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(
                "{operation}: {}: {}",
                v["__type"].as_str().unwrap_or("error"),
                v["message"].as_str().unwrap_or("")
            );
        }
        Ok(v)
    }

    /// The endpoint's `host[:port]`, as the `Host` header names it.
    fn host(&self) -> String {
        self.endpoint
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string()
    }

    /// A signed `GET path?query` of gantry's own (`gantry`), its answer to be read as it comes
    /// (a stream). `query` must be encoded as SigV4 signs it: sorted, percent-encoded.
    pub async fn get_gantry(&self, path: &str, query: &str) -> anyhow::Result<reqwest::Response> {
        let host = self.host();
        let headers = [("host", host.as_str())];
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs() as i64;
        let parts = gantry_auth::RequestParts {
            method: "GET",
            path,
            query,
            headers: headers.to_vec(),
            body: b"",
        };
        let signed = gantry_auth::sign(
            &parts,
            &self.access_key_id,
            &self.secret_access_key,
            &self.region,
            "gantry",
            now,
        );
        let mut req = self.http.get(format!(
            "{}{path}?{query}",
            self.endpoint.trim_end_matches('/')
        ));
        for (k, v) in &signed {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("calling {path} on {}", self.endpoint))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let v: Value = serde_json::from_slice(&resp.bytes().await?).unwrap_or(Value::Null);
            bail!(
                "{path}: {status}: {}: {}",
                v["__type"].as_str().unwrap_or("error"),
                v["message"].as_str().unwrap_or("")
            );
        }
        Ok(resp)
    }

    /// Every page of a list operation, concatenating `key`.
    pub async fn list_all(
        &self,
        operation: &str,
        mut body: Value,
        key: &str,
    ) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        loop {
            let v = self.call(operation, body.clone()).await?;
            out.extend(
                v[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(String::from)),
            );
            match v["nextToken"].as_str() {
                Some(t) => body["nextToken"] = Value::String(t.to_string()),
                None => return Ok(out),
            }
        }
    }
}
