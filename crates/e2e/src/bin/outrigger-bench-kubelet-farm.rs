//! A synthetic kubelet farm for scale benchmarks: one HTTPS server on
//! 127.0.0.1 that answers `/metrics/nodes/<node>/metrics/resource` for any
//! node name, like kwok's emulation but without per-pod work, so a metrics
//! server can be measured against thousands of nodes on a small machine.
//! Each node reports `--pods` pods of one container with cumulative CPU
//! growing with time.

use std::{sync::Arc, time::Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::{Request, Response, body::Incoming};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:10390")]
    listen: std::net::SocketAddr,
    #[arg(long)]
    tls_cert_file: std::path::PathBuf,
    #[arg(long)]
    tls_private_key_file: std::path::PathBuf,
    #[arg(long, default_value_t = 30)]
    pods: usize,
}

fn body(node: &str, pods: usize, secs: f64) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(200 * pods + 200);
    let _ = writeln!(out, "node_cpu_usage_seconds_total {:.6}", secs * 0.5);
    let _ = writeln!(out, "node_memory_working_set_bytes {}", 2u64 << 30);
    for j in 0..pods {
        let _ = writeln!(
            out,
            "container_cpu_usage_seconds_total{{container=\"app\",namespace=\"farm\",pod=\"{node}-{j}\"}} {:.6}",
            secs * 0.01 * (j + 1) as f64
        );
        let _ = writeln!(
            out,
            "container_memory_working_set_bytes{{container=\"app\",namespace=\"farm\",pod=\"{node}-{j}\"}} {}",
            (j as u64 + 1) << 20
        );
        let _ = writeln!(
            out,
            "container_start_time_seconds{{container=\"app\",namespace=\"farm\",pod=\"{node}-{j}\"}} 1.7e+09"
        );
    }
    out
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&args.tls_cert_file)
        .context("certificate")?
        .collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&args.tls_private_key_file).context("key")?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    eprintln!("kubelet farm on https://{}", args.listen);
    let start = Instant::now();
    loop {
        let (tcp, _) = listener.accept().await?;
        let acceptor = acceptor.clone();
        let pods = args.pods;
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| async move {
                let path = req.uri().path();
                let node = path
                    .strip_prefix("/metrics/nodes/")
                    .and_then(|r| r.strip_suffix("/metrics/resource"))
                    .unwrap_or("unknown")
                    .to_string();
                let text = body(&node, pods, start.elapsed().as_secs_f64() + 1000.0);
                Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(text))))
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), svc)
                .await;
        });
    }
}
