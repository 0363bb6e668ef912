//! The `roomstream` binary: parse the command line, run the subcommand, exit non-zero with the reason
//! on failure. Everything else lives in the library, starting at [`roomstream::cli`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    roomstream::telemetry::init();
    let cli = roomstream::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli.run()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
