//! Errors in the shape every AWS JSON client parses: `{"__type": "...", "message": "..."}`.

use serde::Serialize;

/// The exception names gantry answers with. Names are the API model's where it has one, and the
/// AWS front-end's (authentication, serialisation, routing) otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    // From the ECS API model.
    AccessDeniedException,
    AttributeLimitExceededException,
    ClientException,
    ClusterContainsContainerInstancesException,
    ClusterContainsServicesException,
    ClusterContainsTasksException,
    ClusterNotFoundException,
    InvalidParameterException,
    LimitExceededException,
    ResourceInUseException,
    ResourceNotFoundException,
    ServerException,
    ServiceNotActiveException,
    ServiceNotFoundException,
    TargetNotFoundException,
    UnsupportedFeatureException,
    // From the AWS front-end that sits before every JSON service.
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    SerializationException,
    UnknownOperationException,
    UnrecognizedClientException,
    ExpiredTokenException,
}

impl ErrorCode {
    /// The `__type` string.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            AccessDeniedException => "AccessDeniedException",
            AttributeLimitExceededException => "AttributeLimitExceededException",
            ClientException => "ClientException",
            ClusterContainsContainerInstancesException => {
                "ClusterContainsContainerInstancesException"
            }
            ClusterContainsServicesException => "ClusterContainsServicesException",
            ClusterContainsTasksException => "ClusterContainsTasksException",
            ClusterNotFoundException => "ClusterNotFoundException",
            InvalidParameterException => "InvalidParameterException",
            LimitExceededException => "LimitExceededException",
            ResourceInUseException => "ResourceInUseException",
            ResourceNotFoundException => "ResourceNotFoundException",
            ServerException => "ServerException",
            ServiceNotActiveException => "ServiceNotActiveException",
            ServiceNotFoundException => "ServiceNotFoundException",
            TargetNotFoundException => "TargetNotFoundException",
            UnsupportedFeatureException => "UnsupportedFeatureException",
            IncompleteSignatureException => "IncompleteSignatureException",
            InvalidSignatureException => "InvalidSignatureException",
            MissingAuthenticationTokenException => "MissingAuthenticationTokenException",
            SerializationException => "SerializationException",
            UnknownOperationException => "UnknownOperationException",
            UnrecognizedClientException => "UnrecognizedClientException",
            ExpiredTokenException => "ExpiredTokenException",
        }
    }

    /// The HTTP status AWS JSON services use for the error: 500 for server faults, 403 for a
    /// refused signature, 400 for everything else the client got wrong (an unknown or expired
    /// token included).
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            ServerException => 500,
            MissingAuthenticationTokenException
            | InvalidSignatureException
            | IncompleteSignatureException => 403,
            _ => 400,
        }
    }
}

/// An error answered to an API client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "__type")]
    kind: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn client(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ClientException, message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameterException, message)
    }

    pub fn server(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ServerException, message)
    }

    pub fn cluster_not_found() -> Self {
        Self::new(ErrorCode::ClusterNotFoundException, "Cluster not found.")
    }

    /// The JSON body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&Body {
            kind: self.code.as_str(),
            message: &self.message,
        })
        .unwrap_or_else(|_| String::from(r#"{"__type":"ServerException"}"#))
    }
}

