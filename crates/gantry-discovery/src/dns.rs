//! Answers to DNS questions about private DNS namespaces, from a snapshot of the records
//! (pure: the sockets are [`crate::server`]'s).
//!
//! As Route 53 answers for Cloud Map:
//! - `<service>.<namespace>` A (AAAA): the IPv4 (IPv6) addresses of the service's healthy
//!   instances, up to eight in random order (`MULTIVALUE`) or one at random (`WEIGHTED`); when
//!   none is healthy, up to eight of all of them.
//! - `<service>.<namespace>` SRV: `1 1 <port> <instance-id>.<service>.<namespace>.` for each
//!   of those instances, with the targets' addresses as additional records; and
//!   `<instance-id>.<service>.<namespace>` A (AAAA) answers that instance's address.
//! - CNAME services answer the instance's `AWS_INSTANCE_CNAME`.
//! - The namespace's apex has its SOA; a name in the namespace that no service or instance has
//!   is NXDOMAIN, a type a name lacks is an empty answer (NODATA), both with the SOA.
//! - Names outside every private DNS namespace are [`Answer::Outside`]: the server forwards
//!   them or refuses them.

use crate::model::{record, weighted, Instance, Namespace, NamespaceType, RecordType as Kind};
use crate::model::{Resource, Service, View, CNAME as CNAME_ATTR, IPV4, IPV6, PORT};
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rand::seq::SliceRandom;
use std::collections::BTreeMap;

/// How many addresses a MULTIVALUE answer carries, as Route 53's.
const MAX_ANSWERS: usize = 8;

/// What the records say about a question.
#[derive(Debug)]
pub enum Answer {
    /// An authoritative answer from a namespace.
    Local(Message),
    /// The name is in no private DNS namespace.
    Outside,
}

/// A response to `req` with `code` and nothing in it (FORMERR, REFUSED, SERVFAIL).
pub fn empty(req: &Message, code: ResponseCode) -> Message {
    let mut m = Message::new(req.metadata.id, MessageType::Response, req.metadata.op_code);
    m.metadata.recursion_desired = req.metadata.recursion_desired;
    m.metadata.response_code = code;
    m.queries = req.queries.clone();
    m
}

/// Answers `req` from the records.
pub fn answer(records: &BTreeMap<String, Resource>, req: &Message) -> Answer {
    if req.metadata.message_type != MessageType::Query || req.metadata.op_code != OpCode::Query {
        return Answer::Local(empty(req, ResponseCode::NotImp));
    }
    let [q] = req.queries.as_slice() else {
        return Answer::Local(empty(req, ResponseCode::FormErr));
    };
    let view = View(records);
    let qname = q.name.to_lowercase();
    let text = qname.to_ascii();
    let text = text.trim_end_matches('.');
    // The longest private DNS namespace the name is in.
    let Some((ns, rel)) = view
        .namespaces()
        .filter(|n| n.kind == NamespaceType::DnsPrivate)
        .filter_map(|n| {
            let zone = n.name.to_ascii_lowercase();
            if text == zone {
                Some((n, String::new()))
            } else {
                text.strip_suffix(&zone)
                    .and_then(|p| p.strip_suffix('.'))
                    .map(|p| (n, p.to_string()))
            }
        })
        .max_by_key(|(n, _)| n.name.len())
    else {
        return Answer::Outside;
    };
    let mut m = empty(req, ResponseCode::NoError);
    m.metadata.authoritative = true;
    let Ok(zone) = Name::from_ascii(format!("{}.", ns.name.to_ascii_lowercase())) else {
        return Answer::Local(empty(req, ResponseCode::ServFail));
    };
    let soa = soa(ns, &zone);
    let found = if rel.is_empty() {
        if q.query_type == RecordType::SOA {
            m.answers.push(soa.clone());
        }
        true
    } else {
        let services: Vec<&Service> = view.services_in(&ns.id).collect();
        if let Some(s) = services.iter().find(|s| s.name.eq_ignore_ascii_case(&rel)) {
            service_answer(&view, s, &qname, q.query_type, &mut m);
            true
        } else if let Some((s, i)) = rel.split_once('.').and_then(|(inst, rest)| {
            let s = services
                .iter()
                .find(|s| s.name.eq_ignore_ascii_case(rest))?;
            let i = view
                .instances(&s.id)
                .find(|i| i.id.eq_ignore_ascii_case(inst))?;
            Some((*s, i))
        }) {
            let ttl = s
                .dns
                .as_ref()
                .and_then(|d| record(d, Kind::A).or_else(|| record(d, Kind::Srv)))
                .map_or(60, |r| r.ttl);
            if let Some(r) = address(&qname, i, q.query_type, ttl) {
                m.answers.push(r);
            }
            true
        } else {
            false
        }
    };
    if !found {
        m.metadata.response_code = ResponseCode::NXDomain;
    }
    if m.answers.is_empty() {
        m.authorities.push(soa);
    }
    Answer::Local(m)
}

