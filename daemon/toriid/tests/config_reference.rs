//! `docs/operations/configuration.md`, the reference of every configuration key, is
//! generated from the config schema (`toriid::config::schema_keys`: every section and
//! key, with its type) and the comments of the shipped `config/toriid.toml` (the comment
//! block above each key is its documentation). The tests here fail when
//!
//! - a key of the schema has no documentation in the shipped file (a new key must be
//!   documented there before it ships), or
//! - the reference differs from what the schema and the file say now: regenerate it
//!   with `TORII_REGENERATE_DOCS=1 cargo test -p toriid --test config_reference`.
//!
//! How the shipped file documents a key:
//!
//! ```toml
//! [section]
//! # Text of the section (optional), separated from the first key's text by "#".
//! #
//! # The key's documentation: the comment lines right above it.
//! key = "value"
//! # A key that ships commented out is documented the same way.
//! # other = 10
//! # [section.table]  a table handed on as is, documented on its own line
//! ```
//!
//! Keys that follow one another with no comment between them share the comment above
//! the first. A comment block of its own (after a blank line) that starts with
//! `Name:`, where `name` is a section of the schema, documents that section; a list in
//! it introduced by "Keys of a … table:" documents the section's keys (`#   key   text`,
//! continuation lines indented further). Nothing after `# --- example devices ---` is
//! read: the example device tables are examples, not documentation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toriid::config::{SchemaKey, schema_keys};

const EXAMPLES_MARKER: &str = "# --- example devices ---";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What the shipped file says about a group of keys (one comment block, the keys below it).
#[derive(Debug, Default)]
struct Group {
    keys: Vec<Occurrence>,
    doc: Vec<String>,
    /// Lines of a key list entry are prose, never code.
    list_entry: bool,
}

#[derive(Debug, Clone)]
struct Occurrence {
    path: String,
    /// The value as written in the shipped file, and whether the line is commented out.
    value: Option<(String, bool)>,
}

#[derive(Debug, Default)]
struct Documented {
    /// The comment at the top of the file.
    preamble: Vec<String>,
    /// Section texts by section path.
    intros: BTreeMap<String, Vec<String>>,
    groups: Vec<Group>,
}

impl Documented {
    fn group_of(&self, path: &str) -> Option<&Group> {
        self.groups
            .iter()
            .find(|g| g.keys.iter().any(|k| k.path == path))
    }

    fn occurrence(&self, path: &str) -> Option<&Occurrence> {
        self.groups
            .iter()
            .flat_map(|g| &g.keys)
            .find(|k| k.path == path)
    }
}

/// `devices.camera.class` → `devices.<id>.class`: device keys are documented once.
fn generic(path: &str) -> String {
    match path.strip_prefix("devices.") {
        Some(rest) => match rest.split_once('.') {
            Some((_, key)) => format!("devices.<id>.{key}"),
            None => "devices.<id>".to_owned(),
        },
        None => path.to_owned(),
    }
}

/// `key = value` (a key of `section` in the schema) → (key, value).
fn key_line<'a>(text: &'a str, section: &str, schema: &[SchemaKey]) -> Option<(&'a str, &'a str)> {
    let (key, value) = text.split_once(" = ")?;
    let known = !key.is_empty()
        && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        && schema
            .iter()
            .any(|k| k.path == generic(&format!("{section}.{key}")));
    known.then_some((key, value.trim()))
}

/// The comment's text: `# text` → `text`, `#` → ``.
fn comment(line: &str) -> Option<&str> {
    let text = line.strip_prefix('#')?;
    Some(text.strip_prefix(' ').unwrap_or(text))
}

