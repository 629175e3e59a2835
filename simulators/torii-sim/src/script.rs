//! Traveler scripts and expected outcomes (`[traveler.script]`, `[traveler.expect]`),
//! run against a live gate by [`crate::runner`]. Format: `docs/scenarios.md`.
//!
//! An action is one string, `verb [arguments]`, parsed when the scenario is loaded: a
//! bad action is a scenario error naming the file, line and key.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use std::fmt;
use std::str::FromStr;
use torii_core::reason::ReasonCode;
use torii_core::record::{Notice, Step};

use crate::FingerMode;

/// `[traveler.script]`: what the traveler does, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    pub actions: Vec<ScriptAction>,
}

/// `[traveler.expect]`: how the transaction must end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub outcome: ExpectedOutcome,
    /// The reason code of a referral (required when `outcome = "referred"`).
    #[serde(default)]
    pub reason: Option<ReasonCode>,
    /// Text the line printed on the card's back must contain.
    #[serde(default)]
    pub printed_line_contains: Option<String>,
    /// A notice the record must carry (e.g. `rewrite-card`).
    #[serde(default)]
    pub notice: Option<Notice>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExpectedOutcome {
    Admitted,
    Referred,
}

impl Expect {
    /// What the runner prints for the expected outcome: `admitted` or the reason code.
    pub fn describe(&self) -> String {
        match (self.outcome, self.reason) {
            (ExpectedOutcome::Admitted, _) => "admitted".into(),
            (ExpectedOutcome::Referred, Some(reason)) => reason.code().into(),
            (ExpectedOutcome::Referred, None) => "referred".into(),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        match (self.outcome, self.reason) {
            (ExpectedOutcome::Referred, None) => {
                Err("key `expect.reason`: required when outcome = \"referred\"".into())
            }
            (ExpectedOutcome::Admitted, Some(_)) => {
                Err("key `expect.reason`: only for outcome = \"referred\"".into())
            }
            _ => Ok(()),
        }
    }
}

/// The ED card fields a script may edit, with the kind of value each takes.
const ED_FIELDS: &[(&str, EdKind)] = &[
    ("flight", EdKind::Text),
    ("arrival_date", EdKind::Date),
    ("address_in_japan", EdKind::Text),
    ("phone_in_japan", EdKind::Text),
    ("purpose", EdKind::Text),
    ("length_of_stay_days", EdKind::Number),
    ("occupation", EdKind::Text),
    ("deported_before", EdKind::Answer),
    ("convicted_before", EdKind::Answer),
    ("carrying_prohibited_items", EdKind::Answer),
    ("carrying_firearms", EdKind::Answer),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EdKind {
    Text,
    Date,
    Number,
    Answer,
}

/// One field set by `edit-ed-card`: the field's name and its JSON value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdEdit {
    pub field: String,
    pub value: Value,
}

/// The daemon's operating modes an officer can set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateMode {
    InService,
    OutOfService,
    Maintenance,
}

impl GateMode {
    pub fn name(self) -> &'static str {
        match self {
            GateMode::InService => "in-service",
            GateMode::OutOfService => "out-of-service",
            GateMode::Maintenance => "maintenance",
        }
    }
}

/// One thing a traveler (or an officer, or the building) does. `traveler: None` means
/// the scripted traveler themselves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScriptAction {
    EnterLane,
    PresentPassport {
        traveler: Option<String>,
    },
    RemovePassport,
    PresentQr {
        traveler: Option<String>,
    },
    PresentQrPayload {
        payload: String,
    },
    InsertCard {
        traveler: Option<String>,
    },
    RemoveCard,
    TakeCard,
    PlaceCard {
        traveler: Option<String>,
    },
    LiftCard,
    PlaceFingers {
        mode: FingerMode,
        traveler: Option<String>,
    },
    LiftFingers,
    LookAtCamera {
        traveler: Option<String>,
    },
    LeaveCamera,
    EditEdCard {
        edits: Vec<EdEdit>,
    },
    ConfirmEdCard,
    ExpectEdCardError {
        field: String,
    },
    WaitStep {
        step: Step,
    },
    WalkThrough,
    SecondPerson,
    FireAlarm {
        active: bool,
    },
    GateMode {
        mode: GateMode,
    },
    Delay {
        device: String,
        ms: u64,
    },
    SleepMs {
        ms: u64,
    },
}

