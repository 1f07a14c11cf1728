//! What the node answers to one authenticated native-protocol request.
//!
//! Transport-independent: TCP, TLS and QUIC connections all hand their
//! decoded requests here, with the mailbox the connection authenticated as,
//! and write out whatever [`Answer`] comes back.
//!
//! Invariants and why:
//! - The mailbox always comes from the connection, never from the request:
//!   a send's sender is the authenticated mailbox, and listing,
//!   downloading, acknowledging and tracking go through the node's own
//!   ownership checks for that mailbox, so a connection can act only for
//!   its own mailbox.
//! - Every node error becomes an `ERROR` frame carrying the node's stable
//!   text code and the numeric class `WireErrorCode::from_name` gives it;
//!   nothing is dropped or turned into a panic.
//! - A download first reserves its chunk's length from the connection's
//!   byte budget, then reads it: a client that asks for many downloads
//!   and reads none makes the server hold at most that budget.
//! - A service request's failure is a `SERVICE_RESPONSE` fault carrying the
//!   service error's stable code (`ID_NHS_NUMBER_CHECK_DIGIT`,
//!   `SVC_NOT_ACCREDITED`, ...), not an `ERROR` frame: the request itself
//!   was well formed, the service refused it.
//! - A download answers with pieces of at most `piece_bytes`, sliced from
//!   the chunk's `Bytes` without copying, so one large chunk never holds up
//!   other answers on a connection for more than one piece.

use std::sync::Arc;

use bytes::Bytes;
use spine_core::ids::MailboxId;
use spine_protocol::{
    split_download, BatchItem, DownloadPieces, InboxEntry, LookupEntry, Request, Response,
    SendHeader, SendOk, ServiceFault, TrackInfo, WireError, WireErrorCode,
};

use crate::budget::{ByteBudget, Reserved};
use crate::node::{MessageView, NodeHandle, RequestError, SendRequest};

/// The answer to one request.
#[derive(Debug)]
pub(crate) enum Answer {
    /// A single response frame.
    One(Response),
    /// A streamed download: its pieces, in order, and the connection's
    /// bytes the chunk holds until its last piece is written.
    Pieces(DownloadPieces, Option<Reserved>),
}

impl Answer {
    fn error(e: &RequestError) -> Answer {
        Answer::One(Response::Error(WireError::from_error(e)))
    }
}

/// An `ERROR` response of class `code`.
pub(crate) fn error_response(code: WireErrorCode, message: &str) -> Response {
    Response::Error(WireError::new(code, code.name(), message))
}

