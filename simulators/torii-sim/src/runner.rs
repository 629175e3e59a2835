//! `torii-sim scenario run`: plays each scripted traveler of a scenario against a
//! running simulator (control API) and a running toriid (its Unix socket API), and
//! checks how each transaction ended. Format and semantics: `docs/scenarios.md`.
//!
//! Per traveler: reset the simulator (and bring the gate back in service and idle),
//! then perform the script's actions in order. An action that needs the gate at a
//! step (e.g. `confirm-ed-card` needs `ed-card`) waits for it, bounded; when the
//! transaction ends first, the rest of the script is skipped (the gate refused the
//! traveler before they got there). Then the runner waits for the daemon's transaction
//! count to grow and compares `last.outcome` (and, when asked, the full record's
//! printed line and notices) with `[traveler.expect]`.
//!
//! Output: one line per traveler, `PASS <id> <outcome>` or
//! `FAIL <id> expected <outcome> got <outcome-or-problem>`, then `N passed, M failed`.
//! Only traveler ids are printed or logged, never personal data.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use torii_core::record::Step;

use crate::control::http_request;
use crate::scenario::{Scenario, Traveler};
use crate::script::{Expect, ExpectedOutcome, ScriptAction, step_label};

/// How often the gate's status is polled while waiting.
const POLL: Duration = Duration::from_millis(10);
/// Limit of one HTTP exchange.
const REQUEST_LIMIT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct RunnerOptions {
    /// toriid's Unix socket (the full API).
    pub daemon_socket: PathBuf,
    /// The simulator's control API, `http://host:port`.
    pub control: String,
    /// Run only this traveler.
    pub traveler: Option<String>,
    /// Longest wait for a step (and for the gate to be idle between travelers).
    pub step_timeout: Duration,
    /// Longest wait for the decision once the script is done.
    pub decision_timeout: Duration,
}

impl RunnerOptions {
    pub fn new(daemon_socket: impl Into<PathBuf>, control: impl Into<String>) -> Self {
        RunnerOptions {
            daemon_socket: daemon_socket.into(),
            control: control.into(),
            traveler: None,
            step_timeout: Duration::from_secs(20),
            decision_timeout: Duration::from_secs(60),
        }
    }
}

/// Why the run could not happen at all (a traveler's failure is not an error).
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("no traveler {0:?} with a script and an expected outcome in the scenario")]
    UnknownTraveler(String),
    #[error("the scenario has no traveler with [traveler.script] and [traveler.expect]")]
    NothingToRun,
    #[error("cannot reach toriid at {socket}: {problem}")]
    Daemon { socket: PathBuf, problem: String },
    #[error("cannot reach the simulator at {url}: {problem}")]
    Simulator { url: String, problem: String },
    #[error("the scenario is written for an {scenario} lane but the gate is an {gate} lane")]
    WrongLane { scenario: String, gate: String },
    #[error("cannot write the report: {0}")]
    Output(#[from] std::io::Error),
}

/// The outcome of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    /// The report lines, as printed.
    pub lines: Vec<String>,
}

impl Summary {
    pub fn success(&self) -> bool {
        self.failed == 0
    }
}

/// One HTTP/1.1 exchange with toriid over its Unix socket; answers the status and the
/// JSON body (a JSON string when the body is not JSON).
pub async fn daemon_request(
    socket: &Path,
    method: hyper::Method,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::TokioIo;
    let exchange = async {
        let stream = tokio::net::UnixStream::connect(socket)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let conn = tokio::spawn(conn);
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "localhost")
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(axum::body::Bytes::from(payload)))
            .map_err(|e| format!("request: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("send: {e}"))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        drop(sender);
        conn.abort();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Ok((status, value))
    };
    tokio::time::timeout(REQUEST_LIMIT, exchange)
        .await
        .map_err(|_| format!("no answer within {REQUEST_LIMIT:?}"))?
}

/// The fields of `GET /api/v1/gate` the runner looks at.
#[derive(Clone, Debug, Default)]
struct GateView {
    mode: String,
    lane: String,
    step: String,
    transaction: bool,
    transactions: u64,
    ed_card: Option<Value>,
    ed_card_errors: Vec<String>,
    last: Value,
}

