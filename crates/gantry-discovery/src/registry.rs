//! gantry-core's [`ServiceRegistry`]: how ECS services register their tasks in Cloud Map's
//! services (a task's id is its instance id, as ECS registers them).

use crate::model::{record, RecordType, Service, View};
use crate::Discovery;
use gantry_core::{RegistryNeeds, ServiceError, ServiceRegistry};
use gantry_store::BoxFuture;
use std::collections::BTreeMap;

impl Discovery {
    /// The id of the service a registry ARN names, if it is one of this region's.
    fn service_id<'a>(&self, arn: &'a str) -> Option<&'a str> {
        arn.strip_prefix(&self.arn("service/"))
    }

    /// The service a registry ARN names, from a snapshot.
    fn service_by_arn(&self, arn: &str) -> Option<Service> {
        let snap = self.snapshot();
        View(&snap).service(self.service_id(arn)?).cloned()
    }
}

impl ServiceRegistry for Discovery {
    fn needs(&self, registry_arn: &str) -> Result<RegistryNeeds, String> {
        let s = self.service_by_arn(registry_arn).ok_or_else(|| {
            format!("The service registry {registry_arn} does not exist in this region.")
        })?;
        Ok(RegistryNeeds {
            port: s
                .dns
                .as_ref()
                .is_some_and(|d| record(d, RecordType::Srv).is_some()),
        })
    }

    fn instances(&self, registry_arn: &str) -> Vec<(String, BTreeMap<String, String>)> {
        let Some(id) = self.service_id(registry_arn) else {
            return Vec::new();
        };
        let snap = self.snapshot();
        View(&snap)
            .instances(id)
            .map(|i| (i.id.clone(), i.attributes.clone()))
            .collect()
    }

    fn register<'a>(
        &'a self,
        registry_arn: &'a str,
        instance_id: &'a str,
        attributes: BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), ServiceError>> {
        Box::pin(async move {
            let s = self
                .service_by_arn(registry_arn)
                .ok_or_else(|| crate::api::service_not_found(registry_arn))?;
            self.put_instance(&s.id, instance_id, attributes, None)
                .await
                .map(|_| ())
        })
    }

    fn deregister<'a>(
        &'a self,
        registry_arn: &'a str,
        instance_id: &'a str,
    ) -> BoxFuture<'a, Result<(), ServiceError>> {
        Box::pin(async move {
            match self.service_by_arn(registry_arn) {
                // A registry deleted under the service has nothing left to remove.
                None => Ok(()),
                Some(s) => self.remove_instance(&s.id, instance_id).await.map(|_| ()),
            }
        })
    }
}
