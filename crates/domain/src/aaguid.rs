//! Authenticator names by AAGUID, from a shipped table (`aaguid/aaguid_names.json`; where it
//! comes from and its status are in `aaguid/LICENSE.md`). Used only to name a passkey on the
//! security-info page and in the sign-in log: an AAGUID is what the authenticator says it is,
//! so nothing is ever decided by the name.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

const TABLE: &str = include_str!("aaguid/aaguid_names.json");

#[derive(Deserialize)]
struct Entry {
    name: String,
}

fn table() -> &'static HashMap<String, String> {
    static NAMES: OnceLock<HashMap<String, String>> = OnceLock::new();
    NAMES.get_or_init(|| parse(TABLE))
}

/// The table's names by lowercase AAGUID. A table that does not parse (or the retired list's
/// `{}`) names nothing rather than failing.
fn parse(text: &str) -> HashMap<String, String> {
    serde_json::from_str::<HashMap<String, Entry>>(text)
        .map(|entries| {
            entries
                .into_iter()
                .map(|(aaguid, entry)| (aaguid.to_ascii_lowercase(), entry.name))
                .filter(|(_, name)| !name.trim().is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// The authenticator's name for a lowercase, hyphenated AAGUID, when the table knows it.
pub fn authenticator_name(aaguid: &str) -> Option<&'static str> {
    table()
        .get(&aaguid.to_ascii_lowercase())
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_aaguids_have_names_and_unknown_ones_none() {
        assert_eq!(
            authenticator_name("08987058-CADC-4B81-B6E1-30DE50DCBE96"),
            Some("Windows Hello")
        );
        // Chromium's virtual authenticator is not in the table.
        assert_eq!(
            authenticator_name("01020304-0506-0708-0102-030405060708"),
            None
        );
    }

    #[test]
    fn a_retired_or_broken_table_names_nothing() {
        assert!(parse("{}").is_empty());
        assert!(parse("not json").is_empty());
        assert_eq!(
            parse(r#"{"AB": {"name": "X"}}"#)
                .get("ab")
                .map(String::as_str),
            Some("X")
        );
    }
}
