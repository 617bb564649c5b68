//! ELB over its own protocol: Query requests (`Action=CreateLoadBalancer&Version=2015-12-01&...`)
//! answered in XML, as `aws elbv2` and boto3's elbv2 client expect. Every operation is
//! authorized as `elasticloadbalancing:<Operation>` on the ARNs it touches.

mod balancers;
mod groups;
mod listeners;
mod rules;
mod targets;

use crate::model::{Resource, Tag};
use crate::Elb;
use gantry_core::query::{validation, Params, Xml};
use gantry_core::table::BoxFuture;
use gantry_core::{Call, Dispatch, Gate, Input, Recognise, Regions, ServiceEntry, ServiceError};
use std::sync::Arc;

/// ELBv2's API version.
pub const VERSION: &str = "2015-12-01";
/// The XML namespace of its answers.
pub const XML_NAMESPACE: &str = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/";

/// ELB's entry: Query, version 2015-12-01, signing name `elasticloadbalancing`, regional.
pub fn entry(elb: &Arc<Elb>) -> ServiceEntry {
    ServiceEntry {
        name: "elasticloadbalancing",
        signing_name: "elasticloadbalancing",
        recognise: vec![Recognise::Query { version: VERSION }],
        xml_namespace: XML_NAMESPACE,
        denial: gantry_core::authz::DenialShape {
            code: "AccessDenied",
            status: 403,
        },
        regions: Regions::Served(vec![elb.region().to_string()]),
        dispatcher: Arc::new(Service(elb.clone())),
    }
}

struct Service(Arc<Elb>);

/// What an operation gets.
pub(crate) struct Ctx<'a> {
    pub elb: &'a Elb,
    pub p: Params<'a>,
    pub gate: &'a Gate<'a>,
}

impl Ctx<'_> {
    pub fn allow(&self, op: &str, resources: Vec<String>) -> Result<(), ServiceError> {
        let resources = if resources.is_empty() {
            vec!["*".to_string()]
        } else {
            resources
        };
        self.gate
            .authorize(&format!("elasticloadbalancing:{op}"), &resources)
            .map(|_| ())
    }
}

impl Dispatch for Service {
    fn dispatch<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Vec<u8>, ServiceError>> {
        Box::pin(async move {
            let Input::Query(pairs) = call.input else {
                return Err(validation(
                    "Elastic Load Balancing takes Query requests (a form with Action and Version).",
                ));
            };
            let cx = Ctx {
                elb: &self.0,
                p: Params::new(pairs),
                gate: &call.gate,
            };
            route(&cx, call.operation).await.map(Xml::into_bytes)
        })
    }
}

async fn route(cx: &Ctx<'_>, op: &str) -> Result<Xml, ServiceError> {
    match op {
        "CreateLoadBalancer" => balancers::create(cx).await,
        "DescribeLoadBalancers" => balancers::describe(cx),
        "DeleteLoadBalancer" => balancers::delete(cx).await,
        "CreateTargetGroup" => groups::create(cx).await,
        "DescribeTargetGroups" => groups::describe(cx),
        "ModifyTargetGroup" => groups::modify(cx).await,
        "DeleteTargetGroup" => groups::delete(cx).await,
        "DescribeTargetGroupAttributes" => groups::describe_attributes(cx),
        "ModifyTargetGroupAttributes" => groups::modify_attributes(cx).await,
        "CreateListener" => listeners::create(cx).await,
        "DescribeListeners" => listeners::describe(cx),
        "ModifyListener" => listeners::modify(cx).await,
        "AddListenerCertificates" => listeners::add_certificates(cx).await,
        "RemoveListenerCertificates" => listeners::remove_certificates(cx).await,
        "DescribeListenerCertificates" => listeners::describe_certificates(cx),
        "DeleteListener" => listeners::delete(cx).await,
        "CreateRule" => rules::create(cx).await,
        "DescribeRules" => rules::describe(cx),
        "ModifyRule" => rules::modify(cx).await,
        "DeleteRule" => rules::delete(cx).await,
        "SetRulePriorities" => rules::set_priorities(cx).await,
        "RegisterTargets" => targets::register(cx).await,
        "DeregisterTargets" => targets::deregister(cx).await,
        "DescribeTargetHealth" => targets::describe_health(cx),
        "AddTags" => tags_add(cx).await,
        "RemoveTags" => tags_remove(cx).await,
        "DescribeTags" => tags_describe(cx),
        "DescribeAccountLimits" => account_limits(cx),
        other => Err(ServiceError::new(
            "InvalidAction",
            400,
            format!("The action {other} is not valid for this web service."),
        )),
    }
}

/// ELB's error for something missing (`LoadBalancerNotFound`, ...).
pub(crate) fn not_found(code: &'static str, message: impl Into<String>) -> ServiceError {
    ServiceError::new(code, 400, message)
}

pub(crate) fn invalid_config(message: impl Into<String>) -> ServiceError {
    ServiceError::new("InvalidConfigurationRequest", 400, message)
}

