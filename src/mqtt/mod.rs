//! The MQTT device bridge: devices on the local broker become twins (no-code mappings and
//! presets), speak Ditto Protocol on `<prefix>/<thingId>/ditto`, and receive live commands,
//! live events and messages on `<prefix>/<thingId>/live`. tokio (rumqttc) stays in `client`;
//! the hub side runs on the app's smol executor as a hub session with bounded queues between.

pub mod client;
pub mod commands;
pub mod config;
pub mod connection;
mod inbound;
pub mod mapping;
pub mod monitor;
mod outage;
mod outbound;
pub mod pattern;
pub mod presets;
pub mod stats;
pub mod twins;

use crate::exec::Executor;
use crate::hub::{Hub, SessionHandle, StreamKind};
use crate::rules::fanout::Subscription;
use mapping::Mappings;
use rumqttc::AsyncClient;
use stats::Stats;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// Hub session queue of the bridge (live commands, messages, events for devices).
const SESSION_QUEUE: usize = 4096;
/// Things whose `attributes/mqtt` was checked in this run; cleared when it grows past this.
const SEEN_MAX: usize = 65_536;

/// The running bridge (shared by its tasks).
pub(crate) struct Bridge {
    hub: Hub,
    client: AsyncClient,
    cfg: config::MqttConfig,
    mappings: Mappings,
    stats: Arc<Stats>,
    session: Mutex<Arc<SessionHandle>>,
    seen: Mutex<HashSet<String>>,
    policy: serde_json::Value,
    max_payload: usize,
    ex: Arc<Executor>,
}

/// What the rest of the process holds: status for `/status/mqtt`, and shutdown.
pub struct Handle {
    stats: Arc<Stats>,
    broker: String,
    link_stop: Option<(Arc<std::sync::atomic::AtomicBool>, AsyncClient)>,
    view: Option<connection::View>,
}

impl Handle {
    /// A handle for a disabled bridge (`--mqtt none`).
    pub fn disabled() -> Handle {
        Handle {
            stats: Arc::new(Stats::default()),
            broker: "none".into(),
            link_stop: None,
            view: None,
        }
    }

    /// The bridge as a read-only Ditto connection (`None` when the bridge is off).
    pub fn connection(&self) -> Option<(&connection::View, &Stats)> {
        Some((self.view.as_ref()?, &self.stats))
    }

    /// True if the bridge runs.
    pub fn enabled(&self) -> bool {
        self.link_stop.is_some()
    }

    /// `connected`, `waiting` (for the broker: retrying in the background) or `disabled`
    /// (for `/status/health`).
    pub fn state(&self) -> &'static str {
        match (self.enabled(), self.stats.connected()) {
            (false, _) => "disabled",
            (true, true) => "connected",
            (true, false) => "waiting",
        }
    }

    /// The `/status/mqtt` document.
    pub fn status(&self) -> serde_json::Value {
        let mut v = self.stats.to_json(&self.broker);
        v["state"] = self.state().into();
        v
    }

    /// Disconnects from the broker (unacknowledged messages stay with the broker).
    pub fn stop(&self) {
        if let Some((stop, client)) = &self.link_stop {
            stop.store(true, Ordering::Relaxed);
            let _ = client.try_disconnect();
        }
    }
}

