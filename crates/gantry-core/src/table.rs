//! The table of services served on gantry's one port, and how a request finds its entry.
//!
//! Each [`ServiceEntry`] says how its requests are recognised ([`Recognise`]), the SigV4 name
//! they are signed for, which regions it serves, how its refusals look and who dispatches its
//! operations. A new AWS service is one more entry (and one crate that builds it).

use crate::authz::{DenialShape, Gate};
use crate::error::ServiceError;
use crate::protocol::Protocol;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed, sendable future (dispatchers are trait objects).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How the requests of one wire protocol of a service are told apart from all others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recognise {
    /// AWS JSON (`protocol` 1.0 or 1.1): `X-Amz-Target: <prefix>.<Operation>`.
    Json {
        protocol: Protocol,
        target_prefix: &'static str,
    },
    /// awsQuery: a form with `Action` and `Version`, routed by the credential scope's service
    /// (the entry's signing name) and the `Version`, never by `Action` alone.
    Query { version: &'static str },
    /// RPC v2 CBOR: `smithy-protocol: rpc-v2-cbor` and `/service/<service>/operation/<Op>`.
    Cbor { service: &'static str },
}

impl Recognise {
    pub fn protocol(&self) -> Protocol {
        match self {
            Recognise::Json { protocol, .. } => *protocol,
            Recognise::Query { .. } => Protocol::AwsQuery,
            Recognise::Cbor { .. } => Protocol::RpcV2Cbor,
        }
    }
}

/// Which SigV4 scope regions a service answers in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Regions {
    /// A global service (IAM, STS): any region's signature is accepted, records are the account's.
    Global,
    /// A regional service: only these regions.
    Served(Vec<String>),
}

/// The body of a request, as its protocol carries it.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    Json(&'a [u8]),
    /// The form's pairs, `Action` and `Version` included.
    Query(&'a [(String, String)]),
    Cbor(&'a [u8]),
}

/// One call handed to a dispatcher.
pub struct Call<'a> {
    pub operation: &'a str,
    pub protocol: Protocol,
    pub input: Input<'a>,
    /// The authorization hook: handlers need the [`crate::authz::Caller`] it gives.
    pub gate: Gate<'a>,
    /// The region of the request's SigV4 scope (`global` records for global services).
    pub region: &'a str,
    pub request_id: &'a str,
}

/// Runs the operations of one service. The answer is the protocol's body: JSON or CBOR bytes,
/// or for Query the XML inside `<OpResult>`.
pub trait Dispatch: Send + Sync + 'static {
    fn dispatch<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Vec<u8>, ServiceError>>;
}

/// One service on the port.
#[derive(Clone)]
pub struct ServiceEntry {
    /// The service's short name in logs and metrics (`ecs`, `sts`, `gantry`).
    pub name: &'static str,
    /// The SigV4 signing name requests must be scoped to.
    pub signing_name: &'static str,
    /// How its requests are recognised, one way per protocol it speaks.
    pub recognise: Vec<Recognise>,
    /// The XML namespace of Query answers (empty for JSON-only services).
    pub xml_namespace: &'static str,
    pub denial: DenialShape,
    pub regions: Regions,
    pub dispatcher: Arc<dyn Dispatch>,
}

impl ServiceEntry {
    /// A regional AWS JSON 1.1 service (Secrets Manager, SSM, CloudWatch Logs): recognised by
    /// its `X-Amz-Target` prefix, signed for `name`, served in `region`, refusing
    /// authorizations as `AccessDeniedException` (400).
    pub fn json_1_1(
        name: &'static str,
        target_prefix: &'static str,
        region: &str,
        dispatcher: Arc<dyn Dispatch>,
    ) -> ServiceEntry {
        ServiceEntry {
            name,
            signing_name: name,
            recognise: vec![Recognise::Json {
                protocol: crate::Protocol::AwsJson1_1,
                target_prefix,
            }],
            xml_namespace: "",
            denial: crate::authz::DenialShape {
                code: "AccessDeniedException",
                status: 400,
            },
            regions: Regions::Served(vec![region.to_string()]),
            dispatcher,
        }
    }
}

