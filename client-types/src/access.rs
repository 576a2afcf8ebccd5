//! The access table: for the project and for each table, per action, the organization roles
//! allowed, resolved by `shared`'s own rule ([`Config::allows`]) so that an app which checks its
//! members before calling search-worker or sending to the queue (neither checks a role: binding
//! to them is the privilege) decides as the gateway does.
//!
//! The rule is resolved here for every role the config could allow: a role list given in
//! `[access]` or `[table.access]` allows only the roles it names, and the defaults only
//! better-auth's own three, so no role outside [`roles`] is allowed anything.

use std::fmt::{self, Write as _};

use shared::access::{AccessSpec, Action};
use shared::config::TableConfig;
use shared::Config;

use crate::names::{key, string};

/// Every action, in `shared`'s order. The struct literal names every rule of [`AccessSpec`]
/// with no `..`, so it stops compiling when `shared` gains an action, and `given` answers in
/// `shared`'s own order.
pub fn actions() -> Vec<Action> {
    let every = Some(Vec::new());
    AccessSpec {
        read: every.clone(),
        create: every.clone(),
        update: every.clone(),
        delete: every.clone(),
        search: every.clone(),
        embed: every.clone(),
        admin: every,
    }
    .given()
    .map(|(action, _)| action)
    .collect()
}

/// The roles that may do `action` on `table` (project-wide without one), in `Config::roles`' order.
fn allowed<'a>(
    config: &Config,
    roles: &'a [String],
    table: Option<&TableConfig>,
    action: Action,
) -> Vec<&'a str> {
    roles
        .iter()
        .filter(|role| config.allows(table, role, action))
        .map(String::as_str)
        .collect()
}

pub fn write(out: &mut String, config: &Config) -> fmt::Result {
    let actions = actions();
    let roles = config.roles();
    let names: Vec<&str> = actions.iter().map(|a| a.as_str()).collect();
    writeln!(
        out,
        "\n/** What a role may be allowed to do (`shared::access::Action`). */"
    )?;
    writeln!(out, "export const actions = {} as const;", list(&names))?;
    writeln!(
        out,
        "\n/** better-auth's organization roles (owner, admin, member), then every other role embeddings.toml names. */"
    )?;
    let role_names: Vec<&str> = roles.iter().map(String::as_str).collect();
    writeln!(out, "export const roles = {} as const;", list(&role_names))?;
    writeln!(
        out,
        "\n/**
 * Who may do what, as the gateway decides it (`shared::access` over `[access]`, each table's
 * `[table.access]` and the defaults): per action, the roles allowed. `project` is the rule for
 * what is tied to no table (a job for free content, a raw embed, API keys); `tables`, for a
 * table's records, its search services and the jobs bound to its records. A role not listed
 * may not.
 */"
    )?;
    writeln!(out, "export const access = {{")?;
    write_rule(out, config, &roles, &actions, "project", None, "  ")?;
    writeln!(out, "  tables: {{")?;
    for table in &config.tables {
        write_rule(
            out,
            config,
            &roles,
            &actions,
            &key(&table.name),
            Some(table),
            "    ",
        )?;
    }
    writeln!(out, "  }},")?;
    writeln!(out, "}} as const;")
}

fn write_rule(
    out: &mut String,
    config: &Config,
    roles: &[String],
    actions: &[Action],
    name: &str,
    table: Option<&TableConfig>,
    indent: &str,
) -> fmt::Result {
    writeln!(out, "{indent}{name}: {{")?;
    for &action in actions {
        writeln!(
            out,
            "{indent}  {}: {},",
            action.as_str(),
            list(&allowed(config, roles, table, action))
        )?;
    }
    writeln!(out, "{indent}}},")
}

