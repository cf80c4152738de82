//! A real `nats-server` (Debian's package) on a free loopback port, with JetStream in a
//! temporary directory; stopped by its process id.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    /// Configuration beyond port and store (TLS, users), in the server's own syntax.
    extra: String,
    /// JetStream's `max_file_store`.
    store_limit: String,
    /// JetStream's store (kept across a restart).
    store: tempfile::TempDir,
    log: PathBuf,
}

impl NatsServer {
    /// Starts a server; panics with a hint when `nats-server` is not installed.
    pub fn start() -> NatsServer {
        NatsServer::start_with("")
    }

    /// Starts a server with `extra` added to its configuration file.
    pub fn start_with(extra: &str) -> NatsServer {
        // Stated so that the object store's reservation (8 GiB by default) fits however full
        // this machine's disk is; the tests write a few MiB.
        NatsServer::start_with_store_limit("64G", extra)
    }

    /// Starts a server whose JetStream store may hold at most `limit` (e.g. `2G`).
    pub fn start_with_store_limit(limit: &str, extra: &str) -> NatsServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let store = tempfile::tempdir().unwrap();
        let log = store.path().join("server.log");
        let mut server =
            NatsServer { child: None, port, extra: extra.to_owned(), store_limit: limit.to_owned(), store, log };
        server.launch();
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn store_dir(&self) -> &Path {
        self.store.path()
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let config = self.store.path().join("server.conf");
        let store = self.store.path().join("jetstream");
        std::fs::write(
            &config,
            format!(
                "listen: 127.0.0.1:{}\njetstream {{ store_dir: {:?}, max_file_store: {} }}\n{}\n",
                self.port, store, self.store_limit, self.extra
            ),
        )
        .unwrap();
        let child = Command::new("nats-server")
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server runs (Debian package `nats-server`; .ci/run installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen on {}", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server with SIGTERM (it exits 1 even when the shutdown is clean) and waits.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on the pid of a child this struct spawned and has not reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and store.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
