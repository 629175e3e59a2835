//! `POST /v1/records` over mutual TLS: acknowledgements, idempotency, order per gate,
//! the gate bound to its certificate, malformed batches; the control API's view.

mod common;

use common::*;
use hyper::Method;
use serde_json::{Value, json};
use torii_link::protocol::{MAX_BATCH, OutOfOrder, ProblemBody, RecordAck};

#[tokio::test]
async fn a_gate_posts_records_and_gets_them_acknowledged_once_stored() {
    let setup = start(Vec::new()).await;
    let client = TlsClient::gate(&setup);
    let (status, health) = client.request(Method::GET, "/health", None).await.unwrap();
    assert_eq!((status, health), (200, json!({ "status": "ok" })));

    let batch = [envelope(1, 1), envelope(2, 2), envelope(3, 3)];
    let (status, answer) = client.post_batch(GATE, &batch).await.unwrap();
    assert_eq!(status, 200, "{answer}");
    let ack: RecordAck = serde_json::from_value(answer).unwrap();
    assert_eq!(
        serde_json::to_value(&ack.acknowledged).unwrap(),
        json!([uuid(1), uuid(2), uuid(3)])
    );

    // The same batch again (a retry): acknowledged again, stored once.
    let (status, answer) = client.post_batch(GATE, &batch).await.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["acknowledged"].as_array().unwrap().len(), 3);
    // Partly known, partly new.
    let (status, answer) = client
        .post_batch(GATE, &[envelope(3, 3), envelope(4, 4)])
        .await
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["acknowledged"], json!([uuid(3), uuid(4)]));

    let (status, records) = control(&setup.central, Method::GET, "/control/records", None).await;
    assert_eq!(status, 200);
    let records = records["records"].as_array().unwrap();
    assert_eq!(records.len(), 4);
    for (i, record) in records.iter().enumerate() {
        let n = i as u64 + 1;
        assert_eq!(record["gate_id"], GATE);
        assert_eq!(record["seq"], n);
        assert_eq!(record["record_id"], uuid(n as u128));
        assert_eq!(record["record"], json!({ "kind": "landing", "n": n }));
        assert!(record["received_at"].as_str().unwrap().ends_with('Z'));
    }
    let (_, stats) = control(&setup.central, Method::GET, "/control/stats", None).await;
    assert_eq!(stats["records"], 4);
    assert_eq!(stats["duplicates"], 4);
    assert_eq!(stats["batches"], 3);
    assert_eq!(stats["tls_handshakes_refused"], 0);
    assert_eq!(stats["tls_handshakes"], 4);
    setup.central.shutdown().await;
}

#[tokio::test]
async fn a_new_record_not_above_the_last_seq_is_refused_out_of_order() {
    let setup = start(Vec::new()).await;
    let client = TlsClient::gate(&setup);
    let (status, _) = client.post_batch(GATE, &[envelope(1, 10)]).await.unwrap();
    assert_eq!(status, 200);
    let (status, answer) = client
        .post_batch(
            GATE,
            &[
                envelope(2, 11),
                envelope(3, 12),
                envelope(4, 12),
                envelope(5, 13),
            ],
        )
        .await
        .unwrap();
    assert_eq!(status, 409, "{answer}");
    let refusal: OutOfOrder = serde_json::from_value(answer).unwrap();
    assert_eq!(
        serde_json::to_value(&refusal).unwrap(),
        json!({ "acknowledged": [uuid(2), uuid(3)], "record_id": uuid(4), "last_seq": 12 })
    );
    // The records before the refused one were stored; the rest were not.
    let ids: Vec<Value> = setup
        .central
        .records()
        .iter()
        .map(|r| json!(r.record_id))
        .collect();
    assert_eq!(ids, vec![uuid(1), uuid(2), uuid(3)]);
    assert_eq!(setup.central.stats().out_of_order, 1);
    // An old record already held is still just acknowledged.
    let (status, _) = client.post_batch(GATE, &[envelope(1, 10)]).await.unwrap();
    assert_eq!(status, 200);

    // Reset: every gate may start again from any seq.
    let (status, answer) =
        control(&setup.central, Method::POST, "/control/reset-records", None).await;
    assert_eq!((status, answer), (200, json!({ "cleared": 3 })));
    let (status, _) = client.post_batch(GATE, &[envelope(9, 1)]).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(setup.central.records().len(), 1);
    setup.central.shutdown().await;
}

