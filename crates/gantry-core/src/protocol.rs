//! The wire protocols AWS services speak, and how each one writes answers and errors.
//!
//! - `awsJson1_0` / `awsJson1_1`: `POST /`, `X-Amz-Target: <prefix>.<Operation>`, JSON bodies;
//!   errors are `{"__type": "...", "message": "..."}` with `x-amzn-ErrorType`.
//! - `awsQuery`: form-encoded `Action=...&Version=...`; answers are XML
//!   (`<OpResponse><OpResult>...</OpResult><ResponseMetadata>...`), errors
//!   `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`.
//! - `rpcv2Cbor`: `POST /service/<Name>/operation/<Op>` with `smithy-protocol: rpc-v2-cbor`;
//!   CBOR bodies, errors a CBOR map with `__type` and `message`.

use crate::error::{FrontEndFault, ServiceError};

/// A wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    AwsJson1_0,
    AwsJson1_1,
    AwsQuery,
    RpcV2Cbor,
}

/// An answer on its way out: status, headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Protocol {
    /// The name botocore's models use.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::AwsJson1_0 => "awsJson1_0",
            Protocol::AwsJson1_1 => "awsJson1_1",
            Protocol::AwsQuery => "awsQuery",
            Protocol::RpcV2Cbor => "rpcv2Cbor",
        }
    }

    /// The `Content-Type` of this protocol's bodies.
    pub fn content_type(self) -> &'static str {
        match self {
            Protocol::AwsJson1_0 => "application/x-amz-json-1.0",
            Protocol::AwsJson1_1 => "application/x-amz-json-1.1",
            Protocol::AwsQuery => "text/xml",
            Protocol::RpcV2Cbor => "application/cbor",
        }
    }

    /// The error the front end answers for `fault`, named as this protocol's services name it.
    pub fn front_end_error(self, fault: FrontEndFault, message: impl Into<String>) -> ServiceError {
        use FrontEndFault as F;
        // (JSON name, its status, Query name, its status), as AWS's front ends answer.
        let (json, json_status, query, query_status) = match fault {
            F::MissingAuthenticationToken => (
                "MissingAuthenticationTokenException",
                403,
                "MissingAuthenticationToken",
                403,
            ),
            F::IncompleteSignature => (
                "IncompleteSignatureException",
                403,
                "IncompleteSignature",
                403,
            ),
            F::InvalidSignature => (
                "InvalidSignatureException",
                403,
                "SignatureDoesNotMatch",
                403,
            ),
            F::UnrecognizedClient => (
                "UnrecognizedClientException",
                400,
                "InvalidClientTokenId",
                403,
            ),
            F::ExpiredToken => ("ExpiredTokenException", 400, "ExpiredToken", 403),
            F::Serialization => ("SerializationException", 400, "MalformedQueryString", 400),
            F::UnknownOperation | F::UnknownService => {
                ("UnknownOperationException", 400, "InvalidAction", 400)
            }
        };
        let (code, status) = if self == Protocol::AwsQuery {
            (query, query_status)
        } else {
            (json, json_status)
        };
        ServiceError::new(code, status, message)
    }

    /// Turns a gantry-auth or decoding error into this protocol's error: front-end faults are
    /// renamed ([`Self::front_end_error`]), anything else keeps its name.
    pub fn error_from(self, e: gantry_api::ApiError) -> ServiceError {
        match FrontEndFault::of(e.code) {
            Some(f) => self.front_end_error(f, e.message),
            None => e.into(),
        }
    }

    /// Writes an error. `xml_namespace` is the Query service's namespace.
    pub fn encode_error(self, e: &ServiceError, request_id: &str, xml_namespace: &str) -> Encoded {
        let mut headers = vec![
            ("content-type", self.content_type().to_string()),
            ("x-amzn-requestid", request_id.to_string()),
        ];
        let body = match self {
            Protocol::AwsJson1_0 | Protocol::AwsJson1_1 => {
                headers.push(("x-amzn-errortype", e.code.to_string()));
                serde_json::json!({"__type": e.code, "message": e.message})
                    .to_string()
                    .into_bytes()
            }
            Protocol::AwsQuery => {
                let kind = if e.is_server_fault() {
                    "Receiver"
                } else {
                    "Sender"
                };
                let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
                x.push_str(&format!(
                    "<ErrorResponse xmlns=\"{}\">",
                    escape(xml_namespace)
                ));
                x.push_str(&format!(
                    "<Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error>",
                    escape(&e.code),
                    escape(&e.message)
                ));
                x.push_str(&format!(
                    "<RequestId>{}</RequestId></ErrorResponse>",
                    escape(request_id)
                ));
                x.into_bytes()
            }
            Protocol::RpcV2Cbor => {
                headers.push(("smithy-protocol", "rpc-v2-cbor".to_string()));
                cbor_text_map(&[("__type", &e.code), ("message", &e.message)])
            }
        };
        Encoded {
            status: e.status,
            headers,
            body,
        }
    }

    /// Writes a successful answer. For Query, `body` is the XML inside `<OpResult>`; the
    /// envelope and the request id are added here.
    pub fn encode_ok(
        self,
        operation: &str,
        body: Vec<u8>,
        request_id: &str,
        xml_namespace: &str,
    ) -> Encoded {
        let mut headers = vec![
            ("content-type", self.content_type().to_string()),
            ("x-amzn-requestid", request_id.to_string()),
        ];
        let body = match self {
            Protocol::AwsQuery => {
                let mut x = String::new();
                x.push_str(&format!(
                    "<{operation}Response xmlns=\"{}\"><{operation}Result>",
                    escape(xml_namespace)
                ));
                x.push_str(&String::from_utf8_lossy(&body));
                x.push_str(&format!(
                    "</{operation}Result><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{operation}Response>",
                    escape(request_id)
                ));
                x.into_bytes()
            }
            Protocol::RpcV2Cbor => {
                headers.push(("smithy-protocol", "rpc-v2-cbor".to_string()));
                body
            }
            Protocol::AwsJson1_0 | Protocol::AwsJson1_1 => body,
        };
        Encoded {
            status: 200,
            headers,
            body,
        }
    }
}

