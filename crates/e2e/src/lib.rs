//! Harness for cluster tests against the local environment.
//!
//! [`env`] reuses a running environment (`make up`) or starts one through
//! `testenv/scripts/up.sh`, once per test process. [`TestNamespace`] gives each
//! test its own namespace, labelled for cleanup, and deletes it afterwards.

pub mod iam;
pub mod journal;
pub mod karpenter;
pub mod lb;
pub mod moto;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
    time::Duration,
};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, ObjectMeta, PostParams},
};

/// The running local environment.
#[derive(Debug)]
pub struct TestEnv {
    pub repo: PathBuf,
    pub state: PathBuf,
    /// Variables from `.testenv/env` (KUBECONFIG, AWS_ENDPOINT_URL, ...).
    pub vars: HashMap<String, String>,
}

impl TestEnv {
    pub fn kubeconfig(&self) -> &str {
        &self.vars["KUBECONFIG"]
    }

    /// A kube client for the environment's admin user.
    pub async fn client(&self) -> Result<Client> {
        outrigger_runtime::install_crypto_provider();
        let kc = kube::config::Kubeconfig::read_from(self.kubeconfig())?;
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
        Ok(Client::try_from(cfg)?)
    }

    /// A command with the environment's variables set (PATH first to the
    /// environment's kubectl and aws).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }

    /// Runs a program with the environment and returns its stdout; fails with
    /// its stderr.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<String> {
        self.run_both(program, args).map(|(out, _)| out)
    }

    /// Like [`TestEnv::run`], returning stdout and stderr.
    pub fn run_both(&self, program: &str, args: &[&str]) -> Result<(String, String)> {
        let out = self
            .command(program)
            .args(args)
            .output()
            .with_context(|| format!("running {program}"))?;
        let (o, e) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        if !out.status.success() {
            bail!("{program} {} failed: {e}", args.join(" "));
        }
        Ok((o, e))
    }

    /// The AWS CLI with the moto endpoint.
    pub fn aws(&self, args: &[&str]) -> Result<String> {
        self.run("aws", args)
    }

    /// `kubectl apply -f -` of a YAML text.
    pub fn apply(&self, yaml: &str) -> Result<()> {
        use std::io::Write;
        let mut child = self
            .command("kubectl")
            .args(["apply", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .context("running kubectl apply")?;
        child
            .stdin
            .take()
            .context("kubectl's stdin")?
            .write_all(yaml.as_bytes())?;
        if !child.wait()?.success() {
            bail!("kubectl apply failed");
        }
        Ok(())
    }
}

fn repo_root() -> PathBuf {
    // At run time, cargo points CARGO_MANIFEST_DIR at this checkout; the
    // compile-time value may name another checkout sharing the target dir.
    let manifest = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    Path::new(&manifest)
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn parse_env_file(path: &Path) -> Result<HashMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut vars = HashMap::new();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("export ") else {
            continue;
        };
        let Some((k, v)) = rest.split_once('=') else {
            continue;
        };
        let v = v.trim_matches('"');
        let v = if k == "PATH" {
            v.replace("$PATH", &std::env::var("PATH").unwrap_or_default())
        } else {
            v.to_string()
        };
        vars.insert(k.to_string(), v);
    }
    Ok(vars)
}

/// The environment, started once per test process if it is not running.
pub fn env() -> &'static TestEnv {
    static ENV: OnceLock<TestEnv> = OnceLock::new();
    ENV.get_or_init(|| {
        let repo = repo_root();
        let state = std::env::var("OUTRIGGER_STATE")
            .map(PathBuf::from)
            .unwrap_or_else(|_| repo.join(".testenv"));
        // up.sh is idempotent: it returns quickly when everything runs.
        let status = Command::new("bash")
            .arg(repo.join("testenv/scripts/up.sh"))
            .stdout(std::process::Stdio::null())
            .status()
            .expect("running testenv/scripts/up.sh");
        assert!(status.success(), "testenv/scripts/up.sh failed");
        let vars = parse_env_file(&state.join("env")).expect("reading the environment's env file");
        TestEnv { repo, state, vars }
    })
}

/// A namespace of one test, deleted by [`TestNamespace::cleanup`].
pub struct TestNamespace {
    pub name: String,
    client: Client,
}

impl TestNamespace {
    pub async fn new(client: &Client, test: &str) -> Result<Self> {
        let suffix: String = format!("{:x}", std::process::id() as u64 ^ now_nanos());
        let name = format!("e2e-{test}-{}", &suffix[suffix.len().saturating_sub(6)..]);
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([("outrigger.dev/e2e".to_string(), test.to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await?;
        Ok(Self {
            name,
            client: client.clone(),
        })
    }

    pub async fn cleanup(self) -> Result<()> {
        Api::<Namespace>::all(self.client.clone())
            .delete(&self.name, &DeleteParams::background())
            .await?;
        Ok(())
    }
}

/// Deletes namespaces left by earlier, interrupted test runs.
pub async fn delete_stale_namespaces(client: &Client) -> Result<()> {
    let api = Api::<Namespace>::all(client.clone());
    for ns in api
        .list(&ListParams::default().labels("outrigger.dev/e2e"))
        .await?
    {
        if let Some(n) = ns.metadata.name {
            let _ = api.delete(&n, &DeleteParams::background()).await;
        }
    }
    Ok(())
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Polls `f` every 200 ms until it returns `Ok(Some(v))`, or fails after
/// `timeout` with the last error or "condition not met".
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::from("condition not met");
    loop {
        match f().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = format!("{e:#}"),
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A free TCP port on 127.0.0.1 (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding a free port")
}

/// A minimal HTTP/1.1 GET on 127.0.0.1: (status, body).
pub async fn http_get(port: u16, path: &str) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("malformed HTTP response")?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}
