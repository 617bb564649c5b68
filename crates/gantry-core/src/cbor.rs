//! RPC v2 CBOR for services written against AWS JSON: newer botocore models (Cloud Map's, for
//! one) prefer `smithy-rpc-v2-cbor`, so boto3 sends CBOR where the AWS CLI v2 of Debian still
//! sends JSON. One dispatcher serves both: [`Bridged`] turns a CBOR request into the JSON the
//! operations decode and their JSON answer back into CBOR.
//!
//! The two encodings say the same things but for two: timestamps (CBOR tag 1; JSON numbers of
//! epoch seconds) and blobs (CBOR byte strings; JSON base64 text). Requests are turned without
//! knowing their shapes (tag 1 becomes its number, bytes become base64); answers tag the
//! members a service's model declares as timestamps (`TIMESTAMP_MEMBERS` of its generated
//! wire module).

use crate::error::ServiceError;
use crate::table::{BoxFuture, Call, Dispatch, Input, Recognise, ServiceEntry};
use base64::Engine;
use ciborium::value::{Integer, Value as Cbor};
use serde_json::{Map, Number, Value as Json};
use std::sync::Arc;

/// CBOR's tag for epoch-based date/time.
const EPOCH_TAG: u64 = 1;

fn malformed(what: impl std::fmt::Display) -> ServiceError {
    ServiceError::new(
        "SerializationException",
        400,
        format!("The request body is not valid CBOR: {what}"),
    )
}

/// A CBOR request body as the JSON its operation decodes (an empty body is `{}`).
pub fn request_to_json(body: &[u8]) -> Result<Vec<u8>, ServiceError> {
    if body.is_empty() {
        return Ok(b"{}".to_vec());
    }
    let v: Cbor = ciborium::from_reader(body).map_err(malformed)?;
    let j = to_json(v, 0)?;
    serde_json::to_vec(&j).map_err(malformed)
}

/// How deep CBOR may nest before the request is refused (the input is a client's).
const MAX_DEPTH: usize = 64;

