//! The device's key store: one JSON file in the device home, readable only by its owner.
//!
//! Device keys (they sign every request and answer MFA pushes) are stored as they are: having
//! the device is the factor they stand for. A passwordless key, which alone can approve a
//! phone sign-in, is sealed with AES-256-GCM under `HKDF(v || s)`, where `v` is the argon2id
//! hash of the PIN under a salt kept here (the *PIN verifier*) and `s` is an unlock secret the
//! server releases only for a signed request carrying the right `v`. Nothing in this file can
//! tell a right PIN from a wrong one: a copy of it gives no offline test, and every guess is a
//! request the server counts (see `docs/authenticator-protocol.md`, "The device PIN").
//!
//! Writes go to a temporary file that is renamed over the old one, so a crash never leaves a
//! half-written store.

use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use latchkey_protocol::{
    DeviceKeyPair, MAX_PIN_LEN, MIN_PIN_LEN, PIN_VERIFIER_LEN, UNLOCK_SECRET_LEN,
    passwordless_seal_info,
};
use serde::{Deserialize, Serialize};

use crate::Error;

const FILE_NAME: &str = "device.json";
const FILE_VERSION: u32 = 2;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sealed {
    nonce: String,
    ciphertext: String,
}

/// How the PIN verifier of one account is derived: argon2id with this salt and cost.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PinParams {
    salt: String,
    /// argon2id memory in KiB, iterations and lanes.
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
}

/// A PIN verifier: the argon2id hash of a PIN. Sent only inside signed requests.
pub struct PinVerifier([u8; PIN_VERIFIER_LEN]);

impl PinVerifier {
    /// A verifier made elsewhere (the load generator's devices, which never unlock, use
    /// random ones rather than spend argon2id on each).
    pub fn from_bytes(bytes: [u8; PIN_VERIFIER_LEN]) -> PinVerifier {
        PinVerifier(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Base64url, as the protocol sends it.
    pub fn encoded(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

impl std::fmt::Debug for PinVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PinVerifier(***)")
    }
}

/// The passwordless key as stored: sealed under `HKDF(v || s)`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SealedPasswordless {
    pin: PinParams,
    key: Sealed,
}

/// One account on one server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    /// A short local name: `1`, `2`, … in the order added.
    pub id: String,
    pub server: String,
    pub device_id: String,
    pub device_name: String,
    pub user_principal_name: String,
    pub display_name: String,
    /// PKCS#8 of the device key, base64.
    device_key: String,
    /// The passwordless key; `None` without phone sign-in.
    #[serde(default)]
    passwordless: Option<SealedPasswordless>,
}

impl Account {
    pub fn phone_sign_in(&self) -> bool {
        self.passwordless.is_some()
    }

    pub fn device_key(&self) -> Result<DeviceKeyPair, Error> {
        let der = STANDARD
            .decode(&self.device_key)
            .map_err(|_| Error::Corrupt("a device key".into()))?;
        DeviceKeyPair::from_pkcs8(&der).map_err(Error::Corrupt)
    }
}

/// Version 1 files kept a PIN check value and a wrong-PIN count here and sealed passwordless
/// keys under the PIN alone; those fields are dropped on load (the app then asks to turn
/// phone sign-in on again).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct StoreFile {
    version: u32,
    accounts: Vec<Account>,
    next_account: u32,
}

pub struct Keystore {
    path: PathBuf,
    file: StoreFile,
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random source failed");
    bytes
}

fn seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Sealed {
    let nonce = random::<NONCE_LEN>();
    let sealing = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("32-byte key"));
    let mut buffer = plaintext.to_vec();
    sealing
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buffer,
        )
        .expect("AES-GCM sealing does not fail");
    Sealed {
        nonce: STANDARD.encode(nonce),
        ciphertext: STANDARD.encode(buffer),
    }
}

fn open(key: &[u8; 32], aad: &[u8], sealed: &Sealed) -> Option<Vec<u8>> {
    let nonce: [u8; NONCE_LEN] = STANDARD.decode(&sealed.nonce).ok()?.try_into().ok()?;
    let mut buffer = STANDARD.decode(&sealed.ciphertext).ok()?;
    let opening = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).ok()?);
    let plain = opening
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buffer,
        )
        .ok()?;
    Some(plain.to_vec())
}

impl PinParams {
    fn new() -> PinParams {
        PinParams {
            salt: STANDARD.encode(random::<16>()),
            // The argon2 crate's defaults, which follow OWASP's guidance for argon2id.
            m_cost: Params::DEFAULT_M_COST,
            t_cost: Params::DEFAULT_T_COST,
            p_cost: Params::DEFAULT_P_COST,
        }
    }

    fn verifier(&self, pin: &str) -> Result<PinVerifier, Error> {
        let corrupt = || Error::Corrupt("the PIN settings".into());
        let salt = STANDARD.decode(&self.salt).map_err(|_| corrupt())?;
        let params = Params::new(
            self.m_cost,
            self.t_cost,
            self.p_cost,
            Some(PIN_VERIFIER_LEN),
        )
        .map_err(|_| corrupt())?;
        let mut out = [0u8; PIN_VERIFIER_LEN];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(pin.as_bytes(), &salt, &mut out)
            .map_err(|_| corrupt())?;
        Ok(PinVerifier(out))
    }
}

