//! OP_MSG framing, the only opcode the `mongodb` driver speaks since 3.0
//! (MongoDB wire protocol: a 16-byte header, flag bits, then sections: one
//! body document (kind 0) and any number of document sequences (kind 1),
//! such as an insert's `documents`).

use mongodb::bson::{Bson, Document};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const OP_MSG: i32 = 2013;
const CHECKSUM_PRESENT: u32 = 1;
/// The sender expects no reply (unacknowledged writes).
pub const MORE_TO_COME: u32 = 1 << 1;
/// Largest message accepted, as a real server announces in `hello`.
pub const MAX_MESSAGE_BYTES: i32 = 48_000_000;

/// One request: its id, flags, and the command with every document
/// sequence folded into it as an array field.
#[derive(Debug)]
pub struct Request {
    pub request_id: i32,
    pub flags: u32,
    pub command: Document,
}

/// Why a message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("message length {0} out of range")]
    Length(i32),
    #[error("opcode {0} is not OP_MSG (the test server speaks only OP_MSG)")]
    OpCode(i32),
    #[error("malformed OP_MSG: {0}")]
    Malformed(String),
}

/// Reads one request, or `Ok(None)` when the peer closed the connection
/// between messages.
pub async fn read_request<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Request>, WireError> {
    let mut header = [0u8; 16];
    match r.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let field = |i: usize| i32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let (length, request_id, op_code) = (field(0), field(4), field(12));
    if !(21..=MAX_MESSAGE_BYTES).contains(&length) {
        return Err(WireError::Length(length));
    }
    let mut body = vec![0u8; length as usize - 16];
    r.read_exact(&mut body).await?;
    if op_code != OP_MSG {
        return Err(WireError::OpCode(op_code));
    }
    let flags = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
    let end = if flags & CHECKSUM_PRESENT != 0 { body.len() - 4 } else { body.len() };
    let command = parse_sections(&body[4..end])?;
    Ok(Some(Request { request_id, flags, command }))
}

fn parse_sections(mut rest: &[u8]) -> Result<Document, WireError> {
    let bad = |what: &str| WireError::Malformed(what.to_owned());
    let mut body = None;
    let mut sequences = Vec::new();
    while let Some((&kind, tail)) = rest.split_first() {
        rest = tail;
        match kind {
            0 => {
                let len = doc_len(rest).ok_or_else(|| bad("truncated body document"))?;
                let doc = Document::from_reader(&rest[..len]).map_err(|e| bad(&format!("body: {e}")))?;
                body = Some(doc);
                rest = &rest[len..];
            }
            1 => {
                let len = doc_len(rest).ok_or_else(|| bad("truncated document sequence"))?;
                let (mut section, tail) = (&rest[4..len], &rest[len..]);
                let nul = section.iter().position(|&b| b == 0).ok_or_else(|| bad("sequence identifier"))?;
                let id = String::from_utf8(section[..nul].to_vec()).map_err(|_| bad("sequence identifier"))?;
                section = &section[nul + 1..];
                let mut docs = Vec::new();
                while !section.is_empty() {
                    let n = doc_len(section).ok_or_else(|| bad("truncated sequence document"))?;
                    docs.push(Bson::Document(
                        Document::from_reader(&section[..n]).map_err(|e| bad(&format!("{id}: {e}")))?,
                    ));
                    section = &section[n..];
                }
                sequences.push((id, docs));
                rest = tail;
            }
            other => return Err(bad(&format!("section kind {other}"))),
        }
    }
    let mut body = body.ok_or_else(|| bad("no body section"))?;
    for (id, docs) in sequences {
        body.insert(id, docs);
    }
    Ok(body)
}

/// The length a BSON document (or a kind-1 section) declares, if the
/// slice holds that many bytes.
fn doc_len(b: &[u8]) -> Option<usize> {
    let len = usize::try_from(i32::from_le_bytes(b.get(..4)?.try_into().ok()?)).ok()?;
    (len >= 5 && len <= b.len()).then_some(len)
}

/// Writes `reply` as the answer to `request_id`.
pub async fn write_reply<W: AsyncWrite + Unpin>(w: &mut W, request_id: i32, reply: &Document) -> std::io::Result<()> {
    let mut doc = Vec::new();
    reply.to_writer(&mut doc).map_err(std::io::Error::other)?;
    let length = i32::try_from(16 + 4 + 1 + doc.len()).map_err(std::io::Error::other)?;
    let mut msg = Vec::with_capacity(length as usize);
    msg.extend_from_slice(&length.to_le_bytes());
    msg.extend_from_slice(&0i32.to_le_bytes()); // our request id: unused by the driver
    msg.extend_from_slice(&request_id.to_le_bytes());
    msg.extend_from_slice(&OP_MSG.to_le_bytes());
    msg.extend_from_slice(&0u32.to_le_bytes());
    msg.push(0);
    msg.extend_from_slice(&doc);
    w.write_all(&msg).await?;
    w.flush().await
}