impl ScriptAction {
    /// The daemon step this action waits for before it is done (a traveler acts when
    /// the screen asks), if any.
    pub fn waits_for(&self) -> Option<Step> {
        use ScriptAction as A;
        match self {
            A::InsertCard { .. } | A::PlaceCard { .. } => Some(Step::Card),
            A::EditEdCard { .. } | A::ConfirmEdCard | A::ExpectEdCardError { .. } => {
                Some(Step::EdCard)
            }
            A::PlaceFingers { .. } => Some(Step::Fingerprints),
            A::LookAtCamera { .. } => Some(Step::Face),
            A::TakeCard | A::LiftCard => Some(Step::TakeCard),
            A::WalkThrough => Some(Step::Passage),
            A::WaitStep { step } => Some(*step),
            _ => None,
        }
    }

    /// Travelers named in the action's arguments (they must exist in the scenario).
    pub fn travelers(&self) -> Option<&str> {
        use ScriptAction as A;
        match self {
            A::PresentPassport { traveler }
            | A::PresentQr { traveler }
            | A::InsertCard { traveler }
            | A::PlaceCard { traveler }
            | A::PlaceFingers { traveler, .. }
            | A::LookAtCamera { traveler } => traveler.as_deref(),
            _ => None,
        }
    }
}

/// Splits `text` into words; `"…"` groups words (with `\"` and `\\` escapes), also
/// inside a word (`address="1-2-3 Konan"`).
pub fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        None => return Err("unterminated quote".into()),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\')) => word.push(e),
                            Some(other) => {
                                word.push('\\');
                                word.push(other);
                            }
                            None => return Err("unterminated quote".into()),
                        },
                        Some(other) => word.push(other),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn quote(text: &str) -> String {
    if !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\\')
    {
        return text.to_owned();
    }
    let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{escaped}\"")
}

fn parse_ed_edit(word: &str) -> Result<EdEdit, String> {
    let (field, raw) = word
        .split_once('=')
        .ok_or_else(|| format!("expected FIELD=VALUE, not {word:?}"))?;
    let kind = ED_FIELDS
        .iter()
        .find(|(name, _)| *name == field)
        .map(|(_, kind)| *kind)
        .ok_or_else(|| {
            let names: Vec<&str> = ED_FIELDS.iter().map(|(n, _)| *n).collect();
            format!(
                "unknown ED card field {field:?} (expected one of: {})",
                names.join(", ")
            )
        })?;
    let value = match kind {
        EdKind::Text => Value::String(raw.to_owned()),
        EdKind::Date if raw.is_empty() || raw == "null" => Value::Null,
        EdKind::Date => {
            let date: crate::scenario::Date = raw.parse()?;
            Value::String(date.to_string())
        }
        EdKind::Number => Value::from(
            raw.parse::<u16>()
                .map_err(|_| format!("{field}: expected a number of days, not {raw:?}"))?,
        ),
        EdKind::Answer => match raw {
            "yes" | "true" => Value::Bool(true),
            "no" | "false" => Value::Bool(false),
            "null" | "" => Value::Null,
            other => return Err(format!("{field}: expected yes, no or null, not {other:?}")),
        },
    };
    Ok(EdEdit {
        field: field.to_owned(),
        value,
    })
}

fn parse_step(text: &str) -> Result<Step, String> {
    serde_json::from_value(Value::String(text.to_owned())).map_err(|_| {
        format!(
            "unknown step {text:?} (expected idle, document, card, ed-card, fingerprints, face, printing, take-card, passage, referred or done)"
        )
    })
}

fn step_name(step: Step) -> String {
    match serde_json::to_value(step) {
        Ok(Value::String(name)) => name,
        _ => format!("{step:?}"),
    }
}

fn parse_ms(text: Option<&str>, verb: &str) -> Result<u64, String> {
    let text = text.ok_or_else(|| format!("{verb} needs a number of milliseconds"))?;
    let ms: u64 = text
        .parse()
        .map_err(|_| format!("{verb}: {text:?} is not a number of milliseconds"))?;
    if ms > 600_000 {
        return Err(format!("{verb}: {ms} ms is more than 10 minutes"));
    }
    Ok(ms)
}

