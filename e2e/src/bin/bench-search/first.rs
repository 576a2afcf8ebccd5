//! The first search of an organization: new organizations' first searches, each reading its
//! table whole, beside the platform's floor of each, and their summary lines.

use e2e::bench::{percentile, Error};
use e2e::seed::random_unit_vectors;
use e2e::verdict::{summary, Bound};
use e2e::Stack;

use crate::backends::{seed, Backend};
use crate::platform::Platform;
use crate::requests::timed_search;
use crate::{COLD_ORGANIZATIONS, LIMIT};

/// [`cold_first_searches`] of 10,000 vectors; on a failure, the process ends.
pub(crate) fn first_searches_or_exit(stack: &Stack, backend: Backend) -> FirstSearches {
    let vectors = random_unit_vectors(10_007, 10_000, backend.dims);
    cold_first_searches(stack, backend, &vectors).unwrap_or_else(|e| {
        eprintln!("bench search (first searches) failed: {e}");
        std::process::exit(1);
    })
}

/// The first searches of new organizations, in ms, sorted, and the platform's floor of each.
pub(crate) struct FirstSearches {
    times: Vec<f64>,
    on_floor: Vec<f64>,
}

/// The first search of each of [`COLD_ORGANIZATIONS`] new organizations, once `vectors` are
/// written as its records of `backend`'s table. Each is the search that finds nothing of its
/// organization's table in search-worker's cache: it reads it whole. After each, the platform's
/// floor reads the same rows (then in D1's cache, as they were for the search: the floor stays
/// a floor) beside the model's call for a text of its own.
fn cold_first_searches(
    stack: &Stack,
    backend: Backend,
    vectors: &[Vec<f32>],
) -> Result<FirstSearches, Error> {
    let gateway = stack.client();
    let platform = Platform::of(stack, backend)?;
    let mut times = Vec::with_capacity(COLD_ORGANIZATIONS);
    let mut on_floor = Vec::with_capacity(COLD_ORGANIZATIONS);
    for k in 0..COLD_ORGANIZATIONS {
        let org = format!("org_cold_{k}");
        let owner = stack.add_owner(&format!("cold_{k}"), &org)?;
        let member = stack.add_member(&format!("cold_{k}_member"), &org, "member")?;
        seed(stack, &org, backend, vectors, 0)?;
        // The seed wrote D1 from another process (`wrangler d1 execute`), and the local D1's first
        // read after that pays for it: a session read took 16 ms there, 1 to 2 ms later. The
        // owner's request pays it, untimed; the member's first search is then the
        // organization's first, with a session read of its own, as a user's would be.
        let reply = gateway.get("/api/v1/embeddings/tables", Some(&owner))?;
        if reply.status != 200 {
            return Err(format!("the table list answered {} {}", reply.status, reply.body).into());
        }
        let (ms, ids) = timed_search(&gateway, backend, &member, &format!("first of {org}"))?;
        if ids.len() != LIMIT {
            return Err(format!("the first search of {org} found {} records", ids.len()).into());
        }
        times.push(ms);
        on_floor.push(platform.timed(
            &org,
            Some(vectors.len()),
            Some(&format!("first of {org} (floor)")),
        )?);
    }
    times.sort_by(f64::total_cmp);
    on_floor.sort_by(f64::total_cmp);
    eprintln!(
        "    first searches of {COLD_ORGANIZATIONS} organizations: {times:.0?} ms, on the platform's floor {on_floor:.0?} ms"
    );
    Ok(FirstSearches { times, on_floor })
}

/// The first searches' figures, as summary lines.
pub(crate) fn print_cold(first: &FirstSearches) {
    let times = &first.times;
    if times.is_empty() {
        return;
    }
    let median = percentile(times, 50);
    let within = Bound::AtMost(100.0);
    summary(
        format!(
            "first search of an organization, 10,000 vectors, nothing cached (D1 backend; median of {}, {:.0} to {:.0} ms)",
            times.len(),
            times[0],
            times[times.len() - 1]
        ),
        format!("{} ms", within.shown(median, 0)),
        "<= 100 ms",
        within.verdict(median),
    );
    summary(
        format!(
            "the platform's floor of that first search: the minimal pair's read of the same 10,000 rows (unparsed) beside the model's call, median of {}",
            first.on_floor.len()
        ),
        format!("{:.0} ms", percentile(&first.on_floor, 50)),
        "(no target)",
        "-",
    );
}
