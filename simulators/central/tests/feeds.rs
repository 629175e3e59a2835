//! The registry and revocation feeds: cursors over the initial registry and the changes
//! the control API appends.

mod common;

use common::*;
use hyper::Method;
use serde_json::{Value, json};
use torii_link::protocol::{RegistryChange, RegistryPage, RevocationPage};

fn traveler(i: usize) -> Value {
    json!({ "passport_number": format!("TP{i:07}"), "nationality": "UTO", "card_number": format!("TTP{i:010}") })
}

async fn registry_page(client: &TlsClient, query: &str) -> RegistryPage {
    let (status, answer) = client
        .request(Method::GET, &format!("/v1/registry/changes{query}"), None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    serde_json::from_value(answer).unwrap()
}

async fn revocation_page(client: &TlsClient, query: &str) -> RevocationPage {
    let (status, answer) = client
        .request(Method::GET, &format!("/v1/revocations{query}"), None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    serde_json::from_value(answer).unwrap()
}

#[tokio::test]
async fn the_registry_feed_pages_the_initial_entries_then_the_changes() {
    let setup = start((1..=5).map(traveler).collect()).await;
    let client = TlsClient::gate(&setup);

    let mut seen = Vec::new();
    let mut cursor = 0;
    let mut pages = 0;
    loop {
        let page = registry_page(&client, &format!("?after={cursor}&limit=2")).await;
        pages += 1;
        assert!(page.changes.len() <= 2);
        seen.extend(page.changes.iter().map(|c| match c {
            RegistryChange::Upsert { seq, traveler } => (*seq, traveler["passport_number"].clone()),
            other => panic!("{other:?}"),
        }));
        cursor = page.cursor;
        if !page.more {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(cursor, 5);
    let expected: Vec<(u64, Value)> = (1..=5)
        .map(|i| (i as u64, traveler(i)["passport_number"].clone()))
        .collect();
    assert_eq!(seen, expected);
    // Nothing new: an empty page, same cursor.
    let page = registry_page(&client, "?after=5").await;
    assert_eq!((page.changes.len(), page.cursor, page.more), (0, 5, false));

    // The control API appends an upsert and an erase.
    let (status, answer) = control(
        &setup.central,
        Method::POST,
        "/control/registry/upsert",
        Some(&json!({ "traveler": traveler(6) })),
    )
    .await;
    assert_eq!((status, answer), (200, json!({ "seq": 6 })));
    let (status, answer) = control(
        &setup.central,
        Method::POST,
        "/control/registry/erase",
        Some(&json!({ "passport_number": "TP0000002", "nationality": "UTO" })),
    )
    .await;
    assert_eq!((status, answer), (200, json!({ "seq": 7 })));
    let page = registry_page(&client, "?after=5").await;
    assert_eq!(page.cursor, 7);
    assert!(!page.more);
    assert_eq!(
        page.changes,
        vec![
            RegistryChange::Upsert {
                seq: 6,
                traveler: traveler(6)
            },
            RegistryChange::Erase {
                seq: 7,
                passport_number: "TP0000002".into(),
                nationality: "UTO".into()
            },
        ]
    );
    // Without a cursor: from the beginning, the largest page.
    let page = registry_page(&client, "").await;
    assert_eq!((page.changes.len(), page.cursor), (7, 7));

    // Refused: a traveler without its key, bad queries.
    let (status, answer) = control(
        &setup.central,
        Method::POST,
        "/control/registry/upsert",
        Some(&json!({ "traveler": { "nationality": "UTO" } })),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("passport_number")
    );
    for query in ["?after=-1", "?limit=0", "?after=x", "?cursor=3"] {
        let (status, answer) = client
            .request(Method::GET, &format!("/v1/registry/changes{query}"), None)
            .await
            .unwrap();
        assert_eq!(status, 400, "{query}: {answer}");
        assert!(answer["error"].is_string(), "{query}: {answer}");
    }
    setup.central.shutdown().await;
}

#[tokio::test]
async fn the_revocation_feed_pages_what_the_control_api_revokes() {
    let setup = start(Vec::new()).await;
    let client = TlsClient::gate(&setup);
    let page = revocation_page(&client, "?after=0").await;
    assert_eq!(
        (page.revocations.len(), page.cursor, page.more),
        (0, 0, false)
    );
    for (i, status) in ["revoked", "passport-reported-lost", "changed-to-resident"]
        .iter()
        .enumerate()
    {
        let (code, answer) = control(
            &setup.central,
            Method::POST,
            "/control/revoke",
            Some(&json!({ "passport_number": format!("TP{i}"), "nationality": "UTO", "status": status })),
        )
        .await;
        assert_eq!((code, answer), (200, json!({ "seq": i + 1 })));
    }
    let (code, answer) = control(
        &setup.central,
        Method::POST,
        "/control/revoke",
        Some(&json!({ "passport_number": "TP9", "nationality": "UTO", "status": "active" })),
    )
    .await;
    assert_eq!(code, 400, "{answer}");
    assert_eq!(setup.central.revoke("TP3", "UTO", "revoked").unwrap(), 4);

    let page = revocation_page(&client, "?after=0&limit=3").await;
    assert_eq!(
        page.revocations.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(page.revocations[1].status, "passport-reported-lost");
    assert_eq!((page.cursor, page.more), (3, true));
    let page = revocation_page(&client, &format!("?after={}&limit=3", page.cursor)).await;
    assert_eq!(page.revocations.len(), 1);
    assert_eq!(page.revocations[0].passport_number, "TP3");
    assert_eq!((page.cursor, page.more), (4, false));
    setup.central.shutdown().await;
}

#[tokio::test]
async fn the_control_api_reads_json_whatever_the_content_type_like_curl_d_sends() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let setup = start(Vec::new()).await;
    let body = r#"{"passport_number":"TP1","nationality":"UTO","status":"revoked"}"#;
    let mut tcp = tokio::net::TcpStream::connect(setup.central.control_addr())
        .await
        .unwrap();
    let request = format!(
        "POST /control/revoke HTTP/1.0\r\nHost: localhost\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    assert!(answer.ends_with(r#"{"seq":1}"#), "{answer}");
    setup.central.shutdown().await;
}