impl FromStr for ScriptAction {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        use ScriptAction as A;
        let text = text.trim();
        let (verb, rest) = match text.split_once(char::is_whitespace) {
            Some((verb, rest)) => (verb, rest.trim()),
            None => (text, ""),
        };
        if verb == "present-qr-payload" {
            if rest.is_empty() {
                return Err("present-qr-payload needs the payload text".into());
            }
            return Ok(A::PresentQrPayload {
                payload: rest.to_owned(),
            });
        }
        let words = split_words(rest)?;
        let mut args = words.iter().map(String::as_str);
        let optional_traveler = |args: &mut dyn Iterator<Item = &str>| -> Result<_, String> {
            let traveler = args.next().map(str::to_owned);
            if let Some(id) = &traveler
                && !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(format!("{id:?} is not a traveler id"));
            }
            Ok(traveler)
        };
        let action = match verb {
            "enter-lane" => A::EnterLane,
            "present-passport" => A::PresentPassport {
                traveler: optional_traveler(&mut args)?,
            },
            "remove-passport" => A::RemovePassport,
            "present-qr" => A::PresentQr {
                traveler: optional_traveler(&mut args)?,
            },
            "insert-card" => A::InsertCard {
                traveler: optional_traveler(&mut args)?,
            },
            "remove-card" => A::RemoveCard,
            "take-card" => A::TakeCard,
            "place-card" => A::PlaceCard {
                traveler: optional_traveler(&mut args)?,
            },
            "lift-card" => A::LiftCard,
            "place-fingers" => {
                let mode = match args.next() {
                    None | Some("genuine") => FingerMode::Genuine,
                    Some("impostor") => FingerMode::Impostor,
                    Some("poor") => FingerMode::Poor,
                    Some("none") => FingerMode::None,
                    Some(other) => {
                        return Err(format!(
                            "place-fingers: {other:?} is not genuine, impostor, poor or none"
                        ));
                    }
                };
                A::PlaceFingers {
                    mode,
                    traveler: optional_traveler(&mut args)?,
                }
            }
            "lift-fingers" => A::LiftFingers,
            "look-at-camera" => A::LookAtCamera {
                traveler: optional_traveler(&mut args)?,
            },
            "leave-camera" => A::LeaveCamera,
            "edit-ed-card" => {
                let edits = args
                    .by_ref()
                    .map(parse_ed_edit)
                    .collect::<Result<Vec<_>, _>>()?;
                if edits.is_empty() {
                    return Err("edit-ed-card needs at least one FIELD=VALUE".into());
                }
                A::EditEdCard { edits }
            }
            "confirm-ed-card" => A::ConfirmEdCard,
            "expect-ed-card-error" => {
                let field = args
                    .next()
                    .ok_or("expect-ed-card-error needs a field name")?;
                if !ED_FIELDS.iter().any(|(name, _)| *name == field) {
                    return Err(format!("unknown ED card field {field:?}"));
                }
                A::ExpectEdCardError {
                    field: field.to_owned(),
                }
            }
            "wait-step" => A::WaitStep {
                step: parse_step(args.next().ok_or("wait-step needs a step name")?)?,
            },
            "walk-through" => A::WalkThrough,
            "second-person" => A::SecondPerson,
            "fire-alarm" => A::FireAlarm {
                active: match args.next() {
                    Some("on") => true,
                    Some("off") => false,
                    other => return Err(format!("fire-alarm: expected on or off, not {other:?}")),
                },
            },
            "gate-mode" => A::GateMode {
                mode: match args.next() {
                    Some("in-service") => GateMode::InService,
                    Some("out-of-service") => GateMode::OutOfService,
                    Some("maintenance") => GateMode::Maintenance,
                    other => {
                        return Err(format!(
                            "gate-mode: expected in-service, out-of-service or maintenance, not {other:?}"
                        ));
                    }
                },
            },
            "delay" => {
                let device = args.next().ok_or("delay needs a device and milliseconds")?;
                if torii_sdk::model::DeviceClass::from_name(device).is_none() {
                    return Err(format!("delay: unknown device {device:?}"));
                }
                A::Delay {
                    device: device.to_owned(),
                    ms: parse_ms(args.next(), "delay")?,
                }
            }
            "sleep-ms" => A::SleepMs {
                ms: parse_ms(args.next(), "sleep-ms")?,
            },
            "" => return Err("empty action".into()),
            other => return Err(format!("unknown action {other:?}")),
        };
        if let Some(extra) = args.next() {
            return Err(format!("{verb}: unexpected argument {extra:?}"));
        }
        Ok(action)
    }
}

