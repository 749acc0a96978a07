//! One DNS query signed with TSIG whose answer must carry a valid signature
//! from the same key (RFC 8945; BIND signs its answers to signed queries).
//! The DNS actuator reads the fencing record this way, so an answer spoofed
//! or altered on the way is refused instead of being taken for a fence.
//!
//! hickory's multiplexer signs only updates and zone transfers, and numbers
//! each request itself after the caller could sign it, so the query goes
//! over its own TCP connection here: hickory builds, signs and verifies the
//! messages; this module only frames them (RFC 1035 4.2.2, a two-byte length).

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{DnsResponse, Message, Query};
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::{Name, RecordType, TSigner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why a signed query got no verified answer.
#[derive(Debug, thiserror::Error)]
pub enum SignedQueryError {
    /// The server could not be reached or the connection broke.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// No answer within the timeout.
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    /// The query could not be built or signed.
    #[error("cannot sign the query: {0}")]
    Sign(String),
    /// The answer is unsigned, signed with another key, altered or stale.
    #[error("TSIG: the answer is not signed with key {key}: {detail}")]
    Unverified {
        /// The key the query was signed with.
        key: String,
        /// What verification said.
        detail: String,
    },
}

/// Asks `server` for `name`'s records of `rtype`, the query signed with
/// `signer`, and returns the answer only if its signature verifies.
pub async fn query(
    server: SocketAddr,
    signer: &TSigner,
    name: &Name,
    rtype: RecordType,
    timeout: Duration,
) -> Result<DnsResponse, SignedQueryError> {
    let mut message = Message::query();
    message.add_query(Query::query(name.clone(), rtype));
    message.metadata.recursion_desired = false;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let verifier = message.finalize(signer, now).map_err(|e| SignedQueryError::Sign(e.to_string()))?;
    let mut verifier = verifier.ok_or_else(|| SignedQueryError::Sign("the signer gave no verifier".into()))?;
    let request = message.to_vec().map_err(|e| SignedQueryError::Sign(e.to_string()))?;
    let answer = tokio::time::timeout(timeout, exchange(server, &request))
        .await
        .map_err(|_| SignedQueryError::TimedOut(timeout))??;
    verifier.verify(&answer).map_err(|e| SignedQueryError::Unverified {
        key: signer.signer_name().to_string(),
        detail: tsig_refusal(&answer).map_or_else(|| e.to_string(), str::to_owned),
    })
}

/// What the server said of the key, when its answer carries a TSIG error
/// (RFC 8945 5.2): it refused the request's signature, and says why.
pub fn tsig_refusal(answer: &[u8]) -> Option<&'static str> {
    let message = Message::from_vec(answer).ok()?;
    Some(match message.signature()?.data.error? {
        TsigError::BadSig => {
            "the server answered BADSIG: it has a key of this name, but the secret (or algorithm) differs; copy \
             the secret from the server's key file"
        }
        TsigError::BadKey => {
            "the server answered BADKEY: it has no key of this name and algorithm; check tsig_key_name and \
             tsig_algorithm against its key statement"
        }
        TsigError::BadTime => {
            "the server answered BADTIME: its clock and this host's differ by more than the 300 s TSIG allows; \
             fix the time (NTP) on one of them"
        }
        TsigError::BadTrunc => "the server answered BADTRUNC: it refused a truncated signature",
        TsigError::Unknown(_) => "the server answered a TSIG error this build does not know",
    })
}

/// Sends one framed message and reads one framed answer.
async fn exchange(server: SocketAddr, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let length = u16::try_from(request.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "query longer than 65535 bytes"))?;
    let mut stream = TcpStream::connect(server).await?;
    stream.write_all(&length.to_be_bytes()).await?;
    stream.write_all(request).await?;
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).await?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut answer).await?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::MessageType;
    use hickory_proto::rr::rdata::TXT;
    use hickory_proto::rr::{RData, Record};
    use tokio::net::TcpListener;

    fn signer() -> TSigner {
        crate::actuate::dns::signer("failover-key", "hmac-sha256", "c2VjcmV0IGtleSBmb3IgdGhlIHRlc3Q=").expect("signer")
    }

    /// A server that answers any query once, unsigned, with a forged fence.
    async fn spoofing_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let mut length = [0u8; 2];
            if stream.read_exact(&mut length).await.is_err() {
                return;
            }
            let mut request = vec![0u8; usize::from(u16::from_be_bytes(length))];
            if stream.read_exact(&mut request).await.is_err() {
                return;
            }
            let Ok(query) = Message::from_vec(&request) else { return };
            let mut answer = Message::query();
            answer.metadata.id = query.metadata.id;
            answer.metadata.message_type = MessageType::Response;
            let name = query.queries.first().map(|q| q.name().clone()).unwrap_or_default();
            answer.add_query(Query::query(name.clone(), RecordType::TXT));
            answer.add_answer(Record::from_rdata(name, 60, RData::TXT(TXT::new(vec!["epoch=999 site=x".into()]))));
            let Ok(bytes) = answer.to_vec() else { return };
            let Ok(length) = u16::try_from(bytes.len()) else { return };
            let _ = stream.write_all(&length.to_be_bytes()).await;
            let _ = stream.write_all(&bytes).await;
        });
        addr
    }

    #[tokio::test]
    async fn an_unsigned_answer_is_refused_however_plausible() {
        let server = spoofing_server().await;
        let name = Name::from_ascii("_failover.example.test.").expect("name");
        let err = query(server, &signer(), &name, RecordType::TXT, Duration::from_secs(10)).await.expect_err("refused");
        assert!(matches!(err, SignedQueryError::Unverified { .. }), "{err}");
        assert!(err.to_string().contains("failover-key"), "{err}");
    }
}
