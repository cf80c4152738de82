//! A real HTTP/1.1 server on loopback for the LLM tests: each request is handed to a script that
//! returns the status, headers, body and an optional delay.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("the client sends JSON")
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply { status, headers: vec![], body: body.to_string(), delay: Duration::ZERO }
    }
}

pub type Script = dyn Fn(usize, &Request) -> Reply + Send + Sync;

pub struct Server {
    pub base_url: String,
    pub requests: Arc<Mutex<Vec<Request>>>,
    count: Arc<AtomicUsize>,
    stopped: Arc<AtomicBool>,
}

impl Server {
    pub fn start(script: impl Fn(usize, &Request) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let stopped = Arc::new(AtomicBool::new(false));
        let script: Arc<Script> = Arc::new(script);
        let (requests2, count2, stopped2) = (requests.clone(), count.clone(), stopped.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let (script, requests, count) = (script.clone(), requests2.clone(), count2.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                    let mut headers = Vec::new();
                    loop {
                        let mut header = String::new();
                        reader.read_line(&mut header).unwrap();
                        let header = header.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = header.split_once(':') {
                            headers.push((k.trim().to_owned(), v.trim().to_owned()));
                        }
                    }
                    let length = headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, v)| v.parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0u8; length];
                    reader.read_exact(&mut body).unwrap();
                    let request = Request { path, headers, body: String::from_utf8_lossy(&body).into_owned() };
                    let index = count.fetch_add(1, Ordering::SeqCst);
                    requests.lock().unwrap().push(request.clone());
                    let reply = script(index, &request);
                    std::thread::sleep(reply.delay);
                    let mut out = format!(
                        "HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\ncontent-type: application/json\r\n",
                        reply.status,
                        reply.body.len()
                    );
                    for (k, v) in &reply.headers {
                        out.push_str(&format!("{k}: {v}\r\n"));
                    }
                    out.push_str("\r\n");
                    out.push_str(&reply.body);
                    let _ = stream.write_all(out.as_bytes());
                });
            }
        });
        Server { base_url, requests, count, stopped }
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Stops accepting: later connections are refused.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag and drops the listener.
        let _ = std::net::TcpStream::connect(self.base_url.trim_start_matches("http://"));
    }
}

pub fn openai_reply(content: &str) -> serde_json::Value {
    serde_json::json!({
        "id": "x", "object": "chat.completion", "model": "test-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 40, "total_tokens": 140}
    })
}

pub fn anthropic_reply(content: &str) -> serde_json::Value {
    serde_json::json!({
        "id": "msg", "type": "message", "role": "assistant", "model": "claude-test",
        "content": [{"type": "text", "text": content}],
        "usage": {"input_tokens": 90, "output_tokens": 30}
    })
}

/// A scripted OpenAI-compatible server that answers every meta agent with a real Rust edit: raise
/// the waste weight of the priority function it was sent by 0.5.
pub fn editing_server() -> Server {
    Server::start(|_, request| {
        let body = request.json();
        let prompt = body["messages"][1]["content"].as_str().unwrap_or("").to_owned();
        let line =
            prompt.lines().find(|l| l.starts_with("pub const WASTE_WEIGHT")).expect("the meta agent sends its source");
        let value: f64 = line.split('=').nth(1).unwrap().split(';').next().unwrap().trim().parse().unwrap();
        let edit = format!(
            "Here is my change.\n<<<<<<< SEARCH src/priority.rs\n{line}\n=======\npub const WASTE_WEIGHT: f64 = {:?}; // evolve 0.1..4.0\n>>>>>>> REPLACE\nSummary: weigh the waste more\n",
            value + 0.5
        );
        Reply::json(200, openai_reply(&edit))
    })
}
