//! schemathesis (from `PyPI`) against the `OpenAPI` document the gateway serves, signed in as Ann:
//! no operation may answer a 5xx, and no answer may fall outside the document. `scripts/test`
//! installs it and names it in `SCHEMATHESIS`; without that variable the test is ignored.

use std::process::Command;

use super::{Ctx, Failed};

/// The variable naming the schemathesis executable.
pub(crate) const SCHEMATHESIS: &str = "SCHEMATHESIS";

pub(crate) fn schemathesis(ctx: &Ctx) -> Result<(), Failed> {
    let executable = std::env::var_os(SCHEMATHESIS).ok_or("SCHEMATHESIS is not set")?;
    let schema = format!("{}/api/v1/openapi.json", ctx.stack.base_url);
    let output = Command::new(executable)
        .args(["run", &schema])
        .args(["--url", &ctx.stack.base_url])
        .args(["--header", &format!("Cookie: {}", ctx.ann)])
        .args(["--checks", "not_a_server_error,response_schema_conformance"])
        .args(["--max-examples", "20", "--seed", "7", "--workers", "1"])
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
