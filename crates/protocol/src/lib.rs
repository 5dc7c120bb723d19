//! The authenticator protocol, version 1 (`/authenticator/v1`), as both sides speak it.
//!
//! This crate holds what the server and the authenticator must agree on byte for byte: the
//! JSON bodies, the activation link, and the exact message each signature covers. Keeping the
//! signing inputs in one place means a change to one side is a change to both. It does no I/O.
//! The protocol is documented in `docs/authenticator-protocol.md`; keep the two in step.

pub mod keys;
pub mod link;
pub mod push;
pub mod wire;

pub use keys::{DeviceKeyPair, PublicKey, verify_signature};
pub use link::ActivationLink;

/// Where the authenticator API lives on a server.
pub const API_PREFIX: &str = "/authenticator/v1";

/// Headers that carry a device's signature on every request after activation.
pub const HEADER_DEVICE: &str = "x-latchkey-device";
pub const HEADER_TIMESTAMP: &str = "x-latchkey-timestamp";
pub const HEADER_NONCE: &str = "x-latchkey-nonce";
pub const HEADER_SIGNATURE: &str = "x-latchkey-signature";

/// How far a signed request's timestamp may be from the server's clock, in seconds.
pub const FRESHNESS_SECONDS: i64 = 60;

/// The largest body any authenticator endpoint accepts.
pub const MAX_BODY_BYTES: usize = 8 * 1024;

/// Lengths the server enforces on what devices send.
pub const MAX_NONCE_LEN: usize = 64;
pub const MIN_NONCE_LEN: usize = 16;
pub const MAX_DEVICE_NAME_LEN: usize = 64;

/// The shortest device PIN the app accepts for phone sign-in.
pub const MIN_PIN_LEN: usize = 6;
pub const MAX_PIN_LEN: usize = 64;

/// Wrong PINs in a row, counted by the server per device, after which it turns phone sign-in
/// off on that device. A copy of the device's files cannot reset the count: it lives only on
/// the server, and only the right PIN resets it.
pub const MAX_WRONG_PINS: u32 = 5;

/// The length in bytes of the PIN verifier (argon2id of the PIN) and of the unlock secret.
pub const PIN_VERIFIER_LEN: usize = 32;
pub const UNLOCK_SECRET_LEN: usize = 32;

fn sha256_b64(bytes: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(bytes))
}

/// What the device signs to prove, at activation, that it holds the key it registers.
pub fn activation_proof_input(code: &str, device_key: &PublicKey) -> Vec<u8> {
    format!("latchkey-activate-v1\n{code}\n{}", device_key.as_str()).into_bytes()
}

/// What the device signs on every request after activation. `path` includes the query string.
pub fn request_signing_input(
    method: &str,
    path: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> Vec<u8> {
    format!(
        "latchkey-device-request-v1\n{}\n{path}\n{timestamp}\n{nonce}\n{}",
        method.to_ascii_uppercase(),
        sha256_b64(body)
    )
    .into_bytes()
}

/// What the new passwordless key signs when phone sign-in is enabled: proof that the device
/// holds it, bound to the device it belongs to.
pub fn passwordless_proof_input(device_id: &str, key: &PublicKey) -> Vec<u8> {
    format!("latchkey-passwordless-v1\n{device_id}\n{}", key.as_str()).into_bytes()
}

/// What the current passwordless key signs to turn phone sign-in off: bound to the device and
/// to the signed request's own nonce, so it cannot be replayed.
pub fn passwordless_off_input(device_id: &str, request_nonce: &str) -> Vec<u8> {
    format!("latchkey-passwordless-off-v1\n{device_id}\n{request_nonce}").into_bytes()
}

/// The WebAuthn challenge that binds an assertion to one signed message (an answer's signing
/// input, or the passwordless-off input): the 32 bytes of SHA-256 of those exact bytes. A
/// device whose phone sign-in proof is WebAuthn asks its authenticator for an assertion over
/// this challenge, so the assertion approves exactly what the device key signed.
pub fn webauthn_challenge(signing_input: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(signing_input).into()
}

/// The HKDF `info` of the key that seals a device's passwordless key: the key is
/// `HKDF-SHA256(ikm = pin verifier || unlock secret, info)`, so opening it needs the PIN and a
/// secret only the server releases, after checking that PIN.
pub fn passwordless_seal_info(device_id: &str) -> Vec<u8> {
    format!("latchkey-passwordless-seal-v1\n{device_id}").into_bytes()
}

/// What an answer's signature covers: the request, the server's nonce for it, the decision,
/// the number the person typed (empty when they denied without typing one) and the digest of
/// the context the device showed them.
pub fn answer_signing_input(
    request_id: &str,
    server_nonce: &str,
    decision: wire::Decision,
    number: Option<u8>,
    context_digest: &str,
) -> Vec<u8> {
    let number = number.map(|n| n.to_string()).unwrap_or_default();
    format!(
        "latchkey-answer-v1\n{request_id}\n{server_nonce}\n{}\n{number}\n{context_digest}",
        decision.as_str()
    )
    .into_bytes()
}

/// The digest of what the device shows a person about a request. The server computes it from
/// what it sent; a device that signs a different digest showed something else, and its answer
/// is refused.
pub fn context_digest(request: &wire::ApprovalRequest) -> String {
    let field = |v: &Option<String>| v.clone().unwrap_or_default();
    let text = format!(
        "latchkey-context-v1\n{}\n{}\n{}\n{}\n{}\n{}",
        request.kind.as_str(),
        request.user_principal_name,
        field(&request.application),
        field(&request.location),
        request.created_at,
        request.expires_at,
    );
    sha256_b64(text.as_bytes())
}
