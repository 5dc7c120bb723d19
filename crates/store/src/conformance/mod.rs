//! The conformance suite: what every store must do, checked through the ports alone.
//!
//! Each check is named after the behaviour it guarantees or the attack it stops, so a failure
//! reads as a broken promise rather than a broken line. The checks live beside the port they
//! hold to its word (`users`, `groups`, … `admin_tokens`, `passkeys`), and
//! [`store_conformance_tests!`](crate::store_conformance_tests) turns every one of them into its
//! own named `#[tokio::test]` for a given store, so the SQLite store and any later one run
//! exactly the same named checks, and one failure never hides the rest.
//!
//! Checks create their own rows with fresh random ids and names, so they can also share one
//! database and run in any order ([`CHECKS`] lists them for that). Some act on the whole
//! database, not only on rows they created: `grants::signing_keys_retire_except_kept` retires
//! every other unretired key, `maintenance::purge_removes_only_expired` purges everything that
//! expired before a date in 1970, `governance::purge_logs_removes_only_old_records` purges every
//! log entry from before a date in 1970, and the policy checks save new versions of the one,
//! global authentication methods policy (each reads the stored version first and builds on it).
//! Run the suite against a scratch database, never a live one.
//!
//! `governance::policy_is_absent_until_first_save` can only hold on an empty database, so it
//! never shares one.

use std::future::Future;
use std::pin::Pin;

use latchkey_domain::store::Store;

pub mod admin_tokens;
pub mod applications;
pub mod campaign;
pub mod device_authorizations;
pub mod devices;
mod fixtures;
pub mod governance;
pub mod grants;
pub mod groups;
pub mod maintenance;
pub mod passkeys;
pub mod push;
pub mod sessions;
pub mod throttles;
pub mod users;

/// A store made for one test, with whatever keeps it alive (a scratch directory, a server).
/// `store_conformance_tests!` makes one per check and closes it once the check has passed.
pub trait ScratchStore {
    fn store(&self) -> &dyn Store;
    /// Shuts the store down cleanly.
    fn close(self) -> impl Future<Output = ()>;
}

/// A check, started on a store.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// One check of the suite, for running them one after another on one database.
pub struct Check {
    pub name: &'static str,
    /// False for a check that only holds on an empty database.
    pub shares_a_database: bool,
    pub run: for<'a> fn(&'a dyn Store) -> CheckFuture<'a>,
}

crate::__conformance_checks!(@checks);

/// Expands to one `#[tokio::test]` per conformance check, named after the check, each on a
/// fresh store from `$factory` (an `async fn() -> impl ScratchStore`). Checks that race
/// concurrent callers run on a multi-threaded runtime. Invoke it inside a test module of a
/// crate that depends on `tokio` with its `macros` feature:
///
/// ```ignore
/// mod conformance {
///     latchkey_store::store_conformance_tests!(super::scratch_store);
/// }
/// ```
#[macro_export]
macro_rules! store_conformance_tests {
    ($factory:path) => {
        $crate::__conformance_checks!(@tests $factory);
    };
}

