//! Secrets Manager's operations on [`Secrets`]: each authorizes
//! `secretsmanager:<Operation>` on the secret's ARN first.

use super::*;
use crate::now;

impl Secrets {
    /// The ARN under which a name or ARN `id` is authorized: the secret's, when it exists.
    fn arn_of(&self, id: &str) -> String {
        match self.find(id) {
            Some(s) => s.arn,
            None if id.starts_with("arn:") => id.to_string(),
            None => format!(
                "arn:aws:secretsmanager:{}:{}:secret:{id}",
                self.region(),
                self.account()
            ),
        }
    }

    /// The secret a SecretId names: by name, by ARN, or by ARN without its random suffix.
    fn find(&self, id: &str) -> Option<SecretRecord> {
        let all = self.secrets.snapshot();
        if let Some(s) = all.get(id) {
            return Some(s.clone());
        }
        all.values()
            .find(|s| {
                s.arn == id
                    || (id.starts_with("arn:")
                        && s.arn.len() == id.len() + 7
                        && s.arn.starts_with(id)
                        && s.arn.as_bytes().get(id.len()) == Some(&b'-'))
            })
            .cloned()
    }

    fn allow<'g>(
        &self,
        gate: &Gate<'g>,
        op: &str,
        arn: String,
        ask: Ask,
    ) -> Result<gantry_core::Caller<'g>, ServiceError> {
        let ask = Ask {
            resources: vec![arn],
            ..ask
        };
        gate.authorize_ask(&format!("secretsmanager:{op}"), &ask, &SecretTags(self))
    }

    /// A secret that exists and is not scheduled for deletion, by the id a request gives.
    fn live(&self, id: &str) -> Result<SecretRecord, ServiceError> {
        let s = self.find(id).ok_or_else(not_found)?;
        if s.deleted.is_some() {
            return Err(marked_for_deletion());
        }
        Ok(s)
    }

    /// Drops secrets whose recovery window has passed.
    fn expired(rows: &gantry_core::Rows<'_, SecretRecord>, t: f64) -> Vec<String> {
        rows.all()
            .iter()
            .filter(|(_, s)| s.delete_after.is_some_and(|d| d <= t))
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub(super) async fn create(
        &self,
        req: CreateSecretRequest,
        gate: &Gate<'_>,
    ) -> Result<CreateSecretResponse, ServiceError> {
        check_name(&req.name)?;
        let tags = read_tags(req.tags.as_deref())?;
        let arn = format!(
            "arn:aws:secretsmanager:{}:{}:secret:{}-{}",
            self.region(),
            self.account(),
            req.name,
            suffix()
        );
        let ask = Ask::default().request_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        self.allow(gate, "CreateSecret", arn.clone(), ask)?;
        let val = value(req.secret_string.as_ref(), req.secret_binary.as_ref())?;
        let vid = version_id(req.client_request_token.as_ref())?;
        let t = now();
        let name = req.name.clone();
        let sealed =
            val.map(|(bytes, binary)| (self.sealer.seal(&format!("{name}/{vid}"), &bytes), binary));
        let version = sealed.is_some().then(|| vid.clone());
        self.secrets
            .update(|rows| {
                for gone in Self::expired(rows, t) {
                    rows.delete(&gone);
                }
                if let Some(old) = rows.get(&name) {
                    if old.deleted.is_some() {
                        return Err(invalid_request("You can't create this secret because a secret with this name is already scheduled for deletion."));
                    }
                    return Err(ServiceError::new(
                        "ResourceExistsException",
                        400,
                        format!("The operation failed because the secret {name} already exists."),
                    ));
                }
                let mut s = SecretRecord {
                    name: name.clone(),
                    arn: arn.clone(),
                    description: req.description.clone(),
                    kms_key_id: req.kms_key_id.clone(),
                    created: t,
                    last_changed: t,
                    deleted: None,
                    delete_after: None,
                    tags,
                    versions: Vec::new(),
                };
                if let Some((sealed, binary)) = sealed {
                    s.add_version(VersionRecord {
                        id: vid.clone(),
                        stages: vec!["AWSCURRENT".into()],
                        created: t,
                        sealed,
                        binary,
                    });
                }
                rows.put(&name, s);
                Ok(())
            })
            .await?;
        Ok(CreateSecretResponse {
            arn: Some(arn),
            name: Some(req.name),
            version_id: version,
            ..Default::default()
        })
    }

    pub(super) fn describe(
        &self,
        req: DescribeSecretRequest,
        gate: &Gate<'_>,
    ) -> Result<DescribeSecretResponse, ServiceError> {
        self.allow(
            gate,
            "DescribeSecret",
            self.arn_of(&req.secret_id),
            Ask::default(),
        )?;
        let s = self.find(&req.secret_id).ok_or_else(not_found)?;
        Ok(DescribeSecretResponse {
            version_ids_to_stages: Some(s.stages()),
            tags: Some(s.tags_out()),
            arn: Some(s.arn),
            name: Some(s.name),
            description: s.description,
            kms_key_id: s.kms_key_id,
            last_changed_date: Some(s.last_changed),
            deleted_date: s.deleted,
            created_date: Some(s.created),
            rotation_enabled: Some(false),
            ..Default::default()
        })
    }

    pub(super) fn list(
        &self,
        req: ListSecretsRequest,
        gate: &Gate<'_>,
    ) -> Result<ListSecretsResponse, ServiceError> {
        self.allow(gate, "ListSecrets", "*".into(), Ask::default())?;
        let max = req.max_results.unwrap_or(100);
        if !(1..=100).contains(&max) {
            return Err(invalid_param("MaxResults must be between 1 and 100."));
        }
        let filters = req.filters.unwrap_or_default();
        let matches = |s: &SecretRecord| {
            filters.iter().all(|f| {
                let values = f.values.as_deref().unwrap_or_default();
                let any = |candidates: &[&str]| {
                    values.iter().any(|v| {
                        let (neg, v) = v
                            .strip_prefix('!')
                            .map_or((false, v.as_str()), |x| (true, x));
                        candidates.iter().any(|c| c.starts_with(v)) != neg
                    })
                };
                let tag_keys: Vec<&str> = s.tags.iter().map(|(k, _)| k.as_str()).collect();
                let tag_values: Vec<&str> = s.tags.iter().map(|(_, v)| v.as_str()).collect();
                let desc = s.description.as_deref().unwrap_or_default();
                match f.key {
                    Some(FilterNameStringType::Name) => any(&[&s.name]),
                    Some(FilterNameStringType::Description) => any(&[desc]),
                    Some(FilterNameStringType::TagKey) => any(&tag_keys),
                    Some(FilterNameStringType::TagValue) => any(&tag_values),
                    Some(FilterNameStringType::All) => {
                        let mut all = vec![s.name.as_str(), desc];
                        all.extend(&tag_keys);
                        all.extend(&tag_values);
                        any(&all)
                    }
                    _ => false,
                }
            })
        };
        let include_deleted = req.include_planned_deletion.unwrap_or(false);
        let t = now();
        let all = self.secrets.snapshot();
        let mut names: Vec<&SecretRecord> = all
            .values()
            .filter(|s| s.delete_after.is_none_or(|d| d > t))
            .filter(|s| include_deleted || s.deleted.is_none())
            .filter(|s| matches(s))
            .collect();
        if req.sort_order == Some(SortOrderType::Desc) {
            names.reverse();
        }
        let start = match &req.next_token {
            Some(tok) => names
                .iter()
                .position(|s| &s.name == tok)
                .ok_or_else(|| invalid_param("Invalid NextToken."))?,
            None => 0,
        };
        let page: Vec<&SecretRecord> = names
            .iter()
            .skip(start)
            .take(max as usize)
            .copied()
            .collect();
        let next = names.get(start + page.len()).map(|s| s.name.clone());
        Ok(ListSecretsResponse {
            secret_list: Some(
                page.into_iter()
                    .map(|s| SecretListEntry {
                        arn: Some(s.arn.clone()),
                        name: Some(s.name.clone()),
                        description: s.description.clone(),
                        kms_key_id: s.kms_key_id.clone(),
                        last_changed_date: Some(s.last_changed),
                        deleted_date: s.deleted,
                        tags: Some(s.tags_out()),
                        secret_versions_to_stages: Some(s.stages()),
                        created_date: Some(s.created),
                        rotation_enabled: Some(false),
                        ..Default::default()
                    })
                    .collect(),
            ),
            next_token: next,
        })
    }

    /// The version a request names: by id, by stage, or the `AWSCURRENT` one.
    fn pick<'s>(
        s: &'s SecretRecord,
        id: Option<&str>,
        stage: Option<&str>,
    ) -> Result<&'s VersionRecord, ServiceError> {
        let v = match (id, stage) {
            (Some(id), stage) => s
                .versions
                .iter()
                .find(|v| v.id == id && stage.is_none_or(|st| v.stages.iter().any(|x| x == st))),
            (None, stage) => {
                let stage = stage.unwrap_or("AWSCURRENT");
                s.versions
                    .iter()
                    .find(|v| v.stages.iter().any(|x| x == stage))
            }
        };
        v.ok_or_else(|| {
            let what = match (id, stage) {
                (Some(id), _) => format!("VersionId: {id}"),
                (None, st) => format!("staging label: {}", st.unwrap_or("AWSCURRENT")),
            };
            ServiceError::new(
                "ResourceNotFoundException",
                400,
                format!("Secrets Manager can't find the specified secret value for {what}"),
            )
        })
    }

    pub(super) fn get_value(
        &self,
        req: GetSecretValueRequest,
        gate: &Gate<'_>,
    ) -> Result<GetSecretValueResponse, ServiceError> {
        let mut ask = Ask::default();
        if let Some(st) = &req.version_stage {
            ask = ask.key("secretsmanager:VersionStage", vec![st.clone()]);
        }
        if let Some(id) = &req.version_id {
            ask = ask.key("secretsmanager:VersionId", vec![id.clone()]);
        }
        self.allow(gate, "GetSecretValue", self.arn_of(&req.secret_id), ask)?;
        let s = self.live(&req.secret_id)?;
        let v = Self::pick(&s, req.version_id.as_deref(), req.version_stage.as_deref())?;
        let bytes = self
            .sealer
            .open(&format!("{}/{}", s.name, v.id), &v.sealed)
            .map_err(|e| internal(e.to_string()))?;
        let (string, binary) = if v.binary {
            (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(&bytes)),
            )
        } else {
            (Some(String::from_utf8_lossy(&bytes).into_owned()), None)
        };
        Ok(GetSecretValueResponse {
            arn: Some(s.arn.clone()),
            name: Some(s.name.clone()),
            version_id: Some(v.id.clone()),
            secret_string: string,
            secret_binary: binary,
            version_stages: Some(v.stages.clone()),
            created_date: Some(v.created),
        })
    }

    /// Writes a new version of the secret `id` (PutSecretValue, UpdateSecret with a value).
    /// The same token with the same value again is a no-op; with another value, an error.
    async fn new_version(
        &self,
        id: &str,
        token: Option<&String>,
        val: (Vec<u8>, bool),
        stages: Vec<String>,
        describe: impl FnOnce(&mut SecretRecord) + Send,
    ) -> Result<(SecretRecord, String, Vec<String>), ServiceError> {
        let s = self.live(id)?;
        let vid = version_id(token)?;
        let t = now();
        let sealed = self.sealer.seal(&format!("{}/{vid}", s.name), &val.0);
        let name = s.name.clone();
        self.secrets
            .update(|rows| {
                let mut s = rows.get(&name).cloned().ok_or_else(not_found)?;
                if let Some(existing) = s.versions.iter().find(|v| v.id == vid) {
                    let same = self
                        .sealer
                        .open(&format!("{name}/{vid}"), &existing.sealed)
                        .is_ok_and(|old| old == val.0);
                    if same {
                        let stages = existing.stages.clone();
                        return Ok((s, vid, stages));
                    }
                    return Err(ServiceError::new(
                        "ResourceExistsException",
                        400,
                        "A resource with the ID you requested already exists.",
                    ));
                }
                describe(&mut s);
                s.add_version(VersionRecord {
                    id: vid.clone(),
                    stages: stages.clone(),
                    created: t,
                    sealed,
                    binary: val.1,
                });
                s.last_changed = t;
                rows.put(&name, s.clone());
                Ok((s, vid, stages))
            })
            .await
    }

    pub(super) async fn put_value(
        &self,
        req: PutSecretValueRequest,
        gate: &Gate<'_>,
    ) -> Result<PutSecretValueResponse, ServiceError> {
        self.allow(
            gate,
            "PutSecretValue",
            self.arn_of(&req.secret_id),
            Ask::default(),
        )?;
        let val =
            value(req.secret_string.as_ref(), req.secret_binary.as_ref())?.ok_or_else(|| {
                invalid_param("You must provide either SecretString or SecretBinary.")
            })?;
        let stages = req
            .version_stages
            .unwrap_or_else(|| vec!["AWSCURRENT".into()]);
        if stages.len() > 20 || stages.iter().any(|s| s.is_empty() || s.len() > 256) {
            return Err(invalid_param(
                "VersionStages: 1 to 20 labels of 1 to 256 characters.",
            ));
        }
        let (s, vid, stages) = self
            .new_version(
                &req.secret_id,
                req.client_request_token.as_ref(),
                val,
                stages,
                |_| {},
            )
            .await?;
        Ok(PutSecretValueResponse {
            arn: Some(s.arn),
            name: Some(s.name),
            version_id: Some(vid),
            version_stages: Some(stages),
        })
    }

    pub(super) async fn update(
        &self,
        req: UpdateSecretRequest,
        gate: &Gate<'_>,
    ) -> Result<UpdateSecretResponse, ServiceError> {
        self.allow(
            gate,
            "UpdateSecret",
            self.arn_of(&req.secret_id),
            Ask::default(),
        )?;
        let val = value(req.secret_string.as_ref(), req.secret_binary.as_ref())?;
        let (description, kms) = (req.description.clone(), req.kms_key_id.clone());
        let describe = move |s: &mut SecretRecord| {
            if description.is_some() {
                s.description = description;
            }
            if kms.is_some() {
                s.kms_key_id = kms;
            }
        };
        if let Some(val) = val {
            let (s, vid, _) = self
                .new_version(
                    &req.secret_id,
                    req.client_request_token.as_ref(),
                    val,
                    vec!["AWSCURRENT".into()],
                    describe,
                )
                .await?;
            return Ok(UpdateSecretResponse {
                arn: Some(s.arn),
                name: Some(s.name),
                version_id: Some(vid),
            });
        }
        let s = self.live(&req.secret_id)?;
        let name = s.name.clone();
        let t = now();
        let s = self
            .secrets
            .update(|rows| {
                let mut s = rows.get(&name).cloned().ok_or_else(not_found)?;
                describe(&mut s);
                s.last_changed = t;
                rows.put(&name, s.clone());
                Ok(s)
            })
            .await?;
        Ok(UpdateSecretResponse {
            arn: Some(s.arn),
            name: Some(s.name),
            version_id: None,
        })
    }

    pub(super) async fn delete(
        &self,
        req: DeleteSecretRequest,
        gate: &Gate<'_>,
    ) -> Result<DeleteSecretResponse, ServiceError> {
        self.allow(
            gate,
            "DeleteSecret",
            self.arn_of(&req.secret_id),
            Ask::default(),
        )?;
        let force = req.force_delete_without_recovery.unwrap_or(false);
        if force && req.recovery_window_in_days.is_some() {
            return Err(invalid_param("You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."));
        }
        let days = req.recovery_window_in_days.unwrap_or(30);
        if !(7..=30).contains(&days) {
            return Err(invalid_param(
                "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).",
            ));
        }
        let s = self.find(&req.secret_id).ok_or_else(not_found)?;
        if s.deleted.is_some() && !force {
            return Err(marked_for_deletion());
        }
        let t = now();
        let name = s.name.clone();
        let when = self
            .secrets
            .update(|rows| {
                if force {
                    rows.delete(&name);
                    return Ok(t);
                }
                let mut s = rows.get(&name).cloned().ok_or_else(not_found)?;
                let after = t + days as f64 * 86_400.0;
                s.deleted = Some(t);
                s.delete_after = Some(after);
                rows.put(&name, s);
                Ok(after)
            })
            .await?;
        Ok(DeleteSecretResponse {
            arn: Some(s.arn),
            name: Some(s.name),
            deletion_date: Some(when),
        })
    }

    pub(super) async fn restore(
        &self,
        req: RestoreSecretRequest,
        gate: &Gate<'_>,
    ) -> Result<RestoreSecretResponse, ServiceError> {
        self.allow(
            gate,
            "RestoreSecret",
            self.arn_of(&req.secret_id),
            Ask::default(),
        )?;
        let s = self.find(&req.secret_id).ok_or_else(not_found)?;
        let name = s.name.clone();
        self.secrets
            .update(|rows| {
                let mut s = rows.get(&name).cloned().ok_or_else(not_found)?;
                s.deleted = None;
                s.delete_after = None;
                rows.put(&name, s);
                Ok(())
            })
            .await?;
        Ok(RestoreSecretResponse {
            arn: Some(s.arn),
            name: Some(s.name),
        })
    }

    pub(super) async fn tag(
        &self,
        req: TagResourceRequest,
        gate: &Gate<'_>,
    ) -> Result<serde_json::Value, ServiceError> {
        let tags = read_tags(Some(&req.tags))?;
        let ask = Ask::default().request_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        self.allow(gate, "TagResource", self.arn_of(&req.secret_id), ask)?;
        let s = self.live(&req.secret_id)?;
        self.secrets
            .update(|rows| {
                let mut s = rows.get(&s.name).cloned().ok_or_else(not_found)?;
                for (k, v) in tags {
                    match s.tags.iter_mut().find(|(x, _)| *x == k) {
                        Some(e) => e.1 = v,
                        None => s.tags.push((k, v)),
                    }
                }
                if s.tags.len() > 50 {
                    return Err(invalid_param("A secret can have at most 50 tags."));
                }
                rows.put(&s.name.clone(), s);
                Ok(())
            })
            .await?;
        Ok(serde_json::json!({}))
    }

    pub(super) async fn untag(
        &self,
        req: UntagResourceRequest,
        gate: &Gate<'_>,
    ) -> Result<serde_json::Value, ServiceError> {
        let ask = Ask::default().key("aws:TagKeys", req.tag_keys.clone());
        self.allow(gate, "UntagResource", self.arn_of(&req.secret_id), ask)?;
        let s = self.live(&req.secret_id)?;
        self.secrets
            .update(|rows| {
                let mut s = rows.get(&s.name).cloned().ok_or_else(not_found)?;
                s.tags.retain(|(k, _)| !req.tag_keys.contains(k));
                rows.put(&s.name.clone(), s);
                Ok(())
            })
            .await?;
        Ok(serde_json::json!({}))
    }

    /// The value a task's `secrets` entry (`valueFrom`) names, for injection at task start:
    /// the whole secret string, or one key of it when it is JSON and a key is named. The
    /// caller (the execution role's session) must be allowed `secretsmanager:GetSecretValue`.
    pub fn secret_value(&self, value_from: &str, gate: &Gate<'_>) -> Result<String, ServiceError> {
        let r = SecretRef::parse(value_from);
        let out = self.get_value(
            GetSecretValueRequest {
                secret_id: r.secret.clone(),
                version_id: r.version_id.clone(),
                version_stage: r.version_stage.clone(),
            },
            gate,
        )?;
        let text = out.secret_string.ok_or_else(|| {
            invalid_request(format!("the secret {} holds a binary value", r.secret))
        })?;
        let Some(key) = r.json_key else {
            return Ok(text);
        };
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|_| {
            invalid_request(format!(
                "the secret {} is not JSON, so it has no key {key}",
                r.secret
            ))
        })?;
        match json.get(&key) {
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(v) => Ok(v.to_string()),
            None => Err(invalid_request(format!(
                "the secret {} has no JSON key {key}",
                r.secret
            ))),
        }
    }
}
