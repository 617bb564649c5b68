//! gantry-auth: AWS Signature Version 4, both sides.
//!
//! [`verify`] checks a request as an AWS front-end does: the `Authorization` header, the
//! credential scope (date, region, service), freshness of `X-Amz-Date`, and the signature
//! (recomputed and compared in constant time). [`sign`] produces the headers a client sends; the
//! test kit, the benchmark and (later) the agent use it.

use gantry_api::{ApiError, ErrorCode};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

type HmacSha256 = Hmac<Sha256>;

/// The only signing algorithm AWS JSON services accept.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far a request's date may be from the server's clock, as on AWS.
pub const MAX_SKEW_SECS: i64 = 5 * 60;

/// A secret access key and who it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub secret_access_key: String,
    /// Whose key, as the tail of the principal's ARN: `root`, `user/<name>`,
    /// `assumed-role/<role>/<session>` (a bare name is read as `user/<name>`).
    pub user: String,
    /// IAM's unique id of the principal (`AIDA...`, `AROA...:<session>`), when it has one.
    pub user_id: Option<String>,
    /// Set for temporary credentials (STS sessions): requests must carry the token.
    pub session: Option<SessionToken>,
}

/// The token of temporary credentials and when they stop working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionToken {
    pub token: String,
    /// Unix seconds.
    pub expires_at: i64,
}

impl Secret {
    /// A long-term key of `user` (`root` or `user/<name>`).
    pub fn long_term(secret_access_key: impl Into<String>, user: impl Into<String>) -> Secret {
        Secret {
            secret_access_key: secret_access_key.into(),
            user: user.into(),
            user_id: None,
            session: None,
        }
    }
}

/// The access keys a server accepts.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: BTreeMap<String, Secret>,
}

impl KeySet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, access_key_id: impl Into<String>, secret: Secret) {
        self.keys.insert(access_key_id.into(), secret);
    }

    pub fn get(&self, access_key_id: &str) -> Option<&Secret> {
        self.keys.get(access_key_id)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Every key id with its secret.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Secret)> {
        self.keys.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The request parts SigV4 covers.
#[derive(Debug, Clone)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// The path as sent, still percent-encoded.
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: &'a str,
    /// Header names (any case) and values; a name may repeat.
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: &'a [u8],
}

/// Who signed a verified request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub access_key_id: String,
    /// As [`Secret::user`].
    pub user: String,
    pub user_id: Option<String>,
    /// Whether the request was signed with temporary credentials.
    pub temporary: bool,
}

fn fail(code: ErrorCode, msg: impl Into<String>) -> ApiError {
    ApiError::new(code, msg)
}

/// Where secret keys come from: the configured key set today; IAM users and STS sessions later.
pub trait Keys: Send + Sync {
    /// The secret of an access key, if the key exists and may sign.
    fn secret(&self, access_key_id: &str) -> Option<Secret>;
}

impl Keys for KeySet {
    fn secret(&self, access_key_id: &str) -> Option<Secret> {
        self.get(access_key_id).cloned()
    }
}

/// A verified request: who signed it, and the region of its credential scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub identity: Identity,
    pub region: String,
}

/// The error for a request signed for a region the service does not serve.
pub fn wrong_region(signed: &str, served: &str) -> ApiError {
    fail(
        ErrorCode::InvalidSignatureException,
        format!("Credential should be scoped to a valid region. The request was signed for '{signed}'; this endpoint serves '{served}'."),
    )
}

/// The region and service of the `Authorization` header's credential scope, without verifying
/// anything: what routing reads before the entry (and so the signing name) is known.
pub fn scope_of(authorization: &str) -> Option<(&str, &str)> {
    let cred = authorization.split("Credential=").nth(1)?;
    let cred = cred.split([',', ' ']).next()?;
    let mut parts = cred.split('/');
    let (_key, _date, region, service) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    Some((region, service))
}