/// Starts the bridge unless `[mqtt] url` is `none`. Broker trouble never fails the start: the
/// connection thread keeps retrying in the background.
pub fn start(cfg: &crate::config::Config, hub: Hub, ex: Arc<Executor>) -> Result<Handle, String> {
    let m = &cfg.mqtt;
    let Some(broker) = config::parse_url(&m.url)? else {
        tracing::info!("mqtt: bridge disabled");
        return Ok(Handle::disabled());
    };
    let mut mappings = Mappings::build(m)?;
    mappings_with_status(&mut mappings, &m.topic_prefix)?;
    let mut filters = vec![format!("{}/+/ditto", m.topic_prefix)];
    filters.extend(mappings.filters());
    let mut targets = vec![(
        format!("{}/{{{{ thing:id }}}}/live", m.topic_prefix),
        vec![
            "_/_/things/live/commands",
            "_/_/things/live/events",
            "_/_/things/live/messages",
        ],
    )];
    targets.extend(mappings.command_topics().into_iter().map(|t| {
        (
            t,
            vec!["_/_/things/twin/events", "_/_/things/live/commands"],
        )
    }));
    let view = connection::View {
        uri: format!(
            "{}://{}:{}",
            if broker.tls { "ssl" } else { "tcp" },
            broker.host,
            broker.port
        ),
        client_id: m.client_id.clone(),
        subject: m.subject.clone(),
        keep_alive_secs: m.keep_alive_secs,
        sources: filters.clone(),
        targets,
    };
    let max_payload = cfg.limits.max_message_kib * 1024;
    let stats = Arc::new(Stats::default());
    // rumqttc closes the connection on a bigger packet: leave room above our own limit.
    let link = client::start(m, &broker, filters, max_payload * 4 + 1024, stats.clone())?;
    let (session, session_rx) = open_session(&hub, &m.subject);
    let bridge = Arc::new(Bridge {
        hub,
        client: link.client.clone(),
        policy: twins::bridge_policy(&m.subject, &m.owners),
        cfg: m.clone(),
        mappings,
        stats: stats.clone(),
        session: Mutex::new(session),
        seen: Mutex::new(HashSet::new()),
        max_payload,
        ex: ex.clone(),
    });
    let (acks_tx, acks_rx) = async_channel::bounded(m.queue);
    ex.spawn(inbound::run(bridge.clone(), link.inbound, acks_tx))
        .detach();
    ex.spawn(inbound::acker(bridge.clone(), acks_rx)).detach();
    ex.spawn(outbound::run(bridge, session_rx)).detach();
    ex.spawn(connection::sampler(stats.clone())).detach();
    let url = broker.to_string();
    tracing::info!(broker = %url, client_id = %m.client_id, "mqtt: bridge started");
    Ok(Handle {
        stats,
        broker: url,
        link_stop: Some((link.stop, link.client)),
        view: Some(view),
    })
}

/// The passthrough devices' availability topic `<prefix>/{thing}/status` (`online`/`offline`).
fn mappings_with_status(m: &mut Mappings, prefix: &str) -> Result<(), String> {
    let status = config::MqttConfig {
        mappings: vec![config::MappingConfig {
            name: Some("ditto".into()),
            topic: None,
            payload: config::PayloadMode::Auto,
            feature: None,
            property: None,
            availability: Some(format!("{prefix}/{{thing}}/status")),
            online: None,
            offline: None,
            command: None,
        }],
        ..config::MqttConfig::default()
    };
    m.extend(Mappings::build(&status)?);
    Ok(())
}

/// A hub session for the bridge subject: live commands, live events and messages for the
/// things it may read, and twin events of mapped devices (for desired properties).
fn open_session(hub: &Hub, subject: &str) -> (Arc<SessionHandle>, crate::hub::OutboundRx) {
    let (s, rx) = hub.open_session(Arc::from(vec![subject.to_owned()]), SESSION_QUEUE, 1);
    let extra = crate::model::FieldSelector::parse("attributes/mqtt").ok();
    let with_extra = || Subscription {
        extra: extra.clone(),
        ..Subscription::default()
    };
    hub.subscribe(&s, StreamKind::LiveCommands, with_extra());
    hub.subscribe(&s, StreamKind::Messages, with_extra());
    hub.subscribe(&s, StreamKind::LiveEvents, Subscription::default());
    hub.subscribe(
        &s,
        StreamKind::Events,
        Subscription {
            filter: crate::rql::parse("exists(attributes/mqtt)").ok(),
            ..with_extra()
        },
    );
    (s, rx)
}

impl Bridge {
    /// The bridge's current hub session.
    fn session(&self) -> Arc<SessionHandle> {
        self.session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The requester of everything arriving over MQTT.
    fn requester(&self) -> crate::hub::Requester {
        crate::hub::Requester {
            subjects: Arc::from(vec![self.cfg.subject.clone()]),
            origin: Some(self.session().id),
        }
    }

    /// Publishes QoS 1 (counted); false if the client queue was full and it was dropped.
    fn publish(&self, topic: String, payload: Vec<u8>) -> bool {
        match self
            .client
            .try_publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
        {
            Ok(()) => {
                stats::inc(&self.stats.c.published);
                Stats::stamp(&self.stats.last_published);
                true
            }
            Err(e) => {
                stats::inc(&self.stats.c.dropped);
                stats::inc(&self.stats.c.dropped_outbound);
                self.stats.warn(
                    stats::Kind::Dropped,
                    format_args!("outgoing message dropped: {e}"),
                );
                false
            }
        }
    }
}
