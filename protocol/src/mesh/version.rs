//! API version negotiation: the `Accept` header picks the v1 or v2 response
//! shapes (MESH spec "API Versioning", parsed as mesh-sandbox does).
//!
//! Missing header, or no `vnd.mesh` media type (e.g. `*/*`,
//! `application/json`): v1. `application/vnd.mesh.v2+json`: v2. A
//! `vnd.mesh` type that is malformed or names another version: an error
//! (400), so a client never silently gets a shape it did not ask for.

use thiserror::Error;

/// Which response shapes to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// `application/json` bodies, camelCase fields.
    V1,
    /// `application/vnd.mesh.v2+json` bodies, snake_case fields.
    V2,
}

impl ApiVersion {
    /// The `Content-Type` of JSON bodies in this version.
    pub fn content_type(self) -> &'static str {
        match self {
            ApiVersion::V1 => "application/json",
            ApiVersion::V2 => "application/vnd.mesh.v2+json",
        }
    }

    /// Picks the version from the `Accept` header's value.
    pub fn from_accept(accept: Option<&str>) -> Result<ApiVersion, AcceptError> {
        let Some(accept) = accept else {
            return Ok(ApiVersion::V1);
        };
        let mut chosen = ApiVersion::V1;
        for part in accept.split([',', ';']).map(str::trim) {
            let lower = part.to_ascii_lowercase();
            if !lower.contains("vnd.mesh") {
                continue;
            }
            let version = lower
                .strip_prefix("application/vnd.mesh.v")
                .and_then(|rest| rest.strip_suffix("+json"))
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
            match version {
                Some("1") => chosen = ApiVersion::V1,
                Some("2") => chosen = ApiVersion::V2,
                _ => return Err(AcceptError),
            }
        }
        Ok(chosen)
    }
}

/// The `Accept` header names a MESH media type this server does not speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("Accept header api format incorrect: use application/vnd.mesh.v2+json (or application/vnd.mesh.v1+json, or application/json for v1)")]
pub struct AcceptError;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_follow_the_accept_header() {
        let v = ApiVersion::from_accept;
        assert_eq!(v(None), Ok(ApiVersion::V1));
        assert_eq!(v(Some("*/*")), Ok(ApiVersion::V1));
        assert_eq!(v(Some("application/json")), Ok(ApiVersion::V1));
        assert_eq!(v(Some("application/vnd.mesh.v1+json")), Ok(ApiVersion::V1));
        assert_eq!(v(Some("application/vnd.mesh.v2+json")), Ok(ApiVersion::V2));
        assert_eq!(
            v(Some("text/html, application/vnd.mesh.v2+json;q=0.9")),
            Ok(ApiVersion::V2)
        );
        assert_eq!(v(Some("application/vnd.mesh.v3+json")), Err(AcceptError));
        assert_eq!(v(Some("application/vnd.mesh.vx+json")), Err(AcceptError));
        assert_eq!(v(Some("application/vnd.mesh")), Err(AcceptError));
    }
}
