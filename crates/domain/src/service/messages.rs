//! Sentences the sign-in pages and APIs show, shared by the contexts that can end in them.

/// Shown when a throttle stopped a notification or an attempt.
pub(crate) const THROTTLED: &str = "There have been too many sign-in attempts for this account or from this network. Wait a few minutes and try again, or ask your administrator.";
/// Shown instead of a second notification while one is waiting (push-fatigue defence).
pub(crate) const ALREADY_PENDING: &str = "A sign-in request is already waiting in your authenticator app. If you didn't start it, deny it there or choose \"No, it's not me\". Otherwise wait a minute and try again, or sign in another way.";
pub(crate) const STORE_TROUBLE: &str = "Something went wrong on our side. Try again in a moment.";
pub(crate) const DISABLED: &str = "Your account is disabled. Contact your administrator.";
pub(crate) const WRONG_CREDENTIAL: &str =
    "That pass or password isn't right. Check it and try again.";
