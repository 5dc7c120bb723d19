//! Unusual sign-ins: when Latchkey creates a sign-in request but does not push it to the
//! user's devices, so that the person has to open the app and look for it.
//!
//! A push that arrives unasked is what an attacker with a stolen user name counts on: the user
//! taps Approve to make it go away. A request that waits silently can only be approved by
//! someone who is at the browser and goes to the app on purpose. Nothing here refuses a
//! sign-in; it only decides whether the notification is pushed or left to be pulled.
//!
//! This module judges; it never reads the store (the service gathers the [`SignInHistory`]).

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::location::Location;

/// How long after the user denied or reported a request further requests are held back, when
/// the policy switch is on. A day covers an attack that is still going on (the attacker tries
/// again within minutes or hours) without leaving a user who once tapped Deny by mistake on
/// pull-only for longer than that.
pub const RECENT_REFUSAL_SECONDS: i64 = 24 * 60 * 60;

/// Why a request was created but not pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HeldBack {
    /// The user reported a sign-in as not theirs and an administrator has not dismissed the
    /// risk yet. Always applies, whatever the policy says.
    UserAtRisk,
    /// The user denied or reported a request within [`RECENT_REFUSAL_SECONDS`].
    RecentDenial,
    /// The sign-in's country is not one any of the user's successful sign-ins came from.
    UnfamiliarCountry,
}

impl HeldBack {
    pub const ALL: [HeldBack; 3] = [
        HeldBack::UserAtRisk,
        HeldBack::RecentDenial,
        HeldBack::UnfamiliarCountry,
    ];

    /// The sign-in log's words for it (`status.additionalDetails`); stable, documented in
    /// `docs/logs.md`.
    pub fn log_detail(self) -> &'static str {
        match self {
            HeldBack::UserAtRisk => "Notification not pushed: user at risk",
            HeldBack::RecentDenial => "Notification not pushed: recent denial",
            HeldBack::UnfamiliarCountry => "Notification not pushed: unfamiliar country",
        }
    }
}

/// What Latchkey remembers about a user's past sign-ins, for telling an unusual one apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignInHistory {
    /// The countries (ISO 3166-1 alpha-2, upper case) successful sign-ins came from.
    pub countries: Vec<String>,
    /// When the user last denied or reported a sign-in request.
    pub last_refusal: Option<Timestamp>,
}

/// The key a location is remembered by: its two-letter country code, upper case. `None` when
/// the location is unknown (no database, a private or unplaceable address) or has no code.
pub fn country_key(location: Option<&Location>) -> Option<String> {
    let code = location?.country_code.as_deref()?.trim();
    (code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic()))
        .then(|| code.to_ascii_uppercase())
}

/// Whether a sign-in from `country` is unusual for a user with `history`, and why; `None` when
/// it is not. A recent refusal is named before an unfamiliar country.
///
/// Not unusual: a user with no remembered country at all (their first sign-in, or the first
/// since the record began, must still be pushed, or nobody could ever start), and a sign-in
/// whose country is unknown (that says nothing about the user, only about the address).
pub fn judge(country: Option<&str>, history: &SignInHistory, now: Timestamp) -> Option<HeldBack> {
    if history
        .last_refusal
        .is_some_and(|at| now.0 - at.0 < RECENT_REFUSAL_SECONDS)
    {
        return Some(HeldBack::RecentDenial);
    }
    let country = country?;
    let familiar = history.countries.is_empty()
        || history
            .countries
            .iter()
            .any(|seen| seen.eq_ignore_ascii_case(country));
    (!familiar).then_some(HeldBack::UnfamiliarCountry)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_800_000_000);

    fn seen(countries: &[&str]) -> SignInHistory {
        SignInHistory {
            countries: countries.iter().map(|c| c.to_string()).collect(),
            last_refusal: None,
        }
    }

    #[test]
    fn a_new_country_is_unusual_once_there_is_history() {
        assert_eq!(
            judge(Some("AU"), &seen(&["GB"]), NOW),
            Some(HeldBack::UnfamiliarCountry)
        );
        assert_eq!(judge(Some("GB"), &seen(&["GB", "FR"]), NOW), None);
        assert_eq!(judge(Some("gb"), &seen(&["GB"]), NOW), None);
    }

    #[test]
    fn the_first_sign_in_and_unknown_places_are_not_unusual() {
        assert_eq!(judge(Some("AU"), &seen(&[]), NOW), None, "first sign-in");
        assert_eq!(judge(None, &seen(&["GB"]), NOW), None, "unknown place");
    }

    #[test]
    fn a_refusal_holds_back_for_a_day_and_no_longer() {
        let refused = |ago: i64| SignInHistory {
            countries: vec!["GB".into()],
            last_refusal: Some(Timestamp(NOW.0 - ago)),
        };
        assert_eq!(
            judge(Some("GB"), &refused(60), NOW),
            Some(HeldBack::RecentDenial)
        );
        assert_eq!(
            judge(None, &refused(RECENT_REFUSAL_SECONDS - 1), NOW),
            Some(HeldBack::RecentDenial)
        );
        assert_eq!(
            judge(Some("GB"), &refused(RECENT_REFUSAL_SECONDS), NOW),
            None
        );
        assert_eq!(
            judge(Some("AU"), &refused(60), NOW),
            Some(HeldBack::RecentDenial),
            "a recent refusal is named first"
        );
    }

    #[test]
    fn countries_are_keyed_by_their_code() {
        let place = |code: Option<&str>| Location {
            country: Some("Australia".into()),
            country_code: code.map(str::to_string),
            ..Default::default()
        };
        assert_eq!(country_key(Some(&place(Some("au")))).as_deref(), Some("AU"));
        assert_eq!(country_key(Some(&place(None))), None);
        assert_eq!(country_key(Some(&place(Some("ZZZ")))), None);
        assert_eq!(country_key(None), None);
    }
}
