//! schemathesis (from `PyPI`) against the `OpenAPI` document the gateway serves, signed in as Ann,
//! with every check and every phase (the stateful one follows the document's links): no 5xx, no
//! answer outside the document, no request the document calls valid refused and none it calls
//! invalid taken, 405s with `Allow`, and no route that ignores missing credentials.
//! `scripts/test` installs it and names it in `SCHEMATHESIS`; without that variable the test is
//! ignored.

use std::process::Command;

use super::{Ctx, Failed};

/// The variable naming the schemathesis executable.
pub(crate) const SCHEMATHESIS: &str = "SCHEMATHESIS";

pub(crate) fn schemathesis(ctx: &Ctx) -> Result<(), Failed> {
    let executable = std::env::var_os(SCHEMATHESIS).ok_or("SCHEMATHESIS is not set")?;
    let schema = format!("{}/api/v1/openapi.json", ctx.stack.base_url);
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/schemathesis.toml");
    let output = Command::new(executable)
        .args(["--config-file", config, "run", &schema])
        .args(["--url", &ctx.stack.base_url])
        .args(["--header", &format!("Cookie: {}", ctx.ann)])
        // The cookie is the credential; made-up ones for the document's other scheme (API keys)
        // would only be refused.
        .args(["--generation-with-security-parameters", "false"])
        .args(["--checks", "all"])
        .args(["--max-examples", "30", "--seed", "11", "--workers", "1"])
        .args(["--request-timeout", "30"])
        .env("NO_COLOR", "1")
        // Its cache of found crashes goes to a scratch directory, not the tree.
        .current_dir(std::env::temp_dir())
        .output()?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "schemathesis found problems:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
    .into())
}