/// The namespace's SOA, with Route 53's timers and the namespace's TTL.
fn soa(ns: &Namespace, zone: &Name) -> Record {
    let host = |label: &str| {
        Name::from_ascii(label)
            .and_then(|l| l.append_domain(zone))
            .unwrap_or_else(|_| zone.clone())
    };
    let ttl = ns.soa_ttl.unwrap_or(15).clamp(0, i64::from(u32::MAX)) as u32;
    Record::from_rdata(
        zone.clone(),
        ttl,
        RData::SOA(SOA::new(
            host("ns-gantry"),
            host("hostmaster"),
            1,
            7200,
            900,
            1_209_600,
            86_400,
        )),
    )
}

/// The instance's address record of `kind` (A or AAAA) under `name`.
fn address(name: &Name, i: &Instance, kind: RecordType, ttl: i64) -> Option<Record> {
    let ttl = ttl.clamp(0, i64::from(u32::MAX)) as u32;
    let data = match kind {
        RecordType::A => RData::A(A(i.attributes.get(IPV4)?.parse().ok()?)),
        RecordType::AAAA => RData::AAAA(AAAA(i.attributes.get(IPV6)?.parse().ok()?)),
        _ => return None,
    };
    Some(Record::from_rdata(name.clone(), ttl, data))
}

/// The instances an answer names: the healthy ones (or all when none is), shuffled, one for
/// WEIGHTED and up to eight for MULTIVALUE.
fn chosen<'a>(s: &Service, mut all: Vec<&'a Instance>) -> Vec<&'a Instance> {
    if all.iter().any(|i| i.is_healthy()) {
        all.retain(|i| i.is_healthy());
    }
    all.shuffle(&mut rand::rng());
    let keep = if s.dns.as_ref().is_some_and(weighted) {
        1
    } else {
        MAX_ANSWERS
    };
    all.truncate(keep);
    all
}

fn service_answer(view: &View<'_>, s: &Service, qname: &Name, kind: RecordType, m: &mut Message) {
    let Some(dns) = &s.dns else {
        return;
    };
    let ttl_of = |k: Kind| record(dns, k).map(|r| r.ttl);
    let with = |attr: &str| -> Vec<&Instance> {
        view.instances(&s.id)
            .filter(|i| i.attributes.contains_key(attr))
            .collect()
    };
    match kind {
        RecordType::A | RecordType::AAAA => {
            let (k, attr) = if kind == RecordType::A {
                (Kind::A, IPV4)
            } else {
                (Kind::Aaaa, IPV6)
            };
            if let Some(ttl) = ttl_of(k) {
                for i in chosen(s, with(attr)) {
                    m.answers.extend(address(qname, i, kind, ttl));
                }
            } else if let Some(ttl) = ttl_of(Kind::Cname) {
                cname_answer(s, qname, ttl, view, m);
            }
        }
        RecordType::CNAME => {
            if let Some(ttl) = ttl_of(Kind::Cname) {
                cname_answer(s, qname, ttl, view, m);
            }
        }
        RecordType::SRV => {
            let Some(ttl) = ttl_of(Kind::Srv) else {
                return;
            };
            let address_ttl = ttl_of(Kind::A).or(ttl_of(Kind::Aaaa)).unwrap_or(ttl);
            for i in chosen(s, with(PORT)) {
                let (Some(port), Ok(target)) = (
                    i.attributes.get(PORT).and_then(|p| p.parse::<u16>().ok()),
                    Name::from_ascii(&i.id).and_then(|l| l.append_domain(qname)),
                ) else {
                    continue;
                };
                let t = ttl.clamp(0, i64::from(u32::MAX)) as u32;
                m.answers.push(Record::from_rdata(
                    qname.clone(),
                    t,
                    RData::SRV(SRV::new(1, 1, port, target.clone())),
                ));
                for k in [RecordType::A, RecordType::AAAA] {
                    m.additionals.extend(address(&target, i, k, address_ttl));
                }
            }
        }
        _ => {}
    }
}