impl fmt::Display for ScriptAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ScriptAction as A;
        let with =
            |f: &mut fmt::Formatter<'_>, verb: &str, traveler: &Option<String>| match traveler {
                Some(t) => write!(f, "{verb} {t}"),
                None => f.write_str(verb),
            };
        match self {
            A::EnterLane => f.write_str("enter-lane"),
            A::PresentPassport { traveler } => with(f, "present-passport", traveler),
            A::RemovePassport => f.write_str("remove-passport"),
            A::PresentQr { traveler } => with(f, "present-qr", traveler),
            A::PresentQrPayload { payload } => write!(f, "present-qr-payload {payload}"),
            A::InsertCard { traveler } => with(f, "insert-card", traveler),
            A::RemoveCard => f.write_str("remove-card"),
            A::TakeCard => f.write_str("take-card"),
            A::PlaceCard { traveler } => with(f, "place-card", traveler),
            A::LiftCard => f.write_str("lift-card"),
            A::PlaceFingers { mode, traveler } => {
                let mode = match mode {
                    FingerMode::Genuine => "genuine",
                    FingerMode::Impostor => "impostor",
                    FingerMode::Poor => "poor",
                    FingerMode::None => "none",
                };
                with(f, &format!("place-fingers {mode}"), traveler)
            }
            A::LiftFingers => f.write_str("lift-fingers"),
            A::LookAtCamera { traveler } => with(f, "look-at-camera", traveler),
            A::LeaveCamera => f.write_str("leave-camera"),
            A::EditEdCard { edits } => {
                f.write_str("edit-ed-card")?;
                for edit in edits {
                    let value = match &edit.value {
                        Value::String(s) => s.clone(),
                        Value::Bool(true) => "yes".into(),
                        Value::Bool(false) => "no".into(),
                        Value::Null => "null".into(),
                        other => other.to_string(),
                    };
                    write!(f, " {}={}", edit.field, quote(&value))?;
                }
                Ok(())
            }
            A::ConfirmEdCard => f.write_str("confirm-ed-card"),
            A::ExpectEdCardError { field } => write!(f, "expect-ed-card-error {field}"),
            A::WaitStep { step } => write!(f, "wait-step {}", step_name(*step)),
            A::WalkThrough => f.write_str("walk-through"),
            A::SecondPerson => f.write_str("second-person"),
            A::FireAlarm { active } => {
                write!(f, "fire-alarm {}", if *active { "on" } else { "off" })
            }
            A::GateMode { mode } => write!(f, "gate-mode {}", mode.name()),
            A::Delay { device, ms } => write!(f, "delay {device} {ms}"),
            A::SleepMs { ms } => write!(f, "sleep-ms {ms}"),
        }
    }
}

impl Serialize for ScriptAction {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ScriptAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse()
            .map_err(|e: String| de::Error::custom(format!("action {text:?}: {e}")))
    }
}

