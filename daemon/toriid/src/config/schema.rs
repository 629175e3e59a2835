//! The shape of `toriid.toml`, checked one source (file or environment variable) at a
//! time so that every unknown key and every wrongly typed value is reported with the
//! file (or variable) it came from. Semantic checks on the merged result live in
//! [`super::validate`].

use super::Issue;

/// What a key may hold.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Shape {
    Str,
    Int,
    Bool,
    /// A table with exactly these keys (all optional here; required keys are checked
    /// after merging, since any source may supply them).
    Section(&'static [(&'static str, Shape)]),
    /// A table keyed by device id, each entry a [`DEVICE`] table.
    Devices,
    /// Anything: a device's driver config, handed to the driver as is.
    Free,
}

const GATE: &[(&str, Shape)] = &[
    ("id", Shape::Str),
    ("lane", Shape::Str),
    ("port", Shape::Str),
];
const REGISTRY: &[(&str, Shape)] = &[
    ("database", Shape::Str),
    ("import", Shape::Str),
    ("card_issuer_key", Shape::Str),
    ("sync_interval_ms", Shape::Int),
    ("revocation_interval_ms", Shape::Int),
    ("max_staleness_ms", Shape::Int),
];
const CENTRAL: &[(&str, Shape)] = &[
    ("url", Shape::Str),
    ("ca", Shape::Str),
    ("client_certificate", Shape::Str),
    ("client_key", Shape::Str),
    ("batch", Shape::Int),
    ("timeout_ms", Shape::Int),
    ("backoff_max_ms", Shape::Int),
];
const OUTBOX: &[(&str, Shape)] = &[
    ("database", Shape::Str),
    ("key_file", Shape::Str),
    ("capacity", Shape::Int),
    ("warn_percent", Shape::Int),
    ("retention_hours", Shape::Int),
];
const AUDIT: &[(&str, Shape)] = &[("path", Shape::Str), ("key_file", Shape::Str)];
const STAY: &[(&str, Shape)] = &[
    ("default_days", Shape::Int),
    ("by_nationality", Shape::Free),
];
pub(crate) const FLOW: &[(&str, Shape)] = &[
    ("card_timeout_ms", Shape::Int),
    ("ed_card_timeout_ms", Shape::Int),
    ("finger_timeout_ms", Shape::Int),
    ("finger_attempts", Shape::Int),
    ("face_timeout_ms", Shape::Int),
    ("take_card_timeout_ms", Shape::Int),
    ("passage_timeout_ms", Shape::Int),
    ("stay", Shape::Section(STAY)),
];
const DOCUMENTS: &[(&str, Shape)] = &[("trust_store", Shape::Str)];
const PATHS: &[(&str, Shape)] = &[
    ("state_dir", Shape::Str),
    ("runtime_dir", Shape::Str),
    ("driver_host", Shape::Str),
];
const HTTP: &[(&str, Shape)] = &[
    ("listen", Shape::Str),
    ("socket", Shape::Str),
    ("tokens_file", Shape::Str),
];
const LOG: &[(&str, Shape)] = &[("format", Shape::Str), ("level", Shape::Str)];
const DBUS: &[(&str, Shape)] = &[
    ("enabled", Shape::Bool),
    ("bus", Shape::Str),
    ("name", Shape::Str),
    ("operators_group", Shape::Str),
];
pub(crate) const DEVICE: &[(&str, Shape)] = &[
    ("class", Shape::Str),
    ("driver", Shape::Str),
    ("isolation", Shape::Str),
    ("call_timeout_ms", Shape::Int),
    ("enabled", Shape::Bool),
    ("bind", Shape::Str),
    ("config", Shape::Free),
];
const USB: &[(&str, Shape)] = &[("poll_ms", Shape::Int), ("fake_bus", Shape::Str)];
/// `target_fmr` is a number (float or integer): typed in `validate`, where its value
/// is checked anyway.
const MATCHER: &[(&str, Shape)] = &[
    ("plugin", Shape::Str),
    ("mode", Shape::Str),
    ("target_fmr", Shape::Free),
    ("config", Shape::Free),
];
pub(crate) const ROOT: &[(&str, Shape)] = &[
    ("gate", Shape::Section(GATE)),
    ("paths", Shape::Section(PATHS)),
    ("http", Shape::Section(HTTP)),
    ("log", Shape::Section(LOG)),
    ("registry", Shape::Section(REGISTRY)),
    ("central", Shape::Section(CENTRAL)),
    ("outbox", Shape::Section(OUTBOX)),
    ("audit", Shape::Section(AUDIT)),
    ("flow", Shape::Section(FLOW)),
    ("documents", Shape::Section(DOCUMENTS)),
    ("usb", Shape::Section(USB)),
    ("matcher", Shape::Section(MATCHER)),
    ("dbus", Shape::Section(DBUS)),
    ("devices", Shape::Devices),
];

/// One entry of the schema, for the configuration reference
/// (`docs/operations/configuration.md`, kept current by `tests/config_reference.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaKey {
    /// The dotted key; the keys of a device table as `devices.<id>.class`.
    pub path: String,
    /// `string`, `integer`, `boolean`, `table` (a section: its keys follow it),
    /// `devices` (the device tables) or `free` (any value, checked by the validation
    /// or handed on as is).
    pub kind: &'static str,
}

