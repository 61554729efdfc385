//! UDP for a shard: its sockets (one per local address), a preallocated batch of outgoing
//! datagrams sent with `sendmmsg`, and the one STUN field needed to demultiplex a new peer.
//!
//! Why a batch: a tick produces one datagram per listener. One `sendmmsg` per tick replaces
//! a `sendmsg` per listener (64 system calls per 10 ms become 1). The batch's buffers are
//! allocated once; filling and sending it allocates nothing.

use std::io::IoSlice;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage};

/// Largest datagram we send or accept (str0m keeps to the 1150-byte MTU target; DTLS
/// flights and SRTP audio are far below this).
pub const MAX_DATAGRAM: usize = 2048;
/// Datagrams per `sendmmsg` call: more than a shard sends in a tick at the listener limit.
const CHUNK: usize = 128;

/// The sockets of one shard: one per local address, non-blocking.
pub struct Sockets {
    socks: Vec<(SocketAddr, UdpSocket)>,
}

impl Sockets {
    /// Binds one socket per address (port 0 = ephemeral), non-blocking, with buffers sized
    /// for a burst of a whole tick.
    pub fn bind(addrs: &[SocketAddr]) -> std::io::Result<Self> {
        let mut socks = Vec::with_capacity(addrs.len());
        for a in addrs {
            let s = UdpSocket::bind(a)?;
            s.set_nonblocking(true)?;
            // Best effort: the kernel caps these at rmem_max/wmem_max.
            let _ = nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::SndBuf, &(1 << 20));
            let _ = nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::RcvBuf, &(1 << 20));
            let local = s.local_addr()?;
            socks.push((local, s));
        }
        Ok(Sockets { socks })
    }

    /// The bound addresses, in order: these are the host candidates.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.socks.iter().map(|(a, _)| *a).collect()
    }

    pub fn len(&self) -> usize {
        self.socks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.socks.is_empty()
    }

    /// Index of the socket bound to `addr`.
    pub fn index_of(&self, addr: SocketAddr) -> Option<usize> {
        self.socks.iter().position(|(a, _)| *a == addr)
    }

    /// Reads one datagram from socket `i` if one is waiting.
    pub fn recv(&self, i: usize, buf: &mut [u8]) -> Option<(usize, SocketAddr, SocketAddr)> {
        let (local, s) = self.socks.get(i)?;
        match s.recv_from(buf) {
            Ok((n, src)) => Some((n, src, *local)),
            Err(_) => None,
        }
    }

    fn socket(&self, i: usize) -> Option<&UdpSocket> {
        self.socks.get(i).map(|(_, s)| s)
    }
}

/// Outgoing datagrams of one tick, per socket, in preallocated buffers.
pub struct Batch {
    /// `cap` slots of `MAX_DATAGRAM` bytes.
    data: Box<[u8]>,
    lens: Vec<usize>,
    dests: Vec<Option<SockaddrStorage>>,
    socket: Vec<usize>,
    len: usize,
    headers: Headers,
}

/// The `sendmmsg` headers (raw pointers inside: this makes a batch, and its shard, `!Send`;
/// a shard is built on the thread that runs it).
type Headers = MultiHeaders<SockaddrStorage>;

/// What a [`Batch::flush`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flushed {
    pub sent: u64,
    /// Datagrams the kernel refused (socket buffer full, unreachable): dropped, counted.
    pub failed: u64,
    pub syscalls: u64,
}