/// Verifies a request signed for `service` in `region`, at `now` (Unix seconds).
pub fn verify(
    req: &RequestParts<'_>,
    keys: &KeySet,
    region: &str,
    service: &str,
    now: i64,
) -> Result<Identity, ApiError> {
    let v = verify_scoped(req, keys, service, now, &|r| {
        if r == region {
            Ok(())
        } else {
            Err(wrong_region(r, region))
        }
    })?;
    Ok(v.identity)
}

/// Verifies a request signed for `service` at `now`; `region_ok` accepts the scope's region or
/// says why not (see [`wrong_region`]).
pub fn verify_scoped(
    req: &RequestParts<'_>,
    keys: &dyn Keys,
    service: &str,
    now: i64,
    region_ok: &dyn Fn(&str) -> Result<(), ApiError>,
) -> Result<Verified, ApiError> {
    let header = |name: &str| -> Vec<&str> {
        req.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
            .collect()
    };
    let auth = match header("authorization").first() {
        Some(a) => a.to_string(),
        None if req.query.contains("X-Amz-Signature=") => {
            return Err(fail(
                ErrorCode::IncompleteSignatureException,
                "Presigned URLs are not supported; sign the Authorization header.",
            ))
        }
        None => {
            return Err(fail(
                ErrorCode::MissingAuthenticationTokenException,
                "Missing Authentication Token",
            ))
        }
    };
    let parsed = parse_authorization(&auth)?;
    let invalid_token = || {
        fail(
            ErrorCode::UnrecognizedClientException,
            "The security token included in the request is invalid.",
        )
    };
    let secret = keys.secret(parsed.access_key).ok_or_else(invalid_token)?;
    let scope: Vec<&str> = parsed.scope.split('/').collect();
    let [date, sregion, sservice, terminator] = scope[..] else {
        return Err(fail(
            ErrorCode::IncompleteSignatureException,
            format!(
                "Credential should be scoped to a valid region, service and date: '{}'.",
                parsed.scope
            ),
        ));
    };
    if terminator != "aws4_request" {
        return Err(fail(
            ErrorCode::InvalidSignatureException,
            "Credential should be scoped with a valid terminator: 'aws4_request'.",
        ));
    }
    region_ok(sregion)?;
    if sservice != service {
        return Err(fail(
            ErrorCode::InvalidSignatureException,
            format!("Credential should be scoped to correct service: '{service}'."),
        ));
    }
    let amz_date = header("x-amz-date").first().map(|s| s.trim().to_string()).ok_or_else(|| {
        fail(ErrorCode::IncompleteSignatureException, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    })?;
    let when = parse_amz_date(&amz_date).ok_or_else(|| {
        fail(
            ErrorCode::IncompleteSignatureException,
            format!("X-Amz-Date '{amz_date}' is not in the format YYYYMMDD'T'HHMMSS'Z'."),
        )
    })?;
    if !amz_date.starts_with(date) || date.len() != 8 {
        return Err(fail(
            ErrorCode::InvalidSignatureException,
            format!("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{date}' != '{}'.", &amz_date[..8]),
        ));
    }
    if (now - when).abs() > MAX_SKEW_SECS {
        return Err(fail(
            ErrorCode::InvalidSignatureException,
            format!(
                "Signature expired: {amz_date} is now earlier than {} ({} - 5 min.)",
                format_amz_date(now - MAX_SKEW_SECS),
                format_amz_date(now)
            ),
        ));
    }
    if !parsed.signed_headers.contains(&"host") {
        return Err(fail(
            ErrorCode::InvalidSignatureException,
            "'Host' must be a signed header.",
        ));
    }
    let canonical = canonical_request(req, &parsed.signed_headers, &header);
    let string_to_sign = string_to_sign(&amz_date, parsed.scope, &canonical);
    let key = signing_key(&secret.secret_access_key, date, sregion, sservice);
    let mut mac = HmacSha256::new_from_slice(&key).map_err(|_| ApiError::server("hmac key"))?;
    mac.update(string_to_sign.as_bytes());
    let given = hex::decode(parsed.signature).unwrap_or_default();
    if mac.verify_slice(&given).is_err() {
        return Err(fail(
            ErrorCode::InvalidSignatureException,
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
        ));
    }
    // Temporary credentials are only good with their token and before their expiry; a token
    // sent with a long-term key names no session at all.
    let token = header("x-amz-security-token").first().map(|t| t.trim());
    match (&secret.session, token) {
        (None, None) => {}
        (Some(s), Some(t)) if constant_time_eq(s.token.as_bytes(), t.as_bytes()) => {
            if now >= s.expires_at {
                return Err(fail(
                    ErrorCode::ExpiredTokenException,
                    "The security token included in the request is expired",
                ));
            }
        }
        _ => return Err(invalid_token()),
    }
    Ok(Verified {
        identity: Identity {
            access_key_id: parsed.access_key.to_string(),
            user: secret.user.clone(),
            user_id: secret.user_id.clone(),
            temporary: secret.session.is_some(),
        },
        region: sregion.to_string(),
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

struct Authorization<'a> {
    access_key: &'a str,
    scope: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(auth: &str) -> Result<Authorization<'_>, ApiError> {
    let incomplete = |what: &str| {
        fail(
            ErrorCode::IncompleteSignatureException,
            format!("Authorization header requires '{what}' parameter. Authorization={auth}"),
        )
    };
    let rest = auth.trim().strip_prefix(ALGORITHM).ok_or_else(|| {
        fail(
            ErrorCode::IncompleteSignatureException,
            format!("Unsupported authorization type; use {ALGORITHM}."),
        )
    })?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else {
            continue;
        };
        match k.trim() {
            "Credential" => credential = Some(v.trim()),
            "SignedHeaders" => signed = Some(v.trim()),
            "Signature" => signature = Some(v.trim()),
            _ => {}
        }
    }
    let credential = credential.ok_or_else(|| incomplete("Credential"))?;
    let signed = signed.ok_or_else(|| incomplete("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| incomplete("Signature"))?;
    let (access_key, scope) = credential
        .split_once('/')
        .ok_or_else(|| incomplete("Credential"))?;
    Ok(Authorization {
        access_key,
        scope,
        signed_headers: signed.split(';').collect(),
        signature,
    })
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // A SHA-256 HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    hmac(&k, b"aws4_request")
}

fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// RFC 3986 unreserved characters stay; everything else is %XX (upper-case hex).
fn uri_encode(s: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hexval = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hexval(b[i + 1]), hexval(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    out
}

fn canonical_request<'a>(
    req: &RequestParts<'a>,
    signed_headers: &[&str],
    header: &dyn Fn(&str) -> Vec<&'a str>,
) -> String {
    // Non-S3 services encode each path segment once more.
    let path = if req.path.is_empty() { "/" } else { req.path };
    let canonical_uri = uri_encode(path.as_bytes(), true);
    let mut query: Vec<(String, String)> = req
        .query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .collect();
    query.sort();
    let canonical_query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut headers = String::new();
    for name in signed_headers {
        let values: Vec<String> = header(name)
            .iter()
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    format!(
        "{}\n{canonical_uri}\n{}\n{headers}\n{}\n{}",
        req.method,
        canonical_query.join("&"),
        signed_headers.join(";"),
        sha256_hex(req.body)
    )
}

/// Headers to add to a request so that it is signed: `x-amz-date` and `authorization`.
/// `headers` must already hold `host` and every other header to be signed.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    req: &RequestParts<'_>,
    access_key_id: &str,
    secret_access_key: &str,
    region: &str,
    service: &str,
    now: i64,
) -> Vec<(String, String)> {
    let amz_date = format_amz_date(now);
    let date = &amz_date[..8];
    let mut parts = req.clone();
    parts.headers.push(("x-amz-date", &amz_date));
    let mut names: Vec<String> = parts
        .headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let header = |name: &str| -> Vec<&str> {
        parts
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
            .collect()
    };
    let canonical = canonical_request(&parts, &names, &header);
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let sts = string_to_sign(&amz_date, &scope, &canonical);
    let signature = hex::encode(hmac(
        &signing_key(secret_access_key, date, region, service),
        sts.as_bytes(),
    ));
    vec![
        ("x-amz-date".to_string(), amz_date.clone()),
        (
            "authorization".to_string(),
            format!(
                "{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders={}, Signature={signature}",
                names.join(";")
            ),
        ),
    ]
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
/// Parses `YYYYMMDDTHHMMSSZ` into Unix seconds; calendar-checked (`20180231T...` is refused).
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let month = time::Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(
        i32::try_from(num(0..4)?).ok()?,
        month,
        u8::try_from(num(6..8)?).ok()?,
    )
    .ok()?;
    let clock = time::Time::from_hms(
        u8::try_from(num(9..11)?).ok()?,
        u8::try_from(num(11..13)?).ok()?,
        u8::try_from(num(13..15)?).ok()?,
    )
    .ok()?;
    Some(
        time::PrimitiveDateTime::new(date, clock)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// Formats Unix seconds as `YYYYMMDDTHHMMSSZ`.
pub fn format_amz_date(t: i64) -> String {
    let d =
        time::OffsetDateTime::from_unix_timestamp(t).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates_are_calendar_checked() {
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(format_amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(
            parse_amz_date("20240229T000000Z")
                .map(format_amz_date)
                .as_deref(),
            Some("20240229T000000Z")
        );
        for bad in [
            "20180231T000000Z",
            "20230229T000000Z",
            "20181301T000000Z",
            "20180101T240000Z",
            "2018010AT000000Z",
            "20180101T000000",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }

    const AK: &str = "AKIDEXAMPLE";
    const SK: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn keys() -> KeySet {
        let mut k = KeySet::new();
        k.insert(AK, Secret::long_term(SK, "admin"));
        k
    }

    #[test]
    fn dates_round_trip() {
        let t = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(t, 1_440_938_160);
        assert_eq!(format_amz_date(t), "20150830T123600Z");
        assert!(parse_amz_date("2015-08-30T12:36:00Z").is_none());
        assert!(parse_amz_date("20151330T123600Z").is_none());
    }

    /// The `get-vanilla` case of AWS's published SigV4 test suite.
    #[test]
    fn aws_test_suite_get_vanilla() {
        let req = RequestParts {
            method: "GET",
            path: "/",
            query: "",
            headers: vec![
                ("Host", "example.amazonaws.com"),
                ("X-Amz-Date", "20150830T123600Z"),
            ],
            body: b"",
        };
        let header = |name: &str| -> Vec<&str> {
            req.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
                .collect()
        };
        let c = canonical_request(&req, &["host", "x-amz-date"], &header);
        let sts = string_to_sign(
            "20150830T123600Z",
            "20150830/us-east-1/service/aws4_request",
            &c,
        );
        let sig = hex::encode(hmac(
            &signing_key(SK, "20150830", "us-east-1", "service"),
            sts.as_bytes(),
        ));
        assert_eq!(
            sig,
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    fn signed(now: i64, region: &str, body: &'static [u8]) -> Vec<(String, String)> {
        let req = RequestParts {
            method: "POST",
            path: "/",
            query: "",
            headers: vec![("host", "127.0.0.1:8100"), ("x-amz-target", "X.Y")],
            body,
        };
        let mut h = vec![
            ("host".to_string(), "127.0.0.1:8100".to_string()),
            ("x-amz-target".into(), "X.Y".into()),
        ];
        h.extend(sign(&req, AK, SK, region, "ecs", now));
        h
    }

    fn check(h: &[(String, String)], body: &[u8], now: i64) -> Result<Identity, ApiError> {
        let req = RequestParts {
            method: "POST",
            path: "/",
            query: "",
            headers: h.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect(),
            body,
        };
        verify(&req, &keys(), "us-east-1", "ecs", now)
    }

    #[test]
    fn sign_then_verify() {
        let now = 1_800_000_000;
        let h = signed(now, "us-east-1", b"{}");
        assert_eq!(check(&h, b"{}", now + 10).unwrap().user, "admin");
        let code = |r: Result<Identity, ApiError>| r.unwrap_err().code;
        assert_eq!(
            code(check(&h, b"{ }", now)),
            ErrorCode::InvalidSignatureException
        );
        assert_eq!(
            code(check(&h, b"{}", now + 301)),
            ErrorCode::InvalidSignatureException
        );
        assert_eq!(
            code(check(&signed(now, "eu-west-1", b"{}"), b"{}", now)),
            ErrorCode::InvalidSignatureException
        );
        assert_eq!(
            code(check(&h[..2], b"{}", now)),
            ErrorCode::MissingAuthenticationTokenException
        );
        let other: Vec<(String, String)> = h
            .iter()
            .map(|(k, v)| (k.clone(), v.replace(AK, "AKIDOTHER")))
            .collect();
        assert_eq!(
            code(check(&other, b"{}", now)),
            ErrorCode::UnrecognizedClientException
        );
        let garbled: Vec<(String, String)> = h
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    if k == "authorization" {
                        "AWS4-HMAC-SHA256 nonsense".into()
                    } else {
                        v.clone()
                    },
                )
            })
            .collect();
        assert_eq!(
            code(check(&garbled, b"{}", now)),
            ErrorCode::IncompleteSignatureException
        );
    }

    /// Temporary credentials: good with their token until they expire, and only then.
    #[test]
    fn session_tokens_are_checked_after_the_signature() {
        const TEMP: &str = "ASIATEMPORARY0000000";
        let mut keys = keys();
        keys.insert(
            TEMP,
            Secret {
                secret_access_key: SK.into(),
                user: "assumed-role/app/s1".into(),
                user_id: Some("AROAX:s1".into()),
                session: Some(SessionToken {
                    token: "tok".into(),
                    expires_at: 1_800_000_100,
                }),
            },
        );
        let send = |key: &str, token: Option<&str>, now: i64| {
            let mut headers = vec![("host", "127.0.0.1:8100")];
            if let Some(t) = token {
                headers.push(("x-amz-security-token", t));
            }
            let req = RequestParts {
                method: "POST",
                path: "/",
                query: "",
                headers: headers.clone(),
                body: b"{}",
            };
            let signed = sign(&req, key, SK, "us-east-1", "ecs", now);
            let mut all: Vec<(&str, &str)> = headers;
            all.extend(signed.iter().map(|(a, b)| (a.as_str(), b.as_str())));
            let req = RequestParts {
                headers: all,
                ..req
            };
            verify(&req, &keys, "us-east-1", "ecs", now)
        };
        let now = 1_800_000_000;
        let id = send(TEMP, Some("tok"), now).unwrap();
        assert!(id.temporary);
        assert_eq!(id.user, "assumed-role/app/s1");
        assert_eq!(id.user_id.as_deref(), Some("AROAX:s1"));
        let code = |r: Result<Identity, ApiError>| r.unwrap_err().code;
        assert_eq!(
            code(send(TEMP, Some("other"), now)),
            ErrorCode::UnrecognizedClientException
        );
        assert_eq!(
            code(send(TEMP, None, now)),
            ErrorCode::UnrecognizedClientException
        );
        assert_eq!(
            code(send(TEMP, Some("tok"), now + 100)),
            ErrorCode::ExpiredTokenException
        );
        // A token with a long-term key names no session.
        assert_eq!(
            code(send(AK, Some("tok"), now)),
            ErrorCode::UnrecognizedClientException
        );
        assert!(!send(AK, None, now).unwrap().temporary);
    }
}
