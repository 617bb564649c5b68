//! The JSON services' bodies: the call's input, its shape decoded with the service's own error
//! names, and the answer encoded.

use crate::error::ServiceError;
use crate::table::{Call, Input};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The JSON body of a call.
pub fn body<'a>(call: &Call<'a>) -> Result<&'a [u8], ServiceError> {
    match call.input {
        Input::Json(b) => Ok(b),
        _ => Err(ServiceError::new(
            "SerializationException",
            400,
            "This service takes AWS JSON 1.1 bodies.",
        )),
    }
}

/// Decodes an input shape; a missing or mistyped member is `invalid` (the service's own name
/// for a bad parameter).
pub fn decode<T: DeserializeOwned>(body: &[u8], invalid: &'static str) -> Result<T, ServiceError> {
    gantry_api::decode(body).map_err(|e| {
        let code = if e.code == gantry_api::ErrorCode::SerializationException {
            "SerializationException"
        } else {
            invalid
        };
        ServiceError::new(code, 400, e.message)
    })
}

/// Encodes an output shape.
pub fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, ServiceError> {
    serde_json::to_vec(v).map_err(|e| ServiceError::new("InternalFailure", 500, e.to_string()))
}