/// The name of a step as the daemon's API writes it (`take-card`).
pub fn step_label(step: Step) -> String {
    step_name(step)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use serde_json::json;
    use std::path::Path;

    #[test]
    fn actions_parse_table_driven() {
        use ScriptAction as A;
        let t = |id: &str| Some(id.to_owned());
        let cases: Vec<(&str, ScriptAction)> = vec![
            ("enter-lane", A::EnterLane),
            ("present-passport", A::PresentPassport { traveler: None }),
            (
                "present-passport alice",
                A::PresentPassport {
                    traveler: t("alice"),
                },
            ),
            ("  remove-passport  ", A::RemovePassport),
            ("present-qr", A::PresentQr { traveler: None }),
            (
                "present-qr-payload not a TTP code: 42",
                A::PresentQrPayload {
                    payload: "not a TTP code: 42".into(),
                },
            ),
            (
                "insert-card alice",
                A::InsertCard {
                    traveler: t("alice"),
                },
            ),
            ("remove-card", A::RemoveCard),
            ("take-card", A::TakeCard),
            ("place-card", A::PlaceCard { traveler: None }),
            ("lift-card", A::LiftCard),
            (
                "place-fingers",
                A::PlaceFingers {
                    mode: FingerMode::Genuine,
                    traveler: None,
                },
            ),
            (
                "place-fingers impostor",
                A::PlaceFingers {
                    mode: FingerMode::Impostor,
                    traveler: None,
                },
            ),
            (
                "place-fingers poor gabi",
                A::PlaceFingers {
                    mode: FingerMode::Poor,
                    traveler: t("gabi"),
                },
            ),
            ("lift-fingers", A::LiftFingers),
            ("look-at-camera", A::LookAtCamera { traveler: None }),
            ("leave-camera", A::LeaveCamera),
            (
                "edit-ed-card flight=JL5 address_in_japan=\"1-2-3 Konan, Tokyo\" length_of_stay_days=8 deported_before=no carrying_firearms=yes arrival_date=2026-07-01 convicted_before=null",
                A::EditEdCard {
                    edits: vec![
                        EdEdit {
                            field: "flight".into(),
                            value: json!("JL5"),
                        },
                        EdEdit {
                            field: "address_in_japan".into(),
                            value: json!("1-2-3 Konan, Tokyo"),
                        },
                        EdEdit {
                            field: "length_of_stay_days".into(),
                            value: json!(8),
                        },
                        EdEdit {
                            field: "deported_before".into(),
                            value: json!(false),
                        },
                        EdEdit {
                            field: "carrying_firearms".into(),
                            value: json!(true),
                        },
                        EdEdit {
                            field: "arrival_date".into(),
                            value: json!("2026-07-01"),
                        },
                        EdEdit {
                            field: "convicted_before".into(),
                            value: Value::Null,
                        },
                    ],
                },
            ),
            ("confirm-ed-card", A::ConfirmEdCard),
            (
                "expect-ed-card-error purpose",
                A::ExpectEdCardError {
                    field: "purpose".into(),
                },
            ),
            (
                "wait-step take-card",
                A::WaitStep {
                    step: Step::TakeCard,
                },
            ),
            (
                "wait-step printing",
                A::WaitStep {
                    step: Step::Printing,
                },
            ),
            ("walk-through", A::WalkThrough),
            ("second-person", A::SecondPerson),
            ("fire-alarm on", A::FireAlarm { active: true }),
            ("fire-alarm off", A::FireAlarm { active: false }),
            (
                "gate-mode maintenance",
                A::GateMode {
                    mode: GateMode::Maintenance,
                },
            ),
            (
                "delay card-printer 1000",
                A::Delay {
                    device: "card-printer".into(),
                    ms: 1000,
                },
            ),
            ("sleep-ms 100", A::SleepMs { ms: 100 }),
        ];
        for (text, wanted) in cases {
            let parsed: ScriptAction = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(parsed, wanted, "{text}");
            // The canonical spelling parses back to the same action.
            let again: ScriptAction = parsed.to_string().parse().unwrap();
            assert_eq!(again, wanted, "{text} → {parsed}");
        }
    }

    #[test]
    fn bad_actions_are_errors_table_driven() {
        let cases = [
            ("", "empty action"),
            ("dance", "unknown action \"dance\""),
            ("enter-lane now", "unexpected argument"),
            (
                "place-fingers sideways",
                "not genuine, impostor, poor or none",
            ),
            ("edit-ed-card", "at least one FIELD=VALUE"),
            ("edit-ed-card flight", "expected FIELD=VALUE"),
            ("edit-ed-card shoe_size=44", "unknown ED card field"),
            (
                "edit-ed-card length_of_stay_days=many",
                "expected a number of days",
            ),
            (
                "edit-ed-card deported_before=maybe",
                "expected yes, no or null",
            ),
            ("edit-ed-card arrival_date=2026-02-30", "invalid date"),
            ("edit-ed-card flight=\"JL5", "unterminated quote"),
            ("wait-step lunch", "unknown step"),
            ("wait-step", "needs a step name"),
            ("fire-alarm", "expected on or off"),
            ("gate-mode closed", "expected in-service"),
            ("delay toaster 5", "unknown device"),
            ("delay card-printer soon", "not a number"),
            ("sleep-ms", "needs a number"),
            ("sleep-ms 99999999", "more than 10 minutes"),
            ("present-qr-payload", "needs the payload"),
            ("insert-card al/ice", "not a traveler id"),
            ("expect-ed-card-error nose", "unknown ED card field"),
        ];
        for (text, wanted) in cases {
            let error = text.parse::<ScriptAction>().unwrap_err();
            assert!(error.contains(wanted), "{text:?}: {error}");
        }
    }

    #[test]
    fn words_split_on_spaces_and_group_quotes() {
        assert_eq!(split_words("a  b").unwrap(), vec!["a", "b"]);
        assert_eq!(
            split_words(r#"k="x y" z="" q="a\"b""#).unwrap(),
            vec!["k=x y", "z=", "q=a\"b"]
        );
        assert_eq!(quote("x y"), "\"x y\"");
        assert_eq!(quote("xy"), "xy");
        assert_eq!(quote(""), "\"\"");
    }

    #[test]
    fn the_shipped_suites_parse_and_cover_every_rule() {
        let suite = Scenario::parse(
            include_str!("../scenarios/suite.toml"),
            Path::new("suite.toml"),
        )
        .unwrap();
        let exit = Scenario::parse(
            include_str!("../scenarios/exit-suite.toml"),
            Path::new("exit-suite.toml"),
        )
        .unwrap();
        assert_eq!(suite.gate.lane, Some(torii_core::rules::Lane::Entry));
        assert_eq!(exit.gate.lane, Some(torii_core::rules::Lane::Exit));
        let codes: std::collections::BTreeSet<String> = suite
            .scripted()
            .map(|t| t.expect.as_ref().unwrap().describe())
            .collect();
        for code in [
            "admitted",
            "REG_NOT_FOUND",
            "REG_REVOKED",
            "REG_PASSPORT_LOST",
            "REG_RESIDENT",
            "REG_PASSPORT_RENEWED",
            "CARD_EXPIRED",
            "CARD_FULL",
            "CARD_FORGED",
            "CARD_NOT_HOLDERS",
            "CARD_REMOVED",
            "FP_MISMATCH",
            "FP_QUALITY",
            "FP_UNUSABLE",
            "MULTI_PERSON",
            "FIRE_ALARM",
            "OUT_OF_SERVICE",
            "QR_INVALID",
            "DOC_UNREADABLE",
            "ED_DECLARATION",
        ] {
            assert!(
                codes.contains(code),
                "the entry suite does not cover {code}"
            );
        }
        assert!(exit.scripted().count() >= 2);
        assert!(
            exit.scripted()
                .any(|t| t.expect.as_ref().unwrap().describe() == "admitted")
        );
    }

    #[test]
    fn script_errors_name_the_file_line_and_key() {
        let base = include_str!("../scenarios/suite.toml");
        let text = base.replacen("\"take-card\",", "\"take-the-card\",", 1);
        let error = Scenario::parse(&text, Path::new("suite.toml"))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("suite.toml:"), "{error}");
        assert!(error.contains("line "), "{error}");
        assert!(error.contains("take-the-card"), "{error}");
        assert!(error.contains("actions"), "{error}");

        let text = base.replacen("reason = \"REG_REVOKED\"", "reason = \"REG_REVOKD\"", 1);
        let error = Scenario::parse(&text, Path::new("suite.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("line ") && error.contains("REG_REVOKD"),
            "{error}"
        );

        let text = base.replacen("reason = \"REG_REVOKED\"\n", "", 1);
        let error = Scenario::parse(&text, Path::new("suite.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("dana") && error.contains("expect.reason"),
            "{error}"
        );

        let text = base.replacen("\"insert-card alice\"", "\"insert-card zelda\"", 1);
        let error = Scenario::parse(&text, Path::new("suite.toml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("omar") && error.contains("zelda"), "{error}");
    }
}
