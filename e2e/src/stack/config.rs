//! The wrangler configs the stack runs: rendered for a local run by `scripts/local-config`,
//! for the embeddings config of the repository or of a [`Variant`], with the stack's options.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::PoisonError;

use super::process::{path, run_ok};
use super::{Stack, Variant};

impl Stack {
    /// Renders the wrangler configs into `out` (`scripts/local-config`), for `variant`'s config
    /// and builds when one is given, with this stack's secret, URLs and options.
    pub(super) fn render_config(
        &self,
        root: &Path,
        out: &Path,
        variant: Option<&Variant>,
    ) -> io::Result<()> {
        let mut local_config = Command::new(root.join("scripts/local-config"));
        local_config.args([
            path(out),
            &self.local_ai_url,
            &self.secret,
            &self.local_vectorize_url,
        ]);
        if let Some(delay) = self.options.retry_base_delay_seconds {
            local_config.env("RETRY_BASE_DELAY_SECONDS", delay.to_string());
        }
        if let Some(variant) = variant {
            local_config
                .env("EMBEDDINGS_CONFIG", &variant.config)
                .env("WORKER_BUILD_DIR", &variant.build_dir);
        }
        run_ok(&mut local_config, "scripts/local-config")?;
        if let Some(size) = self.options.consumer_batch_size {
            let consumer = out.join("consumer-worker.toml");
            // Both lanes' consumers: the first two blocks (the live queue's, then the bulk
            // queue's); the dead-letter queue's keeps its own.
            let batch = format!("max_batch_size = {size}");
            let rendered =
                fs::read_to_string(&consumer)?.replacen("max_batch_size = 100", &batch, 2);
            fs::write(consumer, rendered)?;
        }
        if self.options.pipeline {
            let pipeline = root.join("e2e/pipeline");
            let rendered = fs::read_to_string(pipeline.join("wrangler.toml"))?.replace(
                "main = \"worker.js\"",
                &format!("main = \"{}\"", pipeline.join("worker.js").display()),
            );
            fs::write(out.join("e2e-pipeline.toml"), rendered)?;
        }
        Ok(())
    }

    /// The rendered configs `wrangler dev` runs now.
    pub(super) fn config(&self) -> PathBuf {
        self.config
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
