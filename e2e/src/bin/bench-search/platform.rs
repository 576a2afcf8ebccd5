//! The platform's floor of a search (`bench/floor/`): a minimal JavaScript gateway and search
//! worker doing what any search of this design must, timed beside the real path.

use std::time::Instant;

use e2e::bench::Error;
use e2e::{Client, Stack};
use serde_json::json;

use crate::backends::{location, Backend};
use crate::requests::{timed_search, with_cpu};
use crate::{ORGANIZATION, REPEATS};

/// The platform's floor of a search of one backend's table (`bench/floor/`).
pub(crate) struct Platform<'a> {
    pub(crate) client: Client,
    pub(crate) stack: &'a Stack,
    pub(crate) backend: Backend,
}

impl<'a> Platform<'a> {
    pub(crate) fn of(stack: &'a Stack, backend: Backend) -> Result<Self, Error> {
        let url = stack
            .floor_url
            .as_deref()
            .ok_or("the stack runs without the platform's floor")?;
        Ok(Platform {
            client: Client::new(url),
            stack,
            backend,
        })
    }

    /// One search of `organization`'s table on the floor, timed: of `text` new, with the model's
    /// call, or (`None`) of the same text again, without it; reading the rows after the copy's
    /// last `seq` (none), or (`whole`: how many) every row, as a first search does. Its answer
    /// is checked: those rows, and a vector of the table's dimensions when embedded.
    pub(crate) fn timed(
        &self,
        organization: &str,
        whole: Option<usize>,
        text: Option<&str>,
    ) -> Result<f64, Error> {
        let body = json!({
            "organizationId": organization,
            "table": self.backend.table,
            "model": self.backend.model,
            "location": location(self.backend),
            "after": whole.map(|_| 0),
            "aiUrl": self.stack.local_ai_url,
            "embed": text,
        })
        .to_string();
        let started = Instant::now();
        let reply = self.client.post("/", None, &body)?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let dims = if text.is_some() { self.backend.dims } else { 0 };
        if reply.status != 200
            || reply.body["rows"].as_u64() != Some(whole.unwrap_or(0) as u64)
            || reply.body["dims"].as_u64() != Some(dims as u64)
        {
            return Err(format!(
                "the platform's floor answered {} {}",
                reply.status, reply.body
            )
            .into());
        }
        Ok(ms)
    }
}

/// [`REPEATS`] searches of `text` again (which the warm searches made), timed, the CPU time
/// `wrangler dev` spent per search, then as many of the platform's floor of it, one after
/// another as the searches were.
pub(crate) fn same_text_again(
    gateway: &Client,
    cookie: &str,
    text: &str,
    platform: &Platform<'_>,
) -> Result<Repeated, Error> {
    let (timings, cpu_ms) = with_cpu(platform.stack, || {
        (0..REPEATS)
            .map(|_| Ok(timed_search(gateway, platform.backend, cookie, text)?.0))
            .collect()
    })?;
    let on_floor = (0..REPEATS)
        .map(|_| platform.timed(ORGANIZATION, None, None))
        .collect::<Result<_, _>>()?;
    Ok(Repeated {
        timings,
        cpu_ms,
        on_floor,
    })
}

/// [`same_text_again`]'s timings.
pub(crate) struct Repeated {
    pub(crate) timings: Vec<f64>,
    pub(crate) cpu_ms: f64,
    pub(crate) on_floor: Vec<f64>,
}
