//! A real headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
//! the browser reads commands from fd 3 and writes answers to fd 4, each a JSON message ended by
//! a NUL byte), so the tests need no WebSocket client and open no port of their own.

#![allow(dead_code)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// Longest a protocol command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Browser {
    child: Child,
    commands: std::io::PipeWriter,
    answers: Receiver<Value>,
    next_id: u64,
    session: String,
    _profile: tempfile::TempDir,
}

/// Debian's `chromium` (`.ci/run` installs it), or the one named by `CHROMIUM`.
pub fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(path);
    }
    for candidate in ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"] {
        if Path::new(candidate).is_file() {
            return PathBuf::from(candidate);
        }
    }
    panic!("no Chromium: install Debian's `chromium` (apt-get install chromium), or set CHROMIUM");
}

/// Moves `fd` to `target` in the child; `dup2` clears close-on-exec on the copy.
fn move_fd(fd: i32, target: i32) -> std::io::Result<()> {
    if fd == target {
        // SAFETY: fcntl on an fd this process owns, between fork and exec.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        // SAFETY: as above.
        if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        return Ok(());
    }
    // SAFETY: dup2 on fds this process owns, between fork and exec.
    if unsafe { libc::dup2(fd, target) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

impl Browser {
    /// Starts a headless Chromium with a page of `width`×`height` CSS pixels.
    pub fn start(width: u32, height: u32) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let (their_commands, commands) = std::io::pipe().unwrap();
        let (answers_reader, their_answers) = std::io::pipe().unwrap();
        let (read_fd, write_fd) = (their_commands.as_raw_fd(), their_answers.as_raw_fd());
        let mut command = Command::new(chromium());
        command
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", "--no-first-run"])
            .args(["--disable-extensions", "--hide-scrollbars", "--mute-audio", "--disable-dev-shm-usage"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--window-size={width},{height}"))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only fcntl and dup2 run between fork and exec. The fds are first copied above
        // 10 so that moving one to 3 cannot overwrite the other.
        unsafe {
            command.pre_exec(move || {
                let high_read = libc::fcntl(read_fd, libc::F_DUPFD, 10);
                let high_write = libc::fcntl(write_fd, libc::F_DUPFD, 10);
                if high_read < 0 || high_write < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                move_fd(high_read, 3)?;
                move_fd(high_write, 4)
            });
        }
        let child = command.spawn().expect("chromium starts");
        drop((their_commands, their_answers));
        let (sender, answers) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(answers_reader);
            loop {
                let mut message = Vec::new();
                match reader.read_until(0, &mut message) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        message.pop();
                        if let Ok(value) = serde_json::from_slice::<Value>(&message)
                            && sender.send(value).is_err()
                        {
                            break;
                        }
                    }
                }
            }
        });
        let mut browser = Browser { child, commands, answers, next_id: 0, session: String::new(), _profile: profile };
        let target = browser.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let attached =
            browser.call(None, "Target.attachToTarget", json!({"targetId": target["targetId"], "flatten": true}));
        browser.session = attached["sessionId"].as_str().expect("a session").to_owned();
        browser.send("Page.enable", json!({}));
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        );
        browser
    }

    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.commands.write_all(&bytes).expect("the browser reads its commands");
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.answers.recv_timeout(left) {
                Ok(answer) if answer["id"] == json!(id) => {
                    assert!(answer.get("error").is_none(), "{method}: {}", answer["error"]);
                    return answer["result"].clone();
                }
                Ok(_) => {} // an event, or another session's answer
                Err(RecvTimeoutError::Timeout) => panic!("{method}: no answer in {COMMAND_TIMEOUT:?}"),
                Err(RecvTimeoutError::Disconnected) => panic!("{method}: the browser went away"),
            }
        }
    }

    /// A command to the page.
    pub fn send(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.call(Some(&session), method, params)
    }

    /// Opens `url` and waits until its document has loaded.
    pub fn open(&mut self, url: &str) {
        self.send("Page.navigate", json!({"url": url}));
        self.wait_for("document.readyState === 'complete'", Duration::from_secs(30));
    }

    /// The value of a JavaScript expression in the page.
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.send("Runtime.evaluate", json!({"expression": expression, "returnByValue": true}));
        assert!(result.get("exceptionDetails").is_none(), "{expression}: {}", result["exceptionDetails"]);
        result["result"]["value"].clone()
    }

    /// Waits until `expression` is true in the page; panics after `timeout`.
    pub fn wait_for(&mut self, expression: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.eval(&format!("!!({expression})")) != json!(true) {
            assert!(Instant::now() < deadline, "waited {timeout:?} for `{expression}`");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A PNG of the page (the whole page with `full`, else the viewport), written to `path`.
    pub fn screenshot(&mut self, path: &Path, full: bool) {
        use base64::Engine;
        let shot = self.send("Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": full}));
        let bytes = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap()).unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// A PNG of one element's box.
    pub fn screenshot_of(&mut self, selector: &str, path: &Path) {
        use base64::Engine;
        let rect = self.eval(&format!(
            "(() => {{ const r = document.querySelector({}).getBoundingClientRect(); \
             return [r.x + window.scrollX, r.y + window.scrollY, r.width, r.height]; }})()",
            serde_json::to_string(selector).unwrap()
        ));
        let clip = json!({"x": rect[0], "y": rect[1], "width": rect[2], "height": rect[3], "scale": 1});
        let shot =
            self.send("Page.captureScreenshot", json!({"format": "png", "clip": clip, "captureBeyondViewport": true}));
        let bytes = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap()).unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the tests keep their screenshots: the workspace's target directory.
pub fn artifacts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/browser-tests")
}
