//! A typed client for the admin API: one method per operation, answering the contract's types.
//! `latchkey admin`, the load generator and the integration tests use it.

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::*;

/// Why a call did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server was not reached, or its answer could not be read.
    #[error("could not reach {base}: {source}")]
    Unreachable {
        base: String,
        #[source]
        source: reqwest::Error,
    },
    /// The server refused, with the admin API's error body.
    #[error("{} ({}, HTTP {})", .error.message, .error.code, .status.as_u16())]
    Refused {
        status: StatusCode,
        error: ErrorDetail,
    },
    /// The server answered with something that is not the contract.
    #[error("unexpected answer to {operation}: {detail}")]
    Unexpected { operation: String, detail: String },
}

impl ClientError {
    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The admin API at one server, with the token every call carries.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// Encodes one path segment: a space becomes `%20`, a `/` cannot end the segment.
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The path with the log parameters that are set as its query string.
fn with_query(path: &str, query: &LogParameters) -> String {
    let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(query) else {
        return path.to_string();
    };
    let pairs: Vec<String> = fields
        .iter()
        .map(|(name, value)| {
            let value = match value {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            format!("{name}={}", segment(&value))
        })
        .collect();
    if pairs.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", pairs.join("&"))
    }
}

impl Client {
    /// `base` is the server's base URL (`https://id.example.com`), without `/api/v1`.
    pub fn new(http: reqwest::Client, base: &str, token: &str) -> Client {
        Client {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// Sends a request and returns the successful answer's body as text.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<String, ClientError> {
        let unreachable = |source| ClientError::Unreachable {
            base: self.base.clone(),
            source,
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let text = response.text().await.map_err(unreachable)?;
        if status.is_success() {
            return Ok(text);
        }
        let error = serde_json::from_str::<Error>(&text)
            .map(|e| e.error)
            .unwrap_or_else(|_| ErrorDetail {
                code: "error".into(),
                message: "the server refused the request".into(),
            });
        Err(ClientError::Refused { status, error })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T, ClientError> {
        let operation = format!("{method} {path}");
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(body);
        }
        let text = self.send(request).await?;
        serde_json::from_str(&text).map_err(|e| ClientError::Unexpected {
            operation,
            detail: e.to_string(),
        })
    }

    /// A call whose success has no body (204).
    async fn call_empty(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<(), ClientError> {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(request).await.map(drop)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::GET, path, None::<&()>).await
    }

    // Users.

    pub async fn list_users(&self) -> Result<Vec<User>, ClientError> {
        Ok(self.get::<UserList>("/users").await?.value)
    }

    pub async fn create_user(&self, new: &NewUser) -> Result<User, ClientError> {
        self.call(Method::POST, "/users", Some(new)).await
    }

    /// By id or user principal name.
    pub async fn user(&self, id: &str) -> Result<User, ClientError> {
        self.get(&format!("/users/{}", segment(id))).await
    }

    pub async fn update_user(&self, id: &str, patch: &UserPatch) -> Result<User, ClientError> {
        let path = format!("/users/{}", segment(id));
        self.call(Method::PATCH, &path, Some(patch)).await
    }

    pub async fn set_password(&self, id: &str, password: &str) -> Result<(), ClientError> {
        let path = format!("/users/{}/password", segment(id));
        let body = PasswordChange {
            password: password.to_string(),
        };
        self.call_empty(Method::PUT, &path, Some(&body)).await
    }

    pub async fn certificate_user_ids(&self, id: &str) -> Result<CertificateUserIds, ClientError> {
        self.get(&format!("/users/{}/certificateUserIds", segment(id)))
            .await
    }

    /// Replaces the user's certificate user ids; answers them as saved (normalised).
    pub async fn set_certificate_user_ids(
        &self,
        id: &str,
        ids: &[String],
    ) -> Result<CertificateUserIds, ClientError> {
        let path = format!("/users/{}/certificateUserIds", segment(id));
        let body = CertificateUserIds {
            certificate_user_ids: ids.to_vec(),
        };
        self.call(Method::PUT, &path, Some(&body)).await
    }

    pub async fn effective_policy(&self, id: &str) -> Result<EffectivePolicy, ClientError> {
        self.get(&format!("/users/{}/effectivePolicy", segment(id)))
            .await
    }

    // Temporary Access Passes.

    pub async fn issue_pass(
        &self,
        user: &str,
        request: &TemporaryAccessPassRequest,
    ) -> Result<CreatedTemporaryAccessPass, ClientError> {
        let path = format!("/users/{}/temporaryAccessPass", segment(user));
        self.call(Method::POST, &path, Some(request)).await
    }

    pub async fn pass(&self, user: &str) -> Result<TemporaryAccessPass, ClientError> {
        self.get(&format!("/users/{}/temporaryAccessPass", segment(user)))
            .await
    }

    pub async fn delete_pass(&self, user: &str) -> Result<(), ClientError> {
        let path = format!("/users/{}/temporaryAccessPass", segment(user));
        self.call_empty(Method::DELETE, &path, None::<&()>).await
    }

    // Authenticator activations.

    pub async fn create_activation(
        &self,
        user: &str,
    ) -> Result<CreatedAuthenticatorActivation, ClientError> {
        let path = format!("/users/{}/authenticatorActivations", segment(user));
        self.call(Method::POST, &path, None::<&()>).await
    }

    pub async fn activation(
        &self,
        user: &str,
        activation: &str,
    ) -> Result<AuthenticatorActivation, ClientError> {
        self.get(&format!(
            "/users/{}/authenticatorActivations/{}",
            segment(user),
            segment(activation)
        ))
        .await
    }

    // Groups.

    pub async fn list_groups(&self) -> Result<Vec<Group>, ClientError> {
        Ok(self.get::<GroupList>("/groups").await?.value)
    }

    pub async fn create_group(&self, new: &NewGroup) -> Result<Group, ClientError> {
        self.call(Method::POST, "/groups", Some(new)).await
    }

    pub async fn members(&self, group: &str) -> Result<Vec<User>, ClientError> {
        let path = format!("/groups/{}/members", segment(group));
        Ok(self.get::<UserList>(&path).await?.value)
    }

    /// `user` is a user id or user principal name.
    pub async fn add_member(&self, group: &str, user: &str) -> Result<(), ClientError> {
        let path = format!("/groups/{}/members", segment(group));
        let body = MemberReference {
            user_id: user.to_string(),
        };
        self.call_empty(Method::POST, &path, Some(&body)).await
    }

    pub async fn remove_member(&self, group: &str, user: &str) -> Result<(), ClientError> {
        let path = format!("/groups/{}/members/{}", segment(group), segment(user));
        self.call_empty(Method::DELETE, &path, None::<&()>).await
    }

    // Applications.

    pub async fn list_applications(&self) -> Result<Vec<Application>, ClientError> {
        Ok(self.get::<ApplicationList>("/applications").await?.value)
    }

    pub async fn register_application(
        &self,
        new: &NewApplication,
    ) -> Result<CreatedApplication, ClientError> {
        self.call(Method::POST, "/applications", Some(new)).await
    }

    pub async fn application(&self, app_id: &str) -> Result<Application, ClientError> {
        self.get(&format!("/applications/{}", segment(app_id)))
            .await
    }

    /// Sets (or with `None` clears) the authentication strength an application requires.
    pub async fn set_required_strength(
        &self,
        app_id: &str,
        strength: Option<&str>,
    ) -> Result<Application, ClientError> {
        let path = format!("/applications/{}/requiredStrength", segment(app_id));
        let body = ApplicationStrength {
            required_strength: strength.map(str::to_string),
        };
        self.call(Method::PUT, &path, Some(&body)).await
    }

    pub async fn delete_application(&self, app_id: &str) -> Result<(), ClientError> {
        let path = format!("/applications/{}", segment(app_id));
        self.call_empty(Method::DELETE, &path, None::<&()>).await
    }

    /// Changes an application's settings; what `patch` leaves out stays.
    pub async fn update_application(
        &self,
        app_id: &str,
        patch: &ApplicationPatch,
    ) -> Result<Application, ClientError> {
        let path = format!("/applications/{}", segment(app_id));
        self.call(Method::PATCH, &path, Some(patch)).await
    }

    pub async fn assignments(&self, app_id: &str) -> Result<Vec<AppAssignment>, ClientError> {
        let path = format!("/applications/{}/assignments", segment(app_id));
        Ok(self.get::<AppAssignmentList>(&path).await?.value)
    }

    /// Assigns the application to a user (id or user principal name) or a group (id or
    /// display name); `principal_type` is `User` or `Group`.
    pub async fn assign(
        &self,
        app_id: &str,
        principal_type: &str,
        principal: &str,
    ) -> Result<AppAssignment, ClientError> {
        let path = format!("/applications/{}/assignments", segment(app_id));
        let body = NewAppAssignment {
            principal_id: principal.to_string(),
            principal_type: principal_type.to_string(),
        };
        self.call(Method::POST, &path, Some(&body)).await
    }

    /// Removes the assignment of a user (`users`) or a group (`groups`).
    pub async fn unassign(
        &self,
        app_id: &str,
        principal_type: &str,
        principal: &str,
    ) -> Result<(), ClientError> {
        let collection = match principal_type {
            "Group" | "group" | "groups" => "groups",
            _ => "users",
        };
        let path = format!(
            "/applications/{}/assignments/{collection}/{}",
            segment(app_id),
            segment(principal)
        );
        self.call_empty(Method::DELETE, &path, None::<&()>).await
    }

    // The authentication methods policy.

    pub async fn policy(&self) -> Result<AuthenticationMethodsPolicy, ClientError> {
        self.get("/policies/authenticationMethodsPolicy").await
    }

    fn configuration_path(method: &str) -> String {
        format!(
            "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/{}",
            segment(method)
        )
    }

    pub async fn configuration(
        &self,
        method: &str,
    ) -> Result<AuthenticationMethodConfiguration, ClientError> {
        self.get(&Self::configuration_path(method)).await
    }

    /// Replaces a method's configuration.
    pub async fn put_configuration(
        &self,
        method: &str,
        configuration: &AuthenticationMethodConfiguration,
    ) -> Result<AuthenticationMethodConfiguration, ClientError> {
        let path = Self::configuration_path(method);
        self.call(Method::PUT, &path, Some(configuration)).await
    }

    /// Replaces a method's configuration with a document as an administrator wrote it, for the
    /// server to check (it names the field at fault; a typed value could not carry the mistake).
    pub async fn put_configuration_document(
        &self,
        method: &str,
        document: &serde_json::Value,
    ) -> Result<AuthenticationMethodConfiguration, ClientError> {
        let path = Self::configuration_path(method);
        self.call(Method::PUT, &path, Some(document)).await
    }

    /// Applies a JSON merge patch to a method's configuration.
    pub async fn patch_configuration(
        &self,
        method: &str,
        patch: &AuthenticationMethodConfigurationPatch,
    ) -> Result<AuthenticationMethodConfiguration, ClientError> {
        let path = Self::configuration_path(method);
        self.call(Method::PATCH, &path, Some(patch)).await
    }

    /// Puts a method's configuration back to its defaults.
    pub async fn reset_configuration(
        &self,
        method: &str,
    ) -> Result<AuthenticationMethodConfiguration, ClientError> {
        let path = Self::configuration_path(method);
        self.call(Method::DELETE, &path, None::<&()>).await
    }

    // The registration campaign.

    const CAMPAIGN_PATH: &str = "/policies/authenticationMethodsPolicy/registrationEnforcement";

    pub async fn registration_enforcement(&self) -> Result<RegistrationEnforcement, ClientError> {
        self.get(Self::CAMPAIGN_PATH).await
    }

    /// Applies a JSON merge patch to `registrationEnforcement`.
    pub async fn patch_registration_enforcement(
        &self,
        patch: &serde_json::Value,
    ) -> Result<RegistrationEnforcement, ClientError> {
        self.call(Method::PATCH, Self::CAMPAIGN_PATH, Some(patch))
            .await
    }

    /// Puts the campaign back to its default (off).
    pub async fn reset_registration_enforcement(
        &self,
    ) -> Result<RegistrationEnforcement, ClientError> {
        self.call(Method::DELETE, Self::CAMPAIGN_PATH, None::<&()>)
            .await
    }

    // The logs.

    pub async fn sign_ins(&self, query: &LogParameters) -> Result<Vec<SignInRecord>, ClientError> {
        let path = "/auditLogs/signIns";
        let text = self
            .send(self.request(Method::GET, &with_query(path, query)))
            .await?;
        Self::parse::<SignInList>(path, &text).map(|l| l.value)
    }

    pub async fn directory_audits(
        &self,
        query: &LogParameters,
    ) -> Result<Vec<AuditEvent>, ClientError> {
        let path = "/auditLogs/directoryAudits";
        let text = self
            .send(self.request(Method::GET, &with_query(path, query)))
            .await?;
        Self::parse::<AuditEventList>(path, &text).map(|l| l.value)
    }

    /// A log as the server writes it in `query.format` (`json`, `jsonl` or `csv`), unparsed:
    /// for exports. `log` is `signIns` or `directoryAudits`.
    pub async fn export_log(
        &self,
        log: &str,
        query: &LogParameters,
    ) -> Result<String, ClientError> {
        let path = format!("/auditLogs/{}", segment(log));
        self.send(self.request(Method::GET, &with_query(&path, query)))
            .await
    }

    fn parse<T: DeserializeOwned>(operation: &str, text: &str) -> Result<T, ClientError> {
        serde_json::from_str(text).map_err(|e| ClientError::Unexpected {
            operation: operation.to_string(),
            detail: e.to_string(),
        })
    }

    // Identity protection.

    pub async fn risky_users(&self) -> Result<Vec<RiskyUser>, ClientError> {
        Ok(self
            .get::<RiskyUserList>("/identityProtection/riskyUsers")
            .await?
            .value)
    }

    pub async fn risky_user(&self, id: &str) -> Result<RiskyUserWithDetections, ClientError> {
        self.get(&format!("/identityProtection/riskyUsers/{}", segment(id)))
            .await
    }

    pub async fn dismiss_risk(&self, user_ids: &[String]) -> Result<(), ClientError> {
        let body = DismissRiskyUsers {
            user_ids: user_ids.to_vec(),
        };
        let path = "/identityProtection/riskyUsers/dismiss";
        self.call_empty(Method::POST, path, Some(&body)).await
    }

    // Administrator API tokens and the administrator role.

    pub async fn list_admin_tokens(&self) -> Result<Vec<AdminToken>, ClientError> {
        Ok(self.get::<AdminTokenList>("/adminTokens").await?.value)
    }

    pub async fn create_admin_token(
        &self,
        new: &NewAdminToken,
    ) -> Result<CreatedAdminToken, ClientError> {
        self.call(Method::POST, "/adminTokens", Some(new)).await
    }

    pub async fn admin_token(&self, id: &str) -> Result<AdminToken, ClientError> {
        self.get(&format!("/adminTokens/{}", segment(id))).await
    }

    pub async fn revoke_admin_token(&self, id: &str) -> Result<AdminToken, ClientError> {
        let path = format!("/adminTokens/{}/revoke", segment(id));
        self.call(Method::POST, &path, None::<&()>).await
    }

    pub async fn administrator_role(&self) -> Result<AdministratorRole, ClientError> {
        self.get("/administratorRole").await
    }

    pub async fn bind_administrator_role(
        &self,
        group_id: &str,
    ) -> Result<AdministratorRole, ClientError> {
        let body = AdministratorRoleBinding {
            group_id: group_id.to_string(),
        };
        self.call(Method::PUT, "/administratorRole", Some(&body))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(segment("ada@example.com"), "ada@example.com");
        assert_eq!(segment("Sales team"), "Sales%20team");
        assert_eq!(segment("a/b?c#d"), "a%2Fb%3Fc%23d");
    }
}