fn to_json(v: Cbor, depth: usize) -> Result<Json, ServiceError> {
    if depth > MAX_DEPTH {
        return Err(malformed("it nests too deep"));
    }
    Ok(match v {
        Cbor::Null => Json::Null,
        Cbor::Bool(b) => Json::Bool(b),
        Cbor::Integer(i) => integer(i)?,
        Cbor::Float(f) => Number::from_f64(f)
            .map(Json::Number)
            .ok_or_else(|| malformed("a number is not finite"))?,
        Cbor::Text(t) => Json::String(t),
        Cbor::Bytes(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Cbor::Tag(EPOCH_TAG, inner) => match *inner {
            n @ (Cbor::Integer(_) | Cbor::Float(_)) => to_json(n, depth + 1)?,
            _ => return Err(malformed("a timestamp (tag 1) is not a number")),
        },
        Cbor::Tag(t, _) => return Err(malformed(format!("tag {t} is not supported"))),
        Cbor::Array(items) => Json::Array(
            items
                .into_iter()
                .map(|i| to_json(i, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Cbor::Map(pairs) => {
            let mut m = Map::new();
            for (k, v) in pairs {
                let Cbor::Text(k) = k else {
                    return Err(malformed("a map key is not text"));
                };
                m.insert(k, to_json(v, depth + 1)?);
            }
            Json::Object(m)
        }
        _ => return Err(malformed("an unsupported CBOR value")),
    })
}

fn integer(i: Integer) -> Result<Json, ServiceError> {
    let n = i128::from(i);
    if let Ok(n) = i64::try_from(n) {
        Ok(Json::from(n))
    } else if let Ok(n) = u64::try_from(n) {
        Ok(Json::from(n))
    } else {
        Err(malformed("an integer is out of range"))
    }
}

/// A JSON answer as CBOR, with the members named in `timestamps` tagged as epoch times.
pub fn answer_to_cbor(json: &[u8], timestamps: &[&str]) -> Result<Vec<u8>, ServiceError> {
    let j: Json = serde_json::from_slice(json).map_err(|e| {
        ServiceError::new(
            "InternalFailure",
            500,
            format!("the answer is not JSON: {e}"),
        )
    })?;
    let mut out = Vec::new();
    ciborium::into_writer(&from_json(j, false, timestamps), &mut out).map_err(|e| {
        ServiceError::new(
            "InternalFailure",
            500,
            format!("the answer cannot be CBOR: {e}"),
        )
    })?;
    Ok(out)
}

fn from_json(j: Json, stamp: bool, timestamps: &[&str]) -> Cbor {
    let v = match j {
        Json::Null => Cbor::Null,
        Json::Bool(b) => Cbor::Bool(b),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Cbor::Integer(i.into()),
            (_, Some(u)) => Cbor::Integer(u.into()),
            _ => Cbor::Float(n.as_f64().unwrap_or_default()),
        },
        Json::String(s) => Cbor::Text(s),
        Json::Array(items) => Cbor::Array(
            items
                .into_iter()
                .map(|i| from_json(i, false, timestamps))
                .collect(),
        ),
        Json::Object(m) => Cbor::Map(
            m.into_iter()
                .map(|(k, v)| {
                    let stamp = timestamps.contains(&k.as_str());
                    (Cbor::Text(k), from_json(v, stamp, timestamps))
                })
                .collect(),
        ),
    };
    match v {
        n @ (Cbor::Integer(_) | Cbor::Float(_)) if stamp => Cbor::Tag(EPOCH_TAG, Box::new(n)),
        v => v,
    }
}

/// A JSON service's dispatcher that also takes RPC v2 CBOR calls.
pub struct Bridged {
    inner: Arc<dyn Dispatch>,
    timestamps: &'static [&'static str],
}

impl Dispatch for Bridged {
    fn dispatch<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Vec<u8>, ServiceError>> {
        Box::pin(async move {
            let Input::Cbor(body) = call.input else {
                return self.inner.dispatch(call).await;
            };
            let json = request_to_json(body)?;
            let answer = self
                .inner
                .dispatch(Call {
                    input: Input::Json(&json),
                    ..call
                })
                .await?;
            answer_to_cbor(&answer, self.timestamps)
        })
    }
}

impl ServiceEntry {
    /// The entry, also recognising RPC v2 CBOR calls to `/service/<service>/operation/<Op>`
    /// (`service` is the model's target prefix), answered in CBOR with the `timestamps`
    /// members tagged.
    pub fn with_cbor(
        mut self,
        service: &'static str,
        timestamps: &'static [&'static str],
    ) -> ServiceEntry {
        self.recognise.push(Recognise::Cbor { service });
        self.dispatcher = Arc::new(Bridged {
            inner: self.dispatcher,
            timestamps,
        });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cbor(v: &Cbor) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(v, &mut out).unwrap();
        out
    }

    #[test]
    fn requests_become_json_with_timestamps_as_numbers_and_bytes_as_base64() {
        let req = Cbor::Map(vec![
            (Cbor::Text("Name".into()), Cbor::Text("ns".into())),
            (Cbor::Text("MaxResults".into()), Cbor::Integer(5.into())),
            (
                Cbor::Text("UpdateDate".into()),
                Cbor::Tag(1, Box::new(Cbor::Float(1.5))),
            ),
            (Cbor::Text("Blob".into()), Cbor::Bytes(b"hi".to_vec())),
            (
                Cbor::Text("List".into()),
                Cbor::Array(vec![Cbor::Bool(true), Cbor::Null]),
            ),
        ]);
        let j: Json = serde_json::from_slice(&request_to_json(&cbor(&req)).unwrap()).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"Name": "ns", "MaxResults": 5, "UpdateDate": 1.5, "Blob": "aGk=", "List": [true, null]})
        );
        assert_eq!(request_to_json(b"").unwrap(), b"{}");
    }

    #[test]
    fn bad_requests_are_serialization_errors() {
        for body in [
            vec![0xff, 0x00],
            cbor(&Cbor::Map(vec![(Cbor::Integer(1.into()), Cbor::Null)])),
            cbor(&Cbor::Tag(1, Box::new(Cbor::Text("x".into())))),
            cbor(&Cbor::Tag(55799, Box::new(Cbor::Null))),
        ] {
            let e = request_to_json(&body).unwrap_err();
            assert_eq!(e.code, "SerializationException", "{body:?}");
        }
        let mut deep = Cbor::Null;
        for _ in 0..100 {
            deep = Cbor::Array(vec![deep]);
        }
        assert!(request_to_json(&cbor(&deep)).is_err());
    }

    #[test]
    fn answers_tag_the_timestamp_members_only() {
        let json = br#"{"Namespace": {"CreateDate": 1700000000.25, "ServiceCount": 2, "Name": "x"}, "Ops": [{"UpdateDate": 5}]}"#;
        let v: Cbor = ciborium::from_reader(
            &answer_to_cbor(json, &["CreateDate", "UpdateDate"]).unwrap()[..],
        )
        .unwrap();
        let text = format!("{v:?}");
        assert!(text.contains("Tag(1, Float(1700000000.25))"), "{text}");
        assert!(text.contains("Tag(1, Integer("), "{text}");
        assert!(!text.contains("Tag(1, Text"), "{text}");
        assert!(text.contains("Text(\"ServiceCount\"), Integer("), "{text}");
    }
}
