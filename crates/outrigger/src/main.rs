//! `outrigger`: one binary, a subcommand per component.
//!
//! Components are added here as they land; each is a thin wiring of its
//! crate's `run` into [`outrigger_runtime::Runtime`].

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "outrigger",
    version,
    about = "The add-on layer of a production Kubernetes cluster, in one binary.",
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {}

#[allow(unreachable_code)] // no component has landed yet: the enum is empty
fn main() -> std::process::ExitCode {
    match Cli::parse().command {}
}
