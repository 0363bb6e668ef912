//! Private servers for outage tests: a Tansu broker, an s3s-fs store or a MariaDB server of the test's
//! own, on a free loopback port with its data in a temporary folder, that the test can kill and start
//! again on the same data — without disturbing the shared servers every other test uses.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Tansu 0.6 with SQLite storage (`tansu` on the PATH or in `~/.cargo/bin`).
    Broker,
    /// s3s-fs with one bucket, `roomstream`.
    Store,
    /// MariaDB (`mariadb-install-db`, `mariadbd`).
    MariaDb,
}

/// A private server; killed when dropped.
pub struct Private {
    pub kind: Kind,
    pub port: u16,
    /// A broker's time between compactions (Tansu's `maintenance_interval`): a day unless a test
    /// wants compaction (scripts/services.sh says why), taken at the next start.
    pub compaction_every: &'static str,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn tool(name: &str) -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let cargo_bin = home.join(".cargo/bin").join(name);
    if cargo_bin.exists() {
        return cargo_bin;
    }
    for dir in ["/usr/sbin", "/usr/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    PathBuf::from(name)
}

impl Private {
    /// Sets up and starts a server of `kind`; waits until it accepts connections.
    pub fn start(kind: Kind) -> Private {
        let dir = tempfile::tempdir().expect("a temporary folder");
        match kind {
            Kind::Broker => {}
            Kind::Store => {
                std::fs::create_dir_all(dir.path().join("s3/roomstream")).expect("bucket")
            }
            Kind::MariaDb => {
                let out = Command::new(tool("mariadb-install-db"))
                    .args([
                        "--no-defaults",
                        "--auth-root-authentication-method=normal",
                        "--skip-test-db",
                    ])
                    .arg(format!("--datadir={}", dir.path().join("data").display()))
                    .args(root_user())
                    .output()
                    .expect("mariadb-install-db runs");
                assert!(
                    out.status.success(),
                    "mariadb-install-db: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        let mut p = Private {
            kind,
            port: free_port(),
            compaction_every: "24h",
            dir,
            child: None,
        };
        p.resume();
        p
    }

    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: the harshest outage — no goodbye to its clients).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        eprintln!("[private {:?}] killed", self.kind);
    }

    /// Starts it again on the same data and port; waits until it accepts connections.
    pub fn resume(&mut self) {
        let d = self.dir.path();
        let log = std::fs::File::create(d.join(format!("log-{}", now_ms()))).expect("log file");
        let mut cmd = match self.kind {
            Kind::Broker => {
                let mut c = Command::new(tool("tansu"));
                let url = format!("tcp://{}", self.addr());
                c.current_dir(d).args([
                    "broker",
                    "--listener-url",
                    &url,
                    "--advertised-listener-url",
                    &url,
                    "--storage-engine",
                    &format!(
                        "sqlite://tansu.db?maintenance_interval={}",
                        self.compaction_every
                    ),
                ]);
                c
            }
            Kind::Store => {
                let mut c = Command::new(tool("s3s-fs"));
                let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "AKIDTEST".into());
                let secret = std::env::var("AWS_SECRET_ACCESS_KEY")
                    .unwrap_or_else(|_| "SECRETTEST1234".into());
                c.args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
                    .args(["--access-key", &key, "--secret-key", &secret])
                    .arg(d.join("s3"));
                c
            }
            Kind::MariaDb => {
                let mut c = Command::new(tool("mariadbd"));
                c.arg("--no-defaults")
                    .arg(format!("--datadir={}", d.join("data").display()))
                    .arg(format!("--port={}", self.port))
                    .arg(format!("--socket={}", d.join("mysqld.sock").display()))
                    .args([
                        "--bind-address=127.0.0.1",
                        "--skip-log-bin",
                        "--innodb-buffer-pool-size=64M",
                    ])
                    .args(root_user());
                c
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{:?} starts: {e}", self.kind));
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(self.addr()).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{:?} did not open {} within 60 s",
                self.kind,
                self.addr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!(
            "[private {:?}] up on {} in {:.1} s",
            self.kind,
            self.addr(),
            started.elapsed().as_secs_f64()
        );
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// MariaDB refuses to run as root unless told to.
fn root_user() -> Vec<String> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if root {
        vec!["--user=root".into()]
    } else {
        vec![]
    }
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}
