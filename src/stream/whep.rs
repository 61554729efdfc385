//! WHEP (RFC 9725) endpoints: `POST /whep/{client_id}` starts listening to that client's
//! mix, `DELETE` on the returned `Location` stops it. See `protocol/whep.md`.
//!
//! The HTTP layer knows nothing of tokens or mixes: a [`WhepBackend`] (implemented by the
//! server over the store) says whether a bearer token may listen to a client's mix and
//! which engine slot that mix is, and hears when a client starts or stops listening.
//!
//! Decisions:
//! - CORS: `Access-Control-Allow-Origin: *`. Credentials travel in the `Authorization`
//!   header, never in cookies, so a wildcard origin grants nothing a page could not do
//!   without it, and any WHEP player page (served from anywhere) can listen.
//! - Trickle ICE / ICE restart (`PATCH`) is not supported: answers are sent with gathering
//!   complete, and a client that lost its connection POSTs a new session. `PATCH` → 405.
//! - `DELETE` needs no token: the session URL holds 128 random bits and is the capability
//!   (as RFC 9725 suggests); it must also name the client the session belongs to.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::{StreamError, StreamService};
use crate::engine::EngineError;

/// Largest accepted offer.
pub const MAX_OFFER_BYTES: usize = 64 * 1024;

/// Why a WHEP request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Missing or wrong bearer token (401).
    #[error("unauthorized")]
    Unauthorized,
    /// No such client (404).
    #[error("unknown client")]
    UnknownClient,
}

/// What the WHEP endpoints need from the rest of the server.
pub trait WhepBackend: Send + Sync + 'static {
    /// May the holder of `bearer` listen to `client_id`'s mix? (Its owner, or an
    /// engineer.) Returns the mix's engine slot.
    fn authorize(&self, client_id: &str, bearer: Option<&str>) -> Result<usize, AuthError>;
    /// `client_id`'s mix got its first listener (`true`) or lost its last one (`false`).
    fn listening_changed(&self, client_id: &str, listening: bool);
}

struct WhepState<B> {
    service: StreamService,
    backend: Arc<B>,
    /// session id -> client id
    sessions: Mutex<HashMap<String, String>>,
    /// client id -> open sessions
    per_client: Mutex<HashMap<String, i64>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The WHEP routes (`/whep/{client_id}`, `/whep/{client_id}/{session_id}`), ready to be
/// merged into the server's router.
pub fn router<B: WhepBackend>(service: StreamService, backend: Arc<B>) -> Router {
    let state = Arc::new(WhepState {
        service,
        backend,
        sessions: Mutex::new(HashMap::new()),
        per_client: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route(
            "/whep/{client_id}",
            post(create::<B>).options(preflight).fallback(not_allowed),
        )
        .route(
            "/whep/{client_id}/{session_id}",
            axum::routing::delete(delete::<B>)
                .options(preflight)
                .fallback(not_allowed),
        )
        .layer(DefaultBodyLimit::max(MAX_OFFER_BYTES))
        .layer(axum::middleware::map_response(cors))
        .with_state(state)
}

/// CORS headers on every WHEP response.
async fn cors(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, Accept-Post"),
    );
    res
}

async fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (
                header::ACCESS_CONTROL_ALLOW_METHODS,
                "POST, DELETE, OPTIONS, PATCH",
            ),
            (
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                "Authorization, Content-Type",
            ),
            (header::ACCESS_CONTROL_MAX_AGE, "86400"),
            (
                header::HeaderName::from_static("accept-post"),
                "application/sdp",
            ),
        ],
    )
        .into_response()
}

async fn not_allowed(method: Method) -> Response {
    let msg = if method == Method::PATCH {
        "trickle ICE and ICE restart are not supported: the answer carries every candidate; POST a new session to reconnect\n"
    } else {
        "method not allowed\n"
    };
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "POST, DELETE, OPTIONS")],
        msg,
    )
        .into_response()
}

fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut m: String = msg.into();
    m.retain(|c| c != '\n' && c != '\r');
    m.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        m,
    )
        .into_response()
}

/// What a path segment may carry unescaped (RFC 3986 unreserved); everything else in a
/// client id (`ana@ipad`, `ñandú`) is percent-encoded in the `Location` we hand out.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

