//! `outrigger`: one binary, a subcommand per component.
//!
//! Each subcommand wires its crate's `run` into the shared runtime
//! ([`outrigger_runtime::Runtime`]): flags, logging, client, admin server,
//! leader election and graceful shutdown.

use clap::Parser;

/// mimalloc returns freed memory to the system far more readily than glibc's
/// per-thread arenas, which matters for caches that churn (pods, scrapes).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use outrigger_runtime::{Runtime, RuntimeArgs};

#[derive(Parser, Debug)]
#[command(
    name = "outrigger",
    version,
    about = "The add-on layer of a production Kubernetes cluster, in one binary.",
    arg_required_else_help = true,
    // A flag given twice takes the last value, as Go's pflag does (the
    // upstream manifests Outrigger takes are written for it); list flags
    // still collect every value.
    args_override_self = true
)]
struct Cli {
    #[command(flatten)]
    runtime: RuntimeArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// metrics.k8s.io for `kubectl top` and the HPA (drop-in for metrics-server).
    ///
    /// Every replica scrapes and serves, as upstream's do, so it takes no
    /// part in leader election.
    MetricsServer(Box<outrigger_metrics_server::Args>),

    /// Node provisioning, Karpenter-compatible: pending pods become
    /// NodeClaims and nodes (NodePool, the v1alpha5 Provisioner).
    Provisioner(outrigger_provisioner::Args),

    /// Load balancers, AWS Load Balancer Controller-compatible: Services of
    /// type LoadBalancer -> NLBs, Ingresses of class alb -> ALBs (one per
    /// IngressGroup), TargetGroupBindings, through ELBv2.
    LoadBalancerController(outrigger_lb_controller::Args),

    /// Node groups, Cluster-Autoscaler-compatible: AWS Auto Scaling groups
    /// (found by tag or named) or kwok groups, scaled out for pending pods
    /// and in for unneeded nodes.
    #[command(args_override_self = true)]
    ClusterAutoscaler(Box<outrigger_cluster_autoscaler::Args>),

    /// Container Insights' log agent, one per node (drop-in for the
    /// quickstart's Fluent Bit): container, host and dataplane logs to
    /// CloudWatch Logs (or files), enriched with pod metadata, none lost.
    /// Its admin server listens on $HTTP_PORT (2020), as Fluent Bit's.
    NodeAgent(Box<outrigger_node_agent::Args>),

    /// Why is this pod pending? With the provisioner: its solver, run on
    /// the cluster as it is now (where the pod would go, or why it cannot go
    /// anywhere: each node and each pool). With the node-group autoscaler:
    /// its last decision on the pod (each group's reason) and its groups.
    WhyPending(WhyPendingArgs),

    /// Why is the provisioner not disrupting this node? Each reason in
    /// plain words: what blocks it (a do-not-disrupt pod, a PDB), its
    /// pool's policy or consolidateAfter, a budget at zero and until when,
    /// a pod with nowhere to go, no cheaper replacement (the cheapest type
    /// and its price); for a node being disrupted, why and what replaces it.
    WhyKept(outrigger_provisioner::WhyKeptArgs),

    /// Print the CRDs Outrigger serves (Karpenter's NodePool, NodeClaim,
    /// Provisioner, EC2NodeClass, KWOKNodeClass; the load balancer
    /// controller's IngressClassParams and TargetGroupBinding), or write
    /// them to a directory, one file each.
    Crds {
        /// Write `<group>_<plural>.yaml` files here instead of printing.
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
}

/// `outrigger crds`: needs no cluster, so it runs before the runtime.
fn crds(dir: Option<&std::path::Path>) -> Result<(), String> {
    let karpenter = outrigger_karpenter_api::crds().into_iter().map(|crd| {
        let yaml = outrigger_karpenter_api::to_yaml(&crd).map_err(|e| e.to_string());
        (outrigger_karpenter_api::file_name(&crd), yaml)
    });
    let lb = outrigger_lb_api::crds().into_iter().map(|crd| {
        let yaml = outrigger_lb_api::to_yaml(&crd).map_err(|e| e.to_string());
        (outrigger_lb_api::file_name(&crd), yaml)
    });
    for (file, yaml) in karpenter.chain(lb) {
        let yaml = yaml?;
        match dir {
            Some(d) => {
                let path = d.join(file);
                std::fs::write(&path, yaml)
                    .map_err(|e| format!("writing {}: {e}", path.display()))?;
            }
            None => print!("---\n{yaml}"),
        }
    }
    Ok(())
}

#[derive(clap::Args, Debug, Clone)]
struct WhyPendingArgs {
    #[command(flatten)]
    explain: outrigger_provisioner::ExplainArgs,
    /// Which autoscaler to ask: `auto` is the node-group autoscaler when it
    /// holds its leader Lease (outrigger-cluster-autoscaler, in
    /// --leader-elect-namespace), else the provisioner.
    #[arg(long, value_enum, default_value = "auto")]
    autoscaler: Which,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Auto,
    Provisioner,
    ClusterAutoscaler,
}

/// `outrigger why-pending`: a client of the cluster, no runtime (no admin
/// server, no leader election).
async fn why_pending(runtime: &RuntimeArgs, args: &WhyPendingArgs) -> Result<(), String> {
    outrigger_runtime::install_crypto_provider();
    let client = outrigger_runtime::make_client(runtime)
        .await
        .map_err(|e| e.to_string())?;
    let namespace = &runtime.leader_elect_namespace;
    let node_groups = match args.autoscaler {
        Which::ClusterAutoscaler => true,
        Which::Provisioner => false,
        Which::Auto => outrigger_cluster_autoscaler::explain::leads(&client, namespace).await,
    };
    let e = &args.explain;
    let text = if node_groups {
        outrigger_cluster_autoscaler::explain::why_pending(client, &e.namespace, &e.pod, namespace)
            .await
            .map_err(|e| e.to_string())?
    } else {
        outrigger_provisioner::why_pending(client, e)
            .await
            .map_err(|e| e.to_string())?
    };
    print!("{text}");
    Ok(())
}

/// `outrigger why-kept`: a client of the cluster, no runtime.
async fn why_kept(
    runtime: &RuntimeArgs,
    args: &outrigger_provisioner::WhyKeptArgs,
) -> Result<(), String> {
    outrigger_runtime::install_crypto_provider();
    let client = outrigger_runtime::make_client(runtime)
        .await
        .map_err(|e| e.to_string())?;
    let text = outrigger_provisioner::why_kept(client, args)
        .await
        .map_err(|e| e.to_string())?;
    print!("{text}");
    Ok(())
}

/// Transparent huge pages off for this process. mimalloc gives freed memory
/// back to the system within a second; with THP on, the next allocation in
/// that range faults in a fresh 2 MiB page that the kernel zeroes whole.
/// A loop that builds and drops a large model (the node-group autoscaler
/// at 33,500 pods) then spent a third of its CPU clearing pages: with THP
/// off its first loop took 0.9 s instead of 1.7 s, its CPU 3.6 s instead
/// of 5.2 s (bench/RESULTS.md).
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        eprintln!("warning: could not turn transparent huge pages off: {e}");
    }
}

