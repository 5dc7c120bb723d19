//! Reading a policy's method configurations and checking a whole policy before it is saved.

use super::*;

impl AuthenticationMethodsPolicy {
    pub fn configuration(&self, kind: MethodKind) -> MethodConfiguration {
        match kind {
            MethodKind::MicrosoftAuthenticator => {
                MethodConfiguration::Authenticator(self.authenticator.clone())
            }
            MethodKind::Fido2 => MethodConfiguration::Fido2(self.fido2.clone()),
            MethodKind::TemporaryAccessPass => {
                MethodConfiguration::TemporaryAccessPass(self.temporary_access_pass.clone())
            }
            MethodKind::X509Certificate => {
                MethodConfiguration::X509Certificate(self.x509_certificate.clone())
            }
            MethodKind::Password => MethodConfiguration::Password(self.password.clone()),
        }
    }

    /// A copy with one method's configuration replaced (not yet validated).
    pub fn with(&self, configuration: MethodConfiguration) -> AuthenticationMethodsPolicy {
        let mut next = self.clone();
        match configuration {
            MethodConfiguration::Authenticator(c) => next.authenticator = c,
            MethodConfiguration::Fido2(c) => next.fido2 = c,
            MethodConfiguration::TemporaryAccessPass(c) => next.temporary_access_pass = c,
            MethodConfiguration::X509Certificate(c) => next.x509_certificate = c,
            MethodConfiguration::Password(c) => next.password = c,
        }
        next
    }

