//! Delegated authentication and authorization, as an aggregated API server
//! does it.
//!
//! Authentication, in order:
//! 1. a client certificate signed by the request-header CA (kube-apiserver's
//!    front proxy) whose CN is among the allowed names: the user is taken from
//!    the `X-Remote-User` / `X-Remote-Group` / `X-Remote-Extra-*` headers;
//! 2. a client certificate signed by the cluster's client CA: CN and O;
//! 3. a bearer token, checked with a TokenReview.
//!
//! Authorization: a SubjectAccessReview, with decisions cached for 10 s.
//! All of this is read from the `kube-system/extension-apiserver-authentication`
//! ConfigMap that kube-apiserver publishes.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::http::HeaderMap;
use k8s_openapi::api::{
    authentication::v1::{TokenReview, TokenReviewSpec},
    authorization::v1::{
        NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
    },
    core::v1::ConfigMap,
};
use kube::{Api, Client, api::PostParams};
use rustls::{
    pki_types::{CertificateDer, UnixTime},
    server::{WebPkiClientVerifier, danger::ClientCertVerifier},
};

use crate::tls::{certs_from_pem, root_store};

/// The authenticated user.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// What a request wants to do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Attributes {
    Resource {
        verb: String,
        resource: String,
        namespace: Option<String>,
        name: Option<String>,
    },
    NonResource {
        verb: String,
        path: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("reading kube-system/extension-apiserver-authentication: {0}")]
    ConfigMap(kube::Error),
    #[error("kube-system/extension-apiserver-authentication: {0}")]
    Config(String),
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    TlsMaterial(#[from] outrigger_runtime::tls::TlsError),
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

/// The peer certificates of a connection (request extension).
#[derive(Debug, Clone, Default)]
pub struct PeerCerts(pub Option<Arc<Vec<CertificateDer<'static>>>>);

struct RequestHeader {
    verifier: Arc<dyn ClientCertVerifier>,
    allowed_names: Vec<String>,
    username_headers: Vec<String>,
    group_headers: Vec<String>,
    extra_prefixes: Vec<String>,
}

/// Trust anchors for client certificates, and the verifier of the TLS server.
pub struct Authenticator {
    request_header: Option<RequestHeader>,
    client_ca: Option<Arc<dyn ClientCertVerifier>>,
    /// Every CA a client certificate may chain to (for the TLS handshake).
    pub all_roots: Vec<CertificateDer<'static>>,
    client: Client,
    tokens: Mutex<HashMap<String, (Option<Identity>, Instant)>>,
}

fn json_list(cm: &BTreeMap<String, String>, key: &str) -> Vec<String> {
    cm.get(key)
        .and_then(|v| serde_json::from_str::<Vec<String>>(v).ok())
        .unwrap_or_default()
}

fn verifier(roots: &[CertificateDer<'static>]) -> Result<Arc<dyn ClientCertVerifier>, AuthError> {
    let store = root_store(roots)?;
    WebPkiClientVerifier::builder_with_provider(Arc::new(store), crate::tls::crypto_provider())
        .build()
        .map_err(|e| AuthError::Config(format!("client CA: {e}")))
}

fn subject(cert: &CertificateDer<'_>) -> Option<(String, Vec<String>)> {
    let (_, c) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let cn = c
        .subject()
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())?
        .to_string();
    let orgs = c
        .subject()
        .iter_organization()
        .filter_map(|a| a.as_str().ok().map(str::to_string))
        .collect();
    Some((cn, orgs))
}

fn verified(v: &Arc<dyn ClientCertVerifier>, chain: &[CertificateDer<'static>]) -> bool {
    match chain.split_first() {
        Some((ee, rest)) => v.verify_client_cert(ee, rest, UnixTime::now()).is_ok(),
        None => false,
    }
}

impl Authenticator {
    /// Loads the authentication settings kube-apiserver published.
    pub async fn from_cluster(client: Client) -> Result<Self, AuthError> {
        let cm = Api::<ConfigMap>::namespaced(client.clone(), "kube-system")
            .get("extension-apiserver-authentication")
            .await
            .map_err(AuthError::ConfigMap)?;
        let data = cm.data.unwrap_or_default();
        let mut all_roots = vec![];
        let request_header = match data.get("requestheader-client-ca-file") {
            Some(pem) => {
                let roots = certs_from_pem(pem.as_bytes(), "requestheader-client-ca-file")?;
                all_roots.extend(roots.iter().cloned());
                Some(RequestHeader {
                    verifier: verifier(&roots)?,
                    allowed_names: json_list(&data, "requestheader-allowed-names"),
                    username_headers: json_list(&data, "requestheader-username-headers"),
                    group_headers: json_list(&data, "requestheader-group-headers"),
                    extra_prefixes: json_list(&data, "requestheader-extra-headers-prefix"),
                })
            }
            None => None,
        };
        let client_ca = match data.get("client-ca-file") {
            Some(pem) => {
                let roots = certs_from_pem(pem.as_bytes(), "client-ca-file")?;
                all_roots.extend(roots.iter().cloned());
                Some(verifier(&roots)?)
            }
            None => None,
        };
        if request_header.is_none() {
            tracing::warn!(
                "kube-system/extension-apiserver-authentication has no requestheader-client-ca-file: \
                 requests proxied by kube-apiserver cannot be authenticated"
            );
        }
        Ok(Self {
            request_header,
            client_ca,
            all_roots,
            client,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// Authenticates a request; `None` means anonymous. Every authenticated
    /// user is in the group `system:authenticated`, as kube-apiserver adds it.
    pub async fn authenticate(&self, peer: &PeerCerts, headers: &HeaderMap) -> Option<Identity> {
        let mut id = self.authenticate_inner(peer, headers).await?;
        if !id.groups.iter().any(|g| g == "system:authenticated") {
            id.groups.push("system:authenticated".to_string());
        }
        Some(id)
    }

    async fn authenticate_inner(&self, peer: &PeerCerts, headers: &HeaderMap) -> Option<Identity> {
        if let Some(chain) = peer.0.as_deref() {
            if let Some(rh) = &self.request_header
                && verified(&rh.verifier, chain)
            {
                let (cn, _) = subject(&chain[0])?;
                if !rh.allowed_names.is_empty() && !rh.allowed_names.contains(&cn) {
                    tracing::warn!(cn = %cn, "request-header client certificate CN is not an allowed name");
                    return None;
                }
                return request_header_identity(rh, headers);
            }
            if let Some(v) = &self.client_ca
                && verified(v, chain)
            {
                let (user, groups) = subject(&chain[0])?;
                return Some(Identity {
                    user,
                    groups,
                    extra: BTreeMap::new(),
                });
            }
        }
        let token = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))?
            .trim()
            .to_string();
        self.review_token(token).await
    }

    async fn review_token(&self, token: String) -> Option<Identity> {
        const TTL: Duration = Duration::from_secs(10);
        if let Ok(cache) = self.tokens.lock()
            && let Some((id, at)) = cache.get(&token)
            && at.elapsed() < TTL
        {
            return id.clone();
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        let id = match Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
        {
            Ok(r) => r
                .status
                .filter(|s| s.authenticated == Some(true))
                .and_then(|s| s.user)
                .map(|u| Identity {
                    user: u.username.unwrap_or_default(),
                    groups: u.groups.unwrap_or_default(),
                    extra: u.extra.unwrap_or_default(),
                }),
            Err(e) => {
                tracing::warn!(error = %e, "TokenReview failed");
                return None;
            }
        };
        if let Ok(mut cache) = self.tokens.lock() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(token, (id.clone(), Instant::now()));
        }
        id
    }
}

fn request_header_identity(rh: &RequestHeader, headers: &HeaderMap) -> Option<Identity> {
    let user = rh
        .username_headers
        .iter()
        .find_map(|h| headers.get(h.as_str()).and_then(|v| v.to_str().ok()))
        .filter(|u| !u.is_empty())?
        .to_string();
    let groups = rh
        .group_headers
        .iter()
        .flat_map(|h| headers.get_all(h.as_str()).iter())
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect();
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        for prefix in &rh.extra_prefixes {
            if let Some(key) = name.as_str().strip_prefix(&prefix.to_ascii_lowercase())
                && let Ok(v) = value.to_str()
            {
                let key = percent_decode(key);
                extra.entry(key).or_default().push(v.to_string());
            }
        }
    }
    Some(Identity {
        user,
        groups,
        extra,
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A cached decision: allowed, reason, when.
type Decision = (bool, String, Instant);

/// SubjectAccessReview-backed authorizer with a 10 s decision cache.
pub struct Authorizer {
    client: Client,
    cache: Mutex<HashMap<(Identity, Attributes), Decision>>,
}

impl Authorizer {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// (allowed, reason)
    pub async fn authorize(&self, id: &Identity, attrs: &Attributes) -> (bool, String) {
        const TTL: Duration = Duration::from_secs(10);
        let key = (id.clone(), attrs.clone());
        if let Ok(cache) = self.cache.lock()
            && let Some((ok, reason, at)) = cache.get(&key)
            && at.elapsed() < TTL
        {
            return (*ok, reason.clone());
        }
        let mut spec = SubjectAccessReviewSpec {
            user: Some(id.user.clone()),
            groups: Some(id.groups.clone()),
            extra: Some(id.extra.clone()),
            ..Default::default()
        };
        match attrs {
            Attributes::Resource {
                verb,
                resource,
                namespace,
                name,
            } => {
                spec.resource_attributes = Some(ResourceAttributes {
                    group: Some("metrics.k8s.io".to_string()),
                    version: Some("v1beta1".to_string()),
                    resource: Some(resource.clone()),
                    verb: Some(verb.clone()),
                    namespace: namespace.clone(),
                    name: name.clone(),
                    ..Default::default()
                })
            }
            Attributes::NonResource { verb, path } => {
                spec.non_resource_attributes = Some(NonResourceAttributes {
                    path: Some(path.clone()),
                    verb: Some(verb.clone()),
                })
            }
        }
        let sar = SubjectAccessReview {
            spec,
            ..Default::default()
        };
        let (ok, reason) = match Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &sar)
            .await
        {
            Ok(r) => {
                let st = r.status.unwrap_or_default();
                (
                    st.allowed && st.denied != Some(true),
                    st.reason.unwrap_or_default(),
                )
            }
            Err(e) => {
                tracing::warn!(error = %e, "SubjectAccessReview failed");
                return (false, format!("authorization error: {e}"));
            }
        };
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(key, (ok, reason.clone(), Instant::now()));
        }
        (ok, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_extra_keys() {
        assert_eq!(percent_decode("scopes"), "scopes");
        assert_eq!(percent_decode("example.com%2fkey"), "example.com/key");
        assert_eq!(percent_decode("bad%zz"), "bad%zz");
        assert_eq!(percent_decode("end%2"), "end%2");
    }
}
