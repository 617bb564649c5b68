//! Listeners: a port of a load balancer and what it does with what arrives (forward to
//! weighted target groups, a fixed response, a redirect).

use super::*;
use crate::hex_id;
use crate::model::{Action, Balancer, BalancerType, Listener, ListenerTls, Protocol};
use gantry_core::query::Fields;
use std::collections::BTreeMap;

fn listener_not_found(arn: &str) -> ServiceError {
    not_found("ListenerNotFound", format!("Listener '{arn}' not found"))
}

/// One action of `DefaultActions.member.N`, its fields as the form named them.
fn action(
    all: &BTreeMap<String, Resource>,
    kind: BalancerType,
    f: &Fields<'_>,
) -> Result<Action, ServiceError> {
    let get = |k: &str| f.get(k).copied();
    match get("Type").unwrap_or_default() {
        "forward" => {
            let mut groups: Vec<(String, u32)> = Vec::new();
            if let Some(arn) = get("TargetGroupArn") {
                groups.push((arn.to_string(), 1));
            }
            let mut weighted: BTreeMap<u32, (Option<&str>, Option<&str>)> = BTreeMap::new();
            for (k, v) in f {
                let Some(rest) = k.strip_prefix("ForwardConfig.TargetGroups.member.") else {
                    continue;
                };
                let Some((n, field)) = rest.split_once('.') else {
                    continue;
                };
                let Ok(n) = n.parse() else { continue };
                let e = weighted.entry(n).or_default();
                match field {
                    "TargetGroupArn" => e.0 = Some(v),
                    "Weight" => e.1 = Some(v),
                    _ => {}
                }
            }
            for (arn, weight) in weighted.into_values() {
                let arn = arn.ok_or_else(|| {
                    validation("A weighted target group needs its TargetGroupArn.")
                })?;
                let w = weight.map_or(Ok(1), |w| {
                    w.parse::<u32>().ok().filter(|w| *w <= 999).ok_or_else(|| {
                        validation(format!("Weight '{w}' must be between 0 and 999."))
                    })
                })?;
                if let Some(g) = groups.iter_mut().find(|g| g.0 == arn) {
                    g.1 = w;
                } else {
                    groups.push((arn.to_string(), w));
                }
            }
            if groups.is_empty() {
                return Err(validation("A forward action needs a target group."));
            }
            let want = match kind {
                BalancerType::Application => Protocol::Http,
                BalancerType::Network => Protocol::Tcp,
            };
            for (arn, _) in &groups {
                match all.get(arn) {
                    Some(Resource::Group(g)) if g.protocol == want => {}
                    Some(Resource::Group(g)) => {
                        return Err(invalid_config(format!(
                            "The target group '{}' uses {}; a {} load balancer forwards to {} target groups",
                            g.name,
                            g.protocol.as_str(),
                            kind.as_str(),
                            want.as_str()
                        )))
                    }
                    _ => {
                        return Err(not_found(
                            "TargetGroupNotFound",
                            format!("Target group '{arn}' not found"),
                        ))
                    }
                }
            }
            Ok(Action::Forward { groups })
        }
        "fixed-response" if kind == BalancerType::Application => {
            let status = get("FixedResponseConfig.StatusCode")
                .and_then(|s| s.parse::<u16>().ok())
                .filter(|s| (200..=599).contains(s))
                .ok_or_else(|| {
                    validation("A fixed response needs a StatusCode between 200 and 599.")
                })?;
            Ok(Action::FixedResponse {
                status,
                content_type: get("FixedResponseConfig.ContentType").map(str::to_string),
                body: get("FixedResponseConfig.MessageBody").map(str::to_string),
            })
        }
        "redirect" if kind == BalancerType::Application => {
            let status = get("RedirectConfig.StatusCode").unwrap_or_default();
            if !matches!(status, "HTTP_301" | "HTTP_302") {
                return Err(validation(
                    "A redirect needs a StatusCode of HTTP_301 or HTTP_302.",
                ));
            }
            let or = |k: &str, d: &str| get(k).unwrap_or(d).to_string();
            Ok(Action::Redirect {
                protocol: or("RedirectConfig.Protocol", "#{protocol}"),
                host: or("RedirectConfig.Host", "#{host}"),
                port: or("RedirectConfig.Port", "#{port}"),
                path: or("RedirectConfig.Path", "/#{path}"),
                query: or("RedirectConfig.Query", "#{query}"),
                status: status.to_string(),
            })
        }
        other => Err(validation(format!(
            "Action type '{other}' is not served on a {} load balancer.",
            kind.as_str()
        ))),
    }
}