/// The one list of checks, each with how it runs: `shared` (any database), `racing`
/// (concurrent callers, so also on a multi-threaded runtime) or `fresh` (an empty database
/// only). A new check is added here and nowhere else.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_checks {
    ($($mode:tt)*) => {
        $crate::__conformance_expand! { $($mode)* ;
            shared maintenance::store_answers_ping,
            shared maintenance::purge_removes_only_expired,
            shared users::user_round_trips,
            shared users::upn_is_unique,
            shared users::updating_a_user_changes_it,
            shared users::updating_a_missing_user_is_not_found,
            shared users::updating_a_user_to_a_taken_upn_is_a_conflict,
            shared users::password_hash_is_set_and_cleared,
            shared users::certificate_user_ids_round_trip_and_find_their_user,
            shared users::a_certificate_user_id_belongs_to_one_user,
            shared groups::group_round_trips,
            shared groups::group_name_is_unique_ignoring_case,
            shared groups::group_membership_is_idempotent,
            shared groups::the_administrator_role_is_bound_to_one_group_id,
            shared applications::application_round_trips,
            shared applications::client_id_is_unique,
            shared applications::deleting_an_application_removes_it,
            shared applications::an_applications_required_strength_can_be_changed_and_cleared,
            shared applications::an_applications_settings_can_be_updated_but_not_its_identity_or_secret,
            shared applications::assignments_round_trip_and_a_second_one_of_a_principal_is_a_conflict,
            shared applications::assigning_an_unknown_application_user_or_group_is_not_found,
            shared applications::a_user_is_assigned_directly_or_through_a_group_until_removed,
            shared governance::a_sign_in_record_appended_on_its_own_is_listed,
            shared sessions::putting_a_pass_replaces_the_previous_one,
            shared sessions::one_time_pass_is_spent_once,
            racing sessions::concurrent_use_of_a_one_time_pass_has_one_winner,
            shared sessions::multi_use_pass_can_be_used_again,
            shared sessions::wrong_pass_is_not_marked_used,
            shared sessions::deleted_pass_is_gone,
            shared sessions::session_round_trips,
            shared sessions::session_token_hash_is_unique,
            shared sessions::revoking_a_session_revokes_only_that_session,
            shared sessions::revoking_a_user_revokes_sessions_and_grants,
            shared sessions::revoking_a_session_revokes_its_grants,
            shared sessions::moved_grants_are_revoked_with_the_session_they_moved_to,
            shared sessions::sign_in_round_trips,
            shared sessions::sign_in_moves_forward_when_put_again,
            shared sessions::completed_sign_in_creates_session_removes_pending_and_logs,
            shared sessions::failed_sign_in_keeps_or_ends_pending_and_logs,
            shared sessions::complete_sign_in_with_a_refused_session_changes_nothing,
            shared sessions::sign_in_outcomes_that_cannot_be_logged_change_nothing,
            shared sessions::a_sign_in_completes_at_most_once,
            shared sessions::a_completion_stores_its_code_with_the_session_or_neither,
            shared governance::sign_in_log_filters_by_user_app_status_method_and_time,
            shared governance::sign_in_log_pages_newest_first,
            shared governance::sign_in_log_filter_values_are_data_not_sql,
            shared governance::audit_log_filters_by_category_and_actor,
            shared governance::audit_event_ids_are_unique,
            fresh governance::policy_is_absent_until_first_save,
            shared governance::stale_policy_version_is_refused_and_changes_nothing,
            shared governance::policy_save_writes_its_audit_event,
            shared governance::policy_is_not_saved_when_its_audit_event_is_not,
            racing governance::concurrent_policy_saves_of_one_version_have_one_winner,
            shared governance::purge_logs_removes_only_old_records,
            racing governance::reported_risk_is_recorded_and_dismissed_once,
            shared governance::sign_in_countries_are_remembered_once_each_and_per_user,
            shared governance::the_latest_refusal_is_kept_even_when_an_older_one_arrives_late,
            shared governance::sign_in_history_of_an_unknown_user_is_not_found,
            shared grants::grant_round_trips,
            shared grants::code_is_fresh_on_first_redemption,
            shared grants::replayed_code_is_reported_as_replay,
            shared grants::unknown_code_is_unknown,
            racing grants::concurrent_redeem_of_a_code_has_one_winner,
            shared grants::a_grant_is_stored_with_its_code,
            shared grants::a_redemption_stores_what_it_issues_and_a_replay_stores_nothing,
            shared grants::access_token_is_returned_even_when_expired,
            shared grants::deleted_access_token_is_gone_and_only_it,
            shared grants::live_grants_of_a_session_and_of_a_user,
            shared grants::refresh_token_rotation_reports_reuse,
            racing grants::concurrent_redeem_of_a_refresh_token_has_one_winner,
            shared grants::signing_key_round_trips,
            shared grants::signing_keys_retire_except_kept,
            fresh grants::signing_key_rotation_is_a_compare_and_swap,
            racing grants::server_secret_is_created_once,
            shared grants::codes_and_refresh_tokens_are_read_without_being_spent,
            shared grants::a_mark_is_remembered_once_until_it_expires,
            racing grants::concurrent_remember_of_one_mark_has_one_winner,
            shared devices::device_round_trips_and_updates,
            racing devices::activation_is_redeemed_once_even_when_raced,
            shared devices::expired_activation_cannot_be_redeemed,
            racing devices::device_nonce_is_accepted_once,
            shared devices::a_nonce_takes_its_throttle_slot_in_the_same_write,
            racing devices::concurrent_answers_settle_an_approval_once,
            shared devices::settling_changes_only_the_outcome_in_the_stored_approval,
            shared devices::settling_logs_in_the_same_write,
            racing devices::only_one_sign_in_approval_waits_per_user_even_when_raced,
            shared devices::notification_flood_is_cut_off_by_the_slots_taken_with_the_request,
            shared devices::a_sign_in_moves_to_the_number_page_only_with_its_stored_request,
            racing devices::devices_stop_at_the_limit_even_when_activations_are_redeemed_in_parallel,
            shared devices::open_activations_stop_at_the_limit_and_used_or_expired_ones_do_not_count,
            racing devices::pin_checks_count_wrong_pins_and_lock_at_the_limit_even_when_raced,
            shared devices::allowing_phone_sign_in_is_recorded_and_cleared_by_turning_it_on_or_off,
            shared devices::webauthn_device_round_trips_and_turns_off,
            racing devices::concurrent_webauthn_uses_of_a_device_have_one_winner,
            racing throttles::throttle_counts_to_its_limit_even_when_raced_and_starts_over_each_window,
            shared throttles::familiar_places_are_remembered_per_user_and_old_ones_forgotten,
            shared admin_tokens::admin_tokens_are_found_by_hash_revoked_once_and_touched_at_most_once_a_period,
            shared admin_tokens::legacy_admin_token_hashes_are_replaced_once,
            shared passkeys::passkeys_round_trip_by_id_user_and_credential_id,
            shared passkeys::a_credential_id_is_registered_once_across_all_users,
            shared passkeys::passkeys_are_renamed_and_removed_only_for_their_owner,
            racing passkeys::concurrent_uses_of_one_counter_have_one_winner,
            racing passkeys::concurrent_takes_of_one_ceremony_have_one_winner,
            shared passkeys::expired_ceremonies_are_not_returned_and_are_purged,
            shared campaign::campaign_snoozes_count_up_to_the_limit_and_no_further,
            racing campaign::concurrent_campaign_snoozes_never_pass_the_limit,
            racing campaign::campaign_interrupts_are_per_session_taken_once_and_expire,
            racing push::the_vapid_key_is_made_once_even_when_instances_start_together,
            shared push::a_device_has_one_push_subscription_and_a_new_one_replaces_it,
            shared push::push_subscriptions_go_with_their_device,
            shared device_authorizations::device_authorizations_round_trip_by_either_code_and_codes_are_unique,
            racing device_authorizations::a_device_authorization_is_decided_once_even_when_raced,
            racing device_authorizations::an_approved_device_authorization_is_redeemed_once_even_when_raced,
            shared device_authorizations::device_polls_are_recorded_and_expired_authorizations_purged,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_expand {
    (@tests $factory:path ; $($kind:ident $module:ident :: $name:ident,)*) => {
        $( $crate::__conformance_expand!(@test $kind $factory, $module, $name); )*
    };
    (@test racing $factory:path, $module:ident, $name:ident) => {
        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            $crate::__conformance_expand!(@body $factory, $module, $name);
        }
    };
    (@test $kind:ident $factory:path, $module:ident, $name:ident) => {
        #[::tokio::test]
        async fn $name() {
            $crate::__conformance_expand!(@body $factory, $module, $name);
        }
    };
    (@body $factory:path, $module:ident, $name:ident) => {
        let scratch = $factory().await;
        $crate::conformance::$module::$name($crate::conformance::ScratchStore::store(&scratch))
            .await;
        $crate::conformance::ScratchStore::close(scratch).await;
    };
    (@checks ; $($kind:ident $module:ident :: $name:ident,)*) => {
        /// Every check, in the order of [`store_conformance_tests!`](crate::store_conformance_tests).
        pub const CHECKS: &[Check] = &[
            $(
                Check {
                    name: stringify!($name),
                    shares_a_database: $crate::__conformance_expand!(@shares $kind),
                    run: |store| Box::pin($module::$name(store)),
                },
            )*
        ];
    };
    (@shares fresh) => { false };
    (@shares $kind:ident) => { true };
}
