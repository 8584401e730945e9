//! The HTTPS server of the aggregated API: TLS with optional client
//! certificates (the front proxy's, or a user's), HTTP/1.1 and HTTP/2; the
//! peer's certificates reach the handlers as a request extension.

use std::{net::SocketAddr, sync::Arc};

use axum::{Extension, Router};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
    service::TowerToHyperService,
};
use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer},
    server::WebPkiClientVerifier,
};
use tokio_util::sync::CancellationToken;

use crate::{auth::PeerCerts, tls::root_store};

/// The TLS config: serving identity, and client certificates requested but
/// not required, verified against `client_roots`.
pub fn tls_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_roots: &[CertificateDer<'static>],
) -> Result<Arc<ServerConfig>, crate::Error> {
    let provider = crate::tls::crypto_provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| crate::Error::Tls(e.to_string()))?;
    let builder = if client_roots.is_empty() {
        builder.with_no_client_auth()
    } else {
        let roots = root_store(client_roots).map_err(|e| crate::Error::Tls(e.to_string()))?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .allow_unauthenticated()
            .build()
            .map_err(|e| crate::Error::Tls(e.to_string()))?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut cfg = builder
        .with_single_cert(chain, key)
        .map_err(|e| crate::Error::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Serves `router` on `addr` until `shutdown`.
pub async fn serve(
    addr: SocketAddr,
    tls: Arc<ServerConfig>,
    router: Router,
    shutdown: CancellationToken,
) -> Result<(), crate::Error> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| crate::Error::Bind(addr, e))?;
    tracing::info!(address = %addr, "serving metrics.k8s.io securely");
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (tcp, remote) = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let tls = match acceptor.accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%remote, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let peer = tls
                .get_ref()
                .1
                .peer_certificates()
                .map(|c| Arc::new(c.to_vec()));
            let svc = TowerToHyperService::new(router.layer(Extension(PeerCerts(peer))));
            if let Err(e) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), svc)
                .await
            {
                tracing::debug!(%remote, error = %e, "connection ended with an error");
            }
        });
    }
}