/// The actions of list parameter `name` (`DefaultActions`, a rule's `Actions`).
pub(super) fn read_actions(
    cx: &Ctx<'_>,
    name: &str,
    kind: BalancerType,
) -> Result<Option<Vec<Action>>, ServiceError> {
    let given = cx.p.structs(name);
    if given.is_empty() {
        return Ok(None);
    }
    let all = cx.elb.snapshot();
    given
        .iter()
        .map(|f| action(&all, kind, f))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

pub(super) fn action_xml(x: &mut Xml, a: &Action, order: usize) {
    match a {
        Action::Forward { groups } => {
            x.leaf("Type", "forward");
            if let [(arn, _)] = groups.as_slice() {
                x.leaf("TargetGroupArn", arn);
            }
            x.node("ForwardConfig", |x| {
                x.list("TargetGroups", groups, |x, (arn, w)| {
                    x.leaf("TargetGroupArn", arn);
                    x.leaf("Weight", &w.to_string());
                });
            });
        }
        Action::FixedResponse {
            status,
            content_type,
            body,
        } => {
            x.leaf("Type", "fixed-response");
            x.node("FixedResponseConfig", |x| {
                x.opt("MessageBody", body.as_deref());
                x.leaf("StatusCode", &status.to_string());
                x.opt("ContentType", content_type.as_deref());
            });
        }
        Action::Redirect {
            protocol,
            host,
            port,
            path,
            query,
            status,
        } => {
            x.leaf("Type", "redirect");
            x.node("RedirectConfig", |x| {
                x.leaf("Protocol", protocol);
                x.leaf("Port", port);
                x.leaf("Host", host);
                x.leaf("Path", path);
                x.leaf("Query", query);
                x.leaf("StatusCode", status);
            });
        }
    }
    x.leaf("Order", &(order + 1).to_string());
}

/// `<name><member>action</member>...</name>`.
pub(super) fn actions_xml(x: &mut Xml, name: &str, actions: &[Action]) {
    x.list(name, actions.iter().enumerate(), |x, (i, a)| {
        action_xml(x, a, i)
    });
}

fn listener_xml(x: &mut Xml, l: &Listener) {
    x.leaf("ListenerArn", &l.arn);
    x.leaf("LoadBalancerArn", &l.balancer);
    x.leaf("Port", &l.port.to_string());
    match &l.tls {
        Some(t) => {
            x.leaf("Protocol", "HTTPS");
            // The default certificate; the others are DescribeListenerCertificates'.
            x.list("Certificates", t.certificates.iter().take(1), |x, arn| {
                x.leaf("CertificateArn", arn);
            });
            x.leaf("SslPolicy", &t.ssl_policy);
        }
        None => {
            x.leaf("Protocol", l.protocol.as_str());
        }
    }
    actions_xml(x, "DefaultActions", &l.actions);
}

/// Each certificate is in the store.
fn check_certificates(cx: &Ctx<'_>, arns: &[String]) -> Result<(), ServiceError> {
    let Some(store) = &cx.elb.settings().certificates else {
        return Err(invalid_config(
            "This server keeps no certificates: HTTPS listeners need gantry's ACM.",
        ));
    };
    match arns.iter().find(|c| !store.exists(c)) {
        Some(missing) => Err(not_found(
            "CertificateNotFound",
            format!("Certificate '{missing}' not found"),
        )),
        None => Ok(()),
    }
}

/// The ARNs of `Certificates.member.N.CertificateArn`.
fn certificate_arns(cx: &Ctx<'_>) -> Vec<String> {
    cx.p.structs("Certificates")
        .iter()
        .filter_map(|f| f.get("CertificateArn").map(|a| a.to_string()))
        .collect()
}

/// The `Certificates` of a listener-certificates call.
fn certificates_given(cx: &Ctx<'_>) -> Result<Vec<String>, ServiceError> {
    let arns = certificate_arns(cx);
    if arns.is_empty() {
        return Err(validation(
            "Certificates must name at least one certificate",
        ));
    }
    Ok(arns)
}

fn certificates_xml(arns: &[String], default: Option<&str>) -> Xml {
    let mut x = Xml::new();
    x.list("Certificates", arns, |x, arn| {
        x.leaf("CertificateArn", arn);
        x.leaf(
            "IsDefault",
            if Some(arn.as_str()) == default {
                "true"
            } else {
                "false"
            },
        );
    });
    x
}

/// Changes an HTTPS listener's certificates with `f`; the listener's certificates after.
async fn change_certificates(
    cx: &Ctx<'_>,
    arn: &str,
    f: impl FnOnce(&mut ListenerTls) -> Result<(), ServiceError>,
) -> Result<ListenerTls, ServiceError> {
    cx.elb
        .update(|rows| {
            let Some(Resource::Listener(mut l)) = rows.get(arn).cloned() else {
                return Err(listener_not_found(arn));
            };
            let Some(tls) = l.tls.as_mut() else {
                return Err(invalid_config(
                    "Certificates can be added only to HTTPS listeners",
                ));
            };
            f(tls)?;
            let out = tls.clone();
            rows.put(arn, Resource::Listener(l));
            Ok(out)
        })
        .await
}

/// AddListenerCertificates: certificates an HTTPS listener serves by SNI, besides its default.
pub async fn add_certificates(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let arn = cx.p.required("ListenerArn")?.to_string();
    cx.allow("AddListenerCertificates", vec![arn.clone()])?;
    let added = certificates_given(cx)?;
    check_certificates(cx, &added)?;
    let after = change_certificates(cx, &arn, |t| {
        for a in &added {
            if !t.certificates.contains(a) {
                t.certificates.push(a.clone());
            }
        }
        Ok(())
    })
    .await?;
    let shown: Vec<String> = added
        .into_iter()
        .filter(|a| after.certificates.contains(a))
        .collect();
    Ok(certificates_xml(&shown, None))
}

pub async fn remove_certificates(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let arn = cx.p.required("ListenerArn")?.to_string();
    cx.allow("RemoveListenerCertificates", vec![arn.clone()])?;
    let removed = certificates_given(cx)?;
    change_certificates(cx, &arn, |t| {
        if t.certificates.first().is_some_and(|d| removed.contains(d)) {
            return Err(validation(
                "The default certificate of a listener cannot be removed; ModifyListener sets another",
            ));
        }
        t.certificates.retain(|c| !removed.contains(c));
        Ok(())
    })
    .await?;
    Ok(Xml::new())
}

pub fn describe_certificates(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let arn = cx.p.required("ListenerArn")?.to_string();
    cx.allow("DescribeListenerCertificates", vec![arn.clone()])?;
    let Some(Resource::Listener(l)) = cx.elb.snapshot().get(&arn).cloned() else {
        return Err(listener_not_found(&arn));
    };
    let arns = l.tls.map(|t| t.certificates).unwrap_or_default();
    Ok(certificates_xml(&arns, arns.first().map(String::as_str)))
}

/// ELB's default security policy for HTTPS listeners.
const DEFAULT_SSL_POLICY: &str = "ELBSecurityPolicy-2016-08";

/// An HTTPS listener's `Certificates` and `SslPolicy`, or `old`'s when the request gives none.
fn listener_tls(cx: &Ctx<'_>, old: Option<&ListenerTls>) -> Result<ListenerTls, ServiceError> {
    let given = certificate_arns(cx);
    if given.len() > 1 {
        return Err(validation(
            "A listener takes exactly one certificate, its default; add others with AddListenerCertificates",
        ));
    }
    let certificates = match (given.first(), old) {
        // A new default; the SNI certificates stay.
        (Some(d), Some(o)) => std::iter::once(d.clone())
            .chain(o.certificates.iter().skip(1).filter(|c| *c != d).cloned())
            .collect(),
        (Some(d), None) => vec![d.clone()],
        (None, Some(o)) => o.certificates.clone(),
        (None, None) => {
            return Err(validation(
                "A certificate must be specified for HTTPS listeners",
            ))
        }
    };
    check_certificates(cx, &certificates)?;
    let ssl_policy = match cx.p.get("SslPolicy") {
        Some(p) if p.starts_with("ELBSecurityPolicy-") => p.to_string(),
        Some(p) => {
            return Err(not_found(
                "SSLPolicyNotFound",
                format!("SSL policy '{p}' not found"),
            ))
        }
        None => old.map_or(DEFAULT_SSL_POLICY.to_string(), |o| o.ssl_policy.clone()),
    };
    Ok(ListenerTls {
        certificates,
        ssl_policy,
    })
}

fn balancer(all: &BTreeMap<String, Resource>, arn: &str) -> Result<Balancer, ServiceError> {
    match all.get(arn) {
        Some(Resource::Balancer(b)) => Ok(b.clone()),
        _ => Err(not_found(
            "LoadBalancerNotFound",
            format!("Load balancer '{arn}' not found"),
        )),
    }
}

/// Refuses a port another listener on the same address holds (`except` is the listener
/// being changed).
fn check_port(
    all: &BTreeMap<String, Resource>,
    b: &Balancer,
    port: u16,
    except: Option<&str>,
) -> Result<(), ServiceError> {
    for r in all.values() {
        let Resource::Listener(l) = r else { continue };
        if l.port != port || Some(l.arn.as_str()) == except {
            continue;
        }
        if l.balancer == b.arn {
            return Err(ServiceError::new(
                "DuplicateListener",
                400,
                "A listener already exists on this port for this load balancer",
            ));
        }
        if matches!(all.get(&l.balancer), Some(Resource::Balancer(o)) if o.address == b.address) {
            return Err(invalid_config(format!(
                "Port {port} of {} is taken by another load balancer's listener: load balancers share one address here, so each listener port is used once",
                b.address
            )));
        }
    }
    Ok(())
}

/// The listener's protocol, and whether it is HTTPS (HTTP behind TLS).
fn listener_protocol(
    cx: &Ctx<'_>,
    kind: BalancerType,
) -> Result<Option<(Protocol, bool)>, ServiceError> {
    let Some(s) = cx.p.get("Protocol") else {
        return Ok(None);
    };
    if s == "HTTPS" && kind == BalancerType::Application {
        return Ok(Some((Protocol::Http, true)));
    }
    let p = Protocol::parse(s).ok_or_else(|| {
        validation(format!(
            "Listener protocol '{s}' is not served; use HTTP or HTTPS (application) or TCP (network)."
        ))
    })?;
    let fits = matches!(
        (kind, p),
        (BalancerType::Application, Protocol::Http) | (BalancerType::Network, Protocol::Tcp)
    );
    if !fits {
        return Err(invalid_config(format!(
            "The protocol '{s}' is not supported for {} load balancers",
            kind.as_str()
        )));
    }
    Ok(Some((p, false)))
}

fn port(cx: &Ctx<'_>) -> Result<Option<u16>, ServiceError> {
    cx.p.int("Port")?
        .map(|p| {
            u16::try_from(p)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| validation(format!("Port '{p}' must be between 1 and 65535.")))
        })
        .transpose()
}