fn list(items: &[&str]) -> String {
    let items: Vec<String> = items.iter().map(|item| string(item)).collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[access]
read = ["owner", "admin", "member", "viewer"]
search = ["viewer", "auditor"]

[[table]]
name = "claims"
columns = ["id", "organization_id", "content", "embedding"]
[table.embeddings]
fields = ["content"]
[table.access]
update = ["owner", "editor"]
search = ["owner"]

[[table]]
name = "notes"
columns = ["id", "organization_id", "body", "embedding"]
[table.embeddings]
fields = ["body"]
"#;

    fn rendered(text: &str) -> String {
        let mut out = String::new();
        write(&mut out, &Config::parse(text).unwrap()).unwrap();
        out
    }

    #[test]
    fn every_action_of_shared_is_listed_once() {
        let names: Vec<&str> = actions().iter().map(|a| a.as_str()).collect();
        assert_eq!(
            names,
            ["read", "create", "update", "delete", "search", "embed", "admin"]
        );
    }

    #[test]
    fn the_roles_are_better_auths_then_the_configs_each_once() {
        let config = Config::parse(CONFIG).unwrap();
        assert_eq!(
            config.roles(),
            ["owner", "admin", "member", "viewer", "auditor", "editor"]
        );
        assert_eq!(
            Config::parse("").unwrap().roles(),
            shared::access::BETTER_AUTH_ROLES
        );
    }

    /// The table says, for every role and action, what `shared` answers: nothing is resolved
    /// here but by `Config::allows`.
    #[test]
    fn each_rule_lists_exactly_the_roles_shared_allows() {
        let config = Config::parse(CONFIG).unwrap();
        let out = rendered(CONFIG);
        let roles = config.roles();
        let scopes = std::iter::once(("project", None))
            .chain(config.tables.iter().map(|t| (t.name.as_str(), Some(t))));
        for (name, table) in scopes {
            let indent = if table.is_some() { "    " } else { "  " };
            let start = out.find(&format!("\n{indent}{name}: {{\n")).unwrap();
            let block = &out[start..];
            for action in actions() {
                let expected: Vec<&str> = roles
                    .iter()
                    .filter(|r| config.allows(table, r, action))
                    .map(String::as_str)
                    .collect();
                let line = format!("\n{indent}  {}: {},\n", action.as_str(), list(&expected));
                // Up to the rule's closing brace, with the newline before it.
                let end = block.find(&format!("\n{indent}}},")).unwrap() + 1;
                assert!(block[..end].contains(&line), "{name}: {line:?} in {out}");
            }
        }
    }

    #[test]
    fn a_table_rule_overrides_the_project_rule_per_action() {
        let out = rendered(CONFIG);
        let claims = &out[out.find("    claims: {").unwrap()..];
        assert!(
            claims.contains("      update: [\"owner\", \"editor\"],\n"),
            "{out}"
        );
        assert!(claims.contains("      search: [\"owner\"],\n"), "{out}");
        // Not said by the table: the project's rule, then the default.
        assert!(claims.contains("      read: [\"owner\", \"admin\", \"member\", \"viewer\"],\n"));
        assert!(claims.contains("      delete: [\"owner\", \"admin\"],\n"));
        let notes = &out[out.find("    notes: {").unwrap()..];
        assert!(
            notes.contains("      search: [\"viewer\", \"auditor\"],\n"),
            "{out}"
        );
        assert!(notes.contains("      update: [\"owner\", \"admin\", \"member\"],\n"));
    }

    #[test]
    fn without_access_rules_the_defaults_hold() {
        let out = rendered("");
        assert!(out.contains("export const roles = [\"owner\", \"admin\", \"member\"] as const;"));
        assert!(out.contains(
            "  project: {\n    read: [\"owner\", \"admin\", \"member\"],\n    create: [\"owner\", \"admin\", \"member\"],\n    update: [\"owner\", \"admin\", \"member\"],\n    delete: [\"owner\", \"admin\"],\n    search: [\"owner\", \"admin\", \"member\"],\n    embed: [\"owner\", \"admin\", \"member\"],\n    admin: [\"owner\", \"admin\"],\n  },\n  tables: {\n  },\n"
        ), "{out}");
    }
}