    /// Checks the whole policy; `group_exists` answers whether a group id is known.
    pub fn validate(&self, group_exists: &dyn Fn(&GroupId) -> bool) -> Result<(), DomainError> {
        let check_target = |field: &'static str, target: &Target| match target {
            Target::Group(id) if !group_exists(id) => Err(DomainError::invalid(
                field,
                format!("group {id} does not exist"),
            )),
            _ => Ok(()),
        };
        for kind in MethodKind::ALL {
            let config = self.configuration(kind);
            let targeting = config.targeting();
            let prefix = kind.id();
            if targeting.include_targets.len() > 50 || targeting.exclude_targets.len() > 50 {
                return Err(DomainError::invalid(
                    "includeTargets",
                    format!("{prefix}: at most 50 targets"),
                ));
            }
            for include in &targeting.include_targets {
                check_target("includeTargets", &include.target)?;
                match (kind, include.authentication_mode) {
                    (MethodKind::MicrosoftAuthenticator, None) => {
                        return Err(DomainError::invalid(
                            "includeTargets.authenticationMode",
                            "is required for the authenticator app",
                        ));
                    }
                    (MethodKind::MicrosoftAuthenticator, Some(_)) | (_, None) => {}
                    (_, Some(_)) => {
                        return Err(DomainError::invalid(
                            "includeTargets.authenticationMode",
                            format!("applies only to the authenticator app, not {prefix}"),
                        ));
                    }
                }
            }
            for exclude in &targeting.exclude_targets {
                if *exclude == Target::AllUsers {
                    return Err(DomainError::invalid(
                        "excludeTargets",
                        "cannot exclude all users; disable the method instead",
                    ));
                }
                check_target("excludeTargets", exclude)?;
            }
        }
        for feature in Feature::ALL {
            let setting = self.authenticator.feature_settings.setting(feature);
            check_target("featureSettings.includeTarget", &setting.include_target)?;
            if let Some(exclude) = &setting.exclude_target {
                if *exclude == Target::AllUsers {
                    return Err(DomainError::invalid(
                        "featureSettings.excludeTarget",
                        "cannot exclude all users; disable the feature instead",
                    ));
                }
                check_target("featureSettings.excludeTarget", exclude)?;
            }
        }
        if self
            .authenticator
            .feature_settings
            .number_matching_required_state
            .state
            == FeatureState::Disabled
        {
            return Err(DomainError::invalid(
                "featureSettings.numberMatchingRequiredState",
                "number matching is always on for authenticator notifications and cannot be disabled",
            ));
        }
        self.registration_enforcement
            .authentication_methods_registration_campaign
            .validate(group_exists)?;
        let tap = &self.temporary_access_pass;
        validate_pass_rules(&tap.rules()).map_err(|e| match e {
            DomainError::Invalid { field, message } => DomainError::invalid(field, message),
            other => other,
        })?;
        let fido = &self.fido2.key_restrictions;
        if fido.aa_guids.len() > 500 {
            return Err(DomainError::invalid(
                "keyRestrictions.aaGuids",
                "at most 500 AAGUIDs",
            ));
        }
        for guid in &fido.aa_guids {
            if !is_uuid(guid) {
                return Err(DomainError::invalid(
                    "keyRestrictions.aaGuids",
                    format!("{guid:?} is not an AAGUID (a UUID)"),
                ));
            }
        }
        let x509 = &self.x509_certificate;
        let mut priorities = std::collections::BTreeSet::new();
        for binding in &x509.certificate_user_bindings {
            if !priorities.insert(binding.priority) {
                return Err(DomainError::invalid(
                    "certificateUserBindings.priority",
                    format!(
                        "priority {} is used twice; each binding needs its own",
                        binding.priority
                    ),
                ));
            }
            if binding.trust_affinity_level == Affinity::High
                && binding.x509_certificate_field.natural_affinity() == Affinity::Low
            {
                return Err(DomainError::invalid(
                    "certificateUserBindings.trustAffinityLevel",
                    format!(
                        "{:?} is a low-affinity field and cannot be bound with high affinity",
                        binding.x509_certificate_field
                    ),
                ));
            }
        }
        for rule in &x509.rules {
            if rule.issuer_subject.is_none() && rule.policy_oid.is_none() {
                return Err(DomainError::invalid(
                    "rules",
                    "a rule needs an issuerSubject, a policyOid or both",
                ));
            }
            if let Some(oid) = &rule.policy_oid
                && !is_oid(oid)
            {
                return Err(DomainError::invalid(
                    "rules.policyOid",
                    format!("{oid:?} is not an OID such as 1.2.3.4"),
                ));
            }
        }
        for ca in &x509.certificate_authorities {
            if !ca.certificate.contains("-----BEGIN CERTIFICATE-----") {
                return Err(DomainError::invalid(
                    "certificateAuthorities.certificate",
                    "must be a PEM certificate",
                ));
            }
            if let Some(crl) = &ca.certificate_revocation_list_url {
                let ok = url::Url::parse(crl).is_ok_and(|u| {
                    matches!(u.scheme(), "http" | "https") && u.host_str().is_some()
                });
                if !ok || crl.len() > 2048 {
                    return Err(DomainError::invalid(
                        "certificateAuthorities.certificateRevocationListUrl",
                        format!("{crl:?} is not an http or https URL"),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn is_uuid(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    parts.len() == 5
        && [8, 4, 4, 4, 12]
            .iter()
            .zip(&parts)
            .all(|(len, p)| p.len() == *len && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_oid(value: &str) -> bool {
    let arcs: Vec<&str> = value.split('.').collect();
    arcs.len() >= 2
        && arcs
            .iter()
            .all(|a| !a.is_empty() && a.len() <= 20 && a.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::test_targets::{group, include};
    use serde_json::json;
    fn valid(policy: &AuthenticationMethodsPolicy) -> Result<(), DomainError> {
        policy.validate(&|id: &GroupId| id.as_str() == "known")
    }

    #[test]
    fn the_default_policy_is_valid_and_round_trips() {
        let policy = AuthenticationMethodsPolicy::default();
        valid(&policy).unwrap();
        for kind in MethodKind::ALL {
            let json = serde_json::to_value(policy.configuration(kind)).unwrap();
            let parsed = MethodConfiguration::from_json(kind, json).unwrap();
            assert_eq!(parsed, policy.configuration(kind), "{kind:?}");
        }
    }

    #[test]
    fn invalid_configurations_are_refused_naming_the_field() {
        let base = AuthenticationMethodsPolicy::default();
        let mut unknown_group = base.clone();
        unknown_group.authenticator.targeting.include_targets = vec![include(
            Target::Group(group("nope")),
            AuthenticationMode::Any,
        )];
        let mut min_over_max = base.clone();
        min_over_max
            .temporary_access_pass
            .minimum_lifetime_in_minutes = 500;
        let mut duplicate_priority = base.clone();
        duplicate_priority
            .x509_certificate
            .certificate_user_bindings
            .push(
                duplicate_priority
                    .x509_certificate
                    .certificate_user_bindings[0]
                    .clone(),
            );
        let mut no_number_matching = base.clone();
        no_number_matching
            .authenticator
            .feature_settings
            .number_matching_required_state
            .state = FeatureState::Disabled;
        let mut mode_on_password = base.clone();
        mode_on_password.password.targeting.include_targets[0].authentication_mode =
            Some(AuthenticationMode::Any);
        let mut bad_guid = base.clone();
        bad_guid.fido2.key_restrictions.aa_guids = vec!["not-a-guid".into()];
        for (policy, field) in [
            (unknown_group, "includeTargets"),
            (min_over_max, "LifetimeInMinutes"),
            (duplicate_priority, "priority"),
            (no_number_matching, "numberMatching"),
            (mode_on_password, "authenticationMode"),
            (bad_guid, "aaGuids"),
        ] {
            let error = valid(&policy).unwrap_err().to_string();
            assert!(error.contains(field), "{error} should name {field}");
        }
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_refused_by_name() {
        let mut json = serde_json::to_value(
            AuthenticationMethodsPolicy::default()
                .configuration(MethodKind::MicrosoftAuthenticator),
        )
        .unwrap();
        json["surprise"] = json!(true);
        let error = MethodConfiguration::from_json(MethodKind::MicrosoftAuthenticator, json)
            .unwrap_err()
            .to_string();
        assert!(error.contains("surprise"), "{error}");
        let mut json = serde_json::to_value(
            AuthenticationMethodsPolicy::default()
                .configuration(MethodKind::MicrosoftAuthenticator),
        )
        .unwrap();
        json["includeTargets"][0]["colour"] = json!("blue");
        let error = MethodConfiguration::from_json(MethodKind::MicrosoftAuthenticator, json)
            .unwrap_err()
            .to_string();
        assert!(error.contains("includeTargets[0].colour"), "{error}");
        let mut json = serde_json::to_value(
            AuthenticationMethodsPolicy::default().configuration(MethodKind::TemporaryAccessPass),
        )
        .unwrap();
        json["defaultLength"] = json!("eight");
        let error = MethodConfiguration::from_json(MethodKind::TemporaryAccessPass, json)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("eight") || error.contains("invalid type"),
            "{error}"
        );
        let graph_shape = json!({"state": "enabled", "includeTargets": [{"targetType": "group", "id": "all_users", "authenticationMode": "deviceBasedPush"}],
            "excludeTargets": [], "featureSettings": serde_json::to_value(AuthenticatorFeatures::default()).unwrap()});
        let parsed =
            MethodConfiguration::from_json(MethodKind::MicrosoftAuthenticator, graph_shape)
                .unwrap();
        assert_eq!(
            parsed.targeting().include_targets[0].authentication_mode,
            Some(AuthenticationMode::Passwordless)
        );
    }
}
