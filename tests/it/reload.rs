//! Hot reload: a steady stream of requests over keep-alive, new connections
//! and HTTP/2 sees no failure while the configuration is reloaded 50 times;
//! a broken configuration is refused and the old one keeps serving; SIGHUP
//! reloads the real binary.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};

use crate::support::client::{get, send};
use crate::support::*;

/// Rule set A answers `/v1/switch` with 451; set B has no rule (forwarded: 200).
fn rules(a: bool) -> String {
    if a {
        "[[rules]]\nid = \"switch\"\n[rules.match]\npath = \"/v1/switch\"\n[rules.action]\ntype = \"deny\"\nstatus = 451\n".into()
    } else {
        String::new()
    }
}

/// A proxy with rule set A that reloads only when asked (no file watching).
async fn switch_proxy(backend: &Backend) -> proxy::RunningProxy {
    ProxyBuilder::new(&backend.url())
        .section("[server]\nwatch = false")
        .section(&rules(true))
        .start()
        .await
}

async fn reload(proxy: &proxy::RunningProxy) -> (u16, String) {
    let r = send(
        Request::post(format!("http://{}/reload", proxy.admin))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    (r.status.as_u16(), r.text())
}

#[derive(Default)]
struct Tally {
    denied: AtomicUsize,
    forwarded: AtomicUsize,
    failed: AtomicUsize,
}

impl Tally {
    fn add(&self, status: Option<u16>) {
        match status {
            Some(451) => self.denied.fetch_add(1, Ordering::Relaxed),
            Some(200) => self.forwarded.fetch_add(1, Ordering::Relaxed),
            _ => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
    fn total(&self) -> usize {
        self.denied.load(Ordering::Relaxed) + self.forwarded.load(Ordering::Relaxed)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_reloads_under_load_fail_no_request() {
    let backend = Backend::start().await;
    let proxy = switch_proxy(&backend).await;
    let base = std::fs::read_to_string(&proxy.config_path).unwrap();
    let base = base.replace(&rules(true), "");
    let url = proxy.url("/v1/switch");
    let stop = Arc::new(AtomicBool::new(false));
    let tallies: Vec<Arc<Tally>> = (0..3).map(|_| Arc::new(Tally::default())).collect();

    // Keep-alive HTTP/1.1 (one pooled connection).
    let keep_alive = {
        let (stop, tally, url) = (stop.clone(), tallies[0].clone(), url.clone());
        tokio::spawn(async move {
            let client = crate::support::client::http1();
            while !stop.load(Ordering::Relaxed) {
                let r = client.get(url.parse().unwrap()).await;
                let status = match r {
                    Ok(resp) => {
                        let s = resp.status().as_u16();
                        resp.into_body().collect().await.ok().map(|_| s)
                    }
                    Err(_) => None,
                };
                tally.add(status);
            }
        })
    };
    // A new connection for every request.
    let fresh = {
        let (stop, tally, addr) = (stop.clone(), tallies[1].clone(), proxy.addr);
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = crate::support::client::raw(
                    addr,
                    b"GET /v1/switch HTTP/1.1\r\nHost: portal\r\nConnection: close\r\n\r\n",
                )
                .await;
                tally.add(r.split(' ').nth(1).and_then(|s| s.parse().ok()));
            }
        })
    };
    // HTTP/2, many streams on one connection.
    let h2 = {
        let (stop, tally, addr) = (stop.clone(), tallies[2].clone(), proxy.addr);
        tokio::spawn(async move {
            let mut sender = crate::support::client::h2c(addr).await;
            while !stop.load(Ordering::Relaxed) {
                let req = Request::get(format!("http://{addr}/v1/switch"))
                    .body(Full::<Bytes>::default())
                    .unwrap();
                let status = match sender.send_request(req).await {
                    Ok(resp) => {
                        let s = resp.status().as_u16();
                        resp.into_body().collect().await.ok().map(|_| s)
                    }
                    Err(_) => None,
                };
                tally.add(status);
            }
        })
    };

    let mut generation = 1;
    for i in 0..50 {
        // Alternate B, A, B, ...: the last one written is A (i = 49 is odd).
        let a = i % 2 == 1;
        std::fs::write(&proxy.config_path, format!("{base}{}", rules(a))).unwrap();
        let (status, body) = reload(&proxy).await;
        assert_eq!(status, 200, "{body}");
        generation += 1;
        assert_eq!(body.trim(), format!("{{\"generation\":{generation}}}"));
        // Let some requests run under each snapshot.
        let seen = tallies.iter().map(|t| t.total()).sum::<usize>();
        while tallies.iter().map(|t| t.total()).sum::<usize>() < seen + 6 {
            tokio::task::yield_now().await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in [keep_alive, fresh, h2] {
        t.await.unwrap();
    }
    for (name, t) in ["keep-alive", "new connections", "http/2"]
        .iter()
        .zip(&tallies)
    {
        assert_eq!(
            t.failed.load(Ordering::Relaxed),
            0,
            "{name}: failed requests"
        );
        assert!(t.total() > 0, "{name} sent nothing");
    }
    let denied: usize = tallies
        .iter()
        .map(|t| t.denied.load(Ordering::Relaxed))
        .sum();
    let forwarded: usize = tallies
        .iter()
        .map(|t| t.forwarded.load(Ordering::Relaxed))
        .sum();
    assert!(
        denied > 0 && forwarded > 0,
        "both snapshots answered ({denied} denied, {forwarded} forwarded)"
    );
    // The final state is the last file written (rule set A).
    assert_eq!(get(&url).await.status, 451);
    let config: serde_json::Value =
        serde_json::from_slice(&get(&format!("http://{}/config", proxy.admin)).await.body).unwrap();
    assert_eq!(config["generation"], 51);
}

#[tokio::test]
async fn a_broken_configuration_is_refused_and_the_old_one_keeps_serving() {
    let backend = Backend::start().await;
    let proxy = switch_proxy(&backend).await;
    let good = std::fs::read_to_string(&proxy.config_path).unwrap();
    std::fs::write(
        &proxy.config_path,
        good.replace("status = 451", "status = 99"),
    )
    .unwrap();
    let (status, body) = reload(&proxy).await;
    assert_eq!(status, 400);
    let file = proxy.config_path.display().to_string();
    assert!(
        body.contains(&format!("{file}:"))
            && body.contains("rules[0].action.status: status 99 is not allowed"),
        "{body}"
    );
    assert_eq!(
        get(&proxy.url("/v1/switch")).await.status,
        451,
        "the old rules still answer"
    );
    assert_eq!(
        get(&format!("http://{}/readyz", proxy.admin)).await.status,
        200
    );
    let metrics = get(&format!("http://{}/metrics", proxy.admin)).await.text();
    assert!(
        metrics.contains("portalgate_config_reload_total{result=\"error\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("portalgate_config_generation 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_binary() {
    let backend = Backend::start().await;
    let dir = tempfile::tempdir().unwrap();
    let no_watch = "[server]\nwatch = false\n";
    let cfg =
        crate::support::child::config_for(&backend.url(), &format!("{no_watch}{}", rules(true)));
    let mut served = crate::support::child::Served::start(&cfg, dir.path());
    let url = format!("http://{}/v1/switch", served.addr);
    assert_eq!(get(&url).await.status, 451);
    std::fs::write(
        dir.path().join("portalgate.toml"),
        crate::support::child::config_for(&backend.url(), no_watch),
    )
    .unwrap();
    served.signal("-HUP");
    let line = tokio::task::spawn_blocking({
        let line = served.wait_log("configuration reloaded");
        move || line
    })
    .await
    .unwrap();
    assert!(line.contains("generation=2"), "{line}");
    assert_eq!(get(&url).await.status, 200);
    served.signal("-TERM");
    let status = tokio::task::spawn_blocking(move || served.wait_exit())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// SIGHUP's default action ends a process: a SIGHUP that arrives while a
/// large tenant directory is still loading must be kept, not kill it, and
/// reload once the server is up.
#[test]
fn a_sighup_while_a_large_directory_loads_is_kept_and_reloads_once_up() {
    use std::fmt::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,region\n");
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..200_000 {
        // xorshift: GUID-like ids spread over the whole space.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let _ = writeln!(
            csv,
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x},global",
            x >> 32,
            (x >> 16) & 0xffff,
            x & 0xfff,
            (x >> 20) & 0xfff,
            x.rotate_left(23) & 0xffff_ffff_ffff
        );
    }
    std::fs::write(dir.path().join("tenants.csv"), csv).unwrap();
    let cfg = crate::support::child::config_for(
        "http://127.0.0.1:9",
        "[server]\nwatch = false\n[tenants]\nfiles = [\"tenants.csv\"]\n",
    );
    let mut served =
        crate::support::child::Served::spawn(&cfg, dir.path(), &[], std::process::Stdio::null());
    served.wait_log("loading the configuration");
    served.signal("-HUP");
    served.listening();
    let line = served.wait_log("configuration reloaded");
    assert!(line.contains("generation=2"), "{line}");
    assert!(
        served.child.try_wait().unwrap().is_none(),
        "the process ended"
    );
    served.signal("-TERM");
    assert_eq!(served.wait_exit().code(), Some(0));
}

/// Waits (bounded to 10 s) until `/config` shows `generation`.
async fn until_generation(proxy: &proxy::RunningProxy, generation: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let body = get(&format!("http://{}/config", proxy.admin)).await.body;
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        if v["generation"] == generation {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no generation {generation} within 10 s: {v}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_file_swapped_through_a_kubernetes_data_symlink_is_reloaded() {
    use std::os::unix::fs::symlink;
    const DE: &str = "0a1b2c3d-0000-4000-8000-00000000de01";
    let mount = tempfile::tempdir().unwrap();
    let m = mount.path();
    std::fs::create_dir(m.join("..2026_11_24_a")).unwrap();
    std::fs::write(
        m.join("..2026_11_24_a/tenants.csv"),
        format!("{DE},germany\n"),
    )
    .unwrap();
    symlink("..2026_11_24_a", m.join("..data")).unwrap();
    symlink("..data/tenants.csv", m.join("tenants.csv")).unwrap();

    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url())
        .include("config/policies/germany.toml")
        .section(&format!(
            "[tenants]\nfiles = [{:?}]",
            m.join("tenants.csv").display().to_string()
        ))
        .start()
        .await;
    let users = format!("/v1/customers/{DE}/users");
    let json = [("content-type", "application/json")];
    let post = || crate::policy::call(&proxy, "POST", &users, &json, "{}");
    assert_eq!(post().await.status, 403, "Germany at first");

    // What the kubelet does: a new timestamped directory, a new ..data link
    // beside the old one, renamed over it in one step.
    std::fs::create_dir(m.join("..2026_11_24_b")).unwrap();
    std::fs::write(
        m.join("..2026_11_24_b/tenants.csv"),
        format!("{DE},global\n"),
    )
    .unwrap();
    symlink("..2026_11_24_b", m.join("..data_tmp")).unwrap();
    std::fs::rename(m.join("..data_tmp"), m.join("..data")).unwrap();
    std::fs::remove_dir_all(m.join("..2026_11_24_a")).unwrap();

    until_generation(&proxy, 2).await;
    assert_eq!(post().await.status, 200, "now global: forwarded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_rename_and_a_burst_of_writes_reload_debounced() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url())
        .section(&rules(true))
        .start()
        .await;
    let text = std::fs::read_to_string(&proxy.config_path).unwrap();
    // Write a temp file, rename it over the configuration (vim, most editors).
    let tmp = proxy.config_path.with_extension("toml.swp");
    std::fs::write(&tmp, text.replace(&rules(true), "")).unwrap();
    std::fs::rename(&tmp, &proxy.config_path).unwrap();
    until_generation(&proxy, 2).await;
    assert_eq!(get(&proxy.url("/v1/switch")).await.status, 200);

    // Twenty writes in a row, ending with rule set A.
    for i in 0..20 {
        let body = if i % 2 == 0 {
            text.replace(&rules(true), "")
        } else {
            text.clone()
        };
        std::fs::write(&proxy.config_path, body).unwrap();
    }
    until_generation(&proxy, 3).await;
    assert_eq!(
        get(&proxy.url("/v1/switch")).await.status,
        451,
        "the last write wins"
    );
    let config: serde_json::Value =
        serde_json::from_slice(&get(&format!("http://{}/config", proxy.admin)).await.body).unwrap();
    assert!(
        config["generation"].as_u64().unwrap() <= 4,
        "debounced: {config}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_is_told_ready_reloading_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let recv = move || {
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).expect("a notification within 10 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let cfg = crate::support::child::config_for("http://127.0.0.1:9", "[server]\nwatch = false");
    std::fs::write(dir.path().join("portalgate.toml"), &cfg).unwrap();
    let mut child = std::process::Command::new(crate::support::child::bin())
        .args(["serve", "--config"])
        .arg(dir.path().join("portalgate.toml"))
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let (ready, reloading, ready_again, stopping) = tokio::task::spawn_blocking(move || {
        let ready = recv();
        let _ = std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status();
        let reloading = recv();
        let ready_again = recv();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        (ready, reloading, ready_again, recv())
    })
    .await
    .unwrap();
    assert!(ready.starts_with("READY=1"), "{ready}");
    assert!(reloading.starts_with("RELOADING=1"), "{reloading}");
    assert!(ready_again.starts_with("READY=1"), "{ready_again}");
    assert!(stopping.starts_with("STOPPING=1"), "{stopping}");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// An HTTP/2 connection open across a reload is answered by the new
/// configuration from its next request on: the rule that answers has a new
/// id, and the answer's fields (kept per thread as hyper's map, per
/// compiled answer) are the new rule's, not the old one's.
#[tokio::test]
async fn an_open_http2_connection_answers_with_the_reloaded_rule() {
    let backend = Backend::start().await;
    let proxy = switch_proxy(&backend).await;
    let mut sender = crate::support::client::h2c(proxy.addr).await;
    let mut ask = async || {
        let req = Request::get(format!("http://{}/v1/switch", proxy.addr))
            .body(Full::<Bytes>::default())
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let rule = resp.headers()["x-portalgate-rule"]
            .to_str()
            .unwrap()
            .to_owned();
        let ids = ["x-request-id", "x-portalgate-decision-id"]
            .map(|n| resp.headers()[n].to_str().unwrap().to_owned());
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, rule, ids, body)
    };
    let (status, rule, first_ids, _) = ask().await;
    assert_eq!((status, rule.as_str()), (451, "switch"));
    let (_, _, second_ids, _) = ask().await;
    assert_ne!(first_ids, second_ids, "each answer has its own ids");

    let text = std::fs::read_to_string(&proxy.config_path).unwrap();
    let renamed = text.replace("id = \"switch\"", "id = \"switch-renamed\"");
    assert_ne!(text, renamed);
    std::fs::write(&proxy.config_path, renamed).unwrap();
    let (code, body) = reload(&proxy).await;
    assert_eq!(code, 200, "{body}");
    for _ in 0..2 {
        let (status, rule, ids, body) = ask().await;
        assert_eq!((status, rule.as_str()), (451, "switch-renamed"));
        assert!(ids.iter().all(|id| id.len() == 32), "{ids:?}");
        assert!(!body.is_empty());
    }
}
