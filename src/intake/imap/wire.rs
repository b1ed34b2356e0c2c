//! The byte stream under the IMAP client: plain TCP or TLS, the one place the password exists
//! in a written command (see [`Conn`]), and the guard on what the server sends
//! ([`super::framing`]).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::framing::Framing;

#[derive(Debug)]
pub(super) enum Wire {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// The byte stream under the IMAP client. Besides choosing plain or TLS it keeps the password
/// out of async-imap's trace log, which records every command it sends: the LOGIN command is
/// built with a random placeholder, and the placeholder is swapped for the password only here,
/// on its way into the socket. Everything read passes [`Framing`], which fails the read that
/// brings an oversized literal's announcement or endless text, before async-imap sees it.
pub(super) struct Conn {
    wire: Wire,
    framing: Framing,
    login: Option<(Vec<u8>, Vec<u8>)>,
    /// Bytes accepted from the client but not yet taken by the socket (the substituted LOGIN).
    queued: Vec<u8>,
    sent: usize,
}

// Hand-written: the derived one would print the password while a login is pending.
impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("tls", &matches!(self.wire, Wire::Tls(_)))
            .finish_non_exhaustive()
    }
}

impl Conn {
    /// A stream that accepts literals up to `max_message_size` (and the slack).
    pub(super) fn new(wire: Wire, max_message_size: u64) -> Self {
        Conn {
            wire,
            framing: Framing::new(max_message_size),
            login: None,
            queued: Vec::new(),
            sent: 0,
        }
    }

    /// The stream itself (to start TLS on a plain connection).
    pub(super) fn into_wire(self) -> Wire {
        self.wire
    }

    pub(super) fn set_max_message_size(&mut self, bytes: u64) {
        self.framing.set_max_message_size(bytes);
    }

    /// The next write containing `placeholder` carries `secret` instead.
    pub(super) fn arm(&mut self, placeholder: &str, secret: &str) {
        self.login = Some((placeholder.as_bytes().to_vec(), secret.as_bytes().to_vec()));
    }

    pub(super) fn disarm(&mut self) {
        if let Some((_, mut secret)) = self.login.take() {
            secret.fill(0);
        }
    }

    fn wire(&mut self) -> Pin<&mut (dyn AsyncWriteRead + Unpin)> {
        match &mut self.wire {
            Wire::Plain(s) => Pin::new(s),
            Wire::Tls(s) => Pin::new(s.as_mut()),
        }
    }

    /// Writes out what `poll_write` queued.
    fn poll_queued(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.queued.len() {
            let Conn {
                wire, queued, sent, ..
            } = self;
            let n = match wire {
                Wire::Plain(s) => ready!(Pin::new(s).poll_write(cx, &queued[*sent..]))?,
                Wire::Tls(s) => ready!(Pin::new(s.as_mut()).poll_write(cx, &queued[*sent..]))?,
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        if !self.queued.is_empty() {
            self.queued.fill(0);
            self.queued.clear();
            self.sent = 0;
        }
        Poll::Ready(Ok(()))
    }
}

trait AsyncWriteRead: AsyncRead + AsyncWrite {}
impl<T: AsyncRead + AsyncWrite> AsyncWriteRead for T {}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(this.wire().poll_read(cx, buf))?;
        // The caller drops what came with an error: nothing of it is buffered or parsed.
        if let Err(e) = this.framing.feed(&buf.filled()[before..]) {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_queued(cx))?;
        let at = match &this.login {
            Some((placeholder, _)) => find(buf, placeholder),
            None => None,
        };
        if let Some(at) = at
            && let Some((placeholder, secret)) = this.login.take()
        {
            let mut out = Vec::with_capacity(buf.len() + secret.len());
            out.extend_from_slice(&buf[..at]);
            out.extend_from_slice(&secret);
            out.extend_from_slice(&buf[at + placeholder.len()..]);
            this.queued = out;
            this.sent = 0;
            let mut secret = secret;
            secret.fill(0);
            // Taken whole: what the socket does not accept now goes before any later byte.
            if let Poll::Ready(Err(e)) = this.poll_queued(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        this.wire().poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_queued(cx))?;
        this.wire().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_queued(cx))?;
        this.wire().poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::super::codec::escaped;
    use super::*;

    /// The LOGIN line leaves with the password in place of the placeholder, and only once.
    #[tokio::test]
    async fn the_password_is_substituted_on_the_wire_only() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let mut conn = Conn::new(Wire::Plain(client.expect("connect")), 1024);
        let (mut server, _) = server.expect("accept");
        conn.arm("PLACEHOLDER-1", &escaped("p\"w\\1"));
        assert!(!format!("{conn:?}").contains("p\"w"));
        // async-imap writes the tag, a space, the command and CRLF separately.
        for piece in [
            &b"A1"[..],
            b" ",
            b"LOGIN \"user\" \"PLACEHOLDER-1\"",
            b"\r\n",
        ] {
            conn.write_all(piece).await.expect("write");
        }
        conn.write_all(b"A2 NOOP PLACEHOLDER-1\r\n")
            .await
            .expect("write");
        conn.flush().await.expect("flush");
        drop(conn);
        let mut seen = String::new();
        server.read_to_string(&mut seen).await.expect("read");
        assert_eq!(
            seen,
            "A1 LOGIN \"user\" \"p\\\"w\\\\1\"\r\nA2 NOOP PLACEHOLDER-1\r\n"
        );
    }
}
