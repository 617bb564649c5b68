//! The DNS server's sockets: UDP and TCP (length-prefixed) on one address, answering from
//! [`crate::dns`] and forwarding names outside the namespaces to the upstream resolvers it
//! is given (none: such names are REFUSED).

use crate::dns::{self, Answer};
use crate::Discovery;
use hickory_proto::op::{Edns, Message, OpCode, ResponseCode};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// Where the server forwards what is not its own, and how long it waits.
#[derive(Debug, Clone)]
pub struct Forwarding {
    pub upstreams: Vec<SocketAddr>,
    pub timeout: Duration,
}

/// The largest UDP answer gantry sends to a client that says it takes EDNS(0).
const EDNS_PAYLOAD: u16 = 1232;
/// The largest UDP answer to a client without EDNS(0) (RFC 1035).
const PLAIN_PAYLOAD: usize = 512;

/// Binds the server's UDP socket and TCP listener on `addr`.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let udp = UdpSocket::bind(addr).await?;
    let tcp = TcpListener::bind(udp.local_addr()?).await?;
    Ok((udp, tcp))
}

/// Serves DNS on the bound sockets until the future is dropped.
pub async fn serve(
    discovery: Arc<Discovery>,
    udp: UdpSocket,
    tcp: TcpListener,
    forwarding: Forwarding,
) {
    let forwarding = Arc::new(forwarding);
    tokio::join!(
        udp_loop(discovery.clone(), forwarding.clone(), Arc::new(udp)),
        tcp_loop(discovery, forwarding, tcp)
    );
}

async fn udp_loop(d: Arc<Discovery>, f: Arc<Forwarding>, udp: Arc<UdpSocket>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = match udp.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "DNS: a UDP receive failed");
                continue;
            }
        };
        let query = buf[..n].to_vec();
        let (d, f, sock) = (d.clone(), f.clone(), udp.clone());
        tokio::spawn(async move {
            if let Some(reply) = respond(&d, &f, &query, true).await {
                let _ = sock.send_to(&reply, peer).await;
            }
        });
    }
}

async fn tcp_loop(d: Arc<Discovery>, f: Arc<Forwarding>, tcp: TcpListener) {
    loop {
        match tcp.accept().await {
            Ok((s, _)) => {
                tokio::spawn(tcp_connection(d.clone(), f.clone(), s));
            }
            Err(e) => {
                tracing::warn!(error = %e, "DNS: accepting a TCP connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn tcp_connection(d: Arc<Discovery>, f: Arc<Forwarding>, mut s: TcpStream) {
    loop {
        let mut len = [0u8; 2];
        if s.read_exact(&mut len).await.is_err() {
            return;
        }
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if s.read_exact(&mut query).await.is_err() {
            return;
        }
        let Some(reply) = respond(&d, &f, &query, false).await else {
            return;
        };
        let Ok(n) = u16::try_from(reply.len()) else {
            return;
        };
        if s.write_all(&n.to_be_bytes()).await.is_err() || s.write_all(&reply).await.is_err() {
            return;
        }
    }
}

/// The reply to one query's bytes; `None` when it cannot even be answered with an error.
async fn respond(d: &Discovery, f: &Forwarding, query: &[u8], udp: bool) -> Option<Vec<u8>> {
    let req = match Message::from_vec(query) {
        Ok(m) => m,
        Err(_) if query.len() >= 12 => {
            // FORMERR to the question's id, nothing else read from it.
            let mut m = Message::response(u16::from_be_bytes([query[0], query[1]]), OpCode::Query);
            m.metadata.response_code = ResponseCode::FormErr;
            return m.to_vec().ok();
        }
        Err(_) => return None,
    };
    let mut reply = match dns::answer(&d.snapshot(), &req) {
        Answer::Local(m) => m,
        Answer::Outside if f.upstreams.is_empty() => dns::empty(&req, ResponseCode::Refused),
        Answer::Outside => {
            return match forward(f, query).await {
                Some(r) => Some(r),
                None => dns::empty(&req, ResponseCode::ServFail).to_vec().ok(),
            }
        }
    };
    let limit = match &req.edns {
        Some(e) => {
            let mut edns = Edns::new();
            edns.set_max_payload(EDNS_PAYLOAD);
            reply.edns = Some(edns);
            usize::from(e.max_payload().clamp(512, EDNS_PAYLOAD))
        }
        None => PLAIN_PAYLOAD,
    };
    let bytes = reply.to_vec().ok()?;
    if udp && bytes.len() > limit {
        // Too long for UDP: the header and question only, truncated, so the client asks again
        // over TCP.
        reply.answers.clear();
        reply.authorities.clear();
        reply.additionals.clear();
        reply.metadata.truncation = true;
        return reply.to_vec().ok();
    }
    Some(bytes)
}

/// Asks the upstreams in turn; the first answer's bytes.
async fn forward(f: &Forwarding, query: &[u8]) -> Option<Vec<u8>> {
    for up in &f.upstreams {
        let local: SocketAddr = if up.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let Ok(sock) = UdpSocket::bind(local).await else {
            continue;
        };
        if sock.send_to(query, up).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        match tokio::time::timeout(f.timeout, sock.recv_from(&mut buf)).await {
            Ok(Ok((n, from))) if from == *up && n >= 2 && buf[..2] == query[..2] => {
                buf.truncate(n);
                return Some(buf);
            }
            _ => tracing::debug!(upstream = %up, "DNS: the upstream did not answer"),
        }
    }
    None
}
