//! One module per subcommand.

pub mod broker;
pub mod check;
pub mod cloud_key;
pub mod devices;
pub mod flows;
pub mod generate;
pub mod hello;
pub mod keygen;
pub mod pending;
pub mod policy;
pub mod series;

/// A multi-threaded tokio runtime for the networked subcommands.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
