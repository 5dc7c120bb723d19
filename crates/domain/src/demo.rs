//! The demo tenant: the people and groups of the phone sign-in lab, created once and kept.

use crate::credential::PassRequest;
use crate::error::DomainError;
use crate::log::Actor;
use crate::secret::Secret;
use crate::service::{Latchkey, NewUser};
use crate::user::{Upn, User};

pub const DEMO_DOMAIN: &str = "latchkey.test";
pub const ADMINISTRATORS_GROUP: &str = "Latchkey Administrators";
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
    let admins = latchkey.ensure_administrators_group().await?;
    let pilot = ensure_group(
        latchkey,
        PILOT_GROUP,
        "Users piloting passwordless phone sign-in.",
    )
    .await?;
    let mut people = Vec::new();
    for (local, name, in_pilot) in PEOPLE {
        let upn = Upn::parse(&format!("{local}@{DEMO_DOMAIN}"))?;
        let user = match latchkey.store().user_by_upn(&upn).await? {
            Some(user) => user,
            None => {
                latchkey
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
        };
        let group = if in_pilot { &pilot } else { &admins };
        latchkey
            .add_group_member(&Actor::system(), &group.id, &user.id)
            .await?;
        let request = PassRequest {
            lifetime_in_minutes: Some(480),
            ..Default::default()
        };
        let (_, pass) = latchkey
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
) -> Result<crate::user::Group, DomainError> {
    match latchkey.find_group(name).await {
        Ok(group) => Ok(group),
        Err(DomainError::NotFound(_)) => {
            latchkey
                .create_group(&Actor::system(), name, description)
                .await
        }
        Err(other) => Err(other),
    }
}
