//! The engine every front end of one gateway process decides with, swappable at run time: a
//! configuration reload builds a new [`Engine`] and stores it here; requests already deciding
//! keep the engine they loaded, new ones get the new engine.

use arc_swap::ArcSwap;
use jwtgate_engine::Engine;
use std::sync::Arc;

/// An engine that can be replaced atomically (lock-free loads on the request path).
#[derive(Debug)]
pub struct SharedEngine {
    current: ArcSwap<Engine>,
}

impl SharedEngine {
    /// Holds `engine`.
    pub fn new(engine: Arc<Engine>) -> SharedEngine {
        SharedEngine {
            current: ArcSwap::new(engine),
        }
    }

    /// `engine`, ready to hand to [`crate::server::router`] and [`crate::AuthLayer::shared`].
    pub fn shared(engine: Arc<Engine>) -> Arc<SharedEngine> {
        Arc::new(SharedEngine::new(engine))
    }

    /// The engine to decide the next request with.
    pub fn load(&self) -> Arc<Engine> {
        self.current.load_full()
    }

    /// Replaces the engine; requests in flight finish on the one they loaded.
    pub fn store(&self, engine: Arc<Engine>) {
        self.current.store(engine);
    }
}
