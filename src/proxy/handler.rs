//! The hyper codec's request handler: HTTP/2, upgrades, chunked and
//! `Expect` uploads, HTTP/1.0, and everything when the pass-through codec
//! is off.
//!
//! [`Proxy::handle`] is the outer handler: it always produces a response
//! (forwarded or local) and accounts for the request once. `serve_hyper`
//! is the inner one, written with `?`: it executes the judgement's plan
//! (reading the body first when a body-aware rule asks), sends the request
//! upstream with the one rewrite of its head, and joins an upgrade.

use std::time::Instant;

use http::header::{self, HeaderMap};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body::Body as _;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;

use super::account::{Cause, Finished};
use super::body::{BodyWatch, ProxyBody};
use super::failure::{upstream_error, RelayError};
use super::inspect::{self, Inspected};
use super::judge::{Facts, Judgement, Plan};
use super::pass::head::{framing, Framing};
use super::request_id::Id;
use super::{local, tunnel, ConnInfo, Proxy, ProxyError};
use crate::head::{Fields, HeadView, Marks};
use crate::policy::BodyView;
use crate::upstream::body::ForwardBody;
use crate::upstream::headers::{rewrite_request, rewrite_response, rewrite_switch};
use crate::upstream::{Lease, UpstreamError, UpstreamFailure};

/// What the inner handler leaves for the accounting.
#[derive(Default)]
struct Trail<'j> {
    request_id: Option<Id>,
    facts: Facts<'j>,
    /// When the response head was ready.
    answered: Option<Instant>,
    /// What failed, when more is known than the error says.
    cause: Option<RelayError>,
}

impl Proxy {
    /// The outer handler: always a response, never an error.
    pub async fn handle(&self, req: Request<Incoming>, conn: ConnInfo) -> Response<ProxyBody> {
        let start = Instant::now();
        let (mut parts, body) = req.into_parts();
        let client_upgrade = parts.extensions.remove::<OnUpgrade>();
        let method = parts.method.clone();
        let version = parts.version;
        let raw_target = parts.uri.clone();
        let user_agent = parts.headers.get(header::USER_AGENT).cloned();
        let accept = parts.headers.get(header::ACCEPT).cloned();
        let mut trail = Trail::default();
        // Inline: the caller boxes this whole future (see `server::conn`).
        let result = self
            .serve_hyper(parts, body, client_upgrade, conn, &mut trail)
            .await;
        let request_id = trail.request_id.unwrap_or_default();
        let target = raw_target.path_and_query().map_or("/", |p| p.as_str());
        let wait = self.accounts.finish(Finished {
            start,
            answered: trail.answered.unwrap_or_else(Instant::now),
            method: Some(&method),
            version,
            target,
            user_agent: user_agent.as_ref().map(|v| v.as_bytes()),
            peer: conn.peer.ip(),
            request_id: &request_id,
            facts: &mut trail.facts,
            outcome: result.as_ref().map(|r| r.status().as_u16()),
            cause: trail.cause.as_ref().map(|e| Cause {
                side: e.side(),
                error: e,
            }),
        });
        if let Some(wait) = wait {
            wait.await;
        }
        match result {
            Ok(resp) => resp,
            Err(err) => {
                let accept = accept.as_ref().and_then(|v| v.to_str().ok());
                local::error_response(&err, accept, request_id.as_str()).into_response()
            }
        }
    }

