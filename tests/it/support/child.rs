//! The real `portalgate` binary as a child process.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_portalgate")
}

/// Runs `portalgate ARGS` to completion: (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub struct Served {
    pub child: std::process::Child,
    pub addr: SocketAddr,
    lines: mpsc::Receiver<String>,
}

impl Served {
    /// `portalgate serve` on `config` (written into `dir`); returns once the
    /// listener address is logged.
    pub fn start(config: &str, dir: &Path) -> Served {
        Served::start_with(config, dir, &[], Stdio::null())
    }

    /// The same, with `args` before `serve` and stdout going to `stdout`.
    pub fn start_with(config: &str, dir: &Path, args: &[&str], stdout: Stdio) -> Served {
        let mut served = Served::spawn(config, dir, args, stdout);
        served.listening();
        served
    }

    /// `portalgate ARGS serve` on `config`, without waiting for anything.
    pub fn spawn(config: &str, dir: &Path, args: &[&str], stdout: Stdio) -> Served {
        let path = dir.join("portalgate.toml");
        std::fs::write(&path, config).unwrap();
        let mut child = Command::new(bin())
            .args(args)
            .args(["serve", "--config"])
            .arg(&path)
            .env("PORTALGATE_LOG", "info")
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Served {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            lines,
        }
    }

    /// Waits for the listener address to be logged, and takes it.
    pub fn listening(&mut self) {
        let line = self.wait_log(" listening addr=");
        let addr = line
            .split("addr=")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap();
        self.addr = addr.parse().unwrap();
    }

    /// Waits (bounded to 10 s) for a stderr line containing `needle`.
    pub fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => continue,
                Err(_) => panic!("no log line containing {needle:?} within 10 s"),
            }
        }
    }

    /// The stderr lines logged since the last read, without waiting.
    pub fn lines_now(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} failed");
    }

    /// Waits (bounded to 30 s) for the process to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "portalgate did not exit within 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Peak resident set size (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal serve config for `upstream`.
pub fn config_for(upstream: &str, extra: &str) -> String {
    format!(
        "[[listeners]]\naddress = \"127.0.0.1:0\"\n\n[upstream]\nurl = \"{upstream}\"\n\n[admin]\naddress = \"off\"\n\n{extra}\n"
    )
}
