//! Micro-benchmarks of the hot paths a twin command crosses: envelope parse and serialize,
//! envelope -> signal, engine apply under the thing's default policy (modify attribute, merge
//! feature, retrieve), the search index delta of a write, event fan-out filter (RQL parse and
//! eval), and ThingState encode/decode.
//! Run: `cargo bench --features bench --bench hot_paths`.

use criterion::{criterion_group, criterion_main, Criterion};
use edgetwin::engine::enforce::Access;
use edgetwin::engine::{self, Ctx, ThingState};
use edgetwin::policy::Enforcer;
use edgetwin::protocol::{Envelope, Signal, ThingCommand};
use edgetwin::rql::{self, Env};
use edgetwin::search::index::sized_entries;
use serde_json::{json, Value};
use std::hint::black_box;

const MODIFY: &str = r#"{"topic":"bench/t42/things/twin/commands/modify","headers":{"correlation-id":"c0.12345.987654321","requested-acks":[]},"path":"/attributes/a3","value":"xxxxxxxxxxxxxxxx"}"#;
const MERGE: &str = r#"{"topic":"bench/t42/things/twin/commands/merge","headers":{"correlation-id":"c0.12345.987654321","requested-acks":[],"content-type":"application/merge-patch+json"},"path":"/features/f/properties","value":{"p3":"xxxxxxxxxxxxxxxx"}}"#;
const RETRIEVE: &str = r#"{"topic":"bench/t42/things/twin/commands/retrieve","headers":{"correlation-id":"c0.12345.987654321"},"path":"/attributes/a3"}"#;

fn command(text: &str) -> ThingCommand {
    match Signal::from_envelope(Envelope::parse(text).expect("parse")) {
        Ok(Signal::Thing(c)) => c,
        other => panic!("not a thing command: {other:?}"),
    }
}

fn thing() -> ThingState {
    let mut attrs = serde_json::Map::new();
    for j in 0..8 {
        attrs.insert(format!("a{j}"), json!("xxxxxxxxxxxxxxxx"));
    }
    ThingState {
        thing: json!({"thingId": "bench:t42", "policyId": "bench:t42", "attributes": attrs,
                      "features": {"f": {"properties": {"p0": "xxxxxxxxxxxxxxxx", "p3": 1}}}}),
        revision: 7,
        created: 1_700_000_000_000,
        modified: 1_700_000_000_000,
        metadata: None,
        deleted: false,
    }
}

fn envelope(c: &mut Criterion) {
    c.bench_function("envelope_parse_modify", |b| {
        b.iter(|| Envelope::parse(black_box(MODIFY)))
    });
    c.bench_function("envelope_parse_merge", |b| {
        b.iter(|| Envelope::parse(black_box(MERGE)))
    });
    let env = Envelope::parse(MERGE).expect("parse");
    c.bench_function("envelope_to_text_merge", |b| {
        b.iter(|| black_box(&env).to_text())
    });
    c.bench_function("signal_from_envelope_modify", |b| {
        b.iter_batched(
            || Envelope::parse(MODIFY).expect("parse"),
            Signal::from_envelope,
            criterion::BatchSize::SmallInput,
        )
    });
}

fn apply(c: &mut Criterion) {
    let state = thing();
    let no_policy = |_: &str| -> Option<Value> { None };
    let no_thing = |_: &str| -> Option<ThingState> { None };
    let policy = engine::default_policy("bench:t42", "nginx:ditto");
    let enforcer = Enforcer::from_policy(&policy, 1_700_000_001_000, Some("bench"));
    let subjects = ["nginx:ditto".to_owned()];
    let ctx = Ctx {
        now: 1_700_000_001_000,
        subject: "nginx:ditto",
        lookup: &engine::FnLookup(no_thing, no_policy),
        access: Some(Access {
            subjects: &subjects,
            enforcer: Some(&enforcer),
        }),
    };
    for (name, text) in [
        ("engine_apply_modify_attribute", MODIFY),
        ("engine_apply_merge_feature", MERGE),
        ("engine_apply_retrieve_attribute", RETRIEVE),
    ] {
        let cmd = command(text);
        c.bench_function(name, |b| {
            b.iter(|| engine::apply(Some(black_box(&state)), black_box(&cmd), &ctx))
        });
    }
    let modified = engine::apply(Some(&state), &command(MODIFY), &ctx)
        .expect("modify")
        .state
        .expect("new state");
    let size = sized_entries(&state).1;
    c.bench_function("search_index_delta_modify_attribute", |b| {
        b.iter(|| {
            edgetwin::search::delta::write_ops(
                Some(black_box(&state)),
                Some(size),
                Some(black_box(&modified)),
            )
        })
    });
    let bytes = state.to_bytes();
    c.bench_function("thing_state_decode", |b| {
        b.iter(|| ThingState::from_bytes(black_box(&bytes)))
    });
    c.bench_function("thing_state_encode", |b| {
        b.iter(|| black_box(&state).to_bytes())
    });
}

fn rql_eval(c: &mut Criterion) {
    let filter =
        "and(eq(attributes/a3,\"xxxxxxxxxxxxxxxx\"),gt(_revision,5),like(thingId,\"bench:*\"))";
    c.bench_function("rql_parse", |b| b.iter(|| rql::parse(black_box(filter))));
    let q = rql::parse(filter).expect("rql");
    let doc = thing().full_view();
    let env = Env::at(1_700_000_001_000);
    c.bench_function("rql_eval_match", |b| {
        b.iter(|| black_box(&q).matches(black_box(&doc), &env))
    });
}

criterion_group!(benches, envelope, apply, rql_eval);
criterion_main!(benches);
