//! The authorizer and the view over an in-memory store: who gets which policies, which keys
//! sign, what a failed write leaves behind.

use crate::access::Access;
use crate::model::*;
use crate::{Iam, IamSettings};
use gantry_auth::{KeySet, Keys, Secret};
use gantry_core::authz::{Authorizer, AuthzContext, Request, TagSource};
use gantry_core::Principal;
use gantry_store::{FailingStore, MemStore, Store};
use std::sync::Arc;

const ACCOUNT: &str = "123456789012";

fn doc(effect: &str, action: &str, resource: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"{effect}","Action":"{action}","Resource":"{resource}"}}]}}"#
    )
}

fn user(name: &str) -> User {
    User {
        name: name.into(),
        id: new_id("AIDA"),
        path: "/".into(),
        created: 0,
        tags: vec![Tag {
            key: "Team".into(),
            value: "blue".into(),
        }],
        attached: Vec::new(),
        inline: Default::default(),
        groups: Default::default(),
    }
}

async fn iam_on(store: Arc<dyn Store>) -> Arc<Iam> {
    let mut configured = KeySet::new();
    configured.insert("AKROOT", Secret::long_term("s", "root"));
    configured.insert("AKGHOST", Secret::long_term("s", "user/ghost"));
    Iam::open(store, ACCOUNT, configured, IamSettings::default())
        .await
        .unwrap()
}

fn principal(name: &str) -> Principal {
    Principal::from_key(
        ACCOUNT,
        &gantry_auth::Identity {
            access_key_id: "AK".into(),
            user: format!("user/{name}"),
            user_id: None,
            temporary: false,
        },
    )
}

struct Tags;

impl TagSource for Tags {
    fn tags_of(&self, arn: &str) -> Vec<(String, String)> {
        if arn.ends_with("/blue") {
            vec![("team".into(), "blue".into())]
        } else {
            Vec::new()
        }
    }
}

fn ask(
    access: &Access,
    who: &Principal,
    action: &str,
    resource: &str,
    keys: &[(String, Vec<String>)],
) -> Result<(), String> {
    let ctx = AuthzContext {
        region: "us-east-1".into(),
        source_ip: "10.0.0.7".parse().ok(),
        secure_transport: true,
        current_time: 1_800_000_000,
    };
    let resources = [resource.to_string()];
    access
        .authorize(
            who,
            &Request {
                action,
                resources: &resources,
                tags: &Tags,
                keys,
                context: &ctx,
            },
        )
        .map_err(|d| d.reason)
}

#[tokio::test]
async fn users_get_their_own_and_their_groups_policies_and_deny_wins() {
    let iam = iam_on(Arc::new(MemStore::new())).await;
    iam.write(|d| {
        let mut u = user("dev");
        u.inline.insert("own".into(), doc("Allow", "ecs:*", "*"));
        u.groups.insert("ops".into());
        d.put_user("dev", u);
        let mut g = Group {
            name: "ops".into(),
            id: new_id("AGPA"),
            path: "/".into(),
            created: 0,
            attached: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()],
            inline: Default::default(),
        };
        g.inline
            .insert("no-delete".into(), doc("Deny", "ecs:DeleteCluster", "*"));
        d.put_group("ops", g);
        Ok(())
    })
    .await
    .unwrap();
    let access = Access(iam.clone());
    let dev = principal("dev");
    assert_eq!(ask(&access, &dev, "ecs:RunTask", "*", &[]), Ok(()));
    let denied = ask(&access, &dev, "ecs:DeleteCluster", "arn:x", &[]).unwrap_err();
    assert!(denied.contains("explicit deny"), "{denied}");
    // The group's AWS-managed ReadOnlyAccess reaches the user too.
    let view = iam.view();
    let sources: Vec<&str> = view.grants["user:dev"]
        .sources
        .iter()
        .map(|s| s.kind)
        .collect();
    assert_eq!(sources, ["user", "aws-managed", "group"]);
    let nobody = principal("nobody");
    let implicit = ask(&access, &nobody, "ecs:ListClusters", "*", &[]).unwrap_err();
    assert_eq!(
        implicit,
        "because no identity-based policy allows the ecs:ListClusters action"
    );
}

#[tokio::test]
async fn conditions_see_tags_request_keys_principal_keys_and_the_context() {
    let iam = iam_on(Arc::new(MemStore::new())).await;
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:UpdateService","Resource":"*","Condition":{
        "StringEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/team}","aws:username":"dev"},
        "ArnLike":{"ecs:cluster":"arn:aws:ecs:*:*:cluster/prod"},
        "IpAddress":{"aws:SourceIp":"10.0.0.0/8"},
        "Bool":{"aws:SecureTransport":"true"},
        "DateGreaterThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}}}]}"#;
    iam.write(|d| {
        let mut u = user("dev");
        u.inline.insert("p".into(), policy.into());
        d.put_user("dev", u);
        Ok(())
    })
    .await
    .unwrap();
    let access = Access(iam);
    let dev = principal("dev");
    let prod = [(
        "ecs:cluster".to_string(),
        vec!["arn:aws:ecs:us-east-1:1:cluster/prod".to_string()],
    )];
    let staging = [(
        "ecs:cluster".to_string(),
        vec!["arn:aws:ecs:us-east-1:1:cluster/staging".to_string()],
    )];
    assert_eq!(
        ask(&access, &dev, "ecs:UpdateService", "arn:s/blue", &prod),
        Ok(())
    );
    assert!(ask(&access, &dev, "ecs:UpdateService", "arn:s/red", &prod).is_err());
    assert!(ask(&access, &dev, "ecs:UpdateService", "arn:s/blue", &staging).is_err());
}

