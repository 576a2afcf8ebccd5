//! Keyword retrieval: each embedding table's full-text index (`SQLite`'s FTS5, ranked by BM25),
//! the SQL that makes it and keeps it in step, and the query a search text becomes.
//!
//! The index of table `t` is `t_keywords`, an external-content FTS5 table over `t`'s embedded
//! fields: it holds only the index, and reads the text from `t` by `rowid`. Three triggers on
//! `t` keep it in step with every write, in the writer's own transaction: the gateway's, the
//! consumer's and the app's own alike, so a record is found by its words the moment its write
//! commits. The update trigger fires only on the embedded fields: the consumer's write of the
//! embedding column never touches the index.
//!
//! Why this is safe across tenants: the index holds every organization's rows, but a search
//! joins each hit to its row of `t` and keeps only the caller's (the organization is read from
//! the row, never from the index). Were the index ever out of step with `t`, a hit would still
//! be the row that holds that `rowid` now, of its own organization or none. What the index
//! does share is its statistics: BM25 weighs a word by how rare it is in the whole table, so
//! keyword scores (never the records) depend on other organizations' text. `docs/api.md`
//! states it.
//!
//! The SQL is rendered from the config (`client-types` writes it into a migration and checks
//! it is current), so an embedding table and its index never disagree on the fields.

use crate::config::{Config, TableConfig};

/// How the index splits and folds words: Unicode word characters, case and diacritics
/// folded, each word reduced to its Porter stem (`arrested` finds `arrest`).
pub const TOKENIZER: &str = "porter unicode61 remove_diacritics 2";

/// At most this many words of a search text are looked up; the rest are ignored. A text is
/// already bounded (`shared::guard`); this bounds the work one query asks of the index.
pub const MAX_TERMS: usize = 64;

/// The name of `table`'s keyword index.
pub fn index_name(table: &TableConfig) -> String {
    format!("{}_keywords", table.name)
}

/// The FTS5 query that finds the records holding any word of `text`, the records holding more
/// of them (and rarer ones) first. Each word is one quoted phrase, so that no character of the
/// text is ever read as FTS5's query syntax (`XQ-7734`, `don't`, `c++`, `NEAR`, `*`); the
/// index's tokenizer splits a phrase as it split the records (`XQ-7734` is the phrase
/// `xq 7734`). `None` when the text has no word to look up.
pub fn match_query(text: &str) -> Option<String> {
    let phrases: Vec<String> = text
        .split_whitespace()
        .filter(|word| word.chars().any(char::is_alphanumeric))
        .take(MAX_TERMS)
        .map(|word| format!("\"{}\"", word.replace('"', "\"\"")))
        .collect();
    (!phrases.is_empty()).then(|| phrases.join(" OR "))
}

/// The statements that make every embedding table's index from nothing (dropping one made
/// before, with its triggers) and fill it from the rows already there.
pub fn migration(config: &Config) -> String {
    let mut sql = String::from(
        "-- Rendered from embeddings.toml by `cargo run -p client-types`; do not edit.\n\
         -- Each embedding table's keyword index (shared::keywords): an FTS5 table over its\n\
         -- embedded fields, kept in step by triggers, and filled from the rows already there.\n",
    );
    for table in &config.tables {
        sql.push('\n');
        sql.push_str(&table_sql(table));
    }
    sql
}

/// The statements that fill every index anew from its table: what the rebuild command runs
/// after an import, or after a migration rebuilt a table (its rows then hold new `rowid`s).
pub fn rebuild(config: &Config) -> String {
    config
        .tables
        .iter()
        .map(|table| rebuild_sql(table) + "\n")
        .collect()
}

fn rebuild_sql(table: &TableConfig) -> String {
    let index = index_name(table);
    format!("INSERT INTO \"{index}\"(\"{index}\") VALUES ('rebuild');")
}