/// The sealing key: `HKDF-SHA256(v || s)` bound to the device.
fn sealing_key(
    verifier: &PinVerifier,
    unlock_secret: &str,
    device_id: &str,
) -> Result<[u8; 32], Error> {
    let secret = URL_SAFE_NO_PAD
        .decode(unlock_secret)
        .ok()
        .filter(|s| s.len() == UNLOCK_SECRET_LEN)
        .ok_or_else(|| Error::Network("the server sent a malformed unlock secret".into()))?;
    let mut ikm = verifier.as_bytes().to_vec();
    ikm.extend_from_slice(&secret);
    let info = passwordless_seal_info(device_id);
    let mut key = [0u8; 32];
    hkdf::Salt::new(hkdf::HKDF_SHA256, b"")
        .extract(&ikm)
        .expand(&[&info], hkdf::HKDF_SHA256)
        .and_then(|okm| okm.fill(&mut key))
        .map_err(|_| Error::Corrupt("the sealing key".into()))?;
    Ok(key)
}

/// The rules a new PIN must meet.
pub fn check_pin_form(pin: &str) -> Result<(), Error> {
    let len = pin.chars().count();
    if !(MIN_PIN_LEN..=MAX_PIN_LEN).contains(&len) || pin.chars().any(char::is_control) {
        return Err(Error::Usage(format!(
            "a device PIN has {MIN_PIN_LEN} to {MAX_PIN_LEN} characters"
        )));
    }
    Ok(())
}

impl Keystore {
    /// Opens the store in `home`, creating the folder (owner-only) if needed.
    pub fn open(home: &Path) -> Result<Keystore, Error> {
        std::fs::create_dir_all(home).map_err(|e| Error::Io(format!("{}: {e}", home.display())))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700));
        }
        let path = home.join(FILE_NAME);
        let mut file: StoreFile = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| Error::Corrupt(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StoreFile::default(),
            Err(e) => return Err(Error::Io(format!("{}: {e}", path.display()))),
        };
        file.version = FILE_VERSION;
        Ok(Keystore { path, file })
    }

    fn save(&self) -> Result<(), Error> {
        use std::io::Write;
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(&self.file).expect("the store serialises");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let io = |e: std::io::Error| Error::Io(format!("{}: {e}", self.path.display()));
        let mut out = options.open(&tmp).map_err(io)?;
        out.write_all(&text).map_err(io)?;
        out.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }

    pub fn accounts(&self) -> &[Account] {
        &self.file.accounts
    }

    /// Finds an account by its local id, its user name, or `upn@server`-less user name alone
    /// when it is unique.
    pub fn find(&self, selector: &str) -> Result<usize, Error> {
        let matches: Vec<usize> = self
            .file
            .accounts
            .iter()
            .enumerate()
            .filter(|(_, a)| {
                a.id == selector || a.user_principal_name.eq_ignore_ascii_case(selector)
            })
            .map(|(i, _)| i)
            .collect();
        match matches.as_slice() {
            [one] => Ok(*one),
            [] => Err(Error::Usage(format!(
                "no account {selector:?}; `accounts` lists them"
            ))),
            _ => Err(Error::Usage(format!(
                "{selector:?} names several accounts; use the number `accounts` shows"
            ))),
        }
    }

    pub fn account(&self, index: usize) -> &Account {
        &self.file.accounts[index]
    }

    pub fn add_account(
        &mut self,
        server: &str,
        device_id: &str,
        device_name: &str,
        info: &latchkey_protocol::wire::AccountInfo,
        device_key: &DeviceKeyPair,
    ) -> Result<usize, Error> {
        self.file.next_account += 1;
        self.file.accounts.push(Account {
            id: self.file.next_account.to_string(),
            server: server.to_string(),
            device_id: device_id.to_string(),
            device_name: device_name.to_string(),
            user_principal_name: info.user_principal_name.clone(),
            display_name: info.display_name.clone(),
            device_key: STANDARD.encode(device_key.pkcs8()),
            passwordless: None,
        });
        self.save()?;
        Ok(self.file.accounts.len() - 1)
    }

    pub fn remove_account(&mut self, index: usize) -> Result<Account, Error> {
        let removed = self.file.accounts.remove(index);
        self.save()?;
        Ok(removed)
    }

    /// A new PIN's settings and verifier (a fresh salt), for enabling phone sign-in.
    pub fn new_pin(pin: &str) -> Result<(PinParams, PinVerifier), Error> {
        check_pin_form(pin)?;
        let params = PinParams::new();
        let verifier = params.verifier(pin)?;
        Ok((params, verifier))
    }

    /// The verifier of a typed PIN for the account's passwordless key. Whether the PIN is
    /// right only the server can say.
    pub fn pin_verifier(&self, index: usize, pin: &str) -> Result<PinVerifier, Error> {
        let sealed = self.file.accounts[index]
            .passwordless
            .as_ref()
            .ok_or_else(not_enabled)?;
        if pin.is_empty() || pin.chars().count() > MAX_PIN_LEN {
            return Err(Error::Usage(format!(
                "a device PIN has {MIN_PIN_LEN} to {MAX_PIN_LEN} characters"
            )));
        }
        sealed.pin.verifier(pin)
    }

    /// Seals a new passwordless key for the account under `HKDF(v || s)`.
    pub fn store_passwordless_key(
        &mut self,
        index: usize,
        pin: PinParams,
        verifier: &PinVerifier,
        unlock_secret: &str,
        key: &DeviceKeyPair,
    ) -> Result<(), Error> {
        let device_id = self.file.accounts[index].device_id.clone();
        let sealing = sealing_key(verifier, unlock_secret, &device_id)?;
        self.file.accounts[index].passwordless = Some(SealedPasswordless {
            pin,
            key: seal(&sealing, device_id.as_bytes(), key.pkcs8()),
        });
        self.save()
    }

    pub fn forget_passwordless_key(&mut self, index: usize) -> Result<(), Error> {
        self.file.accounts[index].passwordless = None;
        self.save()
    }

    /// Opens the account's passwordless key with the verifier of the PIN and the unlock secret
    /// the server released for it.
    pub fn open_passwordless_key(
        &self,
        index: usize,
        verifier: &PinVerifier,
        unlock_secret: &str,
    ) -> Result<DeviceKeyPair, Error> {
        let account = &self.file.accounts[index];
        let sealed = account.passwordless.as_ref().ok_or_else(not_enabled)?;
        let sealing = sealing_key(verifier, unlock_secret, &account.device_id)?;
        let der = open(&sealing, account.device_id.as_bytes(), &sealed.key)
            .ok_or_else(|| Error::Corrupt("the passwordless key".into()))?;
        DeviceKeyPair::from_pkcs8(&der).map_err(Error::Corrupt)
    }
}

