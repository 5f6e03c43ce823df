//! Reading a capture file on a thread of its own. The kernel's copy of the file into user
//! memory is about a third of a replay's time on one core; on this thread it overlaps with
//! decoding and the flow table instead of preceding them. Chunks travel by ownership (no
//! second copy): each buffer keeps room at its front for the part of a record that the
//! previous chunk ended in, so the reader joins the two without copying the chunk.

use std::fs::File;
use std::io::Read;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Chunks read ahead and not yet taken (bounds memory to a few MiB).
const AHEAD: usize = 4;

/// A chunk read by the thread: `buf[head..head + len]` holds the file's next bytes.
pub(super) struct Filled {
    pub buf: Vec<u8>,
    pub len: usize,
}

/// The reading thread's end of the pipe.
pub(super) struct Prefetch {
    chunks: Receiver<std::io::Result<Filled>>,
    recycle: SyncSender<Vec<u8>>,
    /// Room kept at the front of each chunk.
    pub head: usize,
    /// Bytes of file per chunk.
    pub chunk: usize,
}

impl Prefetch {
    /// Starts reading `file` from its current offset on a thread, `chunk` bytes at a time,
    /// with `head` bytes free in front of each. `None` if no thread can be started (the caller
    /// then reads as before).
    pub fn start(mut file: File, head: usize, chunk: usize) -> Option<Prefetch> {
        let (tx, chunks) = sync_channel(AHEAD);
        let (recycle, spare) = sync_channel::<Vec<u8>>(AHEAD + 2);
        std::thread::Builder::new()
            .name("capture-read".into())
            .spawn(move || {
                loop {
                    let mut buf = spare.try_recv().unwrap_or_else(|_| vec![0; head + chunk]);
                    let mut len = 0;
                    while len < chunk {
                        match file.read(&mut buf[head + len..head + chunk]) {
                            Ok(0) => break,
                            Ok(n) => len += n,
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(e) => {
                                let _ = tx.send(Err(e));
                                return;
                            }
                        }
                    }
                    // A short chunk is the end of the file; the reader hears it as a
                    // closed pipe after the chunk. A reader gone ends the thread.
                    if len == 0 || tx.send(Ok(Filled { buf, len })).is_err() || len < chunk {
                        return;
                    }
                }
            })
            .ok()?;
        Some(Prefetch {
            chunks,
            recycle,
            head,
            chunk,
        })
    }

    /// The next chunk, `None` at the end of the file.
    pub fn next(&mut self) -> Option<std::io::Result<Filled>> {
        self.chunks.recv().ok()
    }

    /// Gives a chunk's buffer back to be filled again (buffers of another size are dropped).
    pub fn recycle(&self, buf: Vec<u8>) {
        if buf.len() == self.head + self.chunk {
            let _ = self.recycle.try_send(buf);
        }
    }
}
