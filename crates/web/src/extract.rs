//! Extractors for what the pages' handlers have in common: the signed-in browser, and a form
//! whose CSRF token is checked against what it acts on (see `cookies` for the scopes).
//!
//! A handler names what it needs in its arguments; the rejection is the answer (a sign-in that
//! comes back, or an error page), so the handler's body starts at its one domain call. The
//! console's administrator is its own extractor beside the console (`console::Admin`), and a
//! signed device request is `device_api::SignedRequest`.

use std::marker::PhantomData;
use std::net::SocketAddr;

use axum::extract::{
    ConnectInfo, Form, FromRequest, FromRequestParts, OptionalFromRequest,
    OptionalFromRequestParts, Request,
};
use axum::http::request::Parts;
use axum_extra::extract::cookie::CookieJar;
use latchkey_domain::ids::SignInId;
use latchkey_domain::log::SignInContext;
use latchkey_domain::session::Session;
use latchkey_domain::user::User;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::cookies::{self, CsrfScope, require_csrf};
use crate::error::{PageError, PageFailure};

/// The current browser's session and user, if signed in.
pub async fn current_session(
    state: &AppState,
    jar: &CookieJar,
) -> Result<Option<(Session, User)>, PageError> {
    match cookies::get(state, jar, cookies::SESSION) {
        Some(value) => Ok(state.latchkey.sign_in.session_for_cookie(value).await?),
        None => Ok(None),
    }
}

/// Where a request comes from: its client address (through trusted proxies only), the place
/// GeoIP puts it and the browser's known-browser cookie, for sign-in logs and risk.
pub struct Origin(pub SignInContext);

impl FromRequestParts<AppState> for Origin {
    type Rejection = <ConnectInfo<SocketAddr> as FromRequestParts<AppState>>::Rejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ConnectInfo(peer) = ConnectInfo::<SocketAddr>::from_request_parts(parts, state).await?;
        Ok(Origin(state.sign_in_context(peer, &parts.headers)))
    }
}

/// Where a page sends a browser that must sign in first, to come back to afterwards.
pub trait ReturnTo: Send + Sync {
    const PATH: &'static str;
}

/// The security-info page, where the signed-in user's own pages return.
pub struct MySecurityInfo;

impl ReturnTo for MySecurityInfo {
    const PATH: &'static str = "/mysecurityinfo";
}

/// A form that carries its CSRF token in the field `csrf`.
pub trait CsrfField {
    fn csrf(&self) -> &str;
}

/// A form that carries nothing but its CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

impl CsrfField for CsrfForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The signed-in browser: its session and user. Without a session, a sign-in that returns to
/// `R::PATH`; as `Option<SignedIn>`, `None`.
pub struct SignedIn<R = MySecurityInfo> {
    pub session: Session,
    pub user: User,
    return_to: PhantomData<R>,
}

impl<R> SignedIn<R> {
    fn new((session, user): (Session, User)) -> Self {
        SignedIn {
            session,
            user,
            return_to: PhantomData,
        }
    }
}

impl<R: ReturnTo> FromRequestParts<AppState> for SignedIn<R> {
    type Rejection = PageFailure;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageFailure> {
        match current_session(state, &CookieJar::from_headers(&parts.headers)).await? {
            Some(found) => Ok(SignedIn::new(found)),
            None => Err(PageFailure::SignIn(R::PATH.to_string())),
        }
    }
}

impl<R: ReturnTo> OptionalFromRequestParts<AppState> for SignedIn<R> {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, PageError> {
        let found = current_session(state, &CookieJar::from_headers(&parts.headers)).await?;
        Ok(found.map(SignedIn::new))
    }
}

/// A signed-in browser's form, its token checked against the session. Without a session, a
/// sign-in that returns to `R::PATH`; as `Option<SignedInForm>`, `None` (the form is still
/// read first, so a malformed one is refused either way).
pub struct SignedInForm<T, R = MySecurityInfo> {
    pub session: Session,
    pub user: User,
    #[allow(
        dead_code,
        reason = "the signed-in pages' forms carry only their token today"
    )]
    pub form: T,
    return_to: PhantomData<R>,
}

/// The form (read before anything else) and the browser's session, if any.
async fn form_and_session<T: DeserializeOwned>(
    request: Request,
    state: &AppState,
) -> Result<(T, Option<(Session, User)>), PageError> {
    let jar = CookieJar::from_headers(request.headers());
    let Form(form) = Form::<T>::from_request(request, state).await?;
    Ok((form, current_session(state, &jar).await?))
}

impl<T, R> OptionalFromRequest<AppState> for SignedInForm<T, R>
where
    T: DeserializeOwned + CsrfField + Send,
    R: ReturnTo,
{
    type Rejection = PageError;

    async fn from_request(request: Request, state: &AppState) -> Result<Option<Self>, PageError> {
        let (form, current) = form_and_session::<T>(request, state).await?;
        // With no session there is nothing the token could be bound to.
        let Some((session, user)) = current else {
            return Ok(None);
        };
        require_csrf(state, CsrfScope::Session(&session.id), form.csrf())?;
        Ok(Some(SignedInForm {
            session,
            user,
            form,
            return_to: PhantomData,
        }))
    }
}

impl<T, R> FromRequest<AppState> for SignedInForm<T, R>
where
    T: DeserializeOwned + CsrfField + Send,
    R: ReturnTo,
{
    type Rejection = PageFailure;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, PageFailure> {
        match <Self as OptionalFromRequest<AppState>>::from_request(request, state).await? {
            Some(signed_in) => Ok(signed_in),
            None => Err(PageFailure::SignIn(R::PATH.to_string())),
        }
    }
}

/// A form of the logout confirmation: bound to the session when there is one, else to the
/// browser having none (a form shown to a browser without a session can end nothing).
pub struct LogoutForm<T> {
    pub current: Option<(Session, User)>,
    pub form: T,
}

impl<T: DeserializeOwned + CsrfField + Send> FromRequest<AppState> for LogoutForm<T> {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, PageError> {
        let (form, current) = form_and_session::<T>(request, state).await?;
        let scope = match &current {
            Some((session, _)) => CsrfScope::Session(&session.id),
            None => CsrfScope::NoSession,
        };
        require_csrf(state, scope, form.csrf())?;
        Ok(LogoutForm { current, form })
    }
}

/// A sign-in page's form: the sign-in this browser's cookie names, and the form once its token
/// is checked against that sign-in. A token minted for another sign-in (another browser) is
/// refused, and so is any form from a browser without a sign-in cookie.
pub struct SignInForm<T> {
    pub id: SignInId,
    pub form: T,
}

impl<T: DeserializeOwned + CsrfField + Send> FromRequest<AppState> for SignInForm<T> {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, PageError> {
        let jar = CookieJar::from_headers(request.headers());
        let Form(form) = Form::<T>::from_request(request, state).await?;
        let id = cookies::sign_in_id(state, &jar).ok_or_else(PageError::csrf)?;
        require_csrf(state, CsrfScope::SignIn(&id), form.csrf())?;
        Ok(SignInForm { id, form })
    }
}

/// Implements [`CsrfField`] for forms whose token is their `csrf` field.
macro_rules! csrf_field {
    ($($form:ty),+ $(,)?) => {
        $(impl $crate::extract::CsrfField for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        })+
    };
}
pub(crate) use csrf_field;
