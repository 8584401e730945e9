//! TLS material: the serving certificate; kubelet client configs and PEM
//! reading are the runtime's (`outrigger_runtime::tls`), shared with the
//! node agent.

use std::path::Path;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

pub use outrigger_runtime::tls::{
    certs_from_pem, crypto_provider, kubelet_client_config, read, root_store,
};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Material(#[from] outrigger_runtime::tls::TlsError),
    #[error("{path}: no PEM certificate found: {reason}")]
    Pem { path: String, reason: String },
    #[error("generating the self-signed serving certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
}

/// The serving certificate: from files, or self-signed for the given names.
pub fn serving_identity(
    cert: Option<&Path>,
    key: Option<&Path>,
    names: &[String],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    match (cert, key) {
        (Some(c), Some(k)) => {
            let chain = certs_from_pem(&read(c)?, &c.display().to_string())?;
            let key = PrivateKeyDer::from_pem_slice(&read(k)?).map_err(|e| TlsError::Pem {
                path: k.display().to_string(),
                reason: e.to_string(),
            })?;
            Ok((chain, key))
        }
        _ => {
            let ck = rcgen::generate_simple_self_signed(names.to_vec())?;
            let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der()).map_err(|e| {
                TlsError::Pem {
                    path: "self-signed key".to_string(),
                    reason: e.to_string(),
                }
            })?;
            Ok((vec![ck.cert.der().clone()], key))
        }
    }
}