    /// The inner handler.
    async fn serve_hyper<'j>(
        &'j self,
        mut parts: http::request::Parts,
        body: Incoming,
        client_upgrade: Option<OnUpgrade>,
        conn: ConnInfo,
        trail: &mut Trail<'j>,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let limit = self.judge.limits().max_request_body_bytes;
        let view = HeadView::of_parts(&parts);
        let mut judgement = self.judge.decide(&view, &conn);
        // Boxed, here and below: a region lookup is rare.
        if matches!(judgement.plan, Plan::Discover(_)) {
            let settle = self
                .judge
                .settle(judgement, &view, BodyView::NotRead, &conn);
            judgement = Box::pin(settle).await;
        }
        let mut forward_body = None;
        if let Plan::ReadBody(pending) = judgement.plan {
            trail.request_id = Some(judgement.request_id.clone());
            let inspected =
                inspect::read_incoming(view.fields, body, self.judge.max_inspect()).await?;
            let body = match &inspected {
                Inspected::Json(bytes, json) => {
                    forward_body = Some(ForwardBody::buffered(bytes.clone()));
                    BodyView::Json(json)
                }
                // Fail closed: the rule that asked cannot judge this body.
                Inspected::Unreadable => BodyView::Unreadable,
            };
            let resumed = self.judge.resume(pending, &view, body, &conn);
            judgement = if matches!(resumed.plan, Plan::Discover(_)) {
                Box::pin(self.judge.settle(resumed, &view, body, &conn)).await
            } else {
                resumed
            };
        } else {
            forward_body = Some(ForwardBody::new(body, limit));
        }
        let Judgement {
            request_id,
            plan,
            facts,
        } = judgement;
        trail.request_id = Some(request_id.clone());
        trail.facts = facts;
        let forward = match plan {
            Plan::Forward(f) => f,
            Plan::Answer(a) => {
                trail.answered = Some(Instant::now());
                return Ok(a.into_response());
            }
            Plan::Reject(e) => return Err(e),
            pending @ (Plan::ReadBody(_) | Plan::Discover(_)) => {
                return Err(super::pass::left_pending(&pending))
            }
        };
        let upgrade = forward.upgrade.is_some();
        let target = forward.target();
        let uri = Uri::try_from(target.as_ref())
            .map_err(|_| ProxyError::BadRequest("invalid request target"))?;
        let mut headers = HeaderMap::with_capacity(view.fields.len() + 6);
        rewrite_request(view.fields, &forward.rewrite(), &mut headers);
        drop(target);
        drop(forward);
        parts.uri = uri;
        parts.version = Version::HTTP_11;
        parts.headers = headers;
        let Some(forward_body) = forward_body else {
            // Only an unreadable body leaves none, and that never forwards.
            return Err(ProxyError::ClientBody);
        };
        let head_request = parts.method == http::Method::HEAD;
        // A body still to come is watched: each wait for the client's bytes
        // is bounded, and its end starts the response header timeout.
        let (forward_body, sent_whole) = if forward_body.is_end_stream() {
            (forward_body, None)
        } else {
            let (body, whole) = forward_body.watched(self.forwarder.client_body_timeout);
            (body, Some(whole))
        };
        let up_req = Request::from_parts(parts, forward_body);
        let upstream = &self.forwarder.upstream;
        let mut send = Detachable::new(&self.forwarder, up_req);
        let mut early = None;
        if let Some(whole) = sent_whole {
            tokio::select! {
                biased;
                r = &mut send => early = Some(r),
                _ = whole => {}
            }
        }
        let sent = match early {
            Some(r) => r,
            None => tokio::time::timeout(upstream.response_header_timeout, send)
                .await
                .map_err(|_| ProxyError::UpstreamTimeout)?,
        };
        let (mut resp, lease) = sent.map_err(|e| upstream_error(&e))?;
        trail.answered = Some(Instant::now());
        let rid = request_id.as_bytes();
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            let Some(client_upgrade) = client_upgrade.filter(|_| upgrade) else {
                return Err(ProxyError::Upstream(UpstreamFailure::Protocol));
            };
            tunnel::spawn(client_upgrade, hyper::upgrade::on(&mut resp));
            let (mut rparts, body) = resp.into_parts();
            let mut headers = HeaderMap::with_capacity(rparts.headers.len() + 2);
            rewrite_switch(Fields::Map(&rparts.headers), rid, &mut headers);
            rparts.headers = headers;
            return Ok(Response::from_parts(
                rparts,
                ProxyBody::upstream(body, None, None, None),
            ));
        }
        // The one framing rule of both codecs: what two parties could read
        // differently is a 502, and the connection (its lease dropped
        // unreleased) is not reused.
        // One walk over the fields serves the framing and the rewrite.
        let (mut rparts, mut body) = resp.into_parts();
        let fields = Fields::Map(&rparts.headers);
        let marks = Marks::of(fields);
        let framing = match framing(rparts.status, fields, &marks, head_request) {
            Ok(f) => f,
            Err(e) => {
                trail.cause = Some(RelayError::BadResponse(e));
                return Err(ProxyError::Upstream(UpstreamFailure::Protocol));
            }
        };
        // A chunked body's head goes out with its first bytes: a malformed
        // first chunk is still a 502 with a body, on every protocol.
        let mut first = None;
        if framing == Framing::Chunked {
            match tokio::time::timeout(upstream.read_timeout, body.frame()).await {
                Ok(Some(Ok(frame))) => first = Some(frame),
                Ok(None) => {}
                Ok(Some(Err(e))) => {
                    trail.cause = Some(RelayError::UpstreamBody(e));
                    return Err(ProxyError::Upstream(UpstreamFailure::Protocol));
                }
                Err(_) => {
                    trail.cause = Some(RelayError::ReadTimeout);
                    return Err(ProxyError::UpstreamTimeout);
                }
            }
        }
        let mut headers = HeaderMap::with_capacity(rparts.headers.len() + 2);
        rewrite_response(fields, &marks, rid, &mut headers);
        rparts.headers = headers;
        let watch = (!body.is_end_stream()).then(|| {
            BodyWatch::new(
                upstream.read_timeout,
                self.accounts.metrics_handle(),
                request_id,
            )
        });
        Ok(Response::from_parts(
            rparts,
            ProxyBody::upstream(body, Some(lease), first, watch),
        ))
    }
}