pub async fn create(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let lb = cx.p.required("LoadBalancerArn")?.to_string();
    let b = balancer(&cx.elb.snapshot(), &lb)?;
    let (protocol, https) = listener_protocol(cx, b.kind)?.unwrap_or(match b.kind {
        BalancerType::Application => (Protocol::Http, false),
        BalancerType::Network => (Protocol::Tcp, false),
    });
    let tls = https.then(|| listener_tls(cx, None)).transpose()?;
    let port = port(cx)?.ok_or_else(|| validation("A listener needs a Port."))?;
    let actions = read_actions(cx, "DefaultActions", b.kind)?
        .ok_or_else(|| validation("A listener needs DefaultActions."))?;
    let tail = b
        .arn
        .split_once(":loadbalancer/")
        .map(|x| x.1)
        .unwrap_or_default();
    let arn = cx.elb.arn(&format!("listener/{tail}/{}", hex_id()));
    cx.allow("CreateListener", vec![lb.clone()])?;
    let l = Listener {
        arn,
        balancer: lb,
        port,
        protocol,
        actions,
        tls,
    };
    put(cx, l, false).await
}

/// Stores a listener whose port no other holds (`existing`: it replaces one that must be
/// there) and answers it.
async fn put(cx: &Ctx<'_>, l: Listener, existing: bool) -> Result<Xml, ServiceError> {
    let l = cx
        .elb
        .update(|rows| {
            if existing && rows.get(&l.arn).is_none() {
                return Err(listener_not_found(&l.arn));
            }
            let b = balancer(rows.all(), &l.balancer)?;
            check_port(rows.all(), &b, l.port, existing.then_some(l.arn.as_str()))?;
            rows.put(&l.arn, Resource::Listener(l.clone()));
            Ok(l)
        })
        .await?;
    let mut x = Xml::new();
    x.list("Listeners", [&l], listener_xml);
    Ok(x)
}

