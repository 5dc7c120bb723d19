//! The device's key store: one JSON file in the device home, readable only by its owner.
//!
//! Device keys (they sign every request and answer MFA pushes) are stored as they are: having
//! the device is the factor they stand for. Passwordless keys, which alone can approve a
//! phone sign-in, are sealed with AES-256-GCM under a key derived from the device PIN with
//! argon2id, so approving a phone sign-in needs the device *and* the PIN. Wrong PINs are
//! counted in the file; after [`MAX_PIN_ATTEMPTS`] in a row the store erases every passwordless
//! key and the PIN (a wipe): the server will not let phone sign-in be enabled again without
//! the erased key, so the accounts must be removed and added again from security info.
//!
//! Writes go to a temporary file that is renamed over the old one, so a crash never leaves a
//! half-written store.

use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use latchkey_protocol::DeviceKeyPair;
use serde::{Deserialize, Serialize};

use crate::Error;

/// Wrong PINs allowed in a row before the store locks and erases its passwordless keys.
pub const MAX_PIN_ATTEMPTS: u32 = 10;
pub const MIN_PIN_LEN: usize = 4;
pub const MAX_PIN_LEN: usize = 64;

const FILE_NAME: &str = "device.json";
/// Sealed under the PIN key when it is set; opening it proves a PIN right.
const PIN_CHECK: &[u8] = b"latchkey-authenticator-pin-check-v1";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sealed {
    nonce: String,
    ciphertext: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PinSettings {
    salt: String,
    /// argon2id memory in KiB, iterations and lanes.
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
    check: Sealed,
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
    /// The passwordless key's PKCS#8, sealed under the PIN; `None` without phone sign-in.
    passwordless_key: Option<Sealed>,
}

impl Account {
    pub fn phone_sign_in(&self) -> bool {
        self.passwordless_key.is_some()
    }

    pub fn device_key(&self) -> Result<DeviceKeyPair, Error> {
        let der = STANDARD
            .decode(&self.device_key)
            .map_err(|_| Error::Corrupt("a device key".into()))?;
        DeviceKeyPair::from_pkcs8(&der).map_err(Error::Corrupt)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct StoreFile {
    version: u32,
    pin: Option<PinSettings>,
    failed_pin_attempts: u32,
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

impl PinSettings {
    fn derive(&self, pin: &str) -> Result<[u8; 32], Error> {
        let salt = STANDARD
            .decode(&self.salt)
            .map_err(|_| Error::Corrupt("the PIN settings".into()))?;
        let params = Params::new(self.m_cost, self.t_cost, self.p_cost, Some(32))
            .map_err(|_| Error::Corrupt("the PIN settings".into()))?;
        let mut key = [0u8; 32];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(pin.as_bytes(), &salt, &mut key)
            .map_err(|_| Error::Corrupt("the PIN settings".into()))?;
        Ok(key)
    }
}

fn check_pin_form(pin: &str) -> Result<(), Error> {
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
        let file = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| Error::Corrupt(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StoreFile {
                version: 1,
                ..Default::default()
            },
            Err(e) => return Err(Error::Io(format!("{}: {e}", path.display()))),
        };
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

    pub fn has_pin(&self) -> bool {
        self.file.pin.is_some()
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
            passwordless_key: None,
        });
        self.save()?;
        Ok(self.file.accounts.len() - 1)
    }

    pub fn remove_account(&mut self, index: usize) -> Result<Account, Error> {
        let removed = self.file.accounts.remove(index);
        self.save()?;
        Ok(removed)
    }

    /// Sets the device PIN the first time; afterwards checks it. Returns the key it derives.
    fn unlock(&mut self, pin: &str) -> Result<[u8; 32], Error> {
        let Some(settings) = self.file.pin.clone() else {
            check_pin_form(pin)?;
            let mut settings = PinSettings {
                salt: STANDARD.encode(random::<16>()),
                // The argon2 crate's defaults, which follow OWASP's guidance for argon2id.
                m_cost: Params::DEFAULT_M_COST,
                t_cost: Params::DEFAULT_T_COST,
                p_cost: Params::DEFAULT_P_COST,
                check: Sealed {
                    nonce: String::new(),
                    ciphertext: String::new(),
                },
            };
            let key = settings.derive(pin)?;
            settings.check = seal(&key, b"pin-check", PIN_CHECK);
            self.file.pin = Some(settings);
            self.save()?;
            return Ok(key);
        };
        let key = settings.derive(pin)?;
        if open(&key, b"pin-check", &settings.check).as_deref() == Some(PIN_CHECK) {
            if self.file.failed_pin_attempts != 0 {
                self.file.failed_pin_attempts = 0;
                self.save()?;
            }
            return Ok(key);
        }
        self.file.failed_pin_attempts += 1;
        if self.file.failed_pin_attempts >= MAX_PIN_ATTEMPTS {
            // Wipe what the PIN protected; the PIN goes with it, so a new one can be chosen
            // once the accounts are added again (the server refuses to re-enable phone sign-in
            // without the erased key, so a guesser gains nothing from starting over).
            for account in &mut self.file.accounts {
                account.passwordless_key = None;
            }
            self.file.pin = None;
            self.file.failed_pin_attempts = 0;
            self.save()?;
            return Err(Error::Locked);
        }
        self.save()?;
        Err(Error::WrongPin {
            remaining: MAX_PIN_ATTEMPTS - self.file.failed_pin_attempts,
        })
    }

    /// Seals a new passwordless key for the account under the PIN.
    pub fn store_passwordless_key(
        &mut self,
        index: usize,
        pin: &str,
        key: &DeviceKeyPair,
    ) -> Result<(), Error> {
        let pin_key = self.unlock(pin)?;
        let aad = self.file.accounts[index].device_id.clone();
        self.file.accounts[index].passwordless_key =
            Some(seal(&pin_key, aad.as_bytes(), key.pkcs8()));
        self.save()
    }

    pub fn forget_passwordless_key(&mut self, index: usize) -> Result<(), Error> {
        self.file.accounts[index].passwordless_key = None;
        self.save()
    }

    /// Checks the PIN without opening a key (to confirm a PIN before registering anything).
    pub fn verify_pin(&mut self, pin: &str) -> Result<(), Error> {
        self.unlock(pin).map(|_| ())
    }

    /// Opens the account's passwordless key with the PIN.
    pub fn passwordless_key(&mut self, index: usize, pin: &str) -> Result<DeviceKeyPair, Error> {
        if self.file.accounts[index].passwordless_key.is_none() {
            return Err(Error::Usage(
                "phone sign-in is not enabled for this account; run enable-phone-sign-in".into(),
            ));
        }
        let pin_key = self.unlock(pin)?;
        let account = &self.file.accounts[index];
        let sealed = account.passwordless_key.as_ref().expect("checked above");
        let der = open(&pin_key, account.device_id.as_bytes(), sealed)
            .ok_or_else(|| Error::Corrupt("the passwordless key".into()))?;
        DeviceKeyPair::from_pkcs8(&der).map_err(Error::Corrupt)
    }
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

    #[test]
    fn the_passwordless_key_opens_only_with_the_pin_it_was_sealed_under() {
        let (dir, mut store) = store_with_account();
        let key = DeviceKeyPair::generate().unwrap();
        store.store_passwordless_key(0, "2468", &key).unwrap();
        let mut reopened = Keystore::open(dir.path()).unwrap();
        assert_eq!(
            reopened.passwordless_key(0, "2468").unwrap().public_key(),
            key.public_key()
        );
        assert!(matches!(
            reopened.passwordless_key(0, "1357"),
            Err(Error::WrongPin { remaining: 9 })
        ));
        // The file holds no private key material of the passwordless key in the clear.
        let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert!(!text.contains(&STANDARD.encode(key.pkcs8())));
    }

    #[test]
    fn too_many_wrong_pins_wipe_the_passwordless_keys_against_guessing() {
        let (dir, mut store) = store_with_account();
        store
            .store_passwordless_key(0, "2468", &DeviceKeyPair::generate().unwrap())
            .unwrap();
        for _ in 0..MAX_PIN_ATTEMPTS - 1 {
            assert!(matches!(
                store.verify_pin("0000"),
                Err(Error::WrongPin { .. })
            ));
        }
        assert!(matches!(store.verify_pin("0000"), Err(Error::Locked)));
        let reopened = Keystore::open(dir.path()).unwrap();
        assert!(
            !reopened.account(0).phone_sign_in(),
            "the passwordless key is erased"
        );
        assert!(!reopened.has_pin(), "and the PIN with it");
    }

    #[test]
    fn a_right_pin_resets_the_count_of_wrong_ones() {
        let (_dir, mut store) = store_with_account();
        store.verify_pin("2468").unwrap();
        for _ in 0..MAX_PIN_ATTEMPTS - 1 {
            let _ = store.verify_pin("0000");
        }
        store.verify_pin("2468").unwrap();
        assert!(matches!(
            store.verify_pin("0000"),
            Err(Error::WrongPin { remaining: 9 })
        ));
    }

    #[test]
    fn short_pins_are_refused() {
        let (_dir, mut store) = store_with_account();
        assert!(matches!(store.verify_pin("12"), Err(Error::Usage(_))));
        assert!(!store.has_pin());
    }
}