async fn create<B: WhepBackend>(
    State(st): State<Arc<WhepState<B>>>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !crate::limits::client_id_ok(&client_id) {
        return text(StatusCode::NOT_FOUND, "unknown client");
    }
    let slot = match st.backend.authorize(&client_id, bearer(&headers)) {
        Ok(slot) => slot,
        Err(AuthError::Unauthorized) => {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "missing or wrong bearer token\n",
            )
                .into_response()
        }
        Err(AuthError::UnknownClient) => return text(StatusCode::NOT_FOUND, "unknown client"),
    };
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ctype
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/sdp"))
    {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/sdp",
        );
    }
    let Ok(offer) = String::from_utf8(body.to_vec()) else {
        return text(StatusCode::BAD_REQUEST, "offer is not UTF-8");
    };
    // Negotiation runs in a task of its own, not in this handler. hyper drops a handler's
    // future when its client hangs up mid-request (EOF on a busy connection), and
    // `StreamService::open` is not cancellation-safe: dropped while negotiating, it kept
    // its listener reservation forever (after `max_listeners` of those, every POST gets
    // 503) and left its half-built peer running. Found by tests/solo/churn.rs (a complete POST,
    // then a TCP RST), with the old `webrtc` transport. `open` no longer awaits anything,
    // but the task stays: it always runs to the end and, when nobody waits for the answer
    // any more, ends the new session at once rather than leaving it to the shard's connect
    // timeout (8 s).
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task_st = st.clone();
    let task_client = client_id.clone();
    tokio::spawn(async move {
        let r = open_session(&task_st, &task_client, slot, &offer).await;
        if let Err(Ok(orphan)) = tx.send(r) {
            tracing::debug!(session = %orphan.id, "WHEP client left before its answer");
            task_st.service.close(&orphan.id).await;
        }
    });
    match rx.await {
        Ok(Ok(s)) => {
            let location = format!(
                "/whep/{}/{}",
                utf8_percent_encode(&client_id, PATH_SEGMENT),
                s.id
            );
            (
                StatusCode::CREATED,
                [
                    (header::CONTENT_TYPE, "application/sdp".to_owned()),
                    (header::LOCATION, location),
                ],
                s.answer_sdp,
            )
                .into_response()
        }
        Ok(Err(e)) => error_response(&e),
        Err(_) => error_response(&StreamError::Internal("session task ended".into())),
    }
}

/// Opens the session and records it for DELETE and the listening count.
async fn open_session<B: WhepBackend>(
    st: &Arc<WhepState<B>>,
    client_id: &str,
    slot: usize,
    offer: &str,
) -> Result<super::OpenedSession, StreamError> {
    let on_end = {
        let st = st.clone();
        let client = client_id.to_owned();
        Box::new(move |id: &str| {
            lock(&st.sessions).remove(id);
            st.session_ended(&client);
        })
    };
    let s = st.service.open(slot, offer, on_end).await?;
    st.session_started(client_id);
    lock(&st.sessions).insert(s.id.clone(), client_id.to_owned());
    if !st.service.has_session(&s.id) {
        // Ended before we recorded it (its on_end already ran).
        lock(&st.sessions).remove(&s.id);
    }
    Ok(s)
}

fn error_response(e: &StreamError) -> Response {
    match e {
        StreamError::BadOffer(reason) => text(StatusCode::BAD_REQUEST, reason.as_str()),
        StreamError::TooManyListeners { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5")],
            "too many listeners\n",
        )
            .into_response(),
        StreamError::SessionNotFound => text(StatusCode::NOT_FOUND, "no such session"),
        StreamError::Engine(EngineError::Stopped) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "audio engine is not running",
        ),
        other => {
            tracing::warn!(error = %other, "WHEP session failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, "cannot start the stream")
        }
    }
}

async fn delete<B: WhepBackend>(
    State(st): State<Arc<WhepState<B>>>,
    Path((client_id, session_id)): Path<(String, String)>,
) -> Response {
    let owned = lock(&st.sessions).get(&session_id) == Some(&client_id);
    // Closing runs in its own task for the reason given in `create`: cancelled between
    // detaching the session and running its `on_end`, it would leave the client marked
    // as listening and its entry in `sessions` for good.
    let service = st.service.clone();
    let closed = owned
        && tokio::spawn(async move { service.close(&session_id).await })
            .await
            .unwrap_or(false);
    if closed {
        StatusCode::OK.into_response()
    } else {
        text(StatusCode::NOT_FOUND, "no such session")
    }
}

impl<B: WhepBackend> WhepState<B> {
    fn session_started(&self, client: &str) {
        self.count(client, 1);
    }

    /// Runs once per session end (the service's `on_end`).
    fn session_ended(&self, client: &str) {
        self.count(client, -1);
    }

    /// Signed count, so an end that races ahead of its start (a peer that closes before
    /// `create` returns) nets to zero without a spurious notification.
    fn count(&self, client: &str, delta: i64) {
        let (old, new) = {
            let mut m = lock(&self.per_client);
            let n = m.entry(client.to_owned()).or_insert(0);
            let old = *n;
            *n += delta;
            let new = *n;
            if new == 0 {
                m.remove(client);
            }
            (old, new)
        };
        match (old, new) {
            (0, 1) => self.backend.listening_changed(client, true),
            (1, 0) => self.backend.listening_changed(client, false),
            _ => {}
        }
    }
}
