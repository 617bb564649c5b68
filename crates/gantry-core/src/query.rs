//! The awsQuery side of a service: reading a request's form parameters ([`Params`]) and writing
//! the XML inside `<OpResult>` ([`Xml`]), as botocore's Query serializer and parser expect.
//!
//! Lists arrive as `Name.member.1`, `Name.member.2`, ... and structures in lists as
//! `Name.member.1.Field`; answers write lists as `<Name><member>...</member></Name>`.

use crate::error::ServiceError;
use crate::protocol::escape;
use std::collections::BTreeMap;

/// A request's form parameters.
#[derive(Debug, Clone, Copy)]
pub struct Params<'a> {
    pairs: &'a [(String, String)],
}

/// One structure of a list parameter: its fields by name (`Key`, `Value`, ...).
pub type Fields<'a> = BTreeMap<&'a str, &'a str>;

/// The error for a parameter that does not satisfy the model, in Query's words.
pub fn validation(message: impl Into<String>) -> ServiceError {
    ServiceError::new("ValidationError", 400, message)
}

/// `userName` from `UserName`: how AWS's validation messages name members.
fn member_name(name: &str) -> String {
    let mut c = name.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

impl<'a> Params<'a> {
    pub fn new(pairs: &'a [(String, String)]) -> Self {
        Params { pairs }
    }

    /// A scalar parameter.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A parameter the model requires.
    pub fn required(&self, name: &str) -> Result<&'a str, ServiceError> {
        self.get(name).ok_or_else(|| {
            validation(format!(
                "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                member_name(name)
            ))
        })
    }

    /// An integer parameter, if given.
    pub fn int(&self, name: &str) -> Result<Option<i64>, ServiceError> {
        self.get(name)
            .map(|v| {
                v.trim().parse::<i64>().map_err(|_| {
                    validation(format!(
                        "Value '{v}' at '{}' failed to satisfy constraint: Member must be a number",
                        member_name(name)
                    ))
                })
            })
            .transpose()
    }

    /// A boolean parameter, if given (`true` / `false`).
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ServiceError> {
        self.get(name)
            .map(|v| match v.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(validation(format!(
                    "Value '{v}' at '{}' failed to satisfy constraint: Member must be true or false",
                    member_name(name)
                ))),
            })
            .transpose()
    }

    /// The members of a list of strings (`Name.member.N`), in the order of N.
    pub fn list(&self, name: &str) -> Vec<&'a str> {
        let prefix = format!("{name}.member.");
        let mut items: Vec<(u32, &str)> = self
            .pairs
            .iter()
            .filter_map(|(k, v)| {
                let n = k.strip_prefix(&prefix)?.parse().ok()?;
                Some((n, v.as_str()))
            })
            .collect();
        items.sort_by_key(|(n, _)| *n);
        items.into_iter().map(|(_, v)| v).collect()
    }

    /// The members of a list of structures (`Name.member.N.Field`), in the order of N.
    pub fn structs(&self, name: &str) -> Vec<Fields<'a>> {
        let prefix = format!("{name}.member.");
        let mut items: BTreeMap<u32, Fields<'a>> = BTreeMap::new();
        for (k, v) in self.pairs {
            let Some(rest) = k.strip_prefix(&prefix) else {
                continue;
            };
            let Some((n, field)) = rest.split_once('.') else {
                continue;
            };
            let Ok(n) = n.parse() else { continue };
            items.entry(n).or_default().insert(field, v.as_str());
        }
        items.into_values().collect()
    }

    /// The members of a list of structures nested in a structure of a list
    /// (`Outer.member.N.Inner.member.M`), for each outer member in order.
    pub fn nested_lists(&self, outer: &str, inner: &str) -> Vec<Vec<&'a str>> {
        let prefix = format!("{outer}.member.");
        let mut items: BTreeMap<u32, Vec<(u32, &'a str)>> = BTreeMap::new();
        for (k, v) in self.pairs {
            let Some(rest) = k.strip_prefix(&prefix) else {
                continue;
            };
            let Some((n, field)) = rest.split_once('.') else {
                continue;
            };
            let Ok(n) = n.parse() else { continue };
            let entry = items.entry(n).or_default();
            if let Some(m) = field
                .strip_prefix(inner)
                .and_then(|f| f.strip_prefix(".member."))
                .and_then(|m| m.parse().ok())
            {
                entry.push((m, v.as_str()));
            }
        }
        items
            .into_values()
            .map(|mut v| {
                v.sort_by_key(|(m, _)| *m);
                v.into_iter().map(|(_, s)| s).collect()
            })
            .collect()
    }
}

