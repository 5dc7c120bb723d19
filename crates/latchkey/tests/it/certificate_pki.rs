//! A test PKI for certificate sign-in, made with rcgen: certificate authorities, client
//! certificates with the fields the bindings and rules read, revocation lists served from a
//! loopback HTTP server, and the certificate host a test server serves.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CustomExtension, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, OtherNameValue,
    RevokedCertParams, SanType, SerialNumber,
};
use reqwest::redirect::Policy;
use time::OffsetDateTime;

use super::support::{Browser, Page, TestServer, TestServerBuilder};

const DAY: i64 = 86_400;

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).unwrap()
}

pub struct Ca {
    pub pem: String,
    params: CertificateParams,
    key: KeyPair,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Contoso");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = at(now() - 365 * DAY);
        params.not_after = at(now() + 10 * 365 * DAY);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            params,
            key,
        }
    }

    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }

    /// A revocation list naming `serials`, current for a day.
    pub fn crl(&self, serials: &[u64]) -> Vec<u8> {
        let params = CertificateRevocationListParams {
            this_update: at(now() - 60),
            next_update: at(now() + DAY),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from(*s),
                    revocation_time: at(now() - 30),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params.signed_by(&self.issuer()).unwrap().der().to_vec()
    }
}

/// What goes into a client certificate.
#[derive(Clone)]
pub struct Leaf {
    pub common_name: String,
    pub principal_name: Option<String>,
    /// More SAN principal names after the first.
    pub more_principal_names: Vec<String>,
    pub email: Option<String>,
    pub policy_oids: Vec<Vec<u64>>,
    pub serial: u64,
    pub not_before: i64,
    pub not_after: i64,
}

/// A client certificate and its key, as PEM (what `curl --cert --key` and a browser import).
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Issued {
    /// The certificate as nginx's `$ssl_client_escaped_cert` forwards it (URL-encoded PEM).
    pub fn escaped_pem(&self) -> String {
        self.cert_pem
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }
}

impl Leaf {
    pub fn for_upn(upn: &str) -> Leaf {
        Leaf {
            common_name: upn.split('@').next().unwrap().to_string(),
            principal_name: Some(upn.to_string()),
            more_principal_names: vec![],
            email: None,
            policy_oids: vec![],
            serial: 1001,
            not_before: now() - DAY,
            not_after: now() + 365 * DAY,
        }
    }

    pub fn issued_by(&self, ca: &Ca) -> Issued {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, self.common_name.as_str());
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Contoso");
        for upn in self.principal_name.iter().chain(&self.more_principal_names) {
            params.subject_alt_names.push(SanType::OtherName((
                vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3],
                OtherNameValue::Utf8String(upn.clone()),
            )));
        }
        if let Some(email) = &self.email {
            params
                .subject_alt_names
                .push(SanType::Rfc822Name(email.as_str().try_into().unwrap()));
        }
        params.serial_number = Some(SerialNumber::from(self.serial));
        params.not_before = at(self.not_before);
        params.not_after = at(self.not_after);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        if !self.policy_oids.is_empty() {
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    &[2, 5, 29, 32],
                    certificate_policies(&self.policy_oids),
                ));
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca.issuer()).unwrap();
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// DER of `certificatePolicies`: SEQUENCE OF SEQUENCE { OID }.
fn certificate_policies(oids: &[Vec<u64>]) -> Vec<u8> {
    let infos: Vec<u8> = oids
        .iter()
        .flat_map(|oid| tlv(0x30, &tlv(0x06, &oid_body(oid))))
        .collect();
    tlv(0x30, &infos)
}

fn oid_body(arcs: &[u64]) -> Vec<u8> {
    let mut out = vec![(arcs[0] * 40 + arcs[1]) as u8];
    for &arc in &arcs[2..] {
        let mut bytes = vec![(arc & 0x7f) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            bytes.push(((rest & 0x7f) as u8) | 0x80);
            rest >>= 7;
        }
        bytes.reverse();
        out.extend(bytes);
    }
    out
}

fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    assert!(body.len() < 128, "short test structures only");
    let mut out = vec![tag, body.len() as u8];
    out.extend_from_slice(body);
    out
}

/// A loopback HTTP server that serves one revocation list at `/ca.crl`.
pub struct CrlServer {
    pub url: String,
    list: Arc<Mutex<Vec<u8>>>,
}