/// Every section and key of `toriid.toml`, in the schema's order, each section before
/// its keys.
pub fn keys() -> Vec<SchemaKey> {
    fn walk(path: &str, fields: &[(&str, Shape)], out: &mut Vec<SchemaKey>) {
        for (name, shape) in fields {
            let path = join(path, name);
            let kind = match shape {
                Shape::Str => "string",
                Shape::Int => "integer",
                Shape::Bool => "boolean",
                Shape::Section(_) => "table",
                Shape::Devices => "devices",
                Shape::Free => "free",
            };
            out.push(SchemaKey {
                path: path.clone(),
                kind,
            });
            match shape {
                Shape::Section(inner) => walk(&path, inner, out),
                Shape::Devices => walk(&join(&path, "<id>"), DEVICE, out),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk("", ROOT, &mut out);
    out
}

/// Device ids appear in URLs, metric labels and (lower-cased) environment variable
/// names, so they are restricted to what survives all three unchanged.
pub(crate) fn valid_device_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn describe(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("string {s:?}"),
        toml::Value::Integer(i) => format!("integer {i}"),
        toml::Value::Float(f) => format!("float {f}"),
        toml::Value::Boolean(b) => format!("boolean {b}"),
        toml::Value::Datetime(d) => format!("datetime {d}"),
        toml::Value::Array(_) => "an array".to_owned(),
        toml::Value::Table(_) => "a table".to_owned(),
    }
}

fn expected(shape: Shape) -> &'static str {
    match shape {
        Shape::Str => "a string",
        Shape::Int => "an integer",
        Shape::Bool => "a boolean (true or false)",
        Shape::Section(_) | Shape::Devices => "a table",
        Shape::Free => "a value",
    }
}

fn known_keys(fields: &[(&str, Shape)]) -> String {
    fields
        .iter()
        .map(|(k, _)| *k)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks one parsed file against the schema.
pub(crate) fn check_file(origin: &str, table: &toml::Table, issues: &mut Vec<Issue>) {
    check_fields(origin, "", table, ROOT, issues);
}

fn check_fields(
    origin: &str,
    path: &str,
    table: &toml::Table,
    fields: &[(&str, Shape)],
    issues: &mut Vec<Issue>,
) {
    for (key, value) in table {
        let key_path = join(path, key);
        match fields.iter().find(|(name, _)| name == key) {
            Some((_, shape)) => check_value(origin, &key_path, value, *shape, issues),
            None => issues.push(Issue::new(
                origin,
                &key_path,
                format!("unknown key (expected one of {})", known_keys(fields)),
            )),
        }
    }
}

fn check_value(
    origin: &str,
    path: &str,
    value: &toml::Value,
    shape: Shape,
    issues: &mut Vec<Issue>,
) {
    let ok = match (shape, value) {
        (Shape::Free, _) => true,
        (Shape::Str, toml::Value::String(_))
        | (Shape::Int, toml::Value::Integer(_))
        | (Shape::Bool, toml::Value::Boolean(_)) => true,
        (Shape::Section(fields), toml::Value::Table(table)) => {
            check_fields(origin, path, table, fields, issues);
            true
        }
        (Shape::Devices, toml::Value::Table(table)) => {
            for (id, device) in table {
                let device_path = join(path, id);
                if !valid_device_id(id) {
                    issues.push(Issue::new(
                        origin,
                        &device_path,
                        "invalid device id (use lower-case letters, digits, '-' and '_', at most 64)",
                    ));
                    continue;
                }
                check_value(origin, &device_path, device, Shape::Section(DEVICE), issues);
            }
            true
        }
        _ => false,
    };
    if !ok {
        issues.push(Issue::new(
            origin,
            path,
            format!("expected {}, found {}", expected(shape), describe(value)),
        ));
    }
}

/// Checks one `TORII__A__B=value` override; `segments` are the lower-cased key parts.
pub(crate) fn check_env(origin: &str, segments: &[&str], value: &str, issues: &mut Vec<Issue>) {
    let mut shape = Shape::Section(ROOT);
    let mut path = String::new();
    for (i, segment) in segments.iter().enumerate() {
        let fields: &[(&str, Shape)] = match shape {
            Shape::Free => return,
            Shape::Section(fields) => fields,
            Shape::Devices => {
                path = join(&path, segment);
                if !valid_device_id(segment) {
                    issues.push(Issue::new(origin, &path, "invalid device id"));
                    return;
                }
                shape = Shape::Section(DEVICE);
                continue;
            }
            Shape::Str | Shape::Int | Shape::Bool => {
                issues.push(Issue::new(
                    origin,
                    &path,
                    format!("is {}, not a table", expected(shape)),
                ));
                return;
            }
        };
        let key_path = join(&path, segment);
        match fields.iter().find(|(name, _)| name == segment) {
            Some((_, next)) => shape = *next,
            None => {
                issues.push(Issue::new(
                    origin,
                    &key_path,
                    format!("unknown key (expected one of {})", known_keys(fields)),
                ));
                return;
            }
        }
        path = key_path;
        if i + 1 == segments.len() {
            break;
        }
    }
    let ok = match shape {
        Shape::Free | Shape::Str => true,
        Shape::Int => value.parse::<i64>().is_ok(),
        Shape::Bool => value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false"),
        Shape::Section(_) | Shape::Devices => false,
    };
    if !ok {
        let key = if path.is_empty() { "(root)" } else { &path };
        issues.push(Issue::new(
            origin,
            key,
            format!("expected {}, found {value:?}", expected(shape)),
        ));
    }
}