/// The XML of an answer, written element by element.
#[derive(Debug, Default)]
pub struct Xml {
    out: String,
}

impl Xml {
    pub fn new() -> Self {
        Self::default()
    }

    /// `<name>value</name>`, the value escaped.
    pub fn leaf(&mut self, name: &str, value: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self.out.push_str(&escape(value));
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// Character data (the member of a list of strings), escaped.
    pub fn text(&mut self, value: &str) -> &mut Self {
        self.out.push_str(&escape(value));
        self
    }

    /// A leaf only when there is a value.
    pub fn opt(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value {
            self.leaf(name, v);
        }
        self
    }

    /// `<name>...</name>` with what `body` writes inside.
    pub fn node(&mut self, name: &str, body: impl FnOnce(&mut Xml)) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        body(self);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// `<name><member>...</member>...</name>`, one member per item.
    pub fn list<T>(
        &mut self,
        name: &str,
        items: impl IntoIterator<Item = T>,
        mut each: impl FnMut(&mut Xml, T),
    ) -> &mut Self {
        self.node(name, |x| {
            for item in items {
                x.node("member", |x| each(x, item));
            }
        })
    }

    /// The XML written so far.
    pub fn into_bytes(self) -> Vec<u8> {
        self.out.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(s: &[(&str, &str)]) -> Vec<(String, String)> {
        s.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn lists_and_structures_come_back_in_member_order() {
        let p = pairs(&[
            ("ActionNames.member.2", "ecs:RunTask"),
            ("ActionNames.member.1", "ecs:ListClusters"),
            ("ActionNames.member.10", "ecs:StopTask"),
            ("Tags.member.2.Key", "b"),
            ("Tags.member.1.Key", "a"),
            ("Tags.member.1.Value", "1"),
            ("Ctx.member.1.ContextKeyName", "aws:TagKeys"),
            ("Ctx.member.1.ContextKeyValues.member.2", "y"),
            ("Ctx.member.1.ContextKeyValues.member.1", "x"),
        ]);
        let q = Params::new(&p);
        assert_eq!(
            q.list("ActionNames"),
            ["ecs:ListClusters", "ecs:RunTask", "ecs:StopTask"]
        );
        let tags = q.structs("Tags");
        assert_eq!(tags.len(), 2);
        assert_eq!((tags[0]["Key"], tags[0]["Value"]), ("a", "1"));
        assert_eq!(tags[1].get("Value"), None);
        assert_eq!(q.nested_lists("Ctx", "ContextKeyValues"), [vec!["x", "y"]]);
    }

    #[test]
    fn bad_or_missing_scalars_are_validation_errors() {
        let p = pairs(&[("MaxItems", "ten"), ("Flag", "yes")]);
        let q = Params::new(&p);
        let e = q.required("UserName").unwrap_err();
        assert_eq!((e.code.as_ref(), e.status), ("ValidationError", 400));
        assert!(e.message.contains("'userName'"), "{}", e.message);
        assert!(q.int("MaxItems").is_err());
        assert!(q.bool("Flag").is_err());
        assert_eq!(q.int("Other").unwrap(), None);
    }

    #[test]
    fn xml_escapes_and_nests() {
        let mut x = Xml::new();
        x.node("User", |x| {
            x.leaf("UserName", "a<b").opt("Path", None);
            x.list("Tags", [("k", "v")], |x, (k, v)| {
                x.leaf("Key", k).leaf("Value", v);
            });
        });
        assert_eq!(
            String::from_utf8(x.into_bytes()).unwrap(),
            "<User><UserName>a&lt;b</UserName><Tags><member><Key>k</Key><Value>v</Value></member></Tags></User>"
        );
    }
}