fn not_enabled() -> Error {
    Error::Usage("phone sign-in is not enabled for this account; run enable-phone-sign-in".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with_account() -> (tempfile::TempDir, Keystore) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Keystore::open(dir.path()).unwrap();
        let info = latchkey_protocol::wire::AccountInfo {
            user_id: "u1".into(),
            user_principal_name: "bobby@contoso.example".into(),
            display_name: "Bobby".into(),
            issuer: "http://localhost".into(),
        };
        store
            .add_account(
                "http://localhost",
                "d1",
                "phone",
                &info,
                &DeviceKeyPair::generate().unwrap(),
            )
            .unwrap();
        (dir, store)
    }

    fn secret(byte: u8) -> String {
        URL_SAFE_NO_PAD.encode([byte; UNLOCK_SECRET_LEN])
    }

    #[test]
    fn the_passwordless_key_opens_only_with_the_pin_and_the_servers_secret() {
        let (dir, mut store) = store_with_account();
        let key = DeviceKeyPair::generate().unwrap();
        let (params, verifier) = Keystore::new_pin("246810").unwrap();
        store
            .store_passwordless_key(0, params, &verifier, &secret(7), &key)
            .unwrap();
        let reopened = Keystore::open(dir.path()).unwrap();
        let again = reopened.pin_verifier(0, "246810").unwrap();
        assert_eq!(again.as_bytes(), verifier.as_bytes());
        assert_eq!(
            reopened
                .open_passwordless_key(0, &again, &secret(7))
                .unwrap()
                .public_key(),
            key.public_key()
        );
        let wrong = reopened.pin_verifier(0, "135790").unwrap();
        assert!(
            reopened
                .open_passwordless_key(0, &wrong, &secret(7))
                .is_err()
        );
        assert!(
            reopened
                .open_passwordless_key(0, &again, &secret(8))
                .is_err()
        );
        // The file holds neither the key in the clear nor the verifier.
        let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert!(!text.contains(&STANDARD.encode(key.pkcs8())));
        assert!(!text.contains(&verifier.encoded()));
        assert!(!text.contains(&STANDARD.encode(verifier.as_bytes())));
    }

    #[test]
    fn short_pins_are_refused() {
        assert!(matches!(Keystore::new_pin("12345"), Err(Error::Usage(_))));
        assert!(matches!(Keystore::new_pin("1234\n6"), Err(Error::Usage(_))));
        assert!(Keystore::new_pin("123456").is_ok());
    }

    #[test]
    fn a_version_1_file_loads_without_its_pin_only_keys() {
        let dir = tempfile::tempdir().unwrap();
        let v1 = r#"{"version":1,"pin":{"salt":"AAAA","m_cost":19456,"t_cost":2,"p_cost":1,
            "check":{"nonce":"","ciphertext":""}},"failed_pin_attempts":3,"next_account":1,
            "accounts":[{"id":"1","server":"http://localhost","device_id":"d1","device_name":"p",
            "user_principal_name":"bobby@contoso.example","display_name":"Bobby",
            "device_key":"","passwordless_key":{"nonce":"","ciphertext":""}}]}"#;
        std::fs::write(dir.path().join(FILE_NAME), v1).unwrap();
        let store = Keystore::open(dir.path()).unwrap();
        assert!(!store.account(0).phone_sign_in());
    }
}