impl std::fmt::Debug for ServiceEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceEntry")
            .field("name", &self.name)
            .field("signing_name", &self.signing_name)
            .field("recognise", &self.recognise)
            .finish_non_exhaustive()
    }
}

/// What a request looks like to the router: only the parts routing reads.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub target: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub smithy_protocol: Option<&'a str>,
    /// The service named in the `Authorization` header's credential scope.
    pub scope_service: Option<&'a str>,
    /// The form's `Version`, for form-encoded requests.
    pub query_version: Option<&'a str>,
    /// The form's `Action`.
    pub query_action: Option<&'a str>,
}

/// Where a request goes.
#[derive(Debug)]
pub enum Route<'t> {
    /// To this entry's dispatcher, as `operation` in `protocol`.
    Found {
        entry: &'t ServiceEntry,
        protocol: Protocol,
        operation: String,
    },
    /// Nowhere: answered with a 400 in `protocol`'s shape naming what was asked for.
    Unknown { protocol: Protocol, message: String },
}

/// The services gantry serves.
#[derive(Debug, Default, Clone)]
pub struct ServiceTable {
    entries: Vec<ServiceEntry>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TableError(String);

impl ServiceTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a service; refuses one whose recognition overlaps an entry's already there.
    pub fn add(&mut self, entry: ServiceEntry) -> Result<(), TableError> {
        for r in &entry.recognise {
            for e in &self.entries {
                let clash = e.recognise.iter().any(|o| match (o, r) {
                    (
                        Recognise::Json {
                            target_prefix: a, ..
                        },
                        Recognise::Json {
                            target_prefix: b, ..
                        },
                    ) => a == b,
                    (Recognise::Query { version: a }, Recognise::Query { version: b }) => {
                        a == b && e.signing_name == entry.signing_name
                    }
                    (Recognise::Cbor { service: a }, Recognise::Cbor { service: b }) => a == b,
                    _ => false,
                });
                if clash {
                    return Err(TableError(format!(
                        "{} and {} are both recognised by {r:?}",
                        e.name, entry.name
                    )));
                }
            }
        }
        self.entries.push(entry);
        Ok(())
    }

