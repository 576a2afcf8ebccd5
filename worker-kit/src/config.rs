//! The project's embeddings config, embedded at build time.

use std::sync::OnceLock;

use shared::Config;

/// The text of `embeddings.toml` as it was when the worker was built (or of the config
/// `EMBEDDINGS_CONFIG` named then: see the build script).
pub const CONFIG_TOML: &str = include_str!(concat!(env!("OUT_DIR"), "/embeddings.toml"));

/// The parsed config. The build script has already refused a config that does not parse.
pub fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| Config::parse(CONFIG_TOML).unwrap_or_else(|e| panic!("{e}")))
}
