//! The pure pieces: RFC 4514 escaping, issuer comparison and the certificate user id formats.
//! The chain, binding and rule cases run over real certificates in
//! `tests/usecases/certificates/`.

use super::facts::{comparable_dn, hex};
use crate::user::validate_certificate_user_ids;

#[test]
fn issuer_names_compare_ignoring_case_and_spaces_after_commas() {
    assert_eq!(
        comparable_dn("CN=Contoso CA, O=Contoso"),
        comparable_dn("cn=contoso ca,o=contoso")
    );
    assert_ne!(
        comparable_dn("CN=Contoso CA"),
        comparable_dn("CN=Contoso CA2")
    );
}

#[test]
fn hex_is_lower_case_two_digits_a_byte() {
    assert_eq!(hex(&[0x00, 0xab, 0x1f]), "00ab1f");
}

#[test]
fn certificate_user_ids_are_normalised_to_how_bindings_compare_them() {
    let given: Vec<String> = [
        " X509:<PN>Bobby@Contoso.example ",
        "X509:<SKI>ABCD",
        "X509:<I>CN=CA,O=Contoso<SR>0A1B",
        "X509:<I>CN=CA<S>CN=Bobby",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(
        validate_certificate_user_ids(&given).unwrap(),
        vec![
            "X509:<PN>bobby@contoso.example",
            "X509:<SKI>abcd",
            "X509:<I>CN=CA,O=Contoso<SR>0a1b",
            "X509:<I>CN=CA<S>CN=Bobby",
        ]
    );
}

#[test]
fn certificate_user_ids_in_no_known_format_are_refused() {
    for bad in [
        "X509:<XX>value",
        "x509:<PN>bob@contoso.example",
        "X509:<SKI>",
        "X509:<SKI>abc",
        "X509:<SHA1-PUKEY>abcd",
        "X509:<I><S>CN=Bobby",
        "X509:<S>",
    ] {
        assert!(
            validate_certificate_user_ids(&[bad.to_string()]).is_err(),
            "{bad} was accepted"
        );
    }
}