impl Batch {
    pub fn new(cap: usize) -> Self {
        Batch {
            data: vec![0u8; cap * MAX_DATAGRAM].into_boxed_slice(),
            lens: vec![0; cap],
            dests: vec![None; cap],
            socket: vec![0; cap],
            len: 0,
            headers: MultiHeaders::preallocate(CHUNK, None),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.lens.len()
    }

    /// Adds a datagram for socket `sock`. False (dropped) if the batch is full or the
    /// datagram too big; the caller flushes when full.
    pub fn push(&mut self, sock: usize, dest: SocketAddr, data: &[u8]) -> bool {
        if self.len == self.lens.len() || data.len() > MAX_DATAGRAM {
            return false;
        }
        let i = self.len;
        self.data[i * MAX_DATAGRAM..i * MAX_DATAGRAM + data.len()].copy_from_slice(data);
        self.lens[i] = data.len();
        self.dests[i] = Some(SockaddrStorage::from(dest));
        self.socket[i] = sock;
        self.len += 1;
        true
    }

    /// Sends everything queued: one `sendmmsg` per run of datagrams for the same socket (per
    /// [`CHUNK`]). Never blocks: what the kernel does not take is dropped and counted.
    pub fn flush(&mut self, sockets: &Sockets) -> Flushed {
        let mut out = Flushed::default();
        let mut start = 0;
        while start < self.len {
            let sock = self.socket[start];
            let mut end = start + 1;
            while end < self.len && end - start < CHUNK && self.socket[end] == sock {
                end += 1;
            }
            let Some(s) = sockets.socket(sock) else {
                out.failed += (end - start) as u64;
                start = end;
                continue;
            };
            let sent = self.send_run(s.as_raw_fd(), start, end, &mut out);
            out.sent += sent as u64;
            // The first datagram not taken is dropped; the rest get another try.
            start += sent;
            if start < end {
                out.failed += 1;
                start += 1;
            }
        }
        self.len = 0;
        out
    }

    /// One `sendmmsg` of datagrams `start..end`; returns how many the kernel took.
    fn send_run(&mut self, fd: i32, start: usize, end: usize, out: &mut Flushed) -> usize {
        let data = &self.data;
        let lens = &self.lens;
        let slices: [[IoSlice<'_>; 1]; CHUNK] = std::array::from_fn(|k| {
            let i = start + k;
            if i < end {
                [IoSlice::new(
                    &data[i * MAX_DATAGRAM..i * MAX_DATAGRAM + lens[i]],
                )]
            } else {
                [IoSlice::new(&[])]
            }
        });
        out.syscalls += 1;
        match nix::sys::socket::sendmmsg(
            fd,
            &mut self.headers,
            slices[..end - start].iter(),
            &self.dests[start..end],
            [],
            MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(r) => r.count(),
            Err(_) => 0,
        }
    }
}

/// The local ufrag of a STUN Binding request's USERNAME (`local:remote`), if `data` is one.
/// Only what demultiplexing needs: the stack itself checks the message integrity.
pub fn stun_local_ufrag(data: &[u8]) -> Option<&[u8]> {
    // RFC 5389: type (2), length (2), magic cookie 0x2112A442 (4), transaction id (12).
    if data.len() < 20 || data[0] & 0xC0 != 0 || data[4..8] != [0x21, 0x12, 0xA4, 0x42] {
        return None;
    }
    let body_len = usize::from(u16::from_be_bytes([data[2], data[3]]));
    let body = data.get(20..20 + body_len)?;
    let mut at = 0;
    while at + 4 <= body.len() {
        let kind = u16::from_be_bytes([body[at], body[at + 1]]);
        let len = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
        let value = body.get(at + 4..at + 4 + len)?;
        if kind == 0x0006 {
            let end = value.iter().position(|&b| b == b':').unwrap_or(value.len());
            return Some(&value[..end]);
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stun_with_username(user: &[u8]) -> Vec<u8> {
        let mut attr = vec![0x00, 0x06];
        attr.extend_from_slice(&(user.len() as u16).to_be_bytes());
        attr.extend_from_slice(user);
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(attr.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attr);
        m
    }

    #[test]
    fn finds_the_local_ufrag_and_rejects_garbage() {
        assert_eq!(
            stun_local_ufrag(&stun_with_username(b"abcd:wxyz")),
            Some(&b"abcd"[..])
        );
        assert_eq!(stun_local_ufrag(b"hello"), None);
        let mut m = stun_with_username(b"abcd:wxyz");
        m.truncate(26); // truncated attribute
        assert_eq!(stun_local_ufrag(&m), None);
        let mut rtp = stun_with_username(b"x:y");
        rtp[0] = 0x80; // RTP version bits
        assert_eq!(stun_local_ufrag(&rtp), None);
    }

    #[test]
    fn batch_sends_every_datagram_with_few_syscalls() {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .expect("timeout");
        let dest = rx.local_addr().expect("addr");
        let socks = Sockets::bind(&["127.0.0.1:0".parse().expect("addr")]).expect("bind");
        let mut b = Batch::new(300);
        for i in 0..200u16 {
            assert!(b.push(0, dest, &i.to_be_bytes()));
        }
        let f = b.flush(&socks);
        assert_eq!(f.sent, 200);
        assert_eq!(f.failed, 0);
        assert_eq!(f.syscalls, 2); // 128 + 72
        let mut buf = [0u8; 16];
        for i in 0..200u16 {
            let n = rx.recv(&mut buf).expect("recv");
            assert_eq!(&buf[..n], &i.to_be_bytes());
        }
        assert!(b.is_empty());
    }
}
