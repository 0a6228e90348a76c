//! libvirt's protocol, end to end: each input is one client connection to a real rvirtd (test
//! driver, its state in a temporary folder, one daemon for the whole run, so what one input
//! defines the next may find) on its libvirt socket. After a `CONNECT_OPEN`, the input's calls are
//! sent as well-formed frames, each with its own serial: every one must get exactly one reply, in
//! bounded time. With the input's first byte odd, its bytes go out as they are instead (framing,
//! keepalive, unknown programs): the daemon may close the connection, but must neither crash nor
//! hang, and a fresh connection must still be served. A panic anywhere in the daemon aborts the
//! run, as libfuzzer-sys's panic hook does.
//!
//! Input: a mode byte (bit 0: raw; bit 1: the read-only socket), then, when not raw, records of
//! procedure (i32, little-endian), payload length (u16, little-endian) and payload (XDR).

#![no_main]

use libfuzzer_sys::fuzz_target;
use rvirtd::native::protocol::{
    self as p, Header, MessageType, REMOTE_PROGRAM, REMOTE_PROTOCOL_VERSION, Status, procedure,
};
use rvirtd::native::xdr;
use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// The longest the daemon may take to answer or close.
const LIMIT: Duration = Duration::from_secs(10);

/// The daemon's libvirt sockets (read-write, read-only); started on first use, never stopped.
fn daemon() -> &'static (PathBuf, PathBuf) {
    static SOCKETS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    SOCKETS.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a tokio runtime");
            runtime.block_on(async {
                let daemon = rvirt_tests::start_daemon().await;
                sender.send(daemon.native.clone().expect("libvirt sockets")).expect("the fuzz thread");
                // Kept serving until the process ends.
                std::future::pending::<()>().await;
                drop(daemon);
            });
        });
        receiver.recv().expect("the daemon started")
    })
}

fn frame(procedure: i32, serial: u32, payload: &[u8]) -> Vec<u8> {
    let header = Header {
        prog: REMOTE_PROGRAM,
        vers: REMOTE_PROTOCOL_VERSION,
        procedure,
        kind: MessageType::Call as u32,
        serial,
        status: Status::Ok as u32,
    };
    let mut out = vec![0; p::LEN_BYTES];
    out.extend(xdr::encode(&header));
    out.extend_from_slice(payload);
    let len = out.len() as u32;
    out[..p::LEN_BYTES].copy_from_slice(&len.to_be_bytes());
    out
}

/// `CONNECT_OPEN("test:///default", 0)`.
fn open_frame() -> Vec<u8> {
    let args = p::ConnectOpenArgs { name: Some("test:///default".into()), flags: 0 };
    frame(procedure::CONNECT_OPEN, 0, &xdr::encode(&args))
}

/// The input's calls, as frames with serials 1, 2, ...
fn calls(mut data: &[u8]) -> (Vec<u8>, u32) {
    let (mut out, mut serial) = (Vec::new(), 0);
    while data.len() >= 6 {
        let procedure = i32::from_le_bytes(data[..4].try_into().unwrap());
        let len = (u16::from_le_bytes(data[4..6].try_into().unwrap()) as usize).min(data.len() - 6);
        serial += 1;
        out.extend(frame(procedure, serial, &data[6..6 + len]));
        data = &data[6 + len..];
    }
    (out, serial)
}

/// Reads one message; `None` when the daemon closed the connection.
fn read_message(conn: &mut UnixStream) -> Option<(Header, Vec<u8>)> {
    let mut len = [0; p::LEN_BYTES];
    match conn.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("rvirtd neither answered nor closed the connection within {LIMIT:?}")
        }
        Err(_) => return None,
    }
    let len = u32::from_be_bytes(len) as usize;
    assert!((p::FRAME_LEN_MIN..=p::FRAME_LEN_MAX).contains(&len), "rvirtd sent a frame of {len} bytes");
    let mut rest = vec![0; len - p::LEN_BYTES];
    conn.read_exact(&mut rest).expect("a whole frame");
    let header: Header = xdr::decode(&rest[..p::HEADER_BYTES]).expect("a header rvirtd wrote");
    Some((header, rest.split_off(p::HEADER_BYTES)))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else { return };
    let (raw, read_only) = (mode & 1 == 1, mode & 2 == 2);
    let (rw, ro) = daemon();
    let mut conn = UnixStream::connect(if read_only { ro } else { rw }).expect("rvirtd accepts a connection");
    conn.set_read_timeout(Some(LIMIT)).unwrap();
    conn.set_write_timeout(Some(LIMIT)).unwrap();
    let mut out = open_frame();
    let sent = if raw {
        out.extend_from_slice(body);
        0
    } else {
        let (frames, count) = calls(body);
        out.extend(frames);
        count
    };
    // Written from another thread, so answers never wait for the rest of the input to be written.
    let mut writer = conn.try_clone().unwrap();
    let writing = std::thread::spawn(move || {
        // Refused input may close the connection before it is all written.
        let _ = writer.write_all(&out);
        if raw {
            // The end of the input: the daemon closes the connection once it has read it.
            let _ = writer.shutdown(std::net::Shutdown::Write);
        }
    });
    let mut answered = HashSet::new();
    if raw {
        while read_message(&mut conn).is_some() {}
    } else {
        while answered.len() < sent as usize + 1 {
            let (header, payload) = read_message(&mut conn)
                .unwrap_or_else(|| panic!("closed after {} of {} answers", answered.len(), sent + 1));
            if header.kind != MessageType::Reply as u32 {
                continue; // an event or a keepalive PING
            }
            assert!(header.serial <= sent, "a reply to serial {}, never sent", header.serial);
            assert!(answered.insert(header.serial), "two replies to serial {}", header.serial);
            if header.serial == 0 {
                assert_eq!(header.status, Status::Ok as u32, "CONNECT_OPEN failed: {payload:?}");
            }
        }
    }
    writing.join().unwrap();
    drop(conn);
    if raw {
        // What the raw input did to its connection did nothing to the daemon.
        let mut fresh = UnixStream::connect(rw).expect("rvirtd accepts a connection");
        fresh.set_read_timeout(Some(LIMIT)).unwrap();
        fresh.write_all(&open_frame()).unwrap();
        let (header, _) = read_message(&mut fresh).expect("a fresh connection is answered");
        assert_eq!((header.serial, header.status), (0, Status::Ok as u32));
    }
});
