//! Authentication strengths: what an application or a request requires, the check before
//! every code, the step-up of a session that is not strong enough, and sign-ins stored before
//! strengths existed.

use latchkey_domain::DomainError;
use latchkey_domain::ids::ClientId;
use latchkey_domain::log::Actor;
use latchkey_domain::oidc::{AuthorizationRequest, AuthorizeParams};
use latchkey_domain::service::{AuthorizeStep, SignedIn, StrengthPrompt};
use latchkey_domain::session::{AuthMethod, Session};
use latchkey_domain::signin::{PendingSignIn, SignInStage};
use latchkey_domain::strength::AuthStrength;
use latchkey_domain::user::User;

use crate::fixture::{Phone, REDIRECT, World, context};

async fn request_for(
    world: &World,
    client_id: &str,
    acr_values: Option<&str>,
) -> AuthorizationRequest {
    world
        .latchkey
        .tokens
        .authorization_request(&AuthorizeParams {
            client_id: Some(client_id.into()),
            redirect_uri: Some(REDIRECT.into()),
            response_type: Some("code".into()),
            scope: Some("openid".into()),
            acr_values: acr_values.map(str::to_string),
            ..AuthorizeParams::default()
        })
        .await
        .expect("a valid request")
}

/// Sets the strength the application requires, as the console does.
async fn require(world: &World, client: &ClientId, strength: Option<&str>) {
    world
        .latchkey
        .applications
        .set_required_strength(&Actor::system(), client, strength)
        .await
        .expect("set");
}

/// The sign-in that `/authorize` sends a browser with `current` (a session and its user) to:
/// a step-up, or the first sign-in without one.
async fn sign_in_for(
    world: &World,
    request: AuthorizationRequest,
    current: Option<(Session, User)>,
) -> PendingSignIn {
    let step = world
        .latchkey
        .sign_in
        .continue_authorization(request, current, &context())
        .await
        .unwrap();
    let AuthorizeStep::SignIn(sign_in) = step else {
        panic!("expected a sign-in or a step-up, got {step:?}");
    };
    *sign_in
}

/// What the strength page says for `sign_in`.
async fn prompt_for(world: &World, sign_in: &PendingSignIn) -> StrengthPrompt {
    world
        .latchkey
        .sign_in
        .strength_prompt(sign_in)
        .await
        .unwrap()
        .expect("the page explains")
}

/// The redirect with a code for `request`, from `signed_in`'s session, or why not.
async fn issue_code(
    world: &World,
    request: &AuthorizationRequest,
    signed_in: &SignedIn,
) -> Result<String, DomainError> {
    world
        .latchkey
        .tokens
        .issue_code(
            request,
            &signed_in.session,
            &signed_in.user,
            &latchkey_domain::log::SignInContext::default(),
        )
        .await
}

