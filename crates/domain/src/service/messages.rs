//! Sentences the sign-in pages and APIs show, shared by the contexts that can end in them.

/// Shown when a throttle stopped a notification or an attempt, with how long to wait.
pub(crate) fn throttled(wait_seconds: i64) -> String {
    format!(
        "There have been too many sign-in attempts for this account or from this network. Try again in {}, or ask your administrator.",
        wait_for(wait_seconds)
    )
}

/// `45` → "45 seconds", `200` → "4 minutes", `7200` → "2 hours": rounded up, so the person
/// never comes back too early.
fn wait_for(seconds: i64) -> String {
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    let seconds = seconds.max(1);
    if seconds < 60 {
        plural(seconds, "second")
    } else if seconds <= 90 * 60 {
        plural((seconds + 59) / 60, "minute")
    } else {
        plural((seconds + 3599) / 3600, "hour")
    }
}

/// Shown instead of a second notification while one is waiting (push-fatigue defence).
pub(crate) const ALREADY_PENDING: &str = "A sign-in request is already waiting in your authenticator app. If you didn't start it, deny it there or choose \"No, it's not me\". Otherwise wait a minute and try again, or sign in another way.";
pub(crate) const STORE_TROUBLE: &str = "Something went wrong on our side. Try again in a moment.";
pub(crate) const DISABLED: &str = "Your account is disabled. Contact your administrator.";
pub(crate) const WRONG_CREDENTIAL: &str =
    "That pass or password isn't right. Check it and try again.";

#[cfg(test)]
mod tests {
    #[test]
    fn the_wait_is_rounded_up_and_says_its_unit() {
        let cases = [
            (1, "1 second"),
            (45, "45 seconds"),
            (60, "1 minute"),
            (61, "2 minutes"),
            (200, "4 minutes"),
            (900, "15 minutes"),
            (5400, "90 minutes"),
            (5401, "2 hours"),
            (86_400, "24 hours"),
        ];
        for (seconds, text) in cases {
            assert_eq!(super::wait_for(seconds), text, "{seconds}");
        }
        assert!(super::throttled(200).contains("Try again in 4 minutes"));
    }
}
