//! ARNs in ECS's long format, and the identifiers (name or ARN) that requests accept.

use crate::error::ApiError;

/// The region and account every ARN of one gantry installation carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arns {
    pub region: String,
    pub account: String,
}

impl Arns {
    pub fn new(region: impl Into<String>, account: impl Into<String>) -> Self {
        Arns {
            region: region.into(),
            account: account.into(),
        }
    }

    fn prefix(&self) -> String {
        format!("arn:aws:ecs:{}:{}:", self.region, self.account)
    }

    pub fn cluster(&self, name: &str) -> String {
        format!("{}cluster/{name}", self.prefix())
    }

    pub fn task_definition(&self, family: &str, revision: i32) -> String {
        format!("{}task-definition/{family}:{revision}", self.prefix())
    }

    pub fn task(&self, cluster: &str, id: &str) -> String {
        format!("{}task/{cluster}/{id}", self.prefix())
    }

    pub fn container(&self, cluster: &str, task_id: &str, id: &str) -> String {
        format!("{}container/{cluster}/{task_id}/{id}", self.prefix())
    }

    pub fn container_instance(&self, cluster: &str, id: &str) -> String {
        format!("{}container-instance/{cluster}/{id}", self.prefix())
    }

    /// The id (last path segment) of a task or container-instance identifier: the bare id or a
    /// long-format ARN of this installation (`task/<cluster>/<id>`), or the old short format
    /// (`task/<id>`). `kind` is `task` or `container-instance`.
    pub fn resource_id<'a>(&self, kind: &str, ident: &'a str) -> Option<&'a str> {
        if !ident.starts_with("arn:") {
            return (!ident.is_empty() && !ident.contains('/')).then_some(ident);
        }
        let rest = self
            .resource(ident)?
            .strip_prefix(kind)?
            .strip_prefix('/')?;
        let id = rest.rsplit('/').next()?;
        (!id.is_empty()).then_some(id)
    }

    /// The resource part (`cluster/x`, `task-definition/f:1`) of an ARN of this installation.
    pub fn resource<'a>(&self, arn: &'a str) -> Option<&'a str> {
        let rest = arn.strip_prefix("arn:aws:ecs:")?;
        let (region, rest) = rest.split_once(':')?;
        let (account, resource) = rest.split_once(':')?;
        (region == self.region && account == self.account).then_some(resource)
    }

    /// A cluster name from a request's `cluster` member: a name or a cluster ARN; `default` when
    /// absent, as in ECS.
    pub fn cluster_name(&self, ident: Option<&str>) -> Result<String, ApiError> {
        let ident = ident.unwrap_or("default");
        if ident.starts_with("arn:") {
            return match self
                .resource(ident)
                .and_then(|r| r.strip_prefix("cluster/"))
            {
                Some(name) if !name.is_empty() => Ok(name.to_string()),
                _ => Err(ApiError::invalid(format!(
                    "Invalid cluster identifier: {ident}"
                ))),
            };
        }
        Ok(ident.to_string())
    }
}

/// A task definition named by a request: `family`, `family:revision` or its ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDefRef {
    pub family: String,
    /// `None` means the latest ACTIVE revision.
    pub revision: Option<i32>,
}

impl TaskDefRef {
    pub fn parse(arns: &Arns, ident: &str) -> Result<TaskDefRef, ApiError> {
        let bad = || ApiError::client(format!("Invalid revision number. Number: {ident}"));
        let body = if ident.starts_with("arn:") {
            arns.resource(ident)
                .and_then(|r| r.strip_prefix("task-definition/"))
                .ok_or_else(|| ApiError::client(format!("Invalid task definition ARN: {ident}")))?
        } else {
            ident
        };
        match body.rsplit_once(':') {
            Some((family, rev)) => {
                let revision = rev.parse::<i32>().map_err(|_| bad())?;
                if revision < 1 || family.is_empty() {
                    return Err(bad());
                }
                Ok(TaskDefRef {
                    family: family.to_string(),
                    revision: Some(revision),
                })
            }
            None if ident.starts_with("arn:") => Err(ApiError::client(
                "The task definition ARN must include a revision.".to_string(),
            )),
            None if body.is_empty() => Err(ApiError::client("Task definition is empty.")),
            None => Ok(TaskDefRef {
                family: body.to_string(),
                revision: None,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_identifiers() {
        let a = Arns::new("us-east-1", "000000000000");
        assert_eq!(
            a.cluster("x"),
            "arn:aws:ecs:us-east-1:000000000000:cluster/x"
        );
        assert_eq!(a.cluster_name(None).unwrap(), "default");
        assert_eq!(a.cluster_name(Some(&a.cluster("x"))).unwrap(), "x");
        assert!(a
            .cluster_name(Some("arn:aws:ecs:eu-west-1:000000000000:cluster/x"))
            .is_err());
    }

    #[test]
    fn task_definition_identifiers() {
        let a = Arns::new("us-east-1", "000000000000");
        let r = TaskDefRef::parse(&a, "web:3").unwrap();
        assert_eq!((r.family.as_str(), r.revision), ("web", Some(3)));
        assert_eq!(TaskDefRef::parse(&a, "web").unwrap().revision, None);
        let r = TaskDefRef::parse(&a, &a.task_definition("web", 2)).unwrap();
        assert_eq!(r.revision, Some(2));
        assert!(TaskDefRef::parse(&a, "web:x").is_err());
        assert!(TaskDefRef::parse(&a, "web:0").is_err());
    }
}