/// How many requests wait on the phone.
async fn pending_on(world: &World, phone: &Phone) -> usize {
    let device = phone.device().await;
    world
        .latchkey
        .devices
        .pending_for_device(&device)
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn the_required_strength_is_the_stronger_of_the_applications_and_the_requests() {
    let world = World::new().await;
    let (app, _) = world.confidential_app().await;
    let id = app.client_id.as_str();
    assert_eq!(request_for(&world, id, None).await.required_strength, None);

    require(&world, &app.client_id, Some("passwordlessMfa")).await;
    // Takes effect at once, despite the application cache.
    assert_eq!(
        request_for(&world, id, None).await.required_strength,
        Some(AuthStrength::PasswordlessMfa)
    );
    assert_eq!(
        request_for(&world, id, Some("urn:latchkey:acr:mfa"))
            .await
            .required_strength,
        Some(AuthStrength::PasswordlessMfa),
        "a request cannot ask for less than the application requires"
    );
    assert_eq!(
        request_for(&world, id, Some("urn:latchkey:acr:phishing-resistant-mfa"))
            .await
            .required_strength,
        Some(AuthStrength::PhishingResistantMfa),
        "but it can ask for more"
    );
    require(&world, &app.client_id, None).await;
    assert_eq!(
        request_for(&world, id, Some("urn:x:unknown urn:latchkey:acr:mfa"))
            .await
            .required_strength,
        Some(AuthStrength::Mfa),
        "the first value Latchkey defines wins"
    );
    let error = world
        .latchkey
        .applications
        .set_required_strength(&Actor::system(), &app.client_id, Some("gold"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            DomainError::Invalid {
                field: "requiredStrength",
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn downgrade_no_code_is_issued_for_a_session_that_does_not_meet_the_strength() {
    let world = World::new().await;
    let (app, _) = world.confidential_app().await;
    let bobby = world.user("bobby").await;
    let signed_in = world.signed_in(&bobby).await;
    assert_eq!(signed_in.session.method, AuthMethod::TemporaryAccessPass);
    let weak = request_for(
        &world,
        app.client_id.as_str(),
        Some("urn:latchkey:acr:passwordless-mfa"),
    )
    .await;

    // Whatever page leads here, the code is refused at the one place every code is made.
    let refused = issue_code(&world, &weak, &signed_in).await.unwrap_err();
    assert_eq!(
        refused.to_string(),
        "Contoso Expenses requires passwordless MFA. You signed in with a Temporary Access \
         Pass, which doesn't meet it. Sign in with the Authenticator app (phone sign-in) or a \
         passkey or security key."
    );
    let enough = request_for(&world, app.client_id.as_str(), Some("urn:latchkey:acr:mfa")).await;
    let redirect = issue_code(&world, &enough, &signed_in)
        .await
        .expect("a pass meets multifactor authentication");
    assert!(redirect.contains("code="), "{redirect}");
}

#[tokio::test]
async fn a_session_too_weak_is_stepped_up_to_a_phone_notification_for_the_same_user() {
    let world = World::new().await;
    let (app, _) = world.confidential_app().await;
    let bobby = world.user("bobby").await;
    // Signed in with a pass before the phone was added (with it, the name step would push).
    let signed_in = world.signed_in(&bobby).await;
    let phone = world.phone(&bobby).await;
    let request = request_for(
        &world,
        app.client_id.as_str(),
        Some("urn:latchkey:acr:passwordless-mfa"),
    )
    .await;

    let sign_in = sign_in_for(
        &world,
        request,
        Some((signed_in.session.clone(), signed_in.user.clone())),
    )
    .await;
    assert_eq!(sign_in.step_up_from, Some(AuthMethod::TemporaryAccessPass));
    assert_eq!(
        sign_in.required_strength,
        Some(AuthStrength::PasswordlessMfa)
    );
    // Nothing is pushed by the redirect alone: the page says why and continues as Bobby.
    assert_eq!(pending_on(&world, &phone).await, 0);
    let prompt = prompt_for(&world, &sign_in).await;
    assert_eq!(prompt.continue_as.as_deref(), Some(bobby.upn.as_str()));
    assert!(
        prompt
            .message
            .contains("You signed in with a Temporary Access Pass, which doesn't meet it."),
        "{}",
        prompt.message
    );

    // "Continue": the user-name step for the same user pushes the notification.
    let sign_in = world
        .latchkey
        .sign_in
        .submit_username(
            &sign_in.id,
            prompt.continue_as.as_deref().unwrap(),
            &context(),
        )
        .await
        .unwrap();
    let SignInStage::AwaitingApproval {
        user_id,
        first_factor,
        ..
    } = &sign_in.stage
    else {
        panic!("expected the number page, got {:?}", sign_in.stage);
    };
    assert_eq!(user_id, &bobby.id, "the same user");
    assert_eq!(*first_factor, None, "phone sign-in, not a password first");
    assert_eq!(sign_in.step_up_from, Some(AuthMethod::TemporaryAccessPass));
    phone.only_request().await;
}

#[tokio::test]
async fn a_phone_session_stepped_up_for_phishing_resistance_gets_the_passkey_page_and_no_push() {
    let world = World::new().await;
    let (app, _) = world.confidential_app().await;
    require(&world, &app.client_id, Some("phishingResistantMfa")).await;
    let bobby = world.user("bobby").await;
    // Signed in with a pass before the phone was added (with it, the name step would push).
    let signed_in = world.signed_in(&bobby).await;
    let phone = world.phone(&bobby).await;
    let mut session = signed_in.session.clone();
    session.method = AuthMethod::PhoneSignIn;
    let request = request_for(&world, app.client_id.as_str(), None).await;

    let sign_in = sign_in_for(&world, request, Some((session, signed_in.user.clone()))).await;
    assert!(
        matches!(sign_in.stage, SignInStage::AwaitingCredential { .. }),
        "{:?}",
        sign_in.stage
    );
    let prompt = prompt_for(&world, &sign_in).await;
    assert!(prompt.offers_passkey);
    assert_eq!(
        prompt.message,
        "Contoso Expenses requires phishing-resistant MFA. You signed in with the Authenticator \
         app, which doesn't meet it. Sign in with a passkey or security key."
    );
    assert_eq!(
        pending_on(&world, &phone).await,
        0,
        "no notification for a method that would not meet the strength"
    );
}

#[test]
fn a_sign_in_stored_before_strengths_existed_still_loads_without_one() {
    let stored = serde_json::json!({
        "id": "0123456789abcdef0123456789abcdef",
        "authorization": {
            "client_id": "app", "redirect_uri": REDIRECT, "scopes": ["openid"],
            "state": null, "nonce": null, "code_challenge": null, "prompt": "Default",
            "login_hint": null, "max_age": null
        },
        "return_to": null,
        "stage": {"stage": "awaiting_username"},
        "failed_attempts": 0,
        "created_at": 1,
        "expires_at": 2
    });
    let sign_in: PendingSignIn = serde_json::from_value(stored).expect("loads");
    assert_eq!(sign_in.required_strength, None);
    assert_eq!(sign_in.step_up_from, None);
    assert_eq!(sign_in.authorization.unwrap().required_strength, None);
}

mod with_a_passkey {
    //! With a real passkey (webauthn-authenticator-rs's `SoftPasskey`, verified by webauthn-rs):
    //! the passkey meets phishing-resistant MFA, fresh and as a step-up.

    use latchkey_domain::service::SignedIn;
    use latchkey_domain::session::AuthMethod;
    use latchkey_domain::signin::{PendingSignIn, SignInStage};
    use latchkey_domain::strength::AuthStrength;
    use webauthn_authenticator_rs::softpasskey::SoftPasskey;

    use super::{issue_code, prompt_for, request_for, require, sign_in_for};
    use crate::fixture::{World, context};
    use crate::passkeys::{bobby_with_a_passkey, sign_in_at};

    async fn finish_with_passkey(
        world: &World,
        sign_in: &PendingSignIn,
        key: &mut SoftPasskey,
    ) -> SignedIn {
        sign_in_at(world, &sign_in.id, key)
            .await
            .expect("signed in with the passkey")
    }

    /// An application that requires phishing-resistant MFA; returns its client id.
    async fn payroll(world: &World) -> String {
        let (app, _) = world.confidential_app().await;
        require(world, &app.client_id, Some("phishingResistantMfa")).await;
        app.client_id.to_string()
    }

    #[tokio::test]
    async fn a_pass_session_steps_up_to_the_passkey_and_then_gets_its_code() {
        let world = World::new().await;
        let (signed_in, mut key, _) = bobby_with_a_passkey(&world).await;
        let client = payroll(&world).await;
        let request = request_for(&world, &client, None).await;

        // A pass session must be stepped up.
        let sign_in = sign_in_for(
            &world,
            request,
            Some((signed_in.session.clone(), signed_in.user.clone())),
        )
        .await;
        let stronger = finish_with_passkey(&world, &sign_in, &mut key).await;

        assert!(
            matches!(
                stronger.session.method,
                AuthMethod::DeviceBoundPasskey | AuthMethod::SyncedPasskey
            ),
            "{:?}",
            stronger.session.method
        );
        assert_eq!(stronger.user.id, signed_in.user.id);
        assert_eq!(
            stronger.session.method.acr(),
            AuthStrength::PhishingResistantMfa.acr()
        );
        let request = stronger.sign_in.authorization.clone().unwrap();
        let redirect = issue_code(&world, &request, &stronger)
            .await
            .expect("the stepped-up session gets the code");
        assert!(redirect.contains("code="), "{redirect}");
    }

    #[tokio::test]
    async fn a_fresh_sign_in_with_a_passkey_is_offered_only_the_passkey_and_not_refused() {
        let world = World::new().await;
        let (signed_in, mut key, _) = bobby_with_a_passkey(&world).await;
        let client = payroll(&world).await;
        let request = request_for(&world, &client, None).await;
        // No session: a sign-in.
        let sign_in = sign_in_for(&world, request, None).await;
        let sign_in = world
            .latchkey
            .sign_in
            .submit_username(&sign_in.id, signed_in.user.upn.as_str(), &context())
            .await
            .expect("not refused: Bobby has a passkey");
        assert!(
            matches!(
                sign_in.stage,
                SignInStage::AwaitingCredential { .. } | SignInStage::AwaitingPasskey { .. }
            ),
            "{:?}",
            sign_in.stage
        );
        // Only the passkey is offered.
        let prompt = prompt_for(&world, &sign_in).await;
        assert_eq!(
            prompt.message,
            "Contoso Expenses requires phishing-resistant MFA. Sign in with a passkey or \
             security key."
        );
        let done = finish_with_passkey(&world, &sign_in, &mut key).await;
        let request = done.sign_in.authorization.clone().unwrap();
        issue_code(&world, &request, &done).await.expect("a code");
    }
}