/// One table's index, its triggers and its first fill.
fn table_sql(table: &TableConfig) -> String {
    let name = &table.name;
    let index = index_name(table);
    let fields = &table.embeddings.fields;
    let columns = fields
        .iter()
        .map(|f| format!("\"{f}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let values = |row: &str| {
        fields
            .iter()
            .map(|f| format!("{row}.\"{f}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let add = format!(
        "INSERT INTO \"{index}\"(rowid, {columns}) VALUES (new.rowid, {});",
        values("new")
    );
    let remove = format!(
        "INSERT INTO \"{index}\"(\"{index}\", rowid, {columns}) VALUES ('delete', old.rowid, {});",
        values("old")
    );
    format!(
        "DROP TRIGGER IF EXISTS \"{index}_insert\";\n\
         DROP TRIGGER IF EXISTS \"{index}_delete\";\n\
         DROP TRIGGER IF EXISTS \"{index}_update\";\n\
         DROP TABLE IF EXISTS \"{index}\";\n\
         CREATE VIRTUAL TABLE \"{index}\" USING fts5({columns}, content='{name}', \
         content_rowid='rowid', tokenize='{TOKENIZER}');\n\
         CREATE TRIGGER \"{index}_insert\" AFTER INSERT ON \"{name}\" BEGIN\n  {add}\nEND;\n\
         CREATE TRIGGER \"{index}_delete\" AFTER DELETE ON \"{name}\" BEGIN\n  {remove}\nEND;\n\
         CREATE TRIGGER \"{index}_update\" AFTER UPDATE OF {columns} ON \"{name}\" BEGIN\n  \
         {remove}\n  {add}\nEND;\n\
         {}\n",
        rebuild_sql(table)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_is_one_quoted_phrase_joined_by_or() {
        assert_eq!(
            match_query("Police arrested XQ-7734").as_deref(),
            Some("\"Police\" OR \"arrested\" OR \"XQ-7734\"")
        );
        // Query syntax in the text is quoted, quotes doubled.
        assert_eq!(
            match_query("c++ NEAR say \"hi\" don't *").as_deref(),
            Some("\"c++\" OR \"NEAR\" OR \"say\" OR \"\"\"hi\"\"\" OR \"don't\"")
        );
        assert_eq!(match_query("  \t\n"), None);
        assert_eq!(match_query("-- ... * ?"), None);
        assert_eq!(match_query("é").as_deref(), Some("\"é\""));
    }

    #[test]
    fn at_most_max_terms_words_are_looked_up() {
        let text: Vec<String> = (0..MAX_TERMS + 5).map(|i| format!("w{i}")).collect();
        let query = match_query(&text.join(" ")).unwrap();
        assert_eq!(query.matches(" OR ").count(), MAX_TERMS - 1);
        assert!(query.ends_with(&format!("\"w{}\"", MAX_TERMS - 1)));
    }

    fn config() -> Config {
        Config::parse(
            r#"
[[table]]
name = "notes"
columns = ["id", "organization_id", "title", "body", "embedding"]

[table.embeddings]
fields = ["title", "body"]
model = "@cf/baai/bge-small-en-v1.5"
"#,
        )
        .unwrap()
    }

    #[test]
    fn a_tables_index_covers_its_embedded_fields_and_is_kept_by_three_triggers() {
        let sql = migration(&config());
        assert!(sql.contains(
            "CREATE VIRTUAL TABLE \"notes_keywords\" USING fts5(\"title\", \"body\", \
             content='notes', content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2');"
        ));
        assert!(sql.contains(
            "AFTER INSERT ON \"notes\" BEGIN\n  INSERT INTO \"notes_keywords\"(rowid, \"title\", \
             \"body\") VALUES (new.rowid, new.\"title\", new.\"body\");\nEND;"
        ));
        assert!(sql.contains(
            "AFTER DELETE ON \"notes\" BEGIN\n  INSERT INTO \"notes_keywords\"(\"notes_keywords\", \
             rowid, \"title\", \"body\") VALUES ('delete', old.rowid, old.\"title\", old.\"body\");\nEND;"
        ));
        // Only a write of an embedded field touches the index, old entry out, new one in.
        assert!(sql.contains(
            "AFTER UPDATE OF \"title\", \"body\" ON \"notes\" BEGIN\n  INSERT INTO \
             \"notes_keywords\"(\"notes_keywords\", rowid, \"title\", \"body\") VALUES ('delete', \
             old.rowid, old.\"title\", old.\"body\");\n  INSERT INTO \"notes_keywords\"(rowid, \
             \"title\", \"body\") VALUES (new.rowid, new.\"title\", new.\"body\");\nEND;"
        ));
        // Made anew from nothing, then filled from the rows already there.
        let drop = sql
            .find("DROP TABLE IF EXISTS \"notes_keywords\";")
            .unwrap();
        let create = sql.find("CREATE VIRTUAL TABLE").unwrap();
        let fill = sql
            .find("INSERT INTO \"notes_keywords\"(\"notes_keywords\") VALUES ('rebuild');")
            .unwrap();
        assert!(drop < create && create < fill);
        assert_eq!(
            rebuild(&config()),
            "INSERT INTO \"notes_keywords\"(\"notes_keywords\") VALUES ('rebuild');\n"
        );
    }
}
