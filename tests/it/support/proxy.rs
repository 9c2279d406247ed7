//! Starts portalgate in-process from a TOML text, through the same
//! `config::parse` → `Server::bind` → `Server::run` path `serve` uses.

use std::net::SocketAddr;

use portalgate::server::Server;
use tokio::sync::oneshot;

pub struct ProxyBuilder {
    includes: Vec<String>,
    admin: Vec<String>,
    upstream: String,
    upstream_extra: Vec<String>,
    sections: Vec<String>,
    tls: Vec<(String, String, Vec<String>)>,
}

pub struct RunningProxy {
    pub addr: SocketAddr,
    /// The configuration file (rewrite it and POST /reload to reload).
    pub config_path: std::path::PathBuf,
    pub admin: SocketAddr,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

impl ProxyBuilder {
    pub fn new(upstream_url: &str) -> Self {
        ProxyBuilder {
            includes: Vec::new(),
            admin: Vec::new(),
            upstream: upstream_url.to_string(),
            upstream_extra: Vec::new(),
            sections: Vec::new(),
            tls: Vec::new(),
        }
    }

    /// Includes a policy file (absolute path, or relative to the repository).
    pub fn include(mut self, path: &str) -> Self {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        self.includes.push(p.display().to_string());
        self
    }

    /// The shipped Germany pack and the demo's tenants and Germany host.
    pub fn germany(self) -> Self {
        self.include("config/policies/germany.toml").section(
            r#"[tenants]
default_region = "global"
[[tenants.entries]]
id = "0a1b2c3d-0000-4000-8000-00000000de01"
region = "germany"
[[tenants.entries]]
id = "0a1b2c3d-0000-4000-8000-0000000000a1"
region = "global"
[tenants.hosts]
"partnercenter.microsoftonline.de" = "germany""#,
        )
    }

    /// A `key = value` line for `[admin]`.
    pub fn admin(mut self, line: &str) -> Self {
        self.admin.push(line.to_string());
        self
    }

    /// A `key = value` line for `[upstream]`.
    pub fn upstream(mut self, line: &str) -> Self {
        self.upstream_extra.push(line.to_string());
        self
    }

    /// A whole table, e.g. `"[limits]\nmax_uri_bytes = 100"`.
    pub fn section(mut self, toml: &str) -> Self {
        self.sections.push(toml.to_string());
        self
    }

    /// Terminate TLS with this certificate (PEM) for these SNI names.
    pub fn tls_cert(mut self, cert_pem: &str, key_pem: &str, names: &[&str]) -> Self {
        self.tls.push((
            cert_pem.to_string(),
            key_pem.to_string(),
            names.iter().map(|s| s.to_string()).collect(),
        ));
        self
    }

    /// The configuration text, with files written into `dir`.
    pub fn render(&self, dir: &std::path::Path) -> String {
        let mut t = format!("include = {:?}\n", self.includes);
        t += "[[listeners]]\naddress = \"127.0.0.1:0\"\n";
        for (i, (cert, key, names)) in self.tls.iter().enumerate() {
            let c = dir.join(format!("cert{i}.pem"));
            let k = dir.join(format!("key{i}.pem"));
            std::fs::write(&c, cert).unwrap();
            std::fs::write(&k, key).unwrap();
            t += &format!(
                "[[listeners.tls.certificates]]\ncert = \"cert{i}.pem\"\nkey = \"key{i}.pem\"\nserver_names = {names:?}\n"
            );
        }
        t += &format!("\n[upstream]\nurl = \"{}\"\n", self.upstream);
        for l in &self.upstream_extra {
            t += l;
            t += "\n";
        }
        t += "\n[admin]\naddress = \"127.0.0.1:0\"\n";
        for l in &self.admin {
            t += l;
            t += "\n";
        }
        for s in &self.sections {
            t += "\n";
            t += s;
            t += "\n";
        }
        t
    }

    pub async fn start(self) -> RunningProxy {
        let dir = tempfile::tempdir().unwrap();
        let text = self.render(dir.path());
        let config_path = dir.path().join("portalgate.toml");
        std::fs::write(&config_path, &text).unwrap();
        let config = portalgate::config::load(&config_path)
            .unwrap_or_else(|e| panic!("test config invalid:\n{e}\n---\n{text}"));
        let server = Server::bind(&config, Some(config_path.clone()))
            .await
            .unwrap();
        let addr = server.local_addrs()[0];
        let admin = server.admin_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let done = tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        RunningProxy {
            addr,
            config_path,
            admin,
            dir,
            stop: Some(tx),
            done,
        }
    }
}

impl RunningProxy {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Starts the drain and returns the future that ends with it.
    pub fn begin_stop(&mut self) -> tokio::task::JoinHandle<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let (_, rx) = oneshot::channel::<()>();
        std::mem::replace(&mut self.done, tokio::spawn(async { drop(rx) }))
    }
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