impl GateView {
    fn from_json(v: &Value) -> Result<Self, String> {
        let text = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
        Ok(GateView {
            mode: text("mode").ok_or("no `mode` in the gate status")?,
            lane: text("lane").unwrap_or_default(),
            step: text("step").ok_or("no `step` in the gate status")?,
            transaction: v.get("transaction").is_some_and(|t| !t.is_null()),
            transactions: v
                .get("transactions")
                .and_then(Value::as_u64)
                .ok_or("no `transactions` in the gate status")?,
            ed_card: v.get("ed_card").filter(|c| !c.is_null()).cloned(),
            ed_card_errors: v
                .get("ed_card_errors")
                .and_then(Value::as_array)
                .map(|errors| {
                    errors
                        .iter()
                        .filter_map(|e| e.get("field").and_then(Value::as_str))
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            last: v.get("last").cloned().unwrap_or(Value::Null),
        })
    }
}

/// `admitted`, the reason code of a referral, or `referred`, from an `outcome` object
/// (`{"outcome":"admitted"}` / `{"outcome":"referred","reason":"CARD_EXPIRED"}`).
pub fn describe_outcome(outcome: &Value) -> String {
    match outcome.get("outcome").and_then(Value::as_str) {
        Some("admitted") => "admitted".into(),
        Some("referred") => outcome
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("referred")
            .to_owned(),
        Some(other) => other.to_owned(),
        None => "no outcome".into(),
    }
}

/// Compares an expectation with the decision (and the full record, when fetched).
/// `Ok(what was got)` or `Err(why it fails)`.
pub fn judge(expect: &Expect, outcome: &Value, record: Option<&Value>) -> Result<String, String> {
    let got = describe_outcome(outcome);
    let wanted = expect.describe();
    let outcome_ok = match expect.outcome {
        ExpectedOutcome::Admitted => got == "admitted",
        ExpectedOutcome::Referred => got == wanted,
    };
    if !outcome_ok {
        return Err(format!("expected {wanted} got {got}"));
    }
    if let Some(text) = &expect.printed_line_contains {
        let line = record
            .and_then(|r| r.get("printed_line"))
            .and_then(Value::as_str);
        match line {
            Some(line) if line.contains(text.as_str()) => {}
            Some(line) => {
                return Err(format!(
                    "expected a printed line containing {text:?} got {line:?}"
                ));
            }
            None => {
                return Err(format!(
                    "expected a printed line containing {text:?} got none"
                ));
            }
        }
    }
    if let Some(notice) = expect.notice {
        let wanted = serde_json::to_value(notice).unwrap_or(Value::Null);
        let notices = record
            .and_then(|r| r.get("notices"))
            .and_then(Value::as_array);
        if !notices.is_some_and(|n| n.contains(&wanted)) {
            let got = notices
                .map(|n| {
                    n.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "none".into());
            return Err(format!(
                "expected notice {} got {got}",
                wanted.as_str().unwrap_or("?")
            ));
        }
    }
    Ok(got)
}

/// A failed traveler: the text after `FAIL <id> `.
type Problem = String;

struct Runner<'a> {
    options: &'a RunnerOptions,
}

impl Runner<'_> {
    async fn daemon(
        &self,
        method: hyper::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), String> {
        daemon_request(&self.options.daemon_socket, method, path, body).await
    }

    async fn gate(&self) -> Result<GateView, String> {
        let (status, body) = self
            .daemon(hyper::Method::GET, "/api/v1/gate", None)
            .await?;
        if status != 200 {
            return Err(format!("GET /api/v1/gate answered {status}"));
        }
        GateView::from_json(&body)
    }

    async fn set_mode(&self, mode: &str) -> Result<(), String> {
        let body = json!({ "mode": mode });
        let (status, answer) = self
            .daemon(hyper::Method::POST, "/api/v1/gate/mode", Some(&body))
            .await?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(format!(
                "POST /api/v1/gate/mode {mode} answered {status}: {answer}"
            ))
        }
    }