/// `Tags.member.N.Key` / `.Value`.
pub(crate) fn read_tags(p: &Params<'_>) -> Result<Vec<Tag>, ServiceError> {
    let mut out = Vec::new();
    for f in p.structs("Tags") {
        let key = f
            .get("Key")
            .ok_or_else(|| validation("A tag must have a key."))?;
        if key.is_empty() || key.len() > 128 || key.starts_with("aws:") {
            return Err(validation(format!("The tag key '{key}' is not valid.")));
        }
        out.push(Tag {
            key: key.to_string(),
            value: f.get("Value").unwrap_or(&"").to_string(),
        });
    }
    Ok(out)
}

pub(crate) fn tags_xml(x: &mut Xml, tags: &[Tag]) {
    x.list("Tags", tags, |x, t| {
        x.leaf("Key", &t.key);
        x.leaf("Value", &t.value);
    });
}

fn tags_of_mut(r: &mut Resource) -> Option<&mut Vec<Tag>> {
    match r {
        Resource::Balancer(b) => Some(&mut b.tags),
        Resource::Group(g) => Some(&mut g.tags),
        Resource::Listener(_) | Resource::Rule(_) => None,
    }
}

fn missing(arn: &str) -> ServiceError {
    if arn.contains(":targetgroup/") {
        not_found(
            "TargetGroupNotFound",
            format!("Target groups '{arn}' not found"),
        )
    } else if arn.contains(":listener-rule/") {
        not_found(
            "RuleNotFound",
            format!("One or more rules not found: {arn}"),
        )
    } else if arn.contains(":listener/") {
        not_found("ListenerNotFound", format!("Listener '{arn}' not found"))
    } else {
        not_found(
            "LoadBalancerNotFound",
            format!("Load balancer '{arn}' not found"),
        )
    }
}

async fn tags_add(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let arns: Vec<String> =
        cx.p.list("ResourceArns")
            .iter()
            .map(|s| s.to_string())
            .collect();
    let tags = read_tags(&cx.p)?;
    cx.allow("AddTags", arns.clone())?;
    cx.elb
        .update(|rows| {
            for arn in &arns {
                let mut r = rows.get(arn).cloned().ok_or_else(|| missing(arn))?;
                let Some(have) = tags_of_mut(&mut r) else {
                    return Err(validation(format!("'{arn}' cannot be tagged.")));
                };
                for t in &tags {
                    have.retain(|h| h.key != t.key);
                    have.push(t.clone());
                }
                rows.put(arn, r);
            }
            Ok(())
        })
        .await?;
    Ok(Xml::new())
}

async fn tags_remove(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let arns: Vec<String> =
        cx.p.list("ResourceArns")
            .iter()
            .map(|s| s.to_string())
            .collect();
    let keys: Vec<String> = cx.p.list("TagKeys").iter().map(|s| s.to_string()).collect();
    cx.allow("RemoveTags", arns.clone())?;
    cx.elb
        .update(|rows| {
            for arn in &arns {
                let mut r = rows.get(arn).cloned().ok_or_else(|| missing(arn))?;
                if let Some(have) = tags_of_mut(&mut r) {
                    have.retain(|h| !keys.contains(&h.key));
                }
                rows.put(arn, r);
            }
            Ok(())
        })
        .await?;
    Ok(Xml::new())
}

fn tags_describe(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let arns: Vec<&str> = cx.p.list("ResourceArns");
    cx.allow("DescribeTags", arns.iter().map(|s| s.to_string()).collect())?;
    let all = cx.elb.snapshot();
    let mut found = Vec::new();
    for arn in &arns {
        let tags = match all.get(*arn) {
            Some(Resource::Balancer(b)) => b.tags.clone(),
            Some(Resource::Group(g)) => g.tags.clone(),
            Some(Resource::Listener(_)) | Some(Resource::Rule(_)) => Vec::new(),
            None => return Err(missing(arn)),
        };
        found.push((arn.to_string(), tags));
    }
    let mut x = Xml::new();
    x.list("TagDescriptions", &found, |x, (arn, tags)| {
        x.leaf("ResourceArn", arn);
        tags_xml(x, tags);
    });
    Ok(x)
}

/// The quotas ELB reports (gantry enforces none of them).
fn account_limits(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    cx.allow("DescribeAccountLimits", Vec::new())?;
    let limits = [
        ("application-load-balancers", "50"),
        ("network-load-balancers", "50"),
        ("target-groups", "3000"),
        ("listeners-per-application-load-balancer", "50"),
        ("listeners-per-network-load-balancer", "50"),
        ("targets-per-application-load-balancer", "1000"),
        ("targets-per-network-load-balancer", "3000"),
        ("rules-per-application-load-balancer", "100"),
    ];
    let mut x = Xml::new();
    x.list("Limits", limits, |x, (name, max)| {
        x.leaf("Name", name);
        x.leaf("Max", max);
    });
    Ok(x)
}