/// Escapes text for XML character data and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 cannot carry most control characters at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// The CBOR encoding (RFC 8949) of a map of text strings, as RPC v2 CBOR errors are.
pub fn cbor_text_map(entries: &[(&str, &str)]) -> Vec<u8> {
    fn head(out: &mut Vec<u8>, major: u8, n: u64) {
        let m = major << 5;
        match n {
            0..=23 => out.push(m | n as u8),
            24..=0xff => out.extend([m | 24, n as u8]),
            0x100..=0xffff => {
                out.push(m | 25);
                out.extend((n as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                out.push(m | 26);
                out.extend((n as u32).to_be_bytes());
            }
            _ => {
                out.push(m | 27);
                out.extend(n.to_be_bytes());
            }
        }
    }
    let mut out = Vec::new();
    head(&mut out, 5, entries.len() as u64);
    for (k, v) in entries {
        for s in [k, v] {
            head(&mut out, 3, s.len() as u64);
            out.extend(s.as_bytes());
        }
    }
    out
}

/// Decodes an `application/x-www-form-urlencoded` body (or query string) into pairs, in order.
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &[u8]) -> String {
        let mut out = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < s.len() => {
                    let hex = |c: u8| (c as char).to_digit(16);
                    match (hex(s[i + 1]), hex(s[i + 2])) {
                        (Some(h), Some(l)) => {
                            out.push((h * 16 + l) as u8);
                            i += 2;
                        }
                        _ => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    body.split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|&b| b == b'=') {
            Some(i) => (decode(&p[..i]), decode(&p[i + 1..])),
            None => (decode(p), String::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_errors_are_error_responses() {
        let e = Protocol::AwsQuery.front_end_error(FrontEndFault::UnrecognizedClient, "bad <key>");
        let out = Protocol::AwsQuery.encode_error(
            &e,
            "rid-1",
            "https://sts.amazonaws.com/doc/2011-06-15/",
        );
        let body = String::from_utf8(out.body).unwrap();
        assert_eq!(out.status, 403);
        assert!(
            body.contains("<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">")
        );
        assert!(body.contains("<Type>Sender</Type><Code>InvalidClientTokenId</Code><Message>bad &lt;key&gt;</Message>"));
        assert!(body.contains("<RequestId>rid-1</RequestId>"));
    }

    #[test]
    fn json_errors_carry_type_and_header() {
        let e = ServiceError::new("ClusterNotFoundException", 400, "Cluster not found.");
        let out = Protocol::AwsJson1_0.encode_error(&e, "r", "");
        let v: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(v["__type"], "ClusterNotFoundException");
        assert!(out
            .headers
            .contains(&("x-amzn-errortype", "ClusterNotFoundException".into())));
        assert!(out
            .headers
            .contains(&("content-type", "application/x-amz-json-1.0".into())));
    }

    #[test]
    fn cbor_maps_encode_lengths() {
        assert_eq!(cbor_text_map(&[("a", "b")]), [0xa1, 0x61, b'a', 0x61, b'b']);
        let long = "x".repeat(300);
        let enc = cbor_text_map(&[("k", &long)]);
        assert_eq!(&enc[..5], &[0xa1, 0x61, b'k', 0x79, 0x01]);
        assert_eq!(enc.len(), 3 + 3 + 300);
    }

    #[test]
    fn forms_decode() {
        let f =
            parse_form(b"Action=GetCallerIdentity&Version=2011-06-15&X=a+b%2Fc&bad=%zz&tail=%4");
        assert_eq!(f[0], ("Action".into(), "GetCallerIdentity".into()));
        assert_eq!(f[2], ("X".into(), "a b/c".into()));
        assert_eq!(f[3], ("bad".into(), "%zz".into()));
        assert_eq!(f[4], ("tail".into(), "%4".into()));
        assert!(parse_form(b"").is_empty());
    }
}
