//! Policies on the live channel with four subjects (live-and-messages.md 1 and 2.4):
//!
//! | subject         | thing:/     | message:/                  |
//! |-----------------|-------------|----------------------------|
//! | `nginx:owner`   | READ+WRITE  | READ+WRITE                 |
//! | `nginx:reader`  | READ        | READ                       |
//! | `nginx:sender`  | READ        | WRITE on `message:/inbox`  |
//! | `nginx:none`    | -           | -                          |
//!
//! | action                                  | owner | reader | sender | none |
//! |-----------------------------------------|-------|--------|--------|------|
//! | send inbox message                      | ok    | 403 `messages:send.notallowed` | ok | 403 |
//! | send feature message                    | ok    | 403    | 403 (inbox grant does not cover features) | 403 |
//! | receive messages (START-SEND-MESSAGES)  | yes   | yes    | no (weak ack for its label) | no |
//! | send claim                              | ok    | ok     | ok     | ok   |
//! | live modify                             | ok    | 403 `things:attribute.notmodifiable` | 403 | 403 |
//! | receive live commands                   | yes   | yes    | yes    | no   |
//! | send live event                         | ok    | 403 `things:event.notallowed` | 403 | 403 |

use crate::authkit;
use crate::common;
use crate::livekit;
use authkit::{start, user};
use common::{block_on, command, Ws};
use livekit::*;
use serde_json::{json, Value};
use std::time::Duration;

const T: &str = "ns.perm:valve";

fn policy() -> Value {
    let g = |p: &[&str]| json!({"grant": p, "revoke": []});
    json!({"entries": {
        "owner": {"subjects": {"nginx:owner": {"type": "t"}},
                  "resources": {"thing:/": g(&["READ", "WRITE"]), "policy:/": g(&["READ", "WRITE"]),
                                "message:/": g(&["READ", "WRITE"])}},
        "reader": {"subjects": {"nginx:reader": {"type": "t"}},
                   "resources": {"thing:/": g(&["READ"]), "message:/": g(&["READ"])}},
        "sender": {"subjects": {"nginx:sender": {"type": "t"}},
                   "resources": {"thing:/": g(&["READ"]), "message:/inbox": g(&["WRITE"])}}
    }})
}

async fn ws(env: &authkit::Env, who: &str, declared: Option<&str>) -> Ws {
    let path = match declared {
        Some(l) => format!("/ws/2?declared-acks={l}"),
        None => "/ws/2".into(),
    };
    Ws::connect_with(env.srv.addr, &path, &[("authorization", user(who))])
        .await
        .expect("ws connect")
}

fn code(r: &Value) -> (u64, String) {
    (
        r["status"].as_u64().unwrap_or(0),
        r["value"]["error"].as_str().unwrap_or("").to_owned(),
    )
}