#[tokio::test]
async fn only_active_keys_and_sessions_sign_and_the_view_survives_a_reopen() {
    let store: Arc<dyn Store> = Arc::new(MemStore::new());
    let iam = iam_on(store.clone()).await;
    iam.write(|d| {
        d.put_user("dev", user("dev"));
        for (id, active) in [("AKIAON", true), ("AKIAOFF", false)] {
            d.put_key(
                id,
                AccessKey {
                    id: id.into(),
                    user: "dev".into(),
                    secret: "s".into(),
                    active,
                    created: 0,
                },
            );
        }
        d.put_session(
            "ASIA1",
            Session {
                access_key_id: "ASIA1".into(),
                secret: "s".into(),
                token: "t".into(),
                expires_at: 10,
                owner: "assumed-role/app/s1".into(),
                user_id: "AROA1:s1".into(),
                task: None,
            },
        );
        Ok(())
    })
    .await
    .unwrap();
    let check = |iam: &Arc<Iam>| {
        let keys = Access(iam.clone());
        assert_eq!(keys.secret("AKIAON").unwrap().user, "user/dev");
        assert!(keys.secret("AKIAOFF").is_none());
        assert_eq!(keys.secret("AKROOT").unwrap().user, "root");
        // A configured key naming a user that does not exist still signs, as that name.
        assert_eq!(keys.secret("AKGHOST").unwrap().user, "user/ghost");
        let s = keys.secret("ASIA1").unwrap();
        assert_eq!(s.session.unwrap().token, "t");
    };
    check(&iam);
    check(&iam_on(store).await);
}

#[tokio::test]
async fn a_failed_write_changes_nothing() {
    let failing = Arc::new(FailingStore::new(Arc::new(MemStore::new())));
    let iam = iam_on(failing.clone()).await;
    failing.fail_next_commits(1);
    let e = iam
        .write(|d| {
            d.put_user("dev", user("dev"));
            Ok(())
        })
        .await
        .unwrap_err();
    assert_eq!((e.code.as_ref(), e.status), ("ServiceFailure", 500));
    assert!(iam.view().dir.users.is_empty());
    assert!(iam_on(failing.inner().clone())
        .await
        .view()
        .dir
        .users
        .is_empty());
}

/// Roles `task` (trusting ecs-tasks.amazonaws.com) and `vm` (trusting ec2.amazonaws.com).
async fn two_roles(iam: &Iam) {
    let trust = |svc: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":"{svc}"}},"Action":"sts:AssumeRole"}}]}}"#
        )
    };
    iam.write(|d| {
        for (name, svc) in [
            ("task", "ecs-tasks.amazonaws.com"),
            ("vm", "ec2.amazonaws.com"),
        ] {
            d.put_role(
                name,
                Role {
                    name: name.into(),
                    id: new_id("AROA"),
                    path: "/".into(),
                    created: 0,
                    trust: trust(svc),
                    description: None,
                    max_session: 3600,
                    tags: Vec::new(),
                    attached: Vec::new(),
                    inline: Default::default(),
                },
            );
        }
        Ok(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn task_sessions_are_reused_then_end_with_their_task() {
    use gantry_core::TaskRoles;
    let iam = iam_on(Arc::new(MemStore::new())).await;
    two_roles(&iam).await;
    let roles = crate::task_roles::TaskSessions(iam.clone());
    let task = "arn:aws:ecs:r:1:task/c/t1";
    let arn = format!("arn:aws:iam::{ACCOUNT}:role/task");
    let c = roles.credentials(&arn, task).await.unwrap();
    assert_eq!(c.role_arn, arn);
    // By the role's name too; the same session while it has more than half its life.
    assert_eq!(roles.credentials("task", task).await.unwrap(), c);
    assert!(roles
        .credentials(&format!("arn:aws:iam::{ACCOUNT}:role/vm"), task)
        .await
        .is_err());
    let keys = Access(iam.clone());
    let signer = keys.secret(&c.access_key_id).unwrap();
    assert_eq!(signer.user, "assumed-role/task/t1");
    assert_eq!(roles.tasks(), vec![task.to_string()]);
    assert_eq!(roles.revoke(task).await.unwrap(), 1);
    assert!(keys.secret(&c.access_key_id).is_none());
    assert!(roles.tasks().is_empty());
}

#[tokio::test]
async fn passed_roles_must_exist_and_trust_the_service() {
    let iam = iam_on(Arc::new(MemStore::new())).await;
    two_roles(&iam).await;
    let access = Access(iam);
    let arn = |n: &str| format!("arn:aws:iam::{ACCOUNT}:role/{n}");
    let svc = "ecs-tasks.amazonaws.com";
    assert_eq!(access.role_trusts(&arn("task"), svc), Ok(()));
    assert!(access
        .role_trusts(&arn("vm"), svc)
        .unwrap_err()
        .contains("trust policy"));
    assert!(access
        .role_trusts(&arn("gone"), svc)
        .unwrap_err()
        .contains("does not exist"));
    // The same name under another path is another role.
    assert!(access
        .role_trusts(&format!("arn:aws:iam::{ACCOUNT}:role/x/task"), svc)
        .is_err());
}
