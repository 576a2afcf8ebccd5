//! Per-organization rate limits on the public API, by kind of route.
//!
//! Every tenant shares the gateway, the queues, D1 and the model; a limit per organization and
//! kind of route keeps one tenant's flood (scripted creates, a search loop, backfills sent over
//! and over) from taking what the others need. The gateway counts each authenticated request
//! against its organization's limit for the route's [`RouteClass`] before it reads the body's
//! meaning, so refused and malformed requests count too; past the limit it answers 429
//! `rate_limited` with `Retry-After`.
//!
//! The counting is Cloudflare's Rate Limiting binding (`[[ratelimits]]` in
//! `wrangler/api-worker.toml`, one binding per class, each in a namespace of its own), which
//! `wrangler dev` runs locally too. The binding counts per location and is eventually
//! consistent: a limit is a guard against abuse, not an exact quota. The figures below are the
//! config's; a test holds the two to each other.

/// The kinds of routes, each with a limit of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteClass {
    /// Reads of records, jobs, tables, status and keys.
    Read,
    /// Creates, updates, deletes, enqueues, replays, API keys: each a write and most a job.
    Write,
    /// Searches, the gray zone, embeds and vector queries: each a model call or a scan.
    Search,
    /// Backfills and model changes: each call queues up to 500 jobs, or a whole table.
    Bulk,
}

impl RouteClass {
    pub const ALL: [RouteClass; 4] = [
        RouteClass::Read,
        RouteClass::Write,
        RouteClass::Search,
        RouteClass::Bulk,
    ];

    /// The Rate Limiting binding that counts this class.
    pub fn binding(self) -> &'static str {
        match self {
            RouteClass::Read => "READ_LIMITER",
            RouteClass::Write => "WRITE_LIMITER",
            RouteClass::Search => "SEARCH_LIMITER",
            RouteClass::Bulk => "BULK_LIMITER",
        }
    }

    /// Requests an organization may make of this class per [`RouteClass::period_seconds`].
    pub fn limit(self) -> u32 {
        match self {
            RouteClass::Read => 2_000,
            RouteClass::Write | RouteClass::Search => 1_000,
            RouteClass::Bulk => 120,
        }
    }

    /// The window the limit counts over (the binding takes 10 or 60).
    pub fn period_seconds(self) -> u32 {
        match self {
            RouteClass::Bulk => 60,
            _ => 10,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RouteClass::Read => "read",
            RouteClass::Write => "write",
            RouteClass::Search => "search",
            RouteClass::Bulk => "bulk",
        }
    }

    /// The key an organization is counted under: one count per organization and class (each
    /// class has its binding, so the class need not be in the key).
    pub fn key(organization_id: &str) -> String {
        format!("org:{organization_id}")
    }

    /// The 429 a request past the limit gets, and the `Retry-After` it carries: the whole
    /// period, the most the caller could have to wait.
    pub fn refusal(self) -> (crate::ApiError, u32) {
        let error = crate::ApiError::new(
            crate::ErrorCode::RateLimited,
            format!(
                "the organization made more than {} {} requests in {} s; retry later",
                self.limit(),
                self.as_str(),
                self.period_seconds()
            ),
        );
        (error, self.period_seconds())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_has_its_own_binding_a_period_the_binding_takes_and_a_429() {
        let bindings: std::collections::HashSet<&str> =
            RouteClass::ALL.iter().map(|c| c.binding()).collect();
        assert_eq!(bindings.len(), RouteClass::ALL.len());
        for class in RouteClass::ALL {
            assert!([10, 60].contains(&class.period_seconds()), "{class:?}");
            assert!(class.limit() > 0);
            let (error, retry_after) = class.refusal();
            assert_eq!(error.status(), 429);
            assert_eq!(retry_after, class.period_seconds());
            assert!(error.message.contains(class.as_str()), "{}", error.message);
        }
        assert_eq!(RouteClass::key("org_a"), "org:org_a");
    }

    #[test]
    fn a_refusal_names_the_class_its_limit_and_its_period() {
        let messages: Vec<String> = RouteClass::ALL
            .iter()
            .map(|class| class.refusal().0.message)
            .collect();
        assert_eq!(
            messages,
            [
                "the organization made more than 2000 read requests in 10 s; retry later",
                "the organization made more than 1000 write requests in 10 s; retry later",
                "the organization made more than 1000 search requests in 10 s; retry later",
                "the organization made more than 120 bulk requests in 60 s; retry later",
            ]
        );
    }
}