fn parse(text: &str, schema: &[SchemaKey]) -> Documented {
    let mut doc = Documented::default();
    let mut section: Option<String> = None;
    let mut pending: Vec<String> = Vec::new();
    // The group the next undocumented key joins (reset by headers and blank lines).
    let mut open_group: Option<usize> = None;
    let mut seen_header = false;

    for line in text.lines() {
        let line = line.trim_end();
        if line == EXAMPLES_MARKER {
            break;
        }
        if line.is_empty() {
            if !pending.is_empty() {
                let block = std::mem::take(&mut pending);
                if seen_header {
                    detached(&mut doc, block, schema);
                } else {
                    doc.preamble = block;
                }
            }
            open_group = None;
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if !pending.is_empty() {
                detached(&mut doc, std::mem::take(&mut pending), schema);
            }
            section = Some(name.to_owned());
            seen_header = true;
            open_group = None;
            continue;
        }
        let (text, commented) = match comment(line) {
            Some(text) => (text, true),
            None => (line, false),
        };
        let Some(current) = section.as_deref() else {
            pending.push(text.to_owned());
            continue;
        };
        // `# [section.table]  its documentation`
        if commented
            && let Some((table, rest)) = text
                .strip_prefix('[')
                .and_then(|t| t.split_once(']'))
                .map(|(table, rest)| (table, rest.trim()))
            && !rest.is_empty()
            && schema.iter().any(|k| k.path == generic(table))
        {
            let mut lines = std::mem::take(&mut pending);
            lines.push(rest.to_owned());
            doc.groups.push(Group {
                keys: vec![Occurrence {
                    path: generic(table),
                    value: None,
                }],
                doc: lines,
                list_entry: false,
            });
            open_group = None;
            continue;
        }
        match key_line(text, current, schema) {
            Some((key, value)) => {
                let occurrence = Occurrence {
                    path: generic(&format!("{current}.{key}")),
                    value: Some((value.to_owned(), commented)),
                };
                if pending.is_empty() {
                    match open_group {
                        Some(i) => doc.groups[i].keys.push(occurrence),
                        None => {
                            // Undocumented: a group without text.
                            doc.groups.push(Group {
                                keys: vec![occurrence],
                                ..Group::default()
                            });
                            open_group = None;
                        }
                    }
                } else {
                    let mut lines = std::mem::take(&mut pending);
                    let first_of_section = !doc.groups.iter().any(|g| {
                        g.keys
                            .iter()
                            .any(|k| k.path.rsplit_once('.').map(|(s, _)| s) == Some(current))
                    });
                    if first_of_section
                        && let Some(split) = lines.iter().rposition(|l| l.is_empty())
                    {
                        let rest = lines.split_off(split + 1);
                        lines.pop();
                        doc.intros.insert(current.to_owned(), lines);
                        lines = rest;
                    }
                    doc.groups.push(Group {
                        keys: vec![occurrence],
                        doc: lines,
                        list_entry: false,
                    });
                    open_group = Some(doc.groups.len() - 1);
                }
            }
            None if commented => pending.push(text.to_owned()),
            // A value line the schema does not know: the config tests refuse it.
            None => pending.clear(),
        }
    }
    if !pending.is_empty() {
        detached(&mut doc, pending, schema);
    }
    doc
}

/// A comment block of its own: `Name: …` documents the section `name`, and its list
/// after "Keys of a … table:" the section's keys.
fn detached(doc: &mut Documented, block: Vec<String>, schema: &[SchemaKey]) {
    let Some((name, _)) = block.first().and_then(|l| l.split_once(':')) else {
        return;
    };
    let section = name.to_ascii_lowercase();
    let Some(kind) = schema.iter().find(|k| k.path == section).map(|k| k.kind) else {
        return;
    };
    let prefix = if kind == "devices" {
        format!("{section}.<id>")
    } else {
        section.clone()
    };
    let mut intro = Vec::new();
    let mut in_list = false;
    let mut entries: Vec<Group> = Vec::new();
    for line in block {
        let indent = line.len() - line.trim_start().len();
        if in_list {
            if (2..=3).contains(&indent) {
                let entry = line.trim_start();
                let (key, text) = entry
                    .split_once("  ")
                    .map(|(k, t)| (k, t.trim()))
                    .unwrap_or((entry, ""));
                let path = match key.strip_prefix('[').and_then(|k| k.strip_suffix(']')) {
                    Some(table) => generic(table),
                    None => format!("{prefix}.{key}"),
                };
                entries.push(Group {
                    keys: vec![Occurrence { path, value: None }],
                    doc: vec![text.to_owned()],
                    list_entry: true,
                });
                continue;
            }
            if indent > 3 {
                if let Some(entry) = entries.last_mut() {
                    entry.doc.push(line.trim().to_owned());
                }
                continue;
            }
            in_list = false;
        }
        if let Some(at) = line.find("Keys of ")
            && line.trim_end().ends_with("table:")
        {
            in_list = true;
            let before = line[..at].trim_end();
            if !before.is_empty() {
                intro.push(before.to_owned());
            }
            continue;
        }
        intro.push(line);
    }
    doc.intros.insert(section, intro);
    doc.groups.extend(entries);
}

