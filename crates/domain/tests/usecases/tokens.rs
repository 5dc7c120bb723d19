//! The authorization code and refresh token grants: one use each, a lifetime each, and a
//! reused refresh token revokes its whole family.

use latchkey_domain::oidc::{AuthorizeParams, OAuthErrorCode};
use latchkey_domain::secret::Secret;
use latchkey_domain::service::{ClientCredentials, OAuthError, TokenResponse};

use crate::fixture::{REDIRECT, World};

struct Client {
    credentials: ClientCredentials,
}

/// Bobby signed in, and a code issued for him to a confidential application.
async fn a_code(world: &World) -> (Client, String) {
    let (app, secret) = world.confidential_app().await;
    let bobby = world.user("bobby").await;
    let signed_in = world.signed_in(&bobby).await;
    let request = world
        .latchkey
        .tokens
        .authorization_request(&AuthorizeParams {
            client_id: Some(app.client_id.to_string()),
            redirect_uri: Some(REDIRECT.into()),
            response_type: Some("code".into()),
            scope: Some("openid profile offline_access".into()),
            state: Some("st4te".into()),
            nonce: Some("n0nce".into()),
            ..AuthorizeParams::default()
        })
        .await
        .expect("a valid request");
    let redirect = world
        .latchkey
        .tokens
        .issue_code(
            &request,
            &signed_in.session,
            &signed_in.user,
            &latchkey_domain::log::SignInContext::default(),
        )
        .await
        .unwrap();
    let redirect = url::Url::parse(&redirect).unwrap();
    assert!(redirect.as_str().starts_with(REDIRECT), "{redirect}");
    let code = redirect
        .query_pairs()
        .find(|(name, _)| name == "code")
        .map(|(_, code)| code.into_owned())
        .expect("the redirect carries the code");
    let client = Client {
        credentials: ClientCredentials {
            client_id: Some(app.client_id.to_string()),
            secret: Some(Secret::new(secret.expose())),
        },
    };
    (client, code)
}

async fn exchange(world: &World, client: &Client, code: &str) -> Result<TokenResponse, OAuthError> {
    world
        .latchkey
        .tokens
        .exchange_code(&client.credentials, code, Some(REDIRECT), None)
        .await
}

async fn refresh(world: &World, client: &Client, token: &str) -> Result<TokenResponse, OAuthError> {
    world
        .latchkey
        .tokens
        .refresh(&client.credentials, token, None)
        .await
}

#[tokio::test]
async fn a_code_buys_tokens_once() {
    let world = World::new().await;
    let (client, code) = a_code(&world).await;
    let tokens = exchange(&world, &client, &code).await.unwrap();
    assert!(
        tokens.refresh_token.is_some(),
        "offline_access gives a refresh token"
    );
    assert_eq!(tokens.token_type, "Bearer");
    let claims = world
        .latchkey
        .tokens
        .userinfo(&tokens.access_token)
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&claims).unwrap()["preferred_username"],
        "bobby@contoso.example"
    );
    let again = exchange(&world, &client, &code).await.unwrap_err();
    assert_eq!(again.error, OAuthErrorCode::InvalidGrant);
}

#[tokio::test]
async fn a_code_not_used_within_its_lifetime_buys_nothing() {
    let world = World::with_settings(|s| s.code_lifetime_seconds = 60).await;
    let (client, code) = a_code(&world).await;
    world.advance(60);
    let late = exchange(&world, &client, &code).await.unwrap_err();
    assert_eq!(late.error, OAuthErrorCode::InvalidGrant);
}

#[tokio::test]
async fn a_refresh_token_is_replaced_on_use_and_a_reused_one_revokes_the_family() {
    let world = World::new().await;
    let (client, code) = a_code(&world).await;
    let first = exchange(&world, &client, &code).await.unwrap();
    let first_refresh = first.refresh_token.unwrap();
    let second = refresh(&world, &client, &first_refresh).await.unwrap();
    let second_refresh = second.refresh_token.unwrap();
    assert_ne!(first_refresh, second_refresh, "rotated");
    let reused = refresh(&world, &client, &first_refresh).await.unwrap_err();
    assert_eq!(reused.error, OAuthErrorCode::InvalidGrant);
    assert!(
        reused.description.contains("already used"),
        "{}",
        reused.description
    );
    let after = refresh(&world, &client, &second_refresh).await.unwrap_err();
    assert_eq!(
        after.error,
        OAuthErrorCode::InvalidGrant,
        "the whole family is revoked"
    );
}

#[tokio::test]
async fn a_refresh_token_past_its_lifetime_is_refused() {
    let world = World::with_settings(|s| s.refresh_token_lifetime_seconds = 3600).await;
    let (client, code) = a_code(&world).await;
    let tokens = exchange(&world, &client, &code).await.unwrap();
    world.advance(3600);
    let late = refresh(&world, &client, &tokens.refresh_token.unwrap())
        .await
        .unwrap_err();
    assert_eq!(late.error, OAuthErrorCode::InvalidGrant);
    assert!(late.description.contains("expired"), "{}", late.description);
}

#[tokio::test]
async fn a_wrong_client_secret_buys_nothing() {
    let world = World::new().await;
    let (client, code) = a_code(&world).await;
    let thief = Client {
        credentials: ClientCredentials {
            client_id: client.credentials.client_id.clone(),
            secret: Some(Secret::new("guessed")),
        },
    };
    assert_eq!(
        exchange(&world, &thief, &code).await.unwrap_err().error,
        OAuthErrorCode::InvalidClient
    );
    exchange(&world, &client, &code)
        .await
        .expect("the code is still good");
}
