//! The configuration's tests, by concept: passkeys, the database, Web Push, the first hour.

mod passkey_settings {
    use super::super::Config;

    #[test]
    fn passkey_attestation_roots_must_be_readable_pem_certificates_and_reach_the_settings() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let error = Config::from_toml(&format!(
            "[passkeys]\nattestation_roots = [{:?}]",
            missing.display().to_string()
        ))
        .unwrap_err();
        assert!(format!("{error:#}").contains("passkeys.attestation_roots"));
        let not_pem = dir.path().join("root.txt");
        std::fs::write(&not_pem, "hello").unwrap();
        let error = Config::from_toml(&format!(
            "[passkeys]\nattestation_roots = [{:?}]",
            not_pem.display().to_string()
        ))
        .unwrap_err();
        assert!(format!("{error:#}").contains("not a PEM certificate"));
        let pem = dir.path().join("root.pem");
        let text = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        std::fs::write(&pem, text).unwrap();
        let config = Config::from_toml(&format!(
            "[passkeys]\nattestation_roots = [{:?}]",
            pem.display().to_string()
        ))
        .unwrap();
        assert_eq!(
            config.settings().passkey_attestation_roots,
            vec![text.to_string()]
        );
        assert!(
            Config::from_toml("")
                .unwrap()
                .settings()
                .passkey_attestation_roots
                .is_empty()
        );
    }
}

mod database_settings {
    use super::super::{Config, Database};

    #[test]
    fn database_url_chooses_sqlite_by_default_and_postgresql_by_url() {
        let config = Config::from_toml("").unwrap();
        assert_eq!(config.database().unwrap(), Database::Sqlite);
        for sqlite in ["sqlite:", "sqlite://", "", "  "] {
            let config = Config::from_toml(&format!("database_url = {sqlite:?}")).unwrap();
            assert_eq!(config.database().unwrap(), Database::Sqlite, "{sqlite:?}");
        }
        let url = "postgres://latchkey@db.internal:5432/latchkey";
        let config = Config::from_toml(&format!("database_url = {url:?}")).unwrap();
        assert_eq!(config.database().unwrap(), Database::Postgres(url));
        assert_eq!(config.database().unwrap().kind(), "postgresql");
    }

    #[test]
    fn unusable_database_urls_are_refused_without_quoting_them() {
        let password = "pw-Mm44-hidden";
        for url in [
            format!("mysql://root:{password}@localhost/latchkey"),
            format!("postgres://root:{password}@[broken/latchkey"),
            format!("sqlite:///var/lib/{password}.db"),
        ] {
            let error = Config::from_toml(&format!("database_url = {url:?}")).unwrap_err();
            let text = format!("{error:#}");
            assert!(text.contains("database_url"), "{text}");
            assert!(!text.contains(password), "the URL is not quoted: {text}");
        }
    }

    #[test]
    fn the_pool_size_and_both_timeouts_are_settings_within_bounds() {
        let config = Config::from_toml(
            "database_url = \"postgres://l@h/db\"\n[database]\nmax_connections = 25\nstatement_timeout_seconds = 9\nacquire_timeout_seconds = 2",
        )
        .unwrap();
        let settings = config.postgres_settings();
        assert_eq!(settings.max_connections, 25);
        assert_eq!(
            settings.statement_timeout,
            std::time::Duration::from_secs(9)
        );
        assert_eq!(settings.acquire_timeout, std::time::Duration::from_secs(2));
        for bad in [
            "[database]\nmax_connections = 0",
            "[database]\nmax_connections = 5000",
            "[database]\nstatement_timeout_seconds = 0",
            "[database]\nstatement_timeout_seconds = 601",
            "[database]\nacquire_timeout_seconds = 0",
            "[database]\nacquire_timeout_seconds = 61",
            "[database]\nsize = 3",
        ] {
            assert!(Config::from_toml(bad).is_err(), "{bad}");
        }
    }
}

mod web_push_settings {
    use super::super::Config;