/// Markdown of comment lines: prose joined into paragraphs, indented lines (examples)
/// as code blocks.
fn markdown(lines: &[String], prose_only: bool) -> String {
    let mut out = String::new();
    let mut paragraph: Vec<String> = Vec::new();
    let mut code: Vec<String> = Vec::new();
    let flush_paragraph = |paragraph: &mut Vec<String>, out: &mut String| {
        if !paragraph.is_empty() {
            let text = paragraph.join(" ");
            out.push_str(&escape(&text));
            out.push_str("\n\n");
            paragraph.clear();
        }
    };
    let flush_code = |code: &mut Vec<String>, out: &mut String| {
        if !code.is_empty() {
            let indent = code
                .iter()
                .map(|l| l.len() - l.trim_start().len())
                .min()
                .unwrap_or(0);
            out.push_str("```\n");
            for line in code.iter() {
                out.push_str(&line[indent..]);
                out.push('\n');
            }
            out.push_str("```\n\n");
            code.clear();
        }
    };
    for line in lines {
        if line.trim().is_empty() {
            flush_paragraph(&mut paragraph, &mut out);
            flush_code(&mut code, &mut out);
        } else if !prose_only && line.starts_with("  ") {
            flush_paragraph(&mut paragraph, &mut out);
            code.push(line.clone());
        } else {
            flush_code(&mut code, &mut out);
            paragraph.push(line.trim().to_owned());
        }
    }
    flush_paragraph(&mut paragraph, &mut out);
    flush_code(&mut code, &mut out);
    out
}

/// Escapes what Markdown would take for markup, outside code spans.
fn escape(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        if i % 2 == 1 {
            out.push_str(part);
            continue;
        }
        for c in part.chars() {
            match c {
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '*' => {
                    out.push('\\');
                    out.push(c);
                }
                c => out.push(c),
            }
        }
    }
    out
}

/// `flow.card_timeout_ms` → `TORII__FLOW__CARD_TIMEOUT_MS`.
fn environment(path: &str) -> String {
    format!("TORII__{}", path.replace('.', "__").to_ascii_uppercase())
}

fn type_name(kind: &str) -> &'static str {
    match kind {
        "string" => "string",
        "integer" => "integer",
        "boolean" => "boolean",
        "free" => "any (see text)",
        _ => "table",
    }
}

fn render(schema: &[SchemaKey], doc: &Documented) -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated by daemon/toriid/tests/config_reference.rs from the config schema\n     \
         (daemon/toriid/src/config/schema.rs) and the comments of config/toriid.toml.\n     \
         Do not edit: document keys in config/toriid.toml, then run\n     \
         TORII_REGENERATE_DOCS=1 cargo test -p toriid --test config_reference -->\n\n\
         Every section and key of `/etc/torii/toriid.toml`: its type, the value the shipped\n\
         file sets (or shows commented out), the environment variable that overrides it, and\n\
         its documentation, which is the comment above it in the shipped file. A test\n\
         generates this page from the configuration schema and `config/toriid.toml`, and\n\
         fails when a key is not documented there.\n\n\
         Check a configuration with `toriid check-config` (every error names the file or\n\
         variable and the key). [install.md](install.md) walks through a first configuration.\n\n",
    );
    out.push_str("## How the configuration is read\n\n");
    let preamble: Vec<String> = doc
        .preamble
        .iter()
        .skip_while(|l| l.starts_with("toriid configuration:") || l.is_empty())
        .cloned()
        .collect();
    out.push_str(&markdown(&preamble, false));

    out.push_str("## Sections\n\n");
    for key in schema.iter().filter(|k| is_section(k)) {
        out.push_str(&format!("- [`[{}]`](#{})\n", key.path, anchor(&key.path)));
    }
    out.push('\n');

    let sections: Vec<&SchemaKey> = schema.iter().filter(|k| is_section(k)).collect();
    for section in sections {
        // The section's own keys (not those of a nested section).
        let prefix = if section.kind == "devices" {
            format!("{}.<id>.", section.path)
        } else {
            format!("{}.", section.path)
        };
        let keys: Vec<&SchemaKey> = schema
            .iter()
            .filter(|k| !is_section(k))
            .filter(|k| {
                k.path
                    .strip_prefix(&prefix)
                    .is_some_and(|rest| !rest.contains('.'))
            })
            .collect();
        out.push_str(&format!("## `[{}]`\n\n", section.path));
        if let Some(intro) = doc.intros.get(&section.path) {
            out.push_str(&markdown(intro, false));
        }
        if keys.is_empty() {
            continue;
        }
        out.push_str("| key | type | shipped value | environment |\n| --- | --- | --- | --- |\n");
        for key in &keys {
            let shipped = match doc.occurrence(&key.path).and_then(|o| o.value.as_ref()) {
                Some((value, false)) => format!("`{value}`"),
                Some((value, true)) => format!("`{value}` (commented out)"),
                None => "—".to_owned(),
            };
            let env = match key.kind {
                "string" | "integer" | "boolean" => format!("`{}`", environment(&key.path)),
                _ => "—".to_owned(),
            };
            out.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                key.path,
                type_name(key.kind),
                shipped,
                env
            ));
        }
        out.push('\n');
        // Each comment block once, under the keys it documents.
        let mut done: Vec<&str> = Vec::new();
        for key in &keys {
            if done.contains(&key.path.as_str()) {
                continue;
            }
            let Some(group) = doc.group_of(&key.path) else {
                continue;
            };
            let members: Vec<&str> = keys
                .iter()
                .map(|k| k.path.as_str())
                .filter(|path| group.keys.iter().any(|o| o.path == *path))
                .collect();
            done.extend(&members);
            let names: Vec<String> = members.iter().map(|m| format!("`{m}`")).collect();
            out.push_str(&format!("### {}\n\n", names.join(", ")));
            out.push_str(&markdown(&group.doc, group.list_entry));
        }
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