    /// Finds the entry and operation of a request. Pure: reads only the envelope.
    pub fn route(&self, env: &Envelope<'_>) -> Route<'_> {
        let json_protocol = match env.content_type.map(|c| c.trim()) {
            Some(c) if c.starts_with("application/x-amz-json-1.0") => Protocol::AwsJson1_0,
            _ => Protocol::AwsJson1_1,
        };
        if env
            .smithy_protocol
            .is_some_and(|p| p.eq_ignore_ascii_case("rpc-v2-cbor"))
        {
            let mut parts = env.path.trim_start_matches('/').split('/');
            let (s, name, o, op) = (parts.next(), parts.next(), parts.next(), parts.next());
            let (Some("service"), Some(name), Some("operation"), Some(op), None) =
                (s, name, o, op, parts.next())
            else {
                return Route::Unknown {
                    protocol: Protocol::RpcV2Cbor,
                    message: format!(
                        "RPC v2 CBOR requests are POST /service/<Service>/operation/<Operation>; got {}",
                        env.path
                    ),
                };
            };
            for e in &self.entries {
                if e.recognise
                    .iter()
                    .any(|r| matches!(r, Recognise::Cbor { service } if *service == name))
                {
                    return Route::Found {
                        entry: e,
                        protocol: Protocol::RpcV2Cbor,
                        operation: op.to_string(),
                    };
                }
            }
            return Route::Unknown {
                protocol: Protocol::RpcV2Cbor,
                message: format!("gantry does not serve the service {name} (RPC v2 CBOR)."),
            };
        }
        if let Some(target) = env.target {
            let (prefix, op) = target.rsplit_once('.').unwrap_or((target, ""));
            for e in &self.entries {
                for r in &e.recognise {
                    if let Recognise::Json {
                        protocol,
                        target_prefix,
                    } = r
                    {
                        if *target_prefix == prefix {
                            return Route::Found {
                                entry: e,
                                protocol: *protocol,
                                operation: op.to_string(),
                            };
                        }
                    }
                }
            }
            return Route::Unknown {
                protocol: json_protocol,
                message: format!(
                    "gantry does not serve the service {prefix} (X-Amz-Target {target})."
                ),
            };
        }
        if let Some(action) = env.query_action {
            let service = env.scope_service.unwrap_or_default();
            let candidates: Vec<&ServiceEntry> = self
                .entries
                .iter()
                .filter(|e| {
                    e.recognise
                        .iter()
                        .any(|r| matches!(r, Recognise::Query { .. }))
                })
                .filter(|e| env.scope_service.is_none() || e.signing_name == service)
                .collect();
            let by_version = candidates.iter().find(|e| {
                e.recognise
                    .iter()
                    .any(|r| matches!(r, Recognise::Query { version } if Some(*version) == env.query_version))
            });
            // Unsigned requests name no service: route them anywhere that speaks Query, so they
            // get the signature error in the right shape.
            let chosen = by_version.or(if env.scope_service.is_none() {
                candidates.first()
            } else {
                None
            });
            if let Some(e) = chosen {
                return Route::Found {
                    entry: e,
                    protocol: Protocol::AwsQuery,
                    operation: action.to_string(),
                };
            }
            let version = env.query_version.unwrap_or("(none)");
            return Route::Unknown {
                protocol: Protocol::AwsQuery,
                message: if candidates.is_empty() {
                    format!(
                        "gantry does not serve the service '{service}' (Action {action}, Version {version})."
                    )
                } else {
                    format!(
                        "The service '{service}' has no API version {version} here (Action {action})."
                    )
                },
            };
        }
        Route::Unknown {
            protocol: json_protocol,
            message: "Unknown operation (no X-Amz-Target header): gantry's JSON services are POST / with X-Amz-Target, its Query services a form with Action and Version.".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nobody;
    impl Dispatch for Nobody {
        fn dispatch<'a>(&'a self, _: Call<'a>) -> BoxFuture<'a, Result<Vec<u8>, ServiceError>> {
            Box::pin(async { Ok(Vec::new()) })
        }
    }

    fn entry(name: &'static str, signing: &'static str, r: Vec<Recognise>) -> ServiceEntry {
        ServiceEntry {
            name,
            signing_name: signing,
            recognise: r,
            xml_namespace: "",
            denial: DenialShape {
                code: "AccessDenied",
                status: 403,
            },
            regions: Regions::Global,
            dispatcher: Arc::new(Nobody),
        }
    }

    fn table() -> ServiceTable {
        let mut t = ServiceTable::new();
        t.add(entry(
            "ecs",
            "ecs",
            vec![Recognise::Json {
                protocol: Protocol::AwsJson1_1,
                target_prefix: "AmazonEC2ContainerServiceV20141113",
            }],
        ))
        .unwrap();
        t.add(entry(
            "elbv2",
            "elasticloadbalancing",
            vec![Recognise::Query {
                version: "2015-12-01",
            }],
        ))
        .unwrap();
        t.add(entry(
            "cloudformation",
            "cloudformation",
            vec![Recognise::Query {
                version: "2010-05-15",
            }],
        ))
        .unwrap();
        t.add(entry(
            "monitoring",
            "monitoring",
            vec![
                Recognise::Query {
                    version: "2010-08-01",
                },
                Recognise::Json {
                    protocol: Protocol::AwsJson1_0,
                    target_prefix: "GraniteServiceVersion20100801",
                },
                Recognise::Cbor {
                    service: "GraniteServiceVersion20100801",
                },
            ],
        ))
        .unwrap();
        t
    }

    fn env<'a>() -> Envelope<'a> {
        Envelope {
            method: "POST",
            path: "/",
            target: None,
            content_type: None,
            smithy_protocol: None,
            scope_service: None,
            query_version: None,
            query_action: None,
        }
    }

    fn found(r: Route<'_>) -> (&'static str, Protocol, String) {
        match r {
            Route::Found {
                entry,
                protocol,
                operation,
            } => (entry.name, protocol, operation),
            Route::Unknown { message, .. } => panic!("not found: {message}"),
        }
    }

    #[test]
    fn json_targets_route_by_prefix() {
        let t = table();
        let r = t.route(&Envelope {
            target: Some("AmazonEC2ContainerServiceV20141113.ListClusters"),
            ..env()
        });
        assert_eq!(
            found(r),
            ("ecs", Protocol::AwsJson1_1, "ListClusters".into())
        );
        let r = t.route(&Envelope {
            target: Some("GraniteServiceVersion20100801.GetMetricData"),
            content_type: Some("application/x-amz-json-1.0"),
            ..env()
        });
        assert_eq!(
            found(r),
            ("monitoring", Protocol::AwsJson1_0, "GetMetricData".into())
        );
    }

    #[test]
    fn query_routes_by_scope_service_not_action() {
        let t = table();
        for (service, version, want) in [
            ("elasticloadbalancing", "2015-12-01", "elbv2"),
            ("cloudformation", "2010-05-15", "cloudformation"),
        ] {
            let r = t.route(&Envelope {
                content_type: Some("application/x-www-form-urlencoded"),
                scope_service: Some(service),
                query_action: Some("DescribeAccountLimits"),
                query_version: Some(version),
                ..env()
            });
            assert_eq!(found(r).0, want);
        }
        // The CLI v2.9 still sends Query to CloudWatch.
        let r = t.route(&Envelope {
            scope_service: Some("monitoring"),
            query_action: Some("ListMetrics"),
            query_version: Some("2010-08-01"),
            ..env()
        });
        assert_eq!(
            found(r),
            ("monitoring", Protocol::AwsQuery, "ListMetrics".into())
        );
    }

    #[test]
    fn unknown_services_are_named() {
        let t = table();
        match t.route(&Envelope {
            target: Some("DynamoDB_20120810.ListTables"),
            ..env()
        }) {
            Route::Unknown { protocol, message } => {
                assert_eq!(protocol, Protocol::AwsJson1_1);
                assert!(message.contains("DynamoDB_20120810"), "{message}");
            }
            r => panic!("{r:?}"),
        }
        match t.route(&Envelope {
            scope_service: Some("sqs"),
            query_action: Some("ListQueues"),
            query_version: Some("2012-11-05"),
            ..env()
        }) {
            Route::Unknown { protocol, message } => {
                assert_eq!(protocol, Protocol::AwsQuery);
                assert!(message.contains("'sqs'"), "{message}");
            }
            r => panic!("{r:?}"),
        }
        match t.route(&Envelope {
            scope_service: Some("elasticloadbalancing"),
            query_action: Some("DescribeLoadBalancers"),
            query_version: Some("2012-06-01"),
            ..env()
        }) {
            Route::Unknown { message, .. } => assert!(message.contains("2012-06-01"), "{message}"),
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn cbor_routes_by_path() {
        let t = table();
        let r = t.route(&Envelope {
            smithy_protocol: Some("rpc-v2-cbor"),
            path: "/service/GraniteServiceVersion20100801/operation/ListMetrics",
            ..env()
        });
        assert_eq!(
            found(r),
            ("monitoring", Protocol::RpcV2Cbor, "ListMetrics".into())
        );
        for path in ["/service/Nope/operation/X", "/service/x", "/"] {
            assert!(matches!(
                t.route(&Envelope {
                    smithy_protocol: Some("rpc-v2-cbor"),
                    path,
                    ..env()
                }),
                Route::Unknown {
                    protocol: Protocol::RpcV2Cbor,
                    ..
                }
            ));
        }
    }

    #[test]
    fn overlapping_entries_are_refused() {
        let mut t = table();
        let dup = entry(
            "ecs2",
            "ecs",
            vec![Recognise::Json {
                protocol: Protocol::AwsJson1_1,
                target_prefix: "AmazonEC2ContainerServiceV20141113",
            }],
        );
        assert!(t.add(dup).is_err());
    }
}
