//! Applications as sign-in reads them: every page of a sign-in, the notification and the
//! token exchange look up the same application, so they are kept in memory for a short while.
//!
//! A change or a delete through this instance drops the cached copy at once; on another
//! instance the old copy lives at most [`APP_CACHE_SECONDS`]. (Assignments are not cached:
//! the assignment check reads them at every call.)
//! Unknown client ids are not cached, so guessing ids cannot fill memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::applications::BrowserOrigins;

use crate::application::Application;
use crate::clock::Timestamp;
use crate::ids::ClientId;

/// How long an instance may go on using an application another instance changed or deleted.
pub const APP_CACHE_SECONDS: i64 = 10;

/// At most this many applications are kept; past it the cache starts again empty.
const APP_CACHE_ENTRIES: usize = 1024;

#[derive(Debug, Default)]
pub(crate) struct AppCache {
    entries: Mutex<HashMap<ClientId, (Timestamp, Application)>>,
    /// Every application's browser origins (CORS), read as a whole; any change through this
    /// instance drops it.
    origins: Mutex<Option<(Timestamp, Arc<BrowserOrigins>)>>,
}

impl AppCache {
    pub(crate) fn get(&self, id: &ClientId, now: Timestamp) -> Option<Application> {
        let entries = self.entries.lock().ok()?;
        let (fetched, app) = entries.get(id)?;
        (now.0 - fetched.0 < APP_CACHE_SECONDS && now.0 >= fetched.0).then(|| app.clone())
    }

    pub(crate) fn put(&self, app: &Application, now: Timestamp) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= APP_CACHE_ENTRIES {
                entries.clear();
            }
            entries.insert(app.client_id.clone(), (now, app.clone()));
        }
    }

    pub(crate) fn forget(&self, id: &ClientId) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(id);
        }
        if let Ok(mut origins) = self.origins.lock() {
            *origins = None;
        }
    }

    pub(crate) fn origins(&self, now: Timestamp) -> Option<Arc<BrowserOrigins>> {
        let origins = self.origins.lock().ok()?;
        let (fetched, origins) = origins.as_ref()?;
        (now.0 - fetched.0 < APP_CACHE_SECONDS && now.0 >= fetched.0).then(|| origins.clone())
    }

    pub(crate) fn put_origins(&self, origins: Arc<BrowserOrigins>, now: Timestamp) {
        if let Ok(mut cached) = self.origins.lock() {
            *cached = Some((now, origins));
        }
    }
}
