//! TLS material shared by components that talk to kubelets (the metrics
//! server, the node agent): PEM bundles, root stores, the kubelet client
//! configuration (verified against a CA, or `--kubelet-insecure-tls`), all
//! on the one crypto provider (aws-lc-rs).

use std::{path::Path, sync::Arc};

use rustls::{
    DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject},
};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: no PEM certificate found: {reason}")]
    Pem { path: String, reason: String },
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

/// Parses every certificate of a PEM bundle.
pub fn certs_from_pem(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
    let certs = certs.map_err(|e| TlsError::Pem {
        path: what.to_string(),
        reason: e.to_string(),
    })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: what.to_string(),
            reason: "empty".to_string(),
        });
    }
    Ok(certs)
}

pub fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

pub fn root_store(certs: &[CertificateDer<'static>]) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs {
        roots.add(c.clone())?;
    }
    Ok(roots)
}

/// The one crypto provider.
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    provider()
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Accepts any kubelet certificate (`--kubelet-insecure-tls`), but still
/// checks the handshake signatures.
#[derive(Debug)]
struct InsecureVerifier(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for InsecureVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The client config for kubelets: verified against `ca`, or not at all.
pub fn kubelet_client_config(
    ca: Option<&Path>,
    insecure: bool,
    client_cert: Option<(&Path, &Path)>,
) -> Result<rustls::ClientConfig, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?;
    let builder = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(InsecureVerifier(provider())))
    } else {
        let roots = match ca {
            Some(p) => root_store(&certs_from_pem(&read(p)?, &p.display().to_string())?)?,
            None => {
                // In a pod: the cluster CA the service account carries.
                let sa = Path::new("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt");
                root_store(&certs_from_pem(&read(sa)?, &sa.display().to_string())?)?
            }
        };
        builder.with_root_certificates(roots)
    };
    Ok(match client_cert {
        Some((cert, key)) => {
            let chain = certs_from_pem(&read(cert)?, &cert.display().to_string())?;
            let key = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|e| TlsError::Pem {
                path: key.display().to_string(),
                reason: e.to_string(),
            })?;
            builder.with_client_auth_cert(chain, key)?
        }
        None => builder.with_no_client_auth(),
    })
}