impl CrlServer {
    pub async fn start(der: Vec<u8>) -> CrlServer {
        let list = Arc::new(Mutex::new(der));
        let served = list.clone();
        let app = axum::Router::new().route(
            "/ca.crl",
            axum::routing::get(move || {
                let served = served.clone();
                async move { served.lock().unwrap().clone() }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        CrlServer {
            url: format!("http://{addr}/ca.crl"),
            list,
        }
    }

    pub fn replace(&self, der: Vec<u8>) {
        *self.list.lock().unwrap() = der;
    }
}

/// A test server with its certificate host: Latchkey's own certificate listener on a port of
/// its own, serving a self-signed certificate for `localhost`.
pub struct CertificateHost {
    pub server: TestServer,
    pub url: String,
    pub addr: SocketAddr,
    /// The certificate listener's own (server) certificate, which test clients trust.
    pub server_cert_pem: String,
    _dir: tempfile::TempDir,
}

impl CertificateHost {
    pub async fn start() -> CertificateHost {
        Self::start_with(|builder| builder).await
    }

    pub async fn start_with(
        adjust: impl for<'a> FnOnce(TestServerBuilder<'a>) -> TestServerBuilder<'a>,
    ) -> CertificateHost {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let cert_path = dir.path().join("certauth.pem");
        let key_path = dir.path().join("certauth-key.pem");
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let url = format!("https://localhost:{}", addr.port());
        let public_url = url.clone();
        let builder = TestServer::builder()
            .certificate_listener(listener)
            .config(move |config| {
                config.certificate.listen = Some(addr.to_string());
                config.certificate.public_url = Some(public_url);
                config.certificate.tls_certificate = Some(cert_path);
                config.certificate.tls_key = Some(key_path);
            });
        let server = adjust(builder).start().await;
        CertificateHost {
            server,
            url,
            addr,
            server_cert_pem: cert.pem(),
            _dir: dir,
        }
    }

    /// A browser that has `certificate` installed (or none) and trusts the certificate host.
    pub fn browser(&self, certificate: Option<&Issued>) -> Browser {
        let mut builder = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.server_cert_pem.as_bytes()).unwrap(),
            )
            .resolve("localhost", self.addr);
        if let Some(issued) = certificate {
            let pem = format!("{}{}", issued.cert_pem, issued.key_pem);
            builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        Browser {
            base: self.server.base.clone(),
            http: builder.build().unwrap(),
        }
    }

    /// Turns certificate sign-in on for everyone: `ca` trusted (with its revocation list at
    /// `crl_url`), the given bindings and rules, multi-factor unless a rule says otherwise.
    pub async fn enable(
        &self,
        cas: &[(&Ca, Option<&str>)],
        bindings: serde_json::Value,
        rules: serde_json::Value,
        default_mode: &str,
        require_high_affinity: bool,
    ) {
        let authorities: Vec<serde_json::Value> = cas
            .iter()
            .enumerate()
            .map(|(i, (ca, crl))| {
                let mut authority = serde_json::json!({
                    "certificate": ca.pem,
                    "displayName": format!("Test CA {i}"),
                });
                if let Some(crl) = crl {
                    authority["certificateRevocationListUrl"] = serde_json::json!(crl);
                }
                authority
            })
            .collect();
        let body = serde_json::json!({
            "state": "enabled",
            "includeTargets": [{"targetType": "group", "id": "all_users"}],
            "certificateAuthorities": authorities,
            "certificateUserBindings": bindings,
            "rules": rules,
            "defaultMode": default_mode,
            "requireHighAffinityBinding": require_high_affinity,
        });
        let (status, answer) = self
            .server
            .api_call(
                reqwest::Method::PUT,
                "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/x509Certificate",
                Some(body),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
    }

    /// The default binding, SAN principal name to UPN, with a multi-factor default.
    pub async fn enable_default(&self, ca: &Ca) {
        self.enable(
            &[(ca, None)],
            principal_name_binding(),
            serde_json::json!([]),
            "x509CertificateMultiFactor",
            false,
        )
        .await;
    }
}

pub fn principal_name_binding() -> serde_json::Value {
    serde_json::json!([{
        "x509CertificateField": "PrincipalName",
        "userProperty": "userPrincipalName",
        "priority": 1,
        "trustAffinityLevel": "low",
    }])
}

/// Follows redirects on any host (the certificate host and back); stops at the first page.
pub async fn walk(browser: &Browser, mut page: Page) -> Page {
    for _ in 0..15 {
        match page.location.clone() {
            Some(location) => page = browser.get(&location).await,
            None => return page,
        }
    }
    panic!("too many redirects");
}

/// From the sign-in page `login`: "Use a certificate or smart card", to the certificate host.
/// Returns the certificate host's answer (a redirect back, or its page).
pub async fn choose_certificate(browser: &Browser, login: &Page) -> (String, Page) {
    let location = certificate_host_url(browser, login).await;
    let answer = browser.get(&location).await;
    (location, answer)
}

/// "Use a certificate or smart card" on `login`: where the main host sends the browser (the
/// certificate host, with the sign-in's sealed reference), not yet followed.
pub async fn certificate_host_url(browser: &Browser, login: &Page) -> String {
    assert!(
        login.body.contains("Use a certificate or smart card"),
        "{}",
        login.body
    );
    let to_host = browser
        .post("/login/certificate/start", &[("csrf", &login.csrf())])
        .await;
    to_host
        .location
        .clone()
        .unwrap_or_else(|| panic!("{} {}", to_host.status, to_host.body))
}
