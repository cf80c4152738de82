//! `hyperagent serve`: a run's page in a real headless Chromium follows the run log while a
//! resumed run appends nodes in another process; and the server gives nothing outside the home,
//! whatever the request's path says.

mod browser;
mod common;

use common::{data_dir, guest_target_dir, small_config};
use hyperagent::evolution::log::{Event, RunLog};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `hyperagent serve` on a free loopback port; its address.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(home: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hyperagent"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .env("HYPERAGENT_HOME", home)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.split("http://").nth(1).and_then(|r| r.split('/').next()).expect(&line).to_owned();
        assert!(addr.starts_with("127.0.0.1:"), "{line}");
        Server { child, addr }
    }

    /// A raw GET (or another method) of `path` exactly as written: no client normalises it.
    fn raw(&self, method: &str, path: &str) -> (u16, String) {
        let mut stream = std::net::TcpStream::connect(&self.addr).unwrap();
        write!(stream, "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.addr).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        (status, response)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(home: &Path, config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hyperagent"))
        .args(["run", "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(data_dir())
        .args(args)
        .env("HYPERAGENT_HOME", home)
        .env("HYPERAGENT_GUEST_TARGET", guest_target_dir())
        .output()
        .unwrap()
}

fn node_count(log: &Path) -> usize {
    RunLog::read(log).unwrap().iter().filter(|e| matches!(e, Event::Node { .. })).count()
}

/// The first lines of `from`'s log, up to and including its first node of generation 1, as the
/// log of run `to`: a run killed there, to be resumed.
fn cut_run(home: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(home.join("runs").join(from).join("log.jsonl")).unwrap();
    let mut cut = String::new();
    for line in text.lines() {
        cut.push_str(line);
        cut.push('\n');
        if matches!(serde_json::from_str(line).unwrap(), Event::Node { generation: 1, .. }) {
            break;
        }
    }
    std::fs::create_dir_all(home.join("runs").join(to)).unwrap();
    std::fs::write(home.join("runs").join(to).join("log.jsonl"), cut).unwrap();
}

#[test]
fn the_live_view_shows_nodes_as_a_resumed_run_appends_them() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("run.toml");
    let settings = hyperagent::evolution::config::RunConfig { generations: 2, ..small_config() };
    std::fs::write(&config, toml::to_string(&settings).unwrap()).unwrap();
    let whole = run(home.path(), &config, &["--run-id", "whole"]);
    assert!(whole.status.success(), "{}", String::from_utf8_lossy(&whole.stderr));
    cut_run(home.path(), "whole", "live");
    let log = home.path().join("runs/live/log.jsonl");
    let before = node_count(&log);
    let after = node_count(&home.path().join("runs/whole/log.jsonl"));
    assert!(before < after);

    let server = Server::start(home.path());
    let mut chrome = browser::Browser::start(1400, 1000);
    chrome.open(&format!("http://{}/runs/live/", server.addr));
    let count = "document.querySelectorAll('#tree-live [data-node]').length";
    assert_eq!(chrome.eval(count), before);
    // The page is connected to the log's events before the run goes on.
    chrome.wait_for("document.getElementById('live-state').textContent.includes('updated')", Duration::from_secs(20));

    let resumed = run(home.path(), &config, &["--resume", "live"]);
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert_eq!(node_count(&log), after);
    chrome.wait_for(&format!("{count} === {after}"), Duration::from_secs(30));
    assert_eq!(chrome.eval("document.querySelectorAll('.node.best').length"), 1);
    chrome.screenshot(&browser::artifacts().join("serve.png"), true);
}

#[test]
fn nothing_outside_the_home_is_served() {
    let home = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    // A run log outside the home, and links to it from inside.
    std::fs::write(outside.path().join("log.jsonl"), "").unwrap();
    std::fs::write(outside.path().join("secret.txt"), "outside-the-home").unwrap();
    std::fs::create_dir_all(home.path().join("runs/real")).unwrap();
    std::fs::write(home.path().join("runs/real/log.jsonl"), "").unwrap();
    std::os::unix::fs::symlink(outside.path(), home.path().join("runs/linked")).unwrap();
    std::fs::create_dir_all(home.path().join("runs/inner")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("log.jsonl"), home.path().join("runs/inner/log.jsonl")).unwrap();
    std::fs::write(home.path().join("secret-in-home.txt"), "not-a-page").unwrap();
    let server = Server::start(home.path());

    let (status, index) = server.raw("GET", "/");
    assert_eq!(status, 200);
    assert!(index.contains("/runs/real/"), "{index}");
    assert!(!index.contains("linked") && !index.contains("inner"), "a run outside the home is listed: {index}");
    assert_eq!(server.raw("GET", "/runs/real/").0, 200);
    let secret = outside.path().join("secret.txt");
    let attempts = [
        "/runs/linked/".to_owned(),
        "/runs/linked/view".to_owned(),
        "/runs/inner/".to_owned(),
        "/runs/inner/events".to_owned(),
        "/runs/../secret-in-home.txt".to_owned(),
        "/runs/..%2F..%2Fsecret-in-home.txt/".to_owned(),
        "/runs/%2e%2e/".to_owned(),
        "/runs/..%2f..%2f..%2fetc%2fpasswd/view".to_owned(),
        "/../../etc/passwd".to_owned(),
        "/runs/real/../../secret-in-home.txt".to_owned(),
        format!("/runs/{}/", secret.display().to_string().replace('/', "%2F")),
        "/runs/real%00/".to_owned(),
        "/secret-in-home.txt".to_owned(),
        "/etc/passwd".to_owned(),
    ];
    for path in &attempts {
        let (status, body) = server.raw("GET", path);
        assert_eq!(status, 404, "{path}: {body}");
        for leak in ["outside-the-home", "not-a-page", "root:"] {
            assert!(!body.contains(leak), "{path} leaked {leak}");
        }
    }
    // Read-only: nothing but GET.
    for method in ["POST", "PUT", "DELETE"] {
        assert_eq!(server.raw(method, "/runs/real/").0, 405, "{method}");
    }
}

#[test]
fn the_server_listens_on_loopback_unless_told_otherwise() {
    let help = Command::new(env!("CARGO_BIN_EXE_hyperagent")).args(["serve", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("[default: 127.0.0.1:"), "{text}");
}
