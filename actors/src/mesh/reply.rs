//! Building HTTP responses: JSON bodies in the negotiated version, empty
//! bodies, and error answers.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde_json::Value;
use spine_protocol::mesh::error::MeshError;
use spine_protocol::mesh::version::ApiVersion;

/// The body type of every response.
pub(crate) type Body = Full<Bytes>;

/// What every handler knows about its request.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    /// Response shapes.
    pub(crate) version: ApiVersion,
    /// The request's id in logs and error bodies.
    pub(crate) internal_id: String,
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A JSON body (`None`: no body at all, as v2 does for some answers).
pub(crate) fn json(code: u16, version: ApiVersion, value: Option<Value>) -> Response<Body> {
    let mut response = match value {
        Some(v) => {
            let bytes = Bytes::from(serde_json::to_vec(&v).unwrap_or_default());
            let mut r = Response::new(Full::new(bytes));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(version.content_type()),
            );
            r
        }
        None => {
            let mut r = Response::new(Full::new(Bytes::new()));
            r.headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
            r
        }
    };
    *response.status_mut() = status(code);
    response
}

/// The error answer for `e`.
pub(crate) fn error(e: &MeshError, ctx: &Ctx) -> Response<Body> {
    let mut r = json(
        e.status,
        ctx.version,
        Some(e.body(ctx.version, &ctx.internal_id)),
    );
    if e.status == 503 || e.status == 429 {
        r.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}