    #[test]
    fn web_push_settings_are_checked_and_the_subject_falls_back_to_the_public_url() {
        let config = Config::from_toml("").unwrap();
        assert!(config.web_push.enabled, "on by default");
        assert!(
            !config.web_push.allow_private_endpoints,
            "public push services only"
        );
        assert_eq!(
            config.web_push.subject("https://id.contoso.example/"),
            "https://id.contoso.example"
        );
        for bad in [
            "[web_push]\ntimeout_seconds = 0",
            "[web_push]\ntimeout_seconds = 61",
            "[web_push]\ncontact = \"admin@example.com\"",
            "[web_push]\ncontact = \"http://example.com\"",
            "[web_push]\ncontact = \"mailto:nobody\"",
            "[web_push]\nroot_certificates = [\"/nonexistent/ca.pem\"]",
            "[web_push]\nallow_private = true",
        ] {
            let error = Config::from_toml(bad).unwrap_err();
            assert!(
                format!("{error:#}").contains("web_push"),
                "{bad}: {error:#}"
            );
        }
        let config =
            Config::from_toml("[web_push]\ncontact = \"mailto:admin@example.com\"").unwrap();
        assert_eq!(
            config.web_push.subject("http://localhost:8080"),
            "mailto:admin@example.com"
        );
    }
}

mod first_hour_settings {
    use super::super::{Config, split_list};

    #[test]
    fn public_url_is_derived_from_listen_when_not_set() {
        for (listen, url) in [
            ("0.0.0.0:9000", "http://localhost:9000"),
            ("[::]:9000", "http://localhost:9000"),
            ("127.0.0.1:8443", "http://localhost:8443"),
            ("[::1]:8080", "http://localhost:8080"),
            ("192.0.2.10:80", "http://192.0.2.10"),
            ("[2001:db8::1]:9000", "http://[2001:db8::1]:9000"),
        ] {
            let config = Config::from_toml(&format!("listen = {listen:?}")).unwrap();
            assert_eq!(config.public_url, url, "{listen}");
            assert!(config.public_url_derived);
        }
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, "").unwrap();
        std::fs::write(&key, "").unwrap();
        let config = Config::from_toml(&format!(
            "listen = \"0.0.0.0:8443\"\n[tls]\ncert = {:?}\nkey = {:?}",
            cert.display().to_string(),
            key.display().to_string()
        ))
        .unwrap();
        assert_eq!(config.public_url, "https://localhost:8443");
        let config = Config::from_toml(
            "listen = \"0.0.0.0:9000\"\npublic_url = \"https://id.contoso.example\"",
        )
        .unwrap();
        assert_eq!(config.public_url, "https://id.contoso.example");
        assert!(!config.public_url_derived, "a set public_url is kept");
        let config = Config::from_toml("").unwrap();
        assert_eq!(
            config.public_url, "http://localhost:8080",
            "the defaults agree"
        );
    }

    #[test]
    fn comma_separated_lists_split_and_every_list_setting_is_known() {
        assert_eq!(
            split_list("127.0.0.1/32, 10.0.0.0/8,,"),
            vec!["127.0.0.1/32", "10.0.0.0/8"]
        );
        assert!(split_list("").is_empty());
        let lists = Config::list_settings();
        for path in [
            "trusted_proxies",
            "geoip.databases",
            "web_push.root_certificates",
            "passkeys.attestation_roots",
        ] {
            assert!(lists.iter().any(|l| l == path), "{path}: {lists:?}");
        }
    }

    #[test]
    fn effective_settings_show_every_setting_and_never_a_secret() {
        let config = Config::from_toml(
            "trusted_proxies = [\"10.0.0.0/8\"]\n\
             database_url = \"postgres://latchkey:pw-Zt19@db.internal/latchkey\"\n\
             [metrics]\ntoken = \"metrics-token-Yq20-long-enough\"\n\
             [webhooks]\nrisk_url = \"https://hooks.example/x\"\nsecret = \"webhook-secret-Vb33-long\"",
        )
        .unwrap();
        let settings = config.effective_settings();
        let value = |key: &str| {
            settings
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("{key} is shown: {settings:?}"))
        };
        assert_eq!(value("trusted_proxies"), "10.0.0.0/8");
        assert_eq!(value("geoip.databases"), "none");
        assert_eq!(value("metrics.token"), "set");
        assert_eq!(value("webhooks.secret"), "set");
        assert_eq!(value("tls"), "not set");
        assert_eq!(
            value("database_url"),
            "postgres://latchkey:***@db.internal/latchkey (postgresql)"
        );
        assert_eq!(value("throttle.wrong_numbers_per_user.limit"), "3");
        let all = format!("{settings:?}");
        for secret in ["pw-Zt19", "Yq20", "Vb33"] {
            assert!(!all.contains(secret), "{secret}: {all}");
        }
    }
}