#[test]
fn message_and_live_permissions_follow_the_policy() {
    let env = start(&["owner", "reader", "sender", "none"], "");
    block_on(async {
        let mut owner = ws(&env, "owner", None).await;
        let r = owner
            .request(command(
                T,
                "create",
                "/",
                Some(json!({"_policy": policy(), "attributes": {"open": false}})),
            ))
            .await;
        assert_eq!(r["status"], 201, "{r}");
        let mut device = ws(&env, "owner", None).await;
        device.control("START-SEND-MESSAGES").await;
        device.control("START-SEND-LIVE-COMMANDS").await;
        let mut reader_sub = ws(&env, "reader", None).await;
        reader_sub.control("START-SEND-MESSAGES").await;
        reader_sub.control("START-SEND-LIVE-COMMANDS").await;
        let mut sender_sub = ws(&env, "sender", Some("sender:ack")).await;
        sender_sub.control("START-SEND-MESSAGES").await;
        let mut none_sub = ws(&env, "none", None).await;
        none_sub.control("START-SEND-MESSAGES").await;
        none_sub.control("START-SEND-LIVE-COMMANDS").await;
        let mut reader = ws(&env, "reader", None).await;
        let mut sender = ws(&env, "sender", None).await;
        let mut none = ws(&env, "none", None).await;

        // sending messages needs WRITE on message:<path>
        let inbox = |cid: &str| {
            message(
                T,
                "open",
                "/inbox/messages/open",
                cid,
                "text/plain",
                json!("now"),
            )
        };
        let feature = |cid: &str| {
            message(
                T,
                "open",
                "/features/v/inbox/messages/open",
                cid,
                "text/plain",
                json!("now"),
            )
        };
        for (who, ws, cid) in [("reader", &mut reader, "p-1"), ("none", &mut none, "p-2")] {
            let r = ws.request(inbox(cid)).await;
            assert_eq!(
                code(&r),
                (403, "messages:send.notallowed".into()),
                "{who}: {r}"
            );
            assert_eq!(
                r["value"]["message"],
                "You are not allowed to send messages for the Thing with id 'ns.perm:valve'!"
            );
        }
        let r = sender.request(feature("p-3")).await;
        assert_eq!(
            code(&r),
            (403, "messages:send.notallowed".into()),
            "message:/inbox does not cover features"
        );

        // the sender may send to the inbox; READ decides who receives; the requested ack of
        // the subscriber without READ is answered weakly for it
        let mut m = inbox("p-4");
        m["headers"]["requested-acks"] = json!(["sender:ack"]);
        sender.send(&m).await;
        let got = expect_frame(&mut device, "p-4").await;
        assert_eq!(got["value"], "now");
        assert_eq!(expect_frame(&mut reader_sub, "p-4").await["value"], "now");
        device
            .send(&answer(
                &got,
                200,
                Some(json!("opened")),
                Some("text/plain"),
            ))
            .await;
        let r = expect_frame(&mut sender, "p-4").await;
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(r["value"]["live-response"]["payload"], "opened");
        assert_eq!(
            r["value"]["sender:ack"]["headers"]["ditto-weak-ack"], true,
            "{r}"
        );
        for (who, s) in [("sender", &mut sender_sub), ("none", &mut none_sub)] {
            assert!(
                frame_with(s, "p-4", Duration::from_millis(300))
                    .await
                    .is_none(),
                "{who} has no READ on message:/ and gets nothing"
            );
        }

        // claims need no permission
        none.send(&message(
            T,
            "claim",
            "/inbox/messages/claim",
            "p-5",
            "text/plain",
            json!("let me in"),
        ))
        .await;
        let got = expect_frame(&mut device, "p-5").await;
        device.send(&answer(&got, 204, None, None)).await;
        assert_eq!(expect_frame(&mut none, "p-5").await["status"], 204);

        // live commands: authorized like the twin command; receivers need READ
        let r = reader
            .request(live(
                T,
                "modify",
                "/attributes/open",
                "p-6",
                Some(json!(true)),
            ))
            .await;
        assert_eq!(
            code(&r),
            (403, "things:attribute.notmodifiable".into()),
            "{r}"
        );
        let r = none
            .request(live(
                T,
                "modify",
                "/attributes/open",
                "p-7",
                Some(json!(true)),
            ))
            .await;
        assert_eq!(
            code(&r),
            (403, "things:attribute.notmodifiable".into()),
            "no WRITE: 403 whatever READ says (Ditto); {r}"
        );
        owner
            .send(&live(
                T,
                "modify",
                "/attributes/open",
                "p-8",
                Some(json!(true)),
            ))
            .await;
        let got = expect_frame(&mut device, "p-8").await;
        assert_eq!(expect_frame(&mut reader_sub, "p-8").await["value"], true);
        assert!(frame_with(&mut none_sub, "p-8", Duration::from_millis(300))
            .await
            .is_none());
        device.send(&answer(&got, 204, None, None)).await;
        assert_eq!(expect_frame(&mut owner, "p-8").await["status"], 204);

        // live events need WRITE
        let event = |cid: &str| {
            json!({"topic": format!("{}/things/live/events/modified", tp(T)),
                                       "headers": {"correlation-id": cid}, "path": "/attributes/open", "value": true})
        };
        let r = reader.request(event("p-9")).await;
        assert_eq!(code(&r), (403, "things:event.notallowed".into()), "{r}");
        let r = none.request(event("p-10")).await;
        assert_eq!(code(&r), (403, "things:event.notallowed".into()), "{r}");
        let http = common::http::Http {
            addr: env.srv.addr,
            auth: Some(user("owner")),
        };
        assert!(drains(&http).await);
    });
}