/// Serves `request` for `mailbox`. `HELLO`, `SUBSCRIBE`, `CREDIT` and
/// `UNSUBSCRIBE` are connection-level and handled by the connection; they
/// are refused here.
pub(crate) async fn handle(
    node: &NodeHandle,
    mailbox: &MailboxId,
    request: Request,
    piece_bytes: usize,
    buffered: &ByteBudget,
) -> Answer {
    match request {
        Request::Send { header, body } => match send(node, mailbox, header, body).await {
            Ok(ok) => Answer::One(Response::SendOk(ok)),
            Err(e) => Answer::error(&e),
        },
        Request::SendBatch(items) => Answer::One(Response::SendBatchOk(
            send_batch(node, mailbox, items).await,
        )),
        Request::SendChunk {
            message_id,
            chunk_no,
            body,
        } => match node.send_chunk(mailbox, &message_id, chunk_no, body).await {
            Ok(out) => Answer::One(Response::ChunkOk {
                complete: out.complete,
            }),
            Err(e) => Answer::error(&e),
        },
        Request::ListInbox {
            workflow_filter,
            max_results,
            after,
        } => match node
            .list_inbox(
                mailbox,
                workflow_filter.as_deref(),
                after,
                max_results as usize,
            )
            .await
        {
            Ok(page) => Answer::One(Response::InboxPage {
                messages: page
                    .messages
                    .iter()
                    .map(|m| InboxEntry::from_envelope(&m.envelope, m.accepted_seq.unwrap_or(0)))
                    .collect(),
                next: page.next,
                total: page.total as u64,
            }),
            Err(e) => Answer::error(&e),
        },
        Request::Download {
            message_id,
            chunk_no,
        } => match node
            .download_within(mailbox, &message_id, chunk_no, buffered)
            .await
        {
            Ok((d, held)) => Answer::Pieces(
                split_download(
                    Arc::clone(&d.view.envelope),
                    d.chunk_no,
                    d.body,
                    piece_bytes,
                ),
                held,
            ),
            Err(e) => Answer::error(&e),
        },
        Request::Acknowledge { message_id } => match node.acknowledge(mailbox, &message_id).await {
            Ok(()) => Answer::One(Response::AckOk),
            Err(e) => Answer::error(&e),
        },
        Request::AcknowledgeBatch { message_ids } => {
            // Each as ACKNOWLEDGE would, one request per partition: the
            // partitions group them into shared log writes.
            let results = node.acknowledge_many(mailbox, &message_ids).await;
            Answer::One(Response::AckBatchOk(
                results
                    .iter()
                    .map(|r| r.as_ref().map_err(WireError::from_error).copied())
                    .collect(),
            ))
        }
        Request::Track { message_id } => match node.track(mailbox, &message_id).await {
            Ok(view) => Answer::One(Response::TrackInfo(track_info(&view))),
            Err(e) => Answer::error(&e),
        },
        Request::Lookup {
            ods_code,
            workflow_id,
        } => {
            let found = match &ods_code {
                Some(ods) => node.lookup(ods, &workflow_id).await,
                None => node.workflow_search(&workflow_id).await,
            };
            match found {
                Ok(list) => Answer::One(Response::LookupResult(
                    list.into_iter()
                        .map(|m| LookupEntry {
                            mailbox_id: m.mailbox_id,
                            mailbox_name: m.mailbox_name,
                            ods_code: m.ods_code,
                        })
                        .collect(),
                )),
                Err(e) => Answer::error(&e),
            }
        }
        Request::Ping => Answer::One(Response::Pong),
        Request::ServiceRequest {
            service,
            interaction,
            asid,
            message_id,
            body,
        } => {
            let request = crate::services::ServiceRequest {
                service,
                interaction,
                asid,
                message_id,
                body,
            };
            let result = node
                .request(mailbox, request)
                .await
                .map_err(|e| ServiceFault::new(e.wire_code(), &e.to_string()));
            Answer::One(Response::ServiceResponse(result))
        }
        Request::Hello { .. }
        | Request::Subscribe { .. }
        | Request::Credit { .. }
        | Request::RegisterProvider { .. }
        | Request::ProviderReply { .. }
        | Request::Unsubscribe => Answer::One(error_response(
            WireErrorCode::UnexpectedFrame,
            "this request is handled by the connection, not here (a second HELLO?)",
        )),
    }
}

async fn send(
    node: &NodeHandle,
    sender: &MailboxId,
    header: SendHeader,
    body: Bytes,
) -> Result<SendOk, RequestError> {
    let out = node
        .send(SendRequest {
            sender: sender.clone(),
            header,
            body,
        })
        .await?;
    Ok(SendOk {
        message_id: out.message_id,
        duplicate: out.duplicate,
        status: out.status,
    })
}

/// Sends every item, one request per partition (they share log batches),
/// and answers in item order.
async fn send_batch(
    node: &NodeHandle,
    sender: &MailboxId,
    items: Vec<BatchItem>,
) -> Vec<Result<SendOk, WireError>> {
    let requests = items
        .into_iter()
        .map(|item| SendRequest {
            sender: sender.clone(),
            header: item.header,
            body: item.body,
        })
        .collect();
    node.send_many(requests)
        .await
        .into_iter()
        .map(|r| match r {
            Ok(out) => Ok(SendOk {
                message_id: out.message_id,
                duplicate: out.duplicate,
                status: out.status,
            }),
            Err(e) => Err(WireError::from_error(&e)),
        })
        .collect()
}

fn track_info(view: &MessageView) -> TrackInfo {
    TrackInfo {
        envelope: Arc::clone(&view.envelope),
        status: view.status,
        order: view.accepted_seq,
        // Chunks whose bytes the node holds (an acknowledged message's are
        // released, so it reports 0).
        chunks_received: view.chunks.iter().filter(|c| c.is_some()).count() as u32,
        acknowledged_at: view.acknowledged_at,
        expired_at: view.expired_at,
    }
}