/// Decodes a request body into an operation's input shape. Type errors name the member's path
/// and are `SerializationException`s, as on AWS; a missing required member is an
/// `InvalidParameterException` naming it.
pub fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let de = &mut serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize(&mut *de) {
        Ok(v) => match de.end() {
            Ok(()) => Ok(v),
            Err(_) => Err(ApiError::new(
                ErrorCode::SerializationException,
                "Unexpected characters after the JSON document.",
            )),
        },
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let msg = inner.to_string();
            if let Some(rest) = msg.strip_prefix("missing field `") {
                let field = rest.split('`').next().unwrap_or_default();
                let at = if path == "." {
                    String::new()
                } else {
                    format!(" in {path}")
                };
                return Err(ApiError::invalid(format!(
                    "Missing required parameter '{field}'{at}."
                )));
            }
            if let Some(rest) = msg.strip_prefix("unknown variant `") {
                let value = rest.split('`').next().unwrap_or_default();
                let valid = rest
                    .split_once("expected ")
                    .map(|(_, v)| v)
                    .unwrap_or_default();
                let valid = valid
                    .split(" at line ")
                    .next()
                    .unwrap_or_default()
                    .replace('`', "");
                if value == "distinctInstance" && path.starts_with("placementConstraints") {
                    // ECS refuses this one as a ClientException.
                    return Err(ApiError::client(format!(
                        "Invalid '{path}': constraint.type 'distinctInstance' is not supported in task definitions; use it on RunTask or CreateService."
                    )));
                }
                return Err(ApiError::invalid(format!(
                    "Invalid value '{value}' for '{path}'. Valid values: {valid}."
                )));
            }
            let msg = match msg.find(" at line ") {
                Some(i) => &msg[..i],
                None => &msg,
            };
            let at = if path == "." || path.is_empty() {
                String::new()
            } else {
                format!(" at '{path}'")
            };
            Err(ApiError::new(
                ErrorCode::SerializationException,
                format!("{msg}{at}"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CreateClusterRequest, RegisterTaskDefinitionRequest};

    #[test]
    fn errors_name_the_member_path() {
        let e = decode::<RegisterTaskDefinitionRequest>(
            br#"{"family":"a","containerDefinitions":[{"name":"x","memory":"lots"}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::SerializationException);
        assert!(
            e.message.contains("containerDefinitions[0].memory"),
            "{}",
            e.message
        );
    }

    #[test]
    fn missing_required_is_invalid_parameter() {
        let e =
            decode::<RegisterTaskDefinitionRequest>(br#"{"containerDefinitions":[]}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterException);
        assert!(e.message.contains("family"));
    }

    #[test]
    fn trailing_commas_and_garbage_are_serialization_errors() {
        for body in [
            &br#"{"clusterName":"a",}"#[..],
            b"[1,2]",
            b"\"x\"",
            b"{",
            b"\xff",
        ] {
            let e = decode::<CreateClusterRequest>(body).unwrap_err();
            assert_eq!(e.code, ErrorCode::SerializationException, "{body:?}");
        }
        assert!(decode::<CreateClusterRequest>(b"").is_ok());
        for trailing in [
            &br#"{"clusterName":"a"} x"#[..],
            br#"{"clusterName":"a"}}"#,
            br#"{} {}"#,
        ] {
            let e = decode::<CreateClusterRequest>(trailing).unwrap_err();
            assert_eq!(e.code, ErrorCode::SerializationException);
        }
        assert!(decode::<CreateClusterRequest>(b" {} \n").is_ok());
    }

    #[test]
    fn unknown_enum_values_are_invalid_parameters_naming_the_field() {
        let e = decode::<RegisterTaskDefinitionRequest>(
            br#"{"family":"a","containerDefinitions":[],"networkMode":"bogus"}"#,
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterException);
        assert!(e.message.contains("networkMode"), "{}", e.message);
        assert!(e.message.contains("awsvpc"), "{}", e.message);
    }

    #[test]
    fn distinct_instance_in_a_task_definition_is_a_client_exception() {
        let e = decode::<RegisterTaskDefinitionRequest>(
            br#"{"family":"a","containerDefinitions":[],"placementConstraints":[{"type":"distinctInstance"}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::ClientException);
        assert!(
            e.message.contains("placementConstraints[0].type"),
            "{}",
            e.message
        );
        assert!(e.message.contains("distinctInstance"), "{}", e.message);
    }

    #[test]
    fn error_body_shape() {
        let v: serde_json::Value =
            serde_json::from_str(&ApiError::cluster_not_found().to_json()).unwrap();
        assert_eq!(v["__type"], "ClusterNotFoundException");
        assert_eq!(v["message"], "Cluster not found.");
    }
}
