//! An in-process gateway for the examples that count work per command (alloc_count,
//! cold_bench): a hub over a real store in a temp dir with history on (as `edgetwin run` has
//! it), and a `send` that puts one protocol text through the door (`Hub::handle_protocol`, the
//! WS path without the socket) and makes its answer into the text a binding sends.

use edgetwin::history::config::HistoryConfig;
use edgetwin::hub::history::Retention;
use edgetwin::hub::{Hub, Requester};
use edgetwin::protocol::Envelope;
use edgetwin::store::{BackendKind, Store};
use futures_lite::future::block_on;
use std::sync::Arc;

pub struct InProc {
    pub store: Store,
    pub hub: Hub,
    who: Requester,
    _retention: Option<Retention>,
    _dir: tempfile::TempDir,
}

impl InProc {
    /// A fresh store of `kind` (8 MiB cache), a twin cache of `twin_cache` bytes if given.
    pub fn open(kind: BackendKind, twin_cache: Option<usize>) -> Result<InProc, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let store = Store::open(kind, dir.path(), 8 << 20).map_err(|e| e.to_string())?;
        let hub = Hub::new(store.clone());
        if let Some(bytes) = twin_cache {
            hub.set_twin_cache(bytes);
        }
        let retention = hub.start_history(HistoryConfig::default())?;
        let who = Requester {
            subjects: Arc::from(vec!["nginx:ditto".to_owned()]),
            origin: None,
        };
        Ok(InProc {
            store,
            hub,
            who,
            _retention: retention,
            _dir: dir,
        })
    }

    /// One protocol text through the door, its answer made into text.
    pub fn send(&self, text: &str) -> Result<(), String> {
        let env = Envelope::parse(text).map_err(|e| format!("{:?}", e.error))?;
        match block_on(self.hub.handle_protocol(&self.who, env)) {
            Some(answer) => {
                std::hint::black_box(answer.outbound());
                Ok(())
            }
            None => Err("no answer".to_owned()),
        }
    }
}
