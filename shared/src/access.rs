//! Which organization roles may do what: the role check of the firewall.
//!
//! Roles are better-auth's organization roles (`owner`, `admin`, `member`, or an app's own). The
//! config's `[access]` sets the project-wide rule per action and a table's `[table.access]`
//! overrides it per action. Unless the config says otherwise:
//!
//! | action | who |
//! |---|---|
//! | `read`, `search` | owner, admin, member |
//! | `create`, `update`, `embed` | owner, admin, member |
//! | `delete` | owner, admin |
//! | `admin` (backfills, API keys) | owner, admin |
//!
//! An API key acts with the role it was created with.

use serde::Deserialize;

/// Something a caller may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read records and jobs.
    Read,
    Create,
    Update,
    Delete,
    /// Similarity search, gray zone and vector queries.
    Search,
    /// Enqueue embeddings, embed text, replay a job.
    Embed,
    /// Backfill a table; create and revoke API keys.
    Admin,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Search => "search",
            Action::Embed => "embed",
            Action::Admin => "admin",
        }
    }
}

/// `[access]` or `[table.access]`: for each action, the roles allowed; an action not given
/// falls back (a table's to the project's, the project's to the defaults above).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessSpec {
    pub read: Option<Vec<String>>,
    pub create: Option<Vec<String>>,
    pub update: Option<Vec<String>>,
    pub delete: Option<Vec<String>>,
    pub search: Option<Vec<String>>,
    pub embed: Option<Vec<String>>,
    pub admin: Option<Vec<String>>,
}

/// The organization roles better-auth's organization plugin makes itself.
pub const BETTER_AUTH_ROLES: [&str; 3] = ["owner", "admin", "member"];

const EVERY_MEMBER: &[&str] = &BETTER_AUTH_ROLES;
const MANAGERS: &[&str] = &["owner", "admin"];

impl AccessSpec {
    fn roles(&self, action: Action) -> Option<&[String]> {
        match action {
            Action::Read => self.read.as_deref(),
            Action::Create => self.create.as_deref(),
            Action::Update => self.update.as_deref(),
            Action::Delete => self.delete.as_deref(),
            Action::Search => self.search.as_deref(),
            Action::Embed => self.embed.as_deref(),
            Action::Admin => self.admin.as_deref(),
        }
    }

    /// Every role list given, with its action, for validation.
    pub fn given(&self) -> impl Iterator<Item = (Action, &[String])> {
        [
            Action::Read,
            Action::Create,
            Action::Update,
            Action::Delete,
            Action::Search,
            Action::Embed,
            Action::Admin,
        ]
        .into_iter()
        .filter_map(|action| Some((action, self.roles(action)?)))
    }
}

/// Whether `role` may do `action`, under a table's rule (if any) over the project's rule.
pub fn allows(
    project: &AccessSpec,
    table: Option<&AccessSpec>,
    role: &str,
    action: Action,
) -> bool {
    if let Some(roles) = table
        .and_then(|t| t.roles(action))
        .or_else(|| project.roles(action))
    {
        return roles.iter().any(|r| r == role);
    }
    let defaults = match action {
        Action::Delete | Action::Admin => MANAGERS,
        _ => EVERY_MEMBER,
    };
    defaults.contains(&role)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(list: &[&str]) -> Vec<String> {
        list.iter().map(|r| (*r).to_owned()).collect()
    }

    #[test]
    fn defaults_let_members_work_and_managers_delete_and_administer() {
        let none = AccessSpec::default();
        for action in [
            Action::Read,
            Action::Create,
            Action::Update,
            Action::Search,
            Action::Embed,
        ] {
            assert!(allows(&none, None, "member", action), "{action:?}");
        }
        assert!(!allows(&none, None, "member", Action::Delete));
        assert!(!allows(&none, None, "member", Action::Admin));
        assert!(allows(&none, None, "admin", Action::Delete));
        assert!(allows(&none, None, "owner", Action::Admin));
        assert!(
            !allows(&none, None, "viewer", Action::Read),
            "unknown roles get nothing"
        );
    }

    #[test]
    fn a_table_rule_overrides_the_project_rule_per_action() {
        let project = AccessSpec {
            read: Some(roles(&["owner", "admin", "member", "viewer"])),
            ..AccessSpec::default()
        };
        let table = AccessSpec {
            create: Some(roles(&["owner"])),
            ..AccessSpec::default()
        };
        assert!(allows(&project, Some(&table), "viewer", Action::Read));
        assert!(!allows(&project, Some(&table), "viewer", Action::Create));
        assert!(!allows(&project, Some(&table), "member", Action::Create));
        assert!(allows(&project, Some(&table), "owner", Action::Create));
        // Not said by either: the default.
        assert!(allows(&project, Some(&table), "member", Action::Update));
        assert_eq!(table.given().count(), 1);
    }
}
