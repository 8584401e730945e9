//! Adding and removing a finalizer, guarded by the object's
//! resourceVersion.
//!
//! The finalizer list is written whole (a merge patch replaces lists), so a
//! patch built from a stale copy would drop a finalizer another controller
//! added meanwhile. Each patch therefore carries the resourceVersion the
//! list was read at: the API server refuses it with 409 Conflict if the
//! object changed since, and the caller retries from a fresh copy (the
//! controller's backoff does that).

use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
};
use serde::de::DeserializeOwned;

/// The merge patch that sets `finalizers`, guarded by `resource_version`.
pub fn patch(finalizers: &[String], resource_version: Option<&str>) -> serde_json::Value {
    let mut meta = serde_json::json!({ "finalizers": finalizers });
    if let Some(rv) = resource_version {
        meta["resourceVersion"] = serde_json::Value::String(rv.to_string());
    }
    serde_json::json!({ "metadata": meta })
}

/// The list with `name` added, if it was missing.
pub fn with(obj: &impl Resource, name: &str) -> Option<Vec<String>> {
    let list = obj.meta().finalizers.clone().unwrap_or_default();
    (!list.iter().any(|f| f == name)).then(|| {
        let mut l = list;
        l.push(name.to_string());
        l
    })
}

/// The list without `name`, if it was there.
pub fn without(obj: &impl Resource, name: &str) -> Option<Vec<String>> {
    let list = obj.meta().finalizers.clone().unwrap_or_default();
    list.iter()
        .any(|f| f == name)
        .then(|| list.into_iter().filter(|f| f != name).collect())
}

/// Adds `name` to the object's finalizers unless it is there. `Ok(true)`
/// when it patched. A 409 means the object changed: read it again.
pub async fn add<K>(api: &Api<K>, obj: &K, name: &str) -> Result<bool, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let Some(list) = with(obj, name) else {
        return Ok(false);
    };
    api.patch(
        &obj.name_any(),
        &PatchParams::default(),
        &Patch::Merge(patch(&list, obj.meta().resource_version.as_deref())),
    )
    .await?;
    Ok(true)
}

/// Removes `name` from the object's finalizers if it is there (an object
/// already gone is fine). `Ok(true)` when it patched.
pub async fn remove<K>(api: &Api<K>, obj: &K, name: &str) -> Result<bool, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let Some(list) = without(obj, name) else {
        return Ok(false);
    };
    match api
        .patch(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch(&list, obj.meta().resource_version.as_deref())),
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;

    fn cm(finalizers: &[&str], rv: &str) -> ConfigMap {
        let mut c = ConfigMap::default();
        c.metadata.finalizers = Some(finalizers.iter().map(|s| s.to_string()).collect());
        c.metadata.resource_version = Some(rv.into());
        c
    }

    #[test]
    fn lists_and_guarded_patches() {
        let c = cm(&["other/x"], "42");
        assert_eq!(with(&c, "a/b"), Some(vec!["other/x".into(), "a/b".into()]));
        assert_eq!(with(&cm(&["a/b"], "1"), "a/b"), None);
        assert_eq!(without(&c, "a/b"), None);
        assert_eq!(
            without(&cm(&["a/b", "other/x"], "1"), "a/b"),
            Some(vec!["other/x".into()])
        );
        assert_eq!(
            patch(&["a/b".into()], Some("42")),
            serde_json::json!({"metadata": {"finalizers": ["a/b"], "resourceVersion": "42"}})
        );
    }
}
