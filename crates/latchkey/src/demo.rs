//! The demo tenant: the people and groups of the phone sign-in lab, created once and kept.
//! It belongs to the binary (`latchkey demo`), not to the domain: it only calls the services.

use latchkey_domain::credential::PassRequest;
use latchkey_domain::error::DomainError;
use latchkey_domain::log::Actor;
use latchkey_domain::secret::Secret;
use latchkey_domain::service::{ADMINISTRATORS_GROUP_NAME, Latchkey, NewUser};
use latchkey_domain::user::{Group, Upn, User};

pub const DEMO_DOMAIN: &str = "latchkey.test";
/// The name the administrator role's group gets on a new server.
pub const ADMINISTRATORS_GROUP: &str = ADMINISTRATORS_GROUP_NAME;
pub const PILOT_GROUP: &str = "Passwordless Pilot";

const PEOPLE: [(&str, &str, bool); 3] = [
    ("admin", "Avery Admin", false),
    ("bobby", "Bobby Smith", true),
    ("guy", "Guy Oz", true),
];

/// A person of the demo tenant with the pass made for them on this start.
pub struct DemoPerson {
    pub user: User,
    pub pass: Secret,
}

/// Creates what is missing of the demo tenant and issues a fresh pass to each person.
/// Running it again keeps everything and only replaces the passes.
pub async fn seed_demo_tenant(latchkey: &Latchkey) -> Result<Vec<DemoPerson>, DomainError> {
    // The group bound to the administrator role (made at first start), whatever its name.
    let admins = latchkey.governance.ensure_administrators_group().await?;
    let pilot = ensure_group(
        latchkey,
        PILOT_GROUP,
        "Users piloting passwordless phone sign-in.",
    )
    .await?;
    let mut people = Vec::new();
    for (local, name, in_pilot) in PEOPLE {
        let upn = Upn::parse(&format!("{local}@{DEMO_DOMAIN}"))?;
        let user = match latchkey.directory.find_user(upn.as_str()).await {
            Ok(user) => user,
            Err(DomainError::NotFound(_)) => {
                latchkey
                    .directory
                    .create_user(
                        &Actor::system(),
                        NewUser {
                            user_principal_name: upn.to_string(),
                            display_name: name.to_string(),
                            mail: Some(upn.to_string()),
                            account_enabled: true,
                        },
                    )
                    .await?
            }
            Err(other) => return Err(other),
        };
        let group = if in_pilot { &pilot } else { &admins };
        latchkey
            .directory
            .add_group_member(&Actor::system(), &group.id, &user.id)
            .await?;
        let request = PassRequest {
            lifetime_in_minutes: Some(480),
            ..Default::default()
        };
        let (_, pass) = latchkey
            .directory
            .issue_pass(&Actor::system(), &user.id, &request)
            .await?;
        people.push(DemoPerson { user, pass });
    }
    Ok(people)
}

async fn ensure_group(
    latchkey: &Latchkey,
    name: &str,
    description: &str,
) -> Result<Group, DomainError> {
    match latchkey.directory.find_group(name).await {
        Ok(group) => Ok(group),
        Err(DomainError::NotFound(_)) => {
            latchkey
                .directory
                .create_group(&Actor::system(), name, description)
                .await
        }
        Err(other) => Err(other),
    }
}