type Sent = Result<(Response<Incoming>, Lease), UpstreamError>;

/// A request on its way upstream. When the client cancels it before the
/// response head arrived (an HTTP/2 stream reset), the exchange goes on in
/// a task of its own instead of being dropped with the connection it
/// holds: the response is read (at most [`DRAIN_MAX`] bytes, within the
/// read timeout) and the connection goes back to the pool. A client that
/// resets every stream then costs the upstream no new connections.
struct Detachable {
    fut: Option<std::pin::Pin<Box<dyn std::future::Future<Output = Sent> + Send>>>,
    within: std::time::Duration,
}

/// The most body bytes read of a cancelled request's response to keep its
/// connection.
const DRAIN_MAX: usize = 256 * 1024;

impl Detachable {
    fn new(forwarder: &super::Forwarder, req: Request<ForwardBody>) -> Self {
        let pool = forwarder.pool.clone();
        Detachable {
            fut: Some(Box::pin(async move { pool.send(req).await })),
            within: forwarder.upstream.response_header_timeout + forwarder.upstream.read_timeout,
        }
    }
}

impl std::future::Future for Detachable {
    type Output = Sent;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Sent> {
        let Some(fut) = self.fut.as_mut() else {
            return std::task::Poll::Pending;
        };
        let out = std::task::ready!(fut.as_mut().poll(cx));
        self.fut = None;
        std::task::Poll::Ready(out)
    }
}

impl Drop for Detachable {
    fn drop(&mut self) {
        let (Some(fut), Ok(rt)) = (self.fut.take(), tokio::runtime::Handle::try_current()) else {
            return;
        };
        let within = self.within;
        rt.spawn(async move {
            let Ok(Ok((resp, lease))) = tokio::time::timeout(within, fut).await else {
                return;
            };
            let mut body = resp.into_body();
            let mut read = 0;
            let drained = tokio::time::timeout(within, async {
                while read <= DRAIN_MAX {
                    match body.frame().await {
                        Some(Ok(f)) => read += f.data_ref().map_or(0, |d| d.len()),
                        Some(Err(_)) => return false,
                        None => return true,
                    }
                }
                false
            })
            .await;
            if drained == Ok(true) {
                lease.release();
            }
        });
    }
}
