//! The authorization endpoint's part: checking a request and issuing a code.

use url::Url;

use super::Tokens;
use crate::error::DomainError;
use crate::ids::{ClientId, GrantId};
use crate::log::SignInContext;
use crate::oidc::{
    AuthorizationCode, AuthorizationRequest, AuthorizeError, AuthorizeParams, Grant,
    OAuthErrorCode, validate_authorize, validate_client_and_redirect,
};
use crate::secret::TokenHash;
use crate::service::messages::STORE_TROUBLE;
use crate::session::Session;
use crate::user::User;

impl Tokens {
    /// Validates `/authorize` parameters. `NoRedirect` errors must be shown, never redirected.
    pub async fn authorization_request(
        &self,
        params: &AuthorizeParams,
    ) -> Result<AuthorizationRequest, AuthorizeError> {
        let app = match params.client_id.as_deref() {
            Some(id) if !id.is_empty() && id.len() <= 128 => self
                .applications
                .cached(&ClientId::from_string(id))
                .await
                .map_err(|_| AuthorizeError::NoRedirect(STORE_TROUBLE.into()))?,
            _ => None,
        };
        match app {
            Some(app) => validate_authorize(params, &app),
            None => validate_client_and_redirect(params, None).map(|_| unreachable!()),
        }
    }

    /// Issues an authorization code for a signed-in user and returns the redirect to the app.
    pub async fn issue_code(
        &self,
        request: &AuthorizationRequest,
        session: &Session,
        user: &User,
        context: &SignInContext,
    ) -> Result<String, DomainError> {
        // Every way to a code passes here or through `prepare_code`: a session that does not
        // meet the strength the application or the request requires never gets one, whichever
        // page led here; nor does a user the application is not assigned to, when it requires
        // assignment.
        let app = self.applications.application(&request.client_id).await?;
        if let Some(strength) = request.required_strength
            && !strength.allows(session.method)
        {
            return Err(DomainError::Rejected(
                crate::service::sign_in::step_up_message_for(
                    Some(app.display_name.as_str()),
                    strength,
                    session.method,
                ),
            ));
        }
        self.applications
            .ensure_assigned(&app, user, session.method.label(), context)
            .await?;
        let prepared = self.make_code(request, session, user)?;
        self.store
            .create_grant(&prepared.grant, Some(&prepared.code))
            .await?;
        Ok(prepared.target)
    }

    /// The code [`Self::issue_code`] would issue, when it would issue one, made but not stored:
    /// a sign-in's completion stores it in its own write. `None` (and nothing logged) when the
    /// session misses the strength or the user is not assigned: `issue_code` then refuses, and
    /// logs, as ever.
    pub(crate) async fn prepare_code(
        &self,
        request: &AuthorizationRequest,
        session: &Session,
        user: &User,
    ) -> Result<Option<PreparedCode>, DomainError> {
        let app = self.applications.application(&request.client_id).await?;
        let strong_enough = request
            .required_strength
            .is_none_or(|strength| strength.allows(session.method));
        if !strong_enough || !self.applications.is_assigned(&app, user).await? {
            return Ok(None);
        }
        self.make_code(request, session, user).map(Some)
    }

    /// A grant for `session` and a new code for it, and the redirect that carries the code.
    fn make_code(
        &self,
        request: &AuthorizationRequest,
        session: &Session,
        user: &User,
    ) -> Result<PreparedCode, DomainError> {
        let now = self.now();
        let grant = Grant {
            id: GrantId::generate(self.random.as_ref()),
            user_id: user.id.clone(),
            client_id: request.client_id.clone(),
            session_id: session.id.clone(),
            scopes: request.scopes.clone(),
            nonce: request.nonce.clone(),
            auth_time: session.auth_time,
            method: session.method,
            created_at: now,
            revoked: false,
        };
        let code = self.random.token();
        let stored = AuthorizationCode {
            hash: TokenHash::of(code.expose()),
            grant_id: grant.id.clone(),
            client_id: request.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            code_challenge: request.code_challenge.clone(),
            expires_at: now.plus_seconds(self.settings.code_lifetime_seconds),
        };
        let mut url = Url::parse(&request.redirect_uri)
            .map_err(|_| DomainError::Internal("stored redirect URI".into()))?;
        url.query_pairs_mut().append_pair("code", code.expose());
        if let Some(state) = &request.state {
            url.query_pairs_mut().append_pair("state", state);
        }
        url.query_pairs_mut()
            .append_pair("iss", &self.settings.issuer);
        Ok(PreparedCode {
            grant,
            code: stored,
            target: url.to_string(),
        })
    }
}

/// A code made for a signed-in user and not stored yet ([`Tokens::prepare_code`]).
pub(crate) struct PreparedCode {
    pub(crate) grant: Grant,
    pub(crate) code: AuthorizationCode,
    /// The redirect to the application, with the code.
    pub(crate) target: String,
}

/// An OAuth error redirect to an already-validated redirect URI.
pub fn error_redirect(
    redirect_uri: &str,
    error: OAuthErrorCode,
    description: &str,
    state: Option<&str>,
    issuer: &str,
) -> String {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return redirect_uri.to_string();
    };
    url.query_pairs_mut()
        .append_pair("error", error.as_str())
        .append_pair("error_description", description);
    if let Some(state) = state {
        url.query_pairs_mut().append_pair("state", state);
    }
    url.query_pairs_mut().append_pair("iss", issuer);
    url.to_string()
}
