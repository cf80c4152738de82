//! Bounded capture of a guest's stdout and stderr.
//!
//! The guest may print as much as its fuel and its budget of bytes moved allow; the host keeps the
//! first `limit` bytes and counts the rest, so that printing is a cost to the guest, never a way
//! to exhaust host memory. A write fails only when the call's budget of bytes moved through host
//! calls is spent (see [`super::meter`]), which ends the call.

use super::meter::IoMeter;
use bytes::Bytes;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

#[derive(Clone)]
pub struct BoundedCapture {
    inner: Arc<Mutex<Buffer>>,
    /// Where the bytes are counted as host work, when the capture belongs to a call.
    meter: Option<Arc<IoMeter>>,
}

struct Buffer {
    kept: Vec<u8>,
    limit: usize,
    total: u64,
}

/// What was captured from one stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Captured {
    /// The first bytes, as text (invalid UTF-8 replaced).
    pub text: String,
    /// Every byte the guest wrote, kept or not.
    pub total_bytes: u64,
    /// Whether bytes were dropped because of the bound.
    pub truncated: bool,
}

impl BoundedCapture {
    pub fn new(limit: usize) -> BoundedCapture {
        BoundedCapture { inner: Arc::new(Mutex::new(Buffer { kept: Vec::new(), limit, total: 0 })), meter: None }
    }

    /// A capture whose bytes count against `meter`.
    pub fn metered(limit: usize, meter: Arc<IoMeter>) -> BoundedCapture {
        BoundedCapture { meter: Some(meter), ..BoundedCapture::new(limit) }
    }

    pub fn captured(&self) -> Captured {
        let buffer = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        Captured {
            text: String::from_utf8_lossy(&buffer.kept).into_owned(),
            total_bytes: buffer.total,
            truncated: buffer.total > buffer.kept.len() as u64,
        }
    }

    /// Keeps what fits; fails only when the call's budget of bytes moved is spent.
    fn append(&self, bytes: &[u8]) -> Result<(), String> {
        if let Some(meter) = &self.meter {
            meter.moved(bytes.len() as u64).map_err(|stop| stop.to_string())?;
        }
        let mut buffer = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        buffer.total += bytes.len() as u64;
        let room = buffer.limit.saturating_sub(buffer.kept.len());
        let keep = room.min(bytes.len());
        buffer.kept.extend_from_slice(&bytes[..keep]);
        Ok(())
    }
}

impl IsTerminal for BoundedCapture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for BoundedCapture {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(AsyncSink(self.clone()))
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

/// Largest single write the stream admits; the guest's libc loops over larger buffers.
const WRITE_PERMIT: usize = 64 * 1024;

#[wasmtime_wasi::async_trait]
impl Pollable for BoundedCapture {
    async fn ready(&mut self) {}
}

impl OutputStream for BoundedCapture {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes).map_err(|why| wasmtime_wasi::p2::StreamError::trap(&why))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

struct AsyncSink(BoundedCapture);

impl tokio::io::AsyncWrite for AsyncSink {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(self.0.append(buf).map(|()| buf.len()).map_err(std::io::Error::other))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_prefix_and_counts_everything() {
        let capture = super::BoundedCapture::new(4);
        capture.append(b"abc").unwrap();
        capture.append(b"defgh").unwrap();
        let captured = capture.captured();
        assert_eq!(captured.text, "abcd");
        assert_eq!(captured.total_bytes, 8);
        assert!(captured.truncated);
    }
}