fn main() -> std::process::ExitCode {
    no_transparent_huge_pages();
    let cli = Cli::parse();
    if let Command::Crds { dir } = &cli.command {
        return match crds(dir.as_deref()) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    // The node agent runs on one thread: it is one per node, next to the
    // node's workloads, and mostly reads files and waits on requests. With
    // a worker per core its records were made on one thread and freed on
    // another, and the allocator held about 20 MiB more under load
    // (bench/RESULTS.md, node agent memory) for the same CPU.
    let mut builder = if matches!(cli.command, Command::NodeAgent(_)) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Command::WhyKept(args) = &cli.command {
        return match rt.block_on(why_kept(&cli.runtime, args)) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    if let Command::WhyPending(args) = &cli.command {
        return match rt.block_on(why_pending(&cli.runtime, args)) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let result = rt.block_on(async move {
        match cli.command {
            Command::MetricsServer(args) => {
                let mut runtime = cli.runtime;
                runtime.leader_elect = false;
                Runtime::run("metrics-server", &runtime, move |rt| {
                    outrigger_metrics_server::run(rt, *args)
                })
                .await
            }
            Command::Provisioner(args) => {
                Runtime::run("provisioner", &cli.runtime, move |rt| {
                    outrigger_provisioner::run(rt, args)
                })
                .await
            }
            Command::ClusterAutoscaler(args) => {
                let mut runtime = cli.runtime;
                // Upstream's `--address` (":8085") moves the admin server.
                if let Some(a) = &args.address {
                    let a = if a.starts_with(':') {
                        format!("0.0.0.0{a}")
                    } else {
                        a.clone()
                    };
                    match a.parse() {
                        Ok(addr) => runtime.admin_address = addr,
                        Err(e) => {
                            return Err(outrigger_runtime::RuntimeError::Component(format!(
                                "--address {a:?}: {e}"
                            )));
                        }
                    }
                }
                if let Err(e) = args.settings() {
                    return Err(outrigger_runtime::RuntimeError::Component(e));
                }
                Runtime::run("cluster-autoscaler", &runtime, move |rt| {
                    outrigger_cluster_autoscaler::run(rt, *args)
                })
                .await
            }
            Command::NodeAgent(args) => {
                let mut runtime = cli.runtime;
                // One per node: no leader election; the quickstart's
                // HTTP_PORT moves the admin server unless given.
                runtime.leader_elect = false;
                if std::env::var_os("OUTRIGGER_ADMIN_ADDRESS").is_none()
                    && !std::env::args().any(|a| a.starts_with("--admin-address"))
                {
                    let port = std::env::var("HTTP_PORT")
                        .ok()
                        .and_then(|p| p.parse::<u16>().ok())
                        .unwrap_or(2020);
                    runtime.admin_address = std::net::SocketAddr::from(([0, 0, 0, 0], port));
                }
                Runtime::run("node-agent", &runtime, move |rt| {
                    outrigger_node_agent::run(rt, *args)
                })
                .await
            }
            Command::LoadBalancerController(args) => {
                Runtime::run("load-balancer-controller", &cli.runtime, move |rt| {
                    outrigger_lb_controller::run(rt, args)
                })
                .await
            }
            Command::WhyPending(_) | Command::WhyKept(_) | Command::Crds { .. } => Ok(()),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