pub fn describe(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let lb = cx.p.get("LoadBalancerArn");
    let arns = cx.p.list("ListenerArns");
    cx.allow("DescribeListeners", Vec::new())?;
    if lb.is_none() && arns.is_empty() {
        return Err(validation(
            "You must specify either listener ARNs or a load balancer ARN",
        ));
    }
    let all = cx.elb.snapshot();
    if let Some(lb) = lb {
        balancer(&all, lb)?;
    }
    for a in &arns {
        if !matches!(all.get(*a), Some(Resource::Listener(_))) {
            return Err(listener_not_found(a));
        }
    }
    let chosen: Vec<&Listener> = all
        .values()
        .filter_map(|r| match r {
            Resource::Listener(l) => Some(l),
            _ => None,
        })
        .filter(|l| lb.is_none_or(|b| l.balancer == b))
        .filter(|l| arns.is_empty() || arns.contains(&l.arn.as_str()))
        .collect();
    let mut x = Xml::new();
    x.list("Listeners", chosen, listener_xml);
    Ok(x)
}

pub async fn modify(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let arn = cx.p.required("ListenerArn")?.to_string();
    cx.allow("ModifyListener", vec![arn.clone()])?;
    let all = cx.elb.snapshot();
    let Some(Resource::Listener(old)) = all.get(&arn).cloned() else {
        return Err(listener_not_found(&arn));
    };
    let b = balancer(&all, &old.balancer)?;
    let (protocol, https) =
        listener_protocol(cx, b.kind)?.unwrap_or((old.protocol, old.tls.is_some()));
    let tls = https
        .then(|| listener_tls(cx, old.tls.as_ref()))
        .transpose()?;
    let port = port(cx)?.unwrap_or(old.port);
    let actions = read_actions(cx, "DefaultActions", b.kind)?.unwrap_or(old.actions);
    let l = Listener {
        arn,
        balancer: b.arn.clone(),
        port,
        protocol,
        actions,
        tls,
    };
    put(cx, l, true).await
}

pub async fn delete(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let arn = cx.p.required("ListenerArn")?.to_string();
    cx.allow("DeleteListener", vec![arn.clone()])?;
    cx.elb
        .update(|rows| {
            if rows.get(&arn).is_none() {
                return Err(listener_not_found(&arn));
            }
            // Its rules go with it.
            for r in crate::model::rules_of(rows.all(), &arn) {
                rows.delete(&r.arn);
            }
            rows.delete(&arn);
            Ok(())
        })
        .await?;
    Ok(Xml::new())
}