fn cname_answer(s: &Service, qname: &Name, ttl: i64, view: &View<'_>, m: &mut Message) {
    let all = view
        .instances(&s.id)
        .filter(|i| i.attributes.contains_key(CNAME_ATTR))
        .collect();
    if let Some(i) = chosen(s, all).first() {
        if let Some(Ok(target)) = i
            .attributes
            .get(CNAME_ATTR)
            .map(|c| Name::from_ascii(format!("{}.", c.trim_end_matches('.'))))
        {
            let t = ttl.clamp(0, i64::from(u32::MAX)) as u32;
            m.answers.push(Record::from_rdata(
                qname.clone(),
                t,
                RData::CNAME(CNAME(target)),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{instance_key, DnsConfig, DnsRecord, RoutingPolicy};
    use hickory_proto::op::Query;
    use std::net::Ipv4Addr;

    fn records(policy: RoutingPolicy) -> BTreeMap<String, Resource> {
        let mut r = BTreeMap::new();
        r.insert(
            "ns-1".into(),
            Resource::Namespace(Namespace {
                id: "ns-1".into(),
                arn: "arn:ns".into(),
                name: "Local".into(),
                kind: NamespaceType::DnsPrivate,
                description: None,
                vpc: Some("vpc-1".into()),
                soa_ttl: Some(15),
                hosted_zone: Some("Z1".into()),
                created: 0.0,
                creator_request_id: None,
                tags: Vec::new(),
            }),
        );
        r.insert(
            "srv-1".into(),
            Resource::Service(Service {
                id: "srv-1".into(),
                arn: "arn:srv".into(),
                name: "web".into(),
                namespace_id: "ns-1".into(),
                description: None,
                dns: Some(DnsConfig {
                    namespace_id: None,
                    routing_policy: Some(policy),
                    dns_records: vec![
                        DnsRecord {
                            r#type: Kind::A,
                            ttl: 10,
                        },
                        DnsRecord {
                            r#type: Kind::Srv,
                            ttl: 20,
                        },
                    ],
                }),
                health_custom: Some(serde_json::json!({})),
                kind: "DNS_HTTP".into(),
                created: 0.0,
                creator_request_id: None,
                tags: Vec::new(),
                revision: 0,
            }),
        );
        for (id, ip, health) in [
            ("t1", "10.0.0.1", "HEALTHY"),
            ("t2", "10.0.0.2", "HEALTHY"),
            ("t3", "10.0.0.3", "UNHEALTHY"),
        ] {
            r.insert(
                instance_key("srv-1", id),
                Resource::Instance(Instance {
                    service_id: "srv-1".into(),
                    id: id.into(),
                    attributes: [(IPV4, ip), (PORT, "8080")]
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    creator_request_id: None,
                    health: Some(health.into()),
                }),
            );
        }
        r
    }

    fn ask(records: &BTreeMap<String, Resource>, name: &str, kind: RecordType) -> Message {
        let mut q = Message::query();
        q.metadata.id = 7;
        q.metadata.recursion_desired = true;
        q.add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
        // Through the wire, as a client's question comes.
        let q = Message::from_vec(&q.to_vec().unwrap()).unwrap();
        match answer(records, &q) {
            Answer::Local(m) => Message::from_vec(&m.to_vec().unwrap()).unwrap(),
            Answer::Outside => panic!("{name} is outside"),
        }
    }

    fn addresses(m: &Message) -> Vec<Ipv4Addr> {
        let mut v: Vec<Ipv4Addr> = m
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_records_name_the_healthy_instances() {
        let r = records(RoutingPolicy::Multivalue);
        let m = ask(&r, "WEB.local.", RecordType::A);
        assert_eq!(m.metadata.id, 7);
        assert!(m.metadata.authoritative);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(
            addresses(&m),
            [
                "10.0.0.1".parse::<Ipv4Addr>().unwrap(),
                "10.0.0.2".parse().unwrap()
            ]
        );
        assert!(m.answers.iter().all(|a| a.ttl == 10));
    }

    #[test]
    fn with_none_healthy_every_instance_is_answered() {
        let mut r = records(RoutingPolicy::Multivalue);
        for v in r.values_mut() {
            if let Resource::Instance(i) = v {
                i.health = Some("UNHEALTHY".into());
            }
        }
        assert_eq!(addresses(&ask(&r, "web.local.", RecordType::A)).len(), 3);
    }

    #[test]
    fn weighted_answers_one() {
        let r = records(RoutingPolicy::Weighted);
        assert_eq!(addresses(&ask(&r, "web.local.", RecordType::A)).len(), 1);
    }

    #[test]
    fn srv_records_name_ports_and_targets_with_their_addresses() {
        let r = records(RoutingPolicy::Multivalue);
        let m = ask(&r, "web.local.", RecordType::SRV);
        let mut targets: Vec<(String, u16)> = m
            .answers
            .iter()
            .filter_map(|a| match &a.data {
                RData::SRV(s) => Some((s.target.to_ascii(), s.port)),
                _ => None,
            })
            .collect();
        targets.sort();
        assert_eq!(
            targets,
            [
                ("t1.web.local.".to_string(), 8080),
                ("t2.web.local.".to_string(), 8080)
            ]
        );
        assert_eq!(m.additionals.len(), 2);
        let one = ask(&r, "t3.web.local.", RecordType::A);
        assert_eq!(addresses(&one), ["10.0.0.3".parse::<Ipv4Addr>().unwrap()]);
    }

    #[test]
    fn unknown_names_are_nxdomain_and_missing_types_nodata_with_the_soa() {
        let r = records(RoutingPolicy::Multivalue);
        let nx = ask(&r, "db.local.", RecordType::A);
        assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
        assert!(matches!(nx.authorities[0].data, RData::SOA(_)));
        let nodata = ask(&r, "web.local.", RecordType::MX);
        assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
        assert!(nodata.answers.is_empty());
        assert_eq!(nodata.authorities[0].ttl, 15);
        let apex = ask(&r, "local.", RecordType::SOA);
        assert!(matches!(apex.answers[0].data, RData::SOA(_)));
        let mut q = Message::query();
        q.add_query(Query::query(
            Name::from_ascii("example.com.").unwrap(),
            RecordType::A,
        ));
        assert!(matches!(answer(&r, &q), Answer::Outside));
    }
}