#[tokio::test]
async fn a_known_record_id_with_another_body_is_a_conflict() {
    let setup = start(Vec::new()).await;
    let client = TlsClient::gate(&setup);
    client.post_batch(GATE, &[envelope(1, 1)]).await.unwrap();
    let mut changed = envelope(1, 1);
    changed["record"]["kind"] = json!("departure");
    let (status, answer) = client
        .post_batch(GATE, &[envelope(2, 2), changed])
        .await
        .unwrap();
    assert_eq!(status, 409, "{answer}");
    let problem: ProblemBody = serde_json::from_value(answer).unwrap();
    let id = uuid::Uuid::from_u128(1).to_string();
    assert!(problem.error.contains(&id), "{}", problem.error);
    // Nothing of that batch was stored.
    assert_eq!(setup.central.records().len(), 1);
    assert_eq!(setup.central.stats().conflicts, 1);
    setup.central.shutdown().await;
}

#[tokio::test]
async fn a_gate_cannot_post_for_another_gate() {
    let setup = start(Vec::new()).await;
    let client = TlsClient::gate(&setup);
    let (status, answer) = client
        .post_batch("NRT-T1-E02", &[envelope(1, 1)])
        .await
        .unwrap();
    assert_eq!(status, 403, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("NRT-T1-E02"));
    assert!(setup.central.records().is_empty());
    assert_eq!(setup.central.stats().forbidden, 1);
    setup.central.shutdown().await;
}

#[tokio::test]
async fn malformed_batches_are_refused_with_a_problem_naming_what_is_wrong() {
    let setup = start(Vec::new()).await;
    let client = TlsClient::gate(&setup);
    let cases = [
        (json!({ "records": [] }), "gate_id"),
        (
            json!({ "gate_id": GATE, "records": [{ "seq": 1, "record": {} }] }),
            "record_id",
        ),
        (
            json!({ "gate_id": GATE, "records": [{ "record_id": "not-a-uuid", "seq": 1, "record": {} }] }),
            "UUID",
        ),
        (
            json!({ "gate_id": GATE, "records": [], "extra": 1 }),
            "extra",
        ),
        (json!({ "gate_id": "", "records": [] }), "gate_id"),
    ];
    for (body, named) in cases {
        let (status, answer) = client
            .request(Method::POST, "/v1/records", Some(&body))
            .await
            .unwrap();
        assert_eq!(status, 400, "{body} → {answer}");
        let problem: ProblemBody = serde_json::from_value(answer).unwrap();
        assert!(problem.error.contains(named), "{body} → {}", problem.error);
    }
    let too_many: Vec<Value> = (1..=MAX_BATCH as u128 + 1)
        .map(|n| envelope(n, n as u64))
        .collect();
    let (status, answer) = client.post_batch(GATE, &too_many).await.unwrap();
    assert_eq!(status, 400);
    assert!(
        answer["error"].as_str().unwrap().contains("500"),
        "{answer}"
    );
    // Exactly the largest batch is fine.
    let (status, answer) = client
        .post_batch(GATE, &too_many[..MAX_BATCH])
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(answer["acknowledged"].as_array().unwrap().len(), MAX_BATCH);
    assert!(setup.central.stats().malformed >= 6);
    let (status, answer) = client
        .request(Method::GET, "/v2/nothing", None)
        .await
        .unwrap();
    assert_eq!(status, 404);
    assert!(answer["error"].is_string());
    setup.central.shutdown().await;
}
