//! RP-initiated logout: checking an end-session request.

use super::Tokens;
use crate::error::DomainError;
use crate::ids::ClientId;

impl Tokens {
    /// RP-initiated logout: checks the hint and the post-logout redirect.
    /// Returns the client the request names (if any) and the validated redirect (if any).
    pub async fn end_session_request(
        &self,
        id_token_hint: Option<&str>,
        client_id: Option<&str>,
        post_logout_redirect_uri: Option<&str>,
    ) -> Result<EndSession, DomainError> {
        let hint = match id_token_hint.filter(|h| !h.is_empty()) {
            Some(token) if token.len() <= 8192 => Some(
                self.keyring()
                    .await?
                    .verify_own_token(token, &self.settings.issuer)?,
            ),
            Some(_) => return Err(DomainError::Rejected("id_token_hint is too long".into())),
            None => None,
        };
        let hinted_client = hint
            .as_ref()
            .and_then(|c| c["aud"].as_str().map(str::to_string));
        if let (Some(hinted), Some(named)) = (&hinted_client, client_id)
            && hinted != named
        {
            return Err(DomainError::Rejected(
                "client_id does not match the id_token_hint".into(),
            ));
        }
        let client = hinted_client.or(client_id.filter(|c| !c.is_empty()).map(str::to_string));
        let redirect = match post_logout_redirect_uri.filter(|u| !u.is_empty()) {
            None => None,
            Some(uri) => {
                let Some(client) = client.as_deref() else {
                    return Err(DomainError::Rejected(
                        "post_logout_redirect_uri needs an id_token_hint or client_id".into(),
                    ));
                };
                if client.len() > 128 {
                    return Err(DomainError::Rejected("client_id is too long".into()));
                }
                let app = self
                    .applications
                    .application(&ClientId::from_string(client))
                    .await?;
                if !app.accepts_post_logout_redirect_uri(uri) {
                    return Err(DomainError::Rejected(format!(
                        "the address to return to is not registered for {}",
                        app.display_name
                    )));
                }
                Some(uri.to_string())
            }
        };
        Ok(EndSession {
            client_id: client,
            verified_hint: hint.is_some(),
            hinted_sid: hint
                .as_ref()
                .and_then(|c| c["sid"].as_str().map(str::to_string)),
            redirect,
        })
    }
}

/// A checked end-session request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndSession {
    /// The application the request names (by its hint or `client_id`); a confirmation form
    /// carries it back so that its redirect is checked against that application again.
    pub client_id: Option<String>,
    /// An `id_token_hint` we signed came with the request, so it came from the application
    /// and the user need not confirm.
    pub verified_hint: bool,
    /// The session the hint's `sid` names, if there was a verified hint.
    pub hinted_sid: Option<String>,
    pub redirect: Option<String>,
}
