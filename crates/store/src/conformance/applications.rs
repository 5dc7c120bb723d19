//! `ApplicationStore`: registered applications.

use latchkey_domain::application::{Application, ClientKind, SigningAlg};
use latchkey_domain::ids::ClientId;
use latchkey_domain::store::Store;
use latchkey_domain::strength::AuthStrength;

use super::fixtures::{is_conflict, new_application, stored_application};

pub async fn application_round_trips(store: &dyn Store) {
    let confidential = stored_application(store).await;
    let public = Application {
        kind: ClientKind::Public,
        home_url: None,
        id_token_alg: SigningAlg::RS256,
        required_strength: None,
        ..new_application()
    };
    store
        .create_application(&public)
        .await
        .expect("create_application");
    for app in [&confidential, &public] {
        assert_eq!(
            store.application(&app.client_id).await.unwrap().as_ref(),
            Some(app),
            "an application reads back unchanged, redirect URIs and client kind included"
        );
    }
    let listed = store.list_applications().await.unwrap();
    assert!(
        listed.contains(&confidential) && listed.contains(&public),
        "new applications are listed"
    );
    assert_eq!(
        store.application(&ClientId::random()).await.unwrap(),
        None,
        "an unknown client_id finds nothing"
    );
}

/// A second registration under an existing client_id would hijack the first app's redirects.
pub async fn client_id_is_unique(store: &dyn Store) {
    let app = stored_application(store).await;
    let impostor = Application {
        redirect_uris: vec!["https://evil.conformance.example/cb".into()],
        ..app.clone()
    };
    assert!(
        is_conflict(&store.create_application(&impostor).await),
        "a taken client_id is a conflict"
    );
    assert_eq!(
        store.application(&app.client_id).await.unwrap(),
        Some(app),
        "the original registration is unchanged"
    );
}

pub async fn deleting_an_application_removes_it(store: &dyn Store) {
    let app = stored_application(store).await;
    store
        .delete_application(&app.client_id)
        .await
        .expect("delete_application");
    assert_eq!(
        store.application(&app.client_id).await.unwrap(),
        None,
        "a deleted application is gone"
    );
    assert!(
        !store.list_applications().await.unwrap().contains(&app),
        "a deleted application is not listed"
    );
}

pub async fn an_applications_required_strength_can_be_changed_and_cleared(store: &dyn Store) {
    let app = stored_application(store).await;
    for strength in [
        Some(AuthStrength::Mfa),
        None,
        Some(AuthStrength::PasswordlessMfa),
    ] {
        assert!(
            store
                .set_required_strength(&app.client_id, strength)
                .await
                .expect("set_required_strength"),
            "an existing application is updated"
        );
        let read = store.application(&app.client_id).await.unwrap().unwrap();
        assert_eq!(read.required_strength, strength, "the strength reads back");
        assert_eq!(
            Application {
                required_strength: app.required_strength,
                ..read
            },
            app,
            "nothing else changes"
        );
    }
    assert!(
        !store
            .set_required_strength(&ClientId::random(), Some(AuthStrength::Mfa))
            .await
            .unwrap(),
        "an unknown client_id updates nothing"
    );
}