    async fn sim(&self, action: Value) -> Result<Value, String> {
        let (status, answer) = http_request(
            &self.options.control,
            hyper::Method::POST,
            "/v1/actions",
            Some(&action),
        )
        .await
        .map_err(|e| e.to_string())?;
        if (200..300).contains(&status) {
            Ok(answer)
        } else {
            let error = answer
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| answer.to_string());
            Err(error)
        }
    }

    async fn sim_state(&self) -> Result<Value, String> {
        let (status, state) =
            http_request(&self.options.control, hyper::Method::GET, "/v1/state", None)
                .await
                .map_err(|e| e.to_string())?;
        if status == 200 {
            Ok(state)
        } else {
            Err(format!("GET /v1/state answered {status}"))
        }
    }

    /// A clean simulator, and the gate in service, idle, with no transaction.
    async fn reset(&self) -> Result<GateView, Problem> {
        self.sim(json!({ "action": "reset" }))
            .await
            .map_err(|e| format!("could not reset the simulator: {e}"))?;
        let gate = self.gate().await?;
        if gate.transaction {
            // A transaction left over from a failed traveler: end it.
            self.set_mode("out-of-service").await?;
        }
        let deadline = Instant::now() + self.options.step_timeout;
        loop {
            let gate = self.gate().await?;
            if matches!(gate.mode.as_str(), "out-of-service" | "maintenance") {
                self.set_mode("in-service").await?;
            } else if gate.mode == "in-service" && gate.step == "idle" && !gate.transaction {
                return Ok(gate);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the gate did not come back in service and idle (mode {}, step {})",
                    gate.mode, gate.step
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the gate is at `step`; `Ok(false)` when the transaction ended first.
    async fn wait_step(&self, step: Step, before: u64) -> Result<bool, Problem> {
        let wanted = step_label(step);
        let deadline = Instant::now() + self.options.step_timeout;
        loop {
            let gate = self.gate().await?;
            if gate.transactions > before {
                return Ok(false);
            }
            if gate.step == wanted {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "timed out waiting for step {wanted} (gate at {})",
                    gate.step
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Whether the transaction ends within a short grace period.
    async fn decided_soon(&self, before: u64) -> Result<bool, Problem> {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            if self.gate().await?.transactions > before {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Polls the simulator until `check` holds on its state (bounded); gives up early
    /// when the transaction ends (the action then fails and the script stops).
    async fn wait_sim(
        &self,
        what: &str,
        before: Option<u64>,
        check: impl Fn(&Value) -> bool,
    ) -> Result<(), Problem> {
        let deadline = Instant::now() + self.options.step_timeout;
        loop {
            if check(&self.sim_state().await?) {
                return Ok(());
            }
            if let Some(before) = before
                && self.gate().await?.transactions > before
            {
                return Err(format!("the gate decided while waiting for {what}"));
            }
            if Instant::now() >= deadline {
                return Err(format!("timed out waiting for {what}"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The ED card on the screen (`GET /api/v1/gate/personal`: personal data is not in
    /// the public status). The engine publishes it right after entering the step.
    async fn ed_card_on_screen(&self) -> Result<Value, Problem> {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let (status, body) = self
                .daemon(hyper::Method::GET, "/api/v1/gate/personal", None)
                .await?;
            if status != 200 {
                return Err(format!("GET /api/v1/gate/personal answered {status}"));
            }
            if let Some(card) = GateView::from_json(&body)?.ed_card {
                return Ok(card);
            }
            if Instant::now() >= deadline {
                return Ok(json!({}));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn perform(
        &self,
        traveler: &Traveler,
        action: &ScriptAction,
        draft: &mut Option<Value>,
        before: u64,
    ) -> Result<(), Problem> {
        use ScriptAction as A;
        let me = |other: &Option<String>| other.clone().unwrap_or_else(|| traveler.id.clone());
        let sim_action = match action {
            A::EnterLane => {
                self.wait_sim("the entry door to open", None, |s| {
                    s["devices"]["lane-controller"]["state"]["entry_door"] == "open"
                })
                .await?;
                json!({ "action": "enter-lane" })
            }
            A::PresentPassport { traveler } => {
                json!({ "action": "present-passport", "traveler": me(traveler) })
            }
            A::RemovePassport => json!({ "action": "remove-passport" }),
            A::PresentQr { traveler } => {
                json!({ "action": "present-qr", "traveler": me(traveler) })
            }
            A::PresentQrPayload { payload } => {
                json!({ "action": "present-qr", "payload": payload })
            }
            A::InsertCard { traveler } => {
                json!({ "action": "insert-card", "traveler": me(traveler) })
            }
            A::RemoveCard => json!({ "action": "remove-card" }),
            A::TakeCard => json!({ "action": "take-card" }),
            A::PlaceCard { traveler } => {
                json!({ "action": "place-card", "traveler": me(traveler) })
            }
            A::LiftCard => json!({ "action": "lift-card" }),
            A::PlaceFingers { mode, traveler } => {
                json!({ "action": "place-fingers", "traveler": me(traveler), "mode": mode })
            }
            A::LiftFingers => json!({ "action": "lift-fingers" }),
            A::LookAtCamera { traveler } => {
                json!({ "action": "look-at-camera", "traveler": me(traveler) })
            }
            A::LeaveCamera => json!({ "action": "leave-camera" }),
            A::WalkThrough => {
                // The step is `passage` a moment before the door actually opens.
                self.wait_sim("the exit door to open", Some(before), |s| {
                    s["devices"]["lane-controller"]["state"]["exit_door"] == "open"
                })
                .await?;
                json!({ "action": "walk-through" })
            }
            A::SecondPerson => json!({ "action": "second-person" }),
            A::FireAlarm { active } => json!({ "action": "fire-alarm", "active": active }),
            A::Delay { device, ms } => json!({ "action": "delay", "device": device, "ms": ms }),
            A::EditEdCard { edits } => {
                if draft.is_none() {
                    *draft = Some(self.ed_card_on_screen().await?);
                }
                if let Some(Value::Object(card)) = draft {
                    for edit in edits {
                        card.insert(edit.field.clone(), edit.value.clone());
                    }
                }
                return Ok(());
            }
            A::ConfirmEdCard => {
                if draft.is_none() {
                    *draft = Some(self.ed_card_on_screen().await?);
                }
                let card = draft.clone().unwrap_or_else(|| json!({}));
                let (status, answer) = self
                    .daemon(hyper::Method::POST, "/api/v1/gate/ed-card", Some(&card))
                    .await?;
                if !(200..300).contains(&status) {
                    return Err(format!(
                        "POST /api/v1/gate/ed-card answered {status}: {answer}"
                    ));
                }
                return Ok(());
            }
            A::ExpectEdCardError { field } => {
                let deadline = Instant::now() + self.options.step_timeout;
                loop {
                    let gate = self.gate().await?;
                    if gate.ed_card_errors.iter().any(|f| f == field) {
                        return Ok(());
                    }
                    if Instant::now() >= deadline {
                        return Err(format!(
                            "expected an ED card error on {field} got [{}]",
                            gate.ed_card_errors.join(",")
                        ));
                    }
                    tokio::time::sleep(POLL).await;
                }
            }
            A::WaitStep { .. } => return Ok(()),
            A::GateMode { mode } => return self.set_mode(mode.name()).await,
            A::SleepMs { ms } => {
                tokio::time::sleep(Duration::from_millis(*ms)).await;
                return Ok(());
            }
        };
        self.sim(sim_action)
            .await
            .map(|_| ())
            .map_err(|e| format!("action `{action}` failed: {e}"))
    }

    async fn traveler(&self, traveler: &Traveler) -> Result<String, Problem> {
        let (Some(script), Some(expect)) = (&traveler.script, &traveler.expect) else {
            return Err("no script".into());
        };
        let before = self.reset().await?.transactions;
        tracing::info!(traveler = %traveler.id, "scripted traveler starts");
        let mut draft = None;
        for action in &script.actions {
            if self.gate().await?.transactions > before {
                tracing::info!(traveler = %traveler.id, action = %action, "decided before this action: rest of the script skipped");
                break;
            }
            if let Some(step) = action.waits_for()
                && !self.wait_step(step, before).await?
            {
                tracing::info!(traveler = %traveler.id, action = %action, "decided before this action: rest of the script skipped");
                break;
            }
            if let Err(problem) = self.perform(traveler, action, &mut draft, before).await {
                // The gate may have decided just before the action (e.g. the fire alarm
                // aborted the step the action needed): then the rest is moot.
                if self.decided_soon(before).await? {
                    tracing::info!(traveler = %traveler.id, action = %action, "decided before this action: rest of the script skipped");
                    break;
                }
                return Err(problem);
            }
        }
        let deadline = Instant::now() + self.options.decision_timeout;
        let gate = loop {
            let gate = self.gate().await?;
            if gate.transactions > before {
                break gate;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "expected {} got no decision within {:?} (gate at step {})",
                    expect.describe(),
                    self.options.decision_timeout,
                    gate.step
                ));
            }
            tokio::time::sleep(POLL).await;
        };
        let outcome = gate.last.get("outcome").cloned().unwrap_or(Value::Null);
        let record = if expect.printed_line_contains.is_some() || expect.notice.is_some() {
            let id = gate
                .last
                .get("record_id")
                .and_then(Value::as_str)
                .ok_or("the gate's last transaction has no record_id")?;
            let (status, record) = self
                .daemon(
                    hyper::Method::GET,
                    &format!("/api/v1/transactions/{id}"),
                    None,
                )
                .await?;
            if status != 200 {
                return Err(format!("GET /api/v1/transactions/{id} answered {status}"));
            }
            Some(record)
        } else {
            None
        };
        judge(expect, &outcome, record.as_ref())
    }
}

/// Runs the scenario's scripted travelers (or `options.traveler`) and writes the report
/// to `out`.
pub async fn run(
    scenario: &Scenario,
    options: &RunnerOptions,
    out: &mut dyn Write,
) -> Result<Summary, RunnerError> {
    let travelers: Vec<&Traveler> = match &options.traveler {
        Some(id) => vec![
            scenario
                .scripted()
                .find(|t| &t.id == id)
                .ok_or_else(|| RunnerError::UnknownTraveler(id.clone()))?,
        ],
        None => scenario.scripted().collect(),
    };
    if travelers.is_empty() {
        return Err(RunnerError::NothingToRun);
    }
    let runner = Runner { options };
    let gate = runner.gate().await.map_err(|problem| RunnerError::Daemon {
        socket: options.daemon_socket.clone(),
        problem,
    })?;
    runner
        .sim_state()
        .await
        .map_err(|problem| RunnerError::Simulator {
            url: options.control.clone(),
            problem,
        })?;
    if let Some(lane) = scenario.gate.lane {
        let wanted = match lane {
            torii_core::rules::Lane::Entry => "entry",
            torii_core::rules::Lane::Exit => "exit",
        };
        if gate.lane != wanted {
            return Err(RunnerError::WrongLane {
                scenario: wanted.into(),
                gate: gate.lane,
            });
        }
    }
    let mut summary = Summary::default();
    for traveler in travelers {
        let line = match runner.traveler(traveler).await {
            Ok(got) => {
                summary.passed += 1;
                format!("PASS {} {got}", traveler.id)
            }
            Err(problem) => {
                summary.failed += 1;
                format!("FAIL {} {problem}", traveler.id)
            }
        };
        writeln!(out, "{line}")?;
        out.flush()?;
        summary.lines.push(line);
    }
    // Leave a clean simulator behind.
    let _ = runner.sim(json!({ "action": "reset" })).await;
    writeln!(out, "{} passed, {} failed", summary.passed, summary.failed)?;
    out.flush()?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use torii_core::reason::ReasonCode;
    use torii_core::record::Notice;

    fn expect(outcome: ExpectedOutcome, reason: Option<ReasonCode>) -> Expect {
        Expect {
            outcome,
            reason,
            printed_line_contains: None,
            notice: None,
        }
    }

    #[test]
    fn verdicts_compare_outcome_reason_line_and_notice() {
        let admitted = json!({ "outcome": "admitted" });
        let revoked = json!({ "outcome": "referred", "reason": "REG_REVOKED" });
        let record = json!({
            "printed_line": "2026-07-01 NRT Temporary Visitor (15 days) SIM-entry-01",
            "notices": ["rewrite-card"],
        });
        let other_line = json!({ "printed_line": "x (90 days)" });
        let no_notices = json!({ "notices": [] });
        let mut with_line = expect(ExpectedOutcome::Admitted, None);
        with_line.printed_line_contains = Some("Temporary Visitor (15 days)".into());
        let mut with_notice = expect(ExpectedOutcome::Admitted, None);
        with_notice.notice = Some(Notice::RewriteCard);
        type Case<'a> = (
            Expect,
            &'a Value,
            Option<&'a Value>,
            Result<&'a str, &'a str>,
        );
        let cases: Vec<Case> = vec![
            (
                expect(ExpectedOutcome::Admitted, None),
                &admitted,
                None,
                Ok("admitted"),
            ),
            (
                expect(
                    ExpectedOutcome::Referred,
                    Some(ReasonCode::RegistrationRevoked),
                ),
                &revoked,
                None,
                Ok("REG_REVOKED"),
            ),
            (
                expect(
                    ExpectedOutcome::Referred,
                    Some(ReasonCode::RegistrationRevoked),
                ),
                &admitted,
                None,
                Err("expected REG_REVOKED got admitted"),
            ),
            (
                expect(ExpectedOutcome::Admitted, None),
                &revoked,
                None,
                Err("expected admitted got REG_REVOKED"),
            ),
            (
                expect(ExpectedOutcome::Referred, Some(ReasonCode::CardExpired)),
                &revoked,
                None,
                Err("expected CARD_EXPIRED got REG_REVOKED"),
            ),
            (with_line.clone(), &admitted, Some(&record), Ok("admitted")),
            (
                with_line,
                &admitted,
                Some(&other_line),
                Err(
                    "expected a printed line containing \"Temporary Visitor (15 days)\" got \"x (90 days)\"",
                ),
            ),
            (
                with_notice.clone(),
                &admitted,
                Some(&record),
                Ok("admitted"),
            ),
            (
                with_notice,
                &admitted,
                Some(&no_notices),
                Err("expected notice rewrite-card got none"),
            ),
            (
                expect(ExpectedOutcome::Admitted, None),
                &Value::Null,
                None,
                Err("expected admitted got no outcome"),
            ),
        ];
        for (expect, outcome, record, wanted) in cases {
            let got = judge(&expect, outcome, record);
            assert_eq!(got.as_deref().map_err(String::as_str), wanted, "{expect:?}");
        }
    }

    #[test]
    fn gate_status_is_read_leniently_but_needs_its_core_fields() {
        let view = GateView::from_json(&json!({
            "mode": "in-service", "lane": "entry", "step": "ed-card", "transaction": "0b0e…",
            "ed_card": { "flight": "NH212" },
            "ed_card_errors": [{ "field": "purpose", "problem": "required" }],
            "last": null, "transactions": 3
        }))
        .unwrap();
        assert_eq!(view.step, "ed-card");
        assert!(view.transaction);
        assert_eq!(view.transactions, 3);
        assert_eq!(view.ed_card_errors, vec!["purpose".to_owned()]);
        assert!(GateView::from_json(&json!({ "mode": "in-service" })).is_err());
    }

    #[tokio::test]
    async fn an_unreachable_daemon_is_an_error_not_a_panic() {
        let scenario = Scenario::parse(
            include_str!("../scenarios/suite.toml"),
            Path::new("suite.toml"),
        )
        .unwrap();
        let options = RunnerOptions::new("/nonexistent/torii/api.sock", "http://127.0.0.1:9");
        let mut out = Vec::new();
        let error = run(&scenario, &options, &mut out).await.unwrap_err();
        assert!(matches!(error, RunnerError::Daemon { .. }), "{error}");
        let mut only = options.clone();
        only.traveler = Some("nobody".into());
        assert!(matches!(
            run(&scenario, &only, &mut out).await.unwrap_err(),
            RunnerError::UnknownTraveler(_)
        ));
    }
}
