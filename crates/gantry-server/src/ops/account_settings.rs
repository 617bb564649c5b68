//! PutAccountSetting, PutAccountSettingDefault, DeleteAccountSetting, ListAccountSettings.
//!
//! A setting's effective value for a principal is its own, else the account default, else the
//! AWS default.

use crate::paginate::{max_results, page, Order};
use crate::state::{records, SettingRecord, State};
use crate::Server;
use gantry_api::model::*;
use gantry_api::ApiError;
use gantry_core::Caller;
use gantry_store::Txn;

/// ECS's default for each setting, and the values it accepts.
fn spec(name: SettingName) -> (&'static str, &'static [&'static str]) {
    use SettingName::*;
    const ON_OFF: &[&str] = &["enabled", "disabled"];
    match name {
        ServiceLongArnFormat | TaskLongArnFormat | ContainerInstanceLongArnFormat => {
            ("enabled", ON_OFF)
        }
        AwsvpcTrunking | FargateFIPSMode | FargateEventWindows => ("disabled", ON_OFF),
        ContainerInsights => ("disabled", &["enabled", "disabled", "enhanced"]),
        TagResourceAuthorization => ("on", &["on", "off"]),
        FargateTaskRetirementWaitPeriod => ("7", &["0", "7", "14"]),
        GuardDutyActivate => ("off", &["on", "off"]),
        DefaultLogDriverMode => ("non-blocking", &["blocking", "non-blocking"]),
    }
}

/// The value that applies to `principal`.
pub fn effective_value(st: &State, principal: &str, name: SettingName) -> String {
    effective(st, principal, name).0.value
}

/// The effective setting and whether a user set it (`false`: the AWS default).
fn effective(st: &State, principal: &str, name: SettingName) -> (SettingRecord, bool) {
    if let Some(s) = st.settings.get(&(principal.to_string(), name)) {
        return (s.clone(), true);
    }
    if let Some(s) = st.settings.get(&(String::new(), name)) {
        return (s.clone(), true);
    }
    (
        SettingRecord {
            name,
            value: spec(name).0.to_string(),
            principal: String::new(),
        },
        false,
    )
}

fn check_value(name: SettingName, value: &str) -> Result<(), ApiError> {
    let allowed = spec(name).1;
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "Invalid 'value' {value:?} for the {} setting: use one of {}.",
            name.as_str(),
            allowed.join(", ")
        )))
    }
}

fn principal(server: &Server, given: Option<String>, who: &Caller<'_>) -> Result<String, ApiError> {
    match given {
        None => Ok(who.principal().arn.clone()),
        Some(p) => {
            let prefix = format!("arn:aws:iam::{}:", server.config.account_id);
            let rest = p.strip_prefix(&prefix).unwrap_or("");
            if rest == "root" || rest.starts_with("user/") || rest.starts_with("role/") {
                Ok(p)
            } else {
                Err(ApiError::invalid(format!(
                    "Invalid 'principalArn' {p:?}: expected {prefix}root, {prefix}user/NAME or {prefix}role/NAME."
                )))
            }
        }
    }
}

fn wire(server: &Server, s: &SettingRecord, user_set: bool) -> Setting {
    let arn = if s.principal.is_empty() {
        format!("arn:aws:iam::{}:root", server.config.account_id)
    } else {
        s.principal.clone()
    };
    Setting {
        name: Some(s.name),
        value: Some(s.value.clone()),
        principal_arn: Some(arn),
        r#type: Some(if user_set {
            SettingType::User
        } else {
            SettingType::AwsManaged
        }),
    }
}

async fn store(server: &Server, rec: SettingRecord) -> Result<Setting, ApiError> {
    let saved = rec.clone();
    server
        .write(move |st| {
            let id = records::setting_id(&rec.principal, rec.name.as_str());
            st.settings
                .insert((rec.principal.clone(), rec.name), rec.clone());
            Ok(((), records::SETTINGS.put(Txn::new(), &id, &rec)))
        })
        .await?;
    Ok(wire(server, &saved, true))
}

pub async fn put_setting(
    server: &Server,
    req: PutAccountSettingRequest,
    who: &Caller<'_>,
) -> Result<PutAccountSettingResponse, ApiError> {
    check_value(req.name, &req.value)?;
    let principal = principal(server, req.principal_arn, who)?;
    let s = store(
        server,
        SettingRecord {
            name: req.name,
            value: req.value,
            principal,
        },
    )
    .await?;
    Ok(PutAccountSettingResponse { setting: Some(s) })
}

pub async fn put_default(
    server: &Server,
    req: PutAccountSettingDefaultRequest,
    _: &Caller<'_>,
) -> Result<PutAccountSettingDefaultResponse, ApiError> {
    check_value(req.name, &req.value)?;
    let s = store(
        server,
        SettingRecord {
            name: req.name,
            value: req.value,
            principal: String::new(),
        },
    )
    .await?;
    Ok(PutAccountSettingDefaultResponse { setting: Some(s) })
}

pub async fn delete(
    server: &Server,
    req: DeleteAccountSettingRequest,
    who: &Caller<'_>,
) -> Result<DeleteAccountSettingResponse, ApiError> {
    let principal = principal(server, req.principal_arn, who)?;
    let name = req.name;
    let removed = server
        .write(move |st| {
            let rec = st
                .settings
                .remove(&(principal.clone(), name))
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "The {} setting is not set for {principal}.",
                        name.as_str()
                    ))
                })?;
            Ok((
                rec,
                records::SETTINGS
                    .delete(Txn::new(), &records::setting_id(&principal, name.as_str())),
            ))
        })
        .await?;
    Ok(DeleteAccountSettingResponse {
        setting: Some(wire(server, &removed, true)),
    })
}

pub async fn list(
    server: &Server,
    req: ListAccountSettingsRequest,
    who: &Caller<'_>,
) -> Result<ListAccountSettingsResponse, ApiError> {
    let limit = max_results(req.max_results, 10, 10)?;
    let principal = principal(server, req.principal_arn, who)?;
    let effective_only = req.effective_settings.unwrap_or(false);
    let settings: Vec<Setting> = server.read(|st| {
        SettingName::ALL
            .iter()
            .filter(|n| req.name.is_none_or(|want| want == **n))
            .filter_map(|&n| {
                if effective_only {
                    let (s, user_set) = effective(st, &principal, n);
                    Some(wire(server, &s, user_set))
                } else {
                    st.settings
                        .get(&(principal.clone(), n))
                        .map(|s| wire(server, s, true))
                }
            })
            .filter(|s| {
                req.value
                    .as_ref()
                    .is_none_or(|v| s.value.as_ref() == Some(v))
            })
            .collect()
    })?;
    let key = |s: &Setting| {
        s.name
            .map(|n| {
                format!(
                    "{:02}",
                    SettingName::ALL.iter().position(|x| *x == n).unwrap_or(0)
                )
            })
            .unwrap_or_default()
    };
    let p = page(settings, key, Order::Asc, req.next_token.as_deref(), limit)?;
    Ok(ListAccountSettingsResponse {
        settings: Some(p.items),
        next_token: p.next_token,
    })
}