fn is_section(key: &SchemaKey) -> bool {
    matches!(key.kind, "table" | "devices")
}

/// GitHub's heading anchor of "`[name]`".
fn anchor(path: &str) -> String {
    path.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect::<String>()
        .to_ascii_lowercase()
}

fn shipped() -> (Vec<SchemaKey>, Documented) {
    let schema = schema_keys();
    let text = std::fs::read_to_string(root().join("config/toriid.toml")).unwrap();
    let doc = parse(&text, &schema);
    (schema, doc)
}

#[test]
fn every_key_of_the_schema_is_documented_in_the_shipped_config() {
    let (schema, doc) = shipped();
    let undocumented: Vec<&str> = schema
        .iter()
        .filter(|k| !is_section(k))
        .filter(|k| {
            doc.group_of(&k.path)
                .is_none_or(|g| g.doc.iter().all(|l| l.trim().is_empty()))
        })
        .map(|k| k.path.as_str())
        .collect();
    assert!(
        undocumented.is_empty(),
        "keys without documentation in config/toriid.toml (add a comment above each, \
         or a commented-out `# key = value` line under its comment): {undocumented:?}"
    );
}

#[test]
fn the_configuration_reference_is_current() {
    let (schema, doc) = shipped();
    let rendered = render(&schema, &doc);
    let path = root().join("docs/operations/configuration.md");
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current != rendered {
        if std::env::var_os("TORII_REGENERATE_DOCS").is_some() {
            std::fs::write(&path, &rendered).unwrap();
        } else {
            panic!(
                "docs/operations/configuration.md is stale: run \
                 TORII_REGENERATE_DOCS=1 cargo test -p toriid --test config_reference"
            );
        }
    }
}

/// The parser on a small file: shared comments, section texts, commented-out keys,
/// an undocumented key, a key list.
#[test]
fn the_parser_reads_comment_blocks() {
    let schema = schema_keys();
    let text = "\
# header

[gate]
# Section text.
#
# The id.
id = \"X\"
lane = \"entry\"
[central]
# The url.
# url = \"https://c\"
[usb]
poll_ms = 5
[matcher]
# [matcher.config]  handed on

# Devices: tables.
# Keys of a device table:
#   class      the class
#              more
#   [devices.<id>.config]  as is
# After.
";
    let doc = parse(text, &schema);
    assert_eq!(doc.preamble, vec!["header"]);
    assert_eq!(doc.intros["gate"], vec!["Section text."]);
    assert_eq!(doc.group_of("gate.id").unwrap().doc, vec!["The id."]);
    assert_eq!(doc.group_of("gate.lane").unwrap().doc, vec!["The id."]);
    let url = doc.occurrence("central.url").unwrap();
    assert_eq!(url.value, Some(("\"https://c\"".to_owned(), true)));
    assert!(doc.group_of("usb.poll_ms").unwrap().doc.is_empty());
    assert_eq!(
        doc.group_of("matcher.config").unwrap().doc,
        vec!["handed on"]
    );
    assert_eq!(
        doc.group_of("devices.<id>.class").unwrap().doc,
        vec!["the class", "more"]
    );
    assert_eq!(
        doc.group_of("devices.<id>.config").unwrap().doc,
        vec!["as is"]
    );
    assert_eq!(doc.intros["devices"], vec!["Devices: tables.", "After."]);
    assert_eq!(escape("a <b> `c <d>` *e*"), "a &lt;b&gt; `c <d>` \\*e\\*");
}
