//! TLS on one TCP connection with rustls' unbuffered API: the received TLS bytes live in one
//! buffer of a record's size that this connection owns and reuses, so a stream holds no
//! deframer buffer that doubles to 32 KiB and no queue of unread plaintext; each record's
//! plaintext is handed out as a buffer of its own exact size. Reads and writes are cancel
//! safe: every byte is either in a buffer of this struct or not yet taken from the socket.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError};
use rustls::{ClientConfig, Error as TlsError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest TLS record on the wire (TLS 1.2 allows 2 KiB of expansion over the 16 KiB of
/// plaintext, plus the 5-byte header): room for one whole record is all a reader needs.
const MAX_RECORD: usize = 16 * 1024 + 2048 + 5;
/// During the handshake a message may span records (a long certificate chain) and is joined in
/// the buffer: rustls takes handshake messages of up to 64 KiB, so the buffer may grow to that
/// (and the records' headers) until the handshake is done.
const MAX_HANDSHAKE: usize = (64 << 10) + 4096;

/// What rustls needs next.
enum Next {
    /// More bytes from the peer (the handshake is waiting, or there is nothing left to read).
    Input { handshaking: bool },
    /// The peer closed its side with close_notify.
    PeerClosed,
}

pub struct TlsStream {
    tcp: TcpStream,
    conn: UnbufferedClientConnection,
    /// Received bytes not yet processed: `incoming[..used]`.
    incoming: Box<[u8]>,
    used: usize,
    /// Encoded bytes not yet written to the socket, in order.
    outgoing: Vec<u8>,
    /// Plaintext records decrypted and not yet handed out.
    ready: VecDeque<Bytes>,
    peer_closed: bool,
}

/// A rustls error as an I/O error, so `tls::final_failure` finds it in the chain.
fn tls_error(e: TlsError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl TlsStream {
    /// The handshake over `tcp`, offering HTTP/1.1 by ALPN.
    pub async fn connect(
        tcp: TcpStream,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> io::Result<TlsStream> {
        let conn =
            UnbufferedClientConnection::new_with_alpn(config, name, vec![b"http/1.1".to_vec()]).map_err(tls_error)?;
        let mut tls = TlsStream {
            tcp,
            conn,
            incoming: vec![0; MAX_RECORD].into_boxed_slice(),
            used: 0,
            outgoing: Vec::new(),
            ready: VecDeque::new(),
            peer_closed: false,
        };
        loop {
            let next = tls.process(None)?;
            tls.flush().await?;
            match next {
                Next::Input { handshaking: true } => {
                    if !tls.fill(MAX_HANDSHAKE).await? {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the server closed the connection during the TLS handshake",
                        ));
                    }
                }
                Next::Input { handshaking: false } => {
                    if tls.incoming.len() > MAX_RECORD && tls.used <= MAX_RECORD {
                        tls.resize_incoming(MAX_RECORD);
                    }
                    return Ok(tls);
                }
                Next::PeerClosed => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed TLS during the handshake",
                    ));
                }
            }
        }
    }

    /// Encrypts `data` as application data and writes it out.
    pub async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        let mut data = Some(data);
        if let Next::PeerClosed = self.process(Some(&mut data))? {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "the server closed TLS"));
        }
        if data.is_some() {
            return Err(io::Error::other("TLS: not ready to send after the handshake"));
        }
        self.flush().await
    }

    /// The next piece of plaintext, `None` once the peer has closed TLS (close_notify). The
    /// TCP stream ending without close_notify is an `UnexpectedEof` error.
    pub async fn read(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            if let Some(piece) = self.ready.pop_front() {
                return Ok(Some(piece));
            }
            if self.peer_closed {
                return Ok(None);
            }
            let next = self.process(None)?;
            self.flush().await?;
            match next {
                _ if !self.ready.is_empty() => {}
                Next::PeerClosed => self.peer_closed = true,
                Next::Input { .. } => {
                    if !self.fill(MAX_RECORD).await? {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the server closed the connection without TLS close_notify",
                        ));
                    }
                }
            }
        }
    }

    /// Runs rustls over the received bytes until it needs the network. Records it decrypts
    /// go to `ready`, handshake bytes and `app` (once rustls may send it, which then becomes
    /// `None`) to `outgoing`.
    fn process(&mut self, mut app: Option<&mut Option<&[u8]>>) -> io::Result<Next> {
        loop {
            let status = self.conn.process_tls_records(&mut self.incoming[..self.used]);
            let mut discard = status.discard;
            let next = match status.state.map_err(tls_error)? {
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        let record = record.map_err(tls_error)?;
                        discard += record.discard;
                        if !record.payload.is_empty() {
                            self.ready.push_back(Bytes::copy_from_slice(record.payload));
                        }
                    }
                    None
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    let start = self.outgoing.len();
                    let mut room = 4096;
                    loop {
                        self.outgoing.resize(start + room, 0);
                        match encode.encode(&mut self.outgoing[start..]) {
                            Ok(n) => break self.outgoing.truncate(start + n),
                            Err(EncodeError::InsufficientSize(e)) => room = e.required_size,
                            Err(e) => return Err(io::Error::other(format!("TLS: {e}"))),
                        }
                    }
                    None
                }
                // Written by `flush` before anything else happens on the socket.
                ConnectionState::TransmitTlsData(transmit) => {
                    transmit.done();
                    None
                }
                ConnectionState::WriteTraffic(mut write) => {
                    if let Some(data) = app.as_mut().and_then(|slot| slot.take()) {
                        let start = self.outgoing.len();
                        let mut room = data.len() + 64;
                        loop {
                            self.outgoing.resize(start + room, 0);
                            match write.encrypt(data, &mut self.outgoing[start..]) {
                                Ok(n) => break self.outgoing.truncate(start + n),
                                Err(EncryptError::InsufficientSize(e)) => room = e.required_size,
                                Err(e) => return Err(io::Error::other(format!("TLS: {e}"))),
                            }
                        }
                    }
                    Some(Next::Input { handshaking: false })
                }
                ConnectionState::BlockedHandshake => Some(Next::Input { handshaking: true }),
                ConnectionState::PeerClosed | ConnectionState::Closed => Some(Next::PeerClosed),
                other => return Err(io::Error::other(format!("TLS: unexpected state {other:?}"))),
            };
            self.incoming.copy_within(discard..self.used, 0);
            self.used -= discard;
            if let Some(next) = next {
                return Ok(next);
            }
        }
    }

    /// Writes out `outgoing`; cancel safe (what was written is removed as it goes).
    async fn flush(&mut self) -> io::Result<()> {
        while !self.outgoing.is_empty() {
            let n = self.tcp.write(&self.outgoing).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.outgoing.drain(..n);
        }
        if self.outgoing.capacity() > 0 {
            // Only the handshake and the request are written: the buffer is not kept.
            self.outgoing = Vec::new();
        }
        Ok(())
    }

    /// A new `incoming` of `len` bytes (at least `used`) holding the unprocessed bytes.
    fn resize_incoming(&mut self, len: usize) {
        let mut resized = vec![0; len].into_boxed_slice();
        resized[..self.used].copy_from_slice(&self.incoming[..self.used]);
        self.incoming = resized;
    }

    /// Reads what the socket has into `incoming`, first growing it up to `max` bytes if it is
    /// full; `false` at the end of the TCP stream.
    async fn fill(&mut self, max: usize) -> io::Result<bool> {
        if self.used == self.incoming.len() {
            if self.used >= max {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a TLS record or handshake message is larger than the largest allowed",
                ));
            }
            self.resize_incoming((self.used * 2).min(max));
        }
        let n = self.tcp.read(&mut self.incoming[self.used..]).await?;
        self.used += n;
        Ok(n > 0)
    }
}
