//! Real Docker for tests, without a registry: images are assembled here from the host's
//! own binaries and `docker import`ed, once per machine (tagged by a hash of their
//! content, so a rebuild happens only when the inputs change):
//!
//! - [`busybox_image`]: `FROM scratch` + Debian's static busybox (sh, httpd for health
//!   endpoints, a writer loop for data);
//! - [`postgres_image`]: busybox + the host's PostgreSQL binaries and every library
//!   `ldd` names; its entrypoint initialises `/var/lib/postgresql/data` from
//!   `POSTGRES_USER`/`POSTGRES_PASSWORD`/`POSTGRES_DB` like the official image;
//! - [`redis_image`]: busybox + the host's `redis-server` and `redis-cli`;
//! - [`app_image`]: an app build for deploy tests (health, build id and a slow
//!   request), tagged `drydock-test-app:<id>`.
//!
//! Containers, volumes and Compose projects get unique `drydock-t-*` names and are
//! removed (with their volumes) when their guard drops. Docker is required: a test that
//! needs it fails, with the reason, when the daemon cannot be used.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// Bumped when the way images are assembled changes.
const RECIPE: &str = "drydock-testkit-images-v1";

/// Runs `docker ARGS`, panicking with its output when it fails.
pub fn docker(args: &[&str]) -> String {
    let out = docker_output(args);
    assert!(
        out.status.success(),
        "docker {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn docker_output(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run docker ({e}); .ci/run installs docker.io"))
}

/// Fails the test unless the Docker daemon answers.
pub fn require_docker() {
    let out = docker_output(&["info", "--format", "{{.ServerVersion}}"]);
    assert!(
        out.status.success(),
        "these tests need a running Docker daemon: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A unique name for a test's container, volume or project.
pub fn unique(what: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "drydock-t-{what}-{}-{:x}{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Serialises image builds between test processes.
fn build_lock() -> nix::fcntl::Flock<fs::File> {
    let dir = std::env::temp_dir().join("drydock-testkit");
    fs::create_dir_all(&dir).unwrap();
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("docker-images.lock"))
        .unwrap();
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .unwrap()
}

/// A root filesystem being assembled.
struct RootFs {
    dir: tempfile::TempDir,
    hasher: Sha256,
}

impl RootFs {
    fn new(name: &str) -> RootFs {
        let dir = tempfile::Builder::new()
            .prefix("drydock-rootfs-")
            .tempdir()
            .unwrap();
        for d in ["bin", "tmp", "etc", "root", "var/run", "data"] {
            fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        fs::set_permissions(dir.path().join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        let mut hasher = Sha256::new();
        hasher.update(RECIPE);
        hasher.update(name);
        let mut fs = RootFs { dir, hasher };
        fs.copy(Path::new("/bin/busybox"), Path::new("/bin/busybox"));
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            if applet != "busybox" {
                let _ = std::os::unix::fs::symlink("busybox", fs.path("/bin").join(applet));
            }
        }
        fs.write(
            "/etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\npostgres:x:999:999:postgres:/var/lib/postgresql:/bin/sh\nredis:x:998:998:redis:/data:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
            0o644,
        );
        fs.write(
            "/etc/group",
            "root:x:0:\npostgres:x:999:\nredis:x:998:\nnogroup:x:65534:\n",
            0o644,
        );
        fs
    }

    fn path(&self, inside: &str) -> PathBuf {
        self.dir.path().join(inside.trim_start_matches('/'))
    }

    fn write(&mut self, inside: &str, content: &str, mode: u32) {
        let p = self.path(inside);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        self.hasher.update(inside);
        self.hasher.update(content);
    }

    /// Copies a host file (following symlinks) to the same or another path inside.
    fn copy(&mut self, host: &Path, inside: &Path) {
        let dest = self.path(&inside.to_string_lossy());
        if dest.exists() {
            return;
        }
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(host, &dest).unwrap_or_else(|e| panic!("copying {}: {e}", host.display()));
        let meta = fs::metadata(host).unwrap();
        self.hasher.update(inside.to_string_lossy().as_bytes());
        self.hasher.update(meta.len().to_le_bytes());
        self.hasher.update(
            meta.modified()
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                .to_le_bytes(),
        );
    }

    /// Copies a binary or library and every library `ldd` says it needs.
    fn copy_with_libs(&mut self, host: &Path) {
        self.copy(host, host);
        let out = Command::new("ldd").arg(host).output().unwrap();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" or "/lib64/ld-linux... (0x...)"
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next(),
                None => line.split_whitespace().next(),
            };
            if let Some(p) = path.filter(|p| p.starts_with('/')) {
                self.copy(Path::new(p), Path::new(p));
            }
        }
    }

    fn copy_tree(&mut self, host: &Path) {
        for entry in walkdir::WalkDir::new(host) {
            let entry = entry.unwrap();
            if entry.file_type().is_dir() {
                fs::create_dir_all(self.path(&entry.path().to_string_lossy())).unwrap();
            } else {
                self.copy(entry.path(), entry.path());
            }
        }
    }

    /// Imports the tree as `repo:HASH` unless that image exists already.
    fn import(self, repo: &str, changes: &[&str]) -> String {
        let mut hasher = self.hasher.clone();
        for c in changes {
            hasher.update(c);
        }
        let tag = format!("{repo}:{}", &hex::encode(hasher.finalize())[..12]);
        if docker_output(&["image", "inspect", &tag]).status.success() {
            return tag;
        }
        self.import_as(&tag, changes)
    }

    /// Imports the tree as `tag`, replacing an image of that tag.
    fn import_as(self, tag: &str, changes: &[&str]) -> String {
        let tag = tag.to_string();
        let mut args: Vec<String> = vec!["import".into()];
        for c in changes {
            args.push("--change".into());
            args.push(c.to_string());
        }
        args.push("-".into());
        args.push(tag.clone());
        let mut tar = Command::new("tar")
            .args(["-C"])
            .arg(self.dir.path())
            .args(["--numeric-owner", "-cf", "-", "."])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let import = Command::new("docker")
            .args(&args)
            .stdin(tar.stdout.take().unwrap())
            .output()
            .unwrap();
        assert!(
            tar.wait().unwrap().success(),
            "tar of the root filesystem failed"
        );
        assert!(
            import.status.success(),
            "docker import {tag} failed: {}",
            String::from_utf8_lossy(&import.stderr)
        );
        tag
    }
}

/// `FROM scratch` + static busybox; `sh` by default.
pub fn busybox_image() -> String {
    let _lock = build_lock();
    RootFs::new("busybox").import(
        "drydock-test-busybox",
        &["ENV PATH=/bin", "CMD [\"/bin/sh\"]"],
    )
}

/// busybox serving `GET /health` (`ok`) with httpd on port 8080: a stand-in for an
/// application container.
pub fn web_image() -> String {
    let _lock = build_lock();
    let mut fs = RootFs::new("web");
    fs.write("/www/health", "ok\n", 0o644);
    fs.import(
        "drydock-test-web",
        &[
            "ENV PATH=/bin",
            "CMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]",
            "EXPOSE 8080",
        ],
    )
}

/// The entrypoint of [`app_image`]: httpd in the background, so that SIGTERM (which
/// PID 1 would otherwise ignore) stops it at once, as a real app's graceful stop would.
const APP_ENTRYPOINT: &str = r#"#!/bin/sh
httpd -f -p 8080 -h /www &
pid=$!
trap 'kill -TERM $pid; wait $pid; exit 0' TERM INT
wait $pid
"#;

const APP_SLOW: &str = r#"#!/bin/sh
sleep 2
printf 'Content-Type: text/plain\r\n\r\nslow %s\n' "$(cat /www/build_id)"
"#;

/// An app build for deploy tests, `drydock-test-app:<id>`: busybox httpd on port 8080
/// serving `GET /up` (200, `ok`), `GET /build_id` (`id`) and `GET /cgi-bin/slow` (a
/// CGI that sleeps 2 s, then answers `slow <id>`). With `healthy = false` there is no
/// `/up`: the build starts but never answers its health check with 200 (404).
pub fn app_image(id: &str, healthy: bool) -> String {
    let _lock = build_lock();
    let mut fs = RootFs::new("app");
    if healthy {
        fs.write("/www/up", "ok\n", 0o644);
    }
    fs.write("/www/build_id", &format!("{id}\n"), 0o644);
    fs.write("/www/cgi-bin/slow", APP_SLOW, 0o755);
    fs.write("/app.sh", APP_ENTRYPOINT, 0o755);
    fs.import_as(
        &format!("drydock-test-app:{id}"),
        &["ENV PATH=/bin", "ENTRYPOINT [\"/app.sh\"]", "EXPOSE 8080"],
    )
}

/// `docker rmi -f` (the images a test made).
pub fn remove_image(tag: &str) {
    let _ = docker_output(&["rmi", "-f", tag]);
}

/// The host's PostgreSQL major version and its folder.
fn pg_dir() -> (String, PathBuf) {
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed; .ci/run installs it")
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
        .collect();
    versions.sort();
    let (v, p) = versions.pop().expect("no PostgreSQL version installed");
    (v.to_string(), p)
}

const PG_ENTRYPOINT: &str = r#"#!/bin/sh
# Initialises the data directory like the official image, then runs the server.
set -e
D=/var/lib/postgresql/data
mkdir -p "$D" /var/run/postgresql
chown postgres:postgres "$D" /var/run/postgresql
chmod 700 "$D"
if [ ! -s "$D/PG_VERSION" ]; then
  U="${POSTGRES_USER:-postgres}"
  printf '%s\n' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}" > /tmp/pw
  chown postgres /tmp/pw
  su postgres -s /bin/sh -c "initdb -D $D -U $U --pwfile=/tmp/pw -A scram-sha-256 -E UTF8 --locale=C" >/dev/null
  rm -f /tmp/pw
  printf 'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all 0.0.0.0/0 scram-sha-256\n' > "$D/pg_hba.conf"
  printf "listen_addresses = '*'\nfsync = off\n" >> "$D/postgresql.conf"
  DB="${POSTGRES_DB:-$U}"
  if [ "$DB" != "postgres" ]; then
    echo "CREATE DATABASE \"$DB\" OWNER \"$U\"" | su postgres -s /bin/sh -c "postgres --single -D $D postgres" >/dev/null
  fi
  echo "initialised $D"
fi
exec su postgres -s /bin/sh -c "exec postgres -D $D"
"#;

/// busybox + the host's PostgreSQL; `POSTGRES_PASSWORD` (and optionally `POSTGRES_USER`,
/// `POSTGRES_DB`) set the first run up; the server listens on 5432.
pub fn postgres_image() -> String {
    let _lock = build_lock();
    let (version, dir) = pg_dir();
    let mut fs = RootFs::new("postgres");
    for bin in [
        "postgres",
        "initdb",
        "pg_ctl",
        "pg_dump",
        "pg_restore",
        "psql",
        "pg_isready",
    ] {
        fs.copy_with_libs(&dir.join("bin").join(bin));
    }
    for entry in fs::read_dir(dir.join("lib")).unwrap().flatten() {
        let p = entry.path();
        if p.extension().is_some_and(|e| e == "so") {
            fs.copy_with_libs(&p);
        }
    }
    fs.copy_tree(&PathBuf::from(format!("/usr/share/postgresql/{version}")));
    for tz in ["UTC", "Etc/UTC"] {
        let p = PathBuf::from("/usr/share/zoneinfo").join(tz);
        if p.exists() {
            fs.copy(&p, &p);
        }
    }
    fs.write("/docker-entrypoint.sh", PG_ENTRYPOINT, 0o755);
    fs::create_dir_all(fs.path("/var/lib/postgresql/data")).unwrap();
    let path = format!("ENV PATH=/usr/lib/postgresql/{version}/bin:/bin");
    fs.import(
        "drydock-test-postgres",
        &[
            &path,
            "ENV TZ=UTC",
            "ENTRYPOINT [\"/docker-entrypoint.sh\"]",
            "EXPOSE 5432",
        ],
    )
}

const MARIADB_ENTRYPOINT: &str = r#"#!/bin/sh
# Starts MariaDB on a data directory initialised by the testkit (root has the template
# password), then gives root@'%' MARIADB_ROOT_PASSWORD and creates MARIADB_DATABASE.
set -e
mkdir -p /run/mysqld /tmp
mariadbd --no-defaults --user=root --datadir=/var/lib/mysql --socket=/run/mysqld/mysqld.sock \
  --port=3306 --bind-address=0.0.0.0 --skip-name-resolve --innodb-log-file-size=8M \
  --innodb-buffer-pool-size=64M --innodb-flush-log-at-trx-commit=0 --skip-log-bin &
pid=$!
trap 'kill -TERM $pid; wait $pid; exit 0' TERM INT
if [ ! -f /var/lib/mysql/drydock-ready ]; then
  until mariadb -uroot -p"$TEMPLATE_PASSWORD" -S /run/mysqld/mysqld.sock -e 'SELECT 1' >/dev/null 2>&1; do sleep 0.2; done
  mariadb -uroot -p"$TEMPLATE_PASSWORD" -S /run/mysqld/mysqld.sock -e "CREATE USER 'root'@'%' IDENTIFIED BY '$MARIADB_ROOT_PASSWORD'; GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION; ALTER USER 'root'@'localhost' IDENTIFIED BY '$MARIADB_ROOT_PASSWORD'; ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '$MARIADB_ROOT_PASSWORD'; CREATE DATABASE IF NOT EXISTS \`${MARIADB_DATABASE:-app}\`"
  touch /var/lib/mysql/drydock-ready
  echo "ready for connections"
fi
wait $pid
"#;

/// busybox + the host's MariaDB server and client tools on a data directory the testkit
/// initialised; `MARIADB_ROOT_PASSWORD` and `MARIADB_DATABASE` set it up; port 3306.
pub fn mariadb_image() -> String {
    let template = crate::mariadb::template();
    let _lock = build_lock();
    let mut fs = RootFs::new("mariadb");
    for bin in [
        "/usr/sbin/mariadbd",
        "/usr/bin/mariadb",
        "/usr/bin/mariadb-dump",
    ] {
        fs.copy_with_libs(Path::new(bin));
    }
    fs.copy_tree(Path::new("/usr/share/mysql"));
    for entry in walkdir::WalkDir::new(&template) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(&template).unwrap();
        let inside = Path::new("/var/lib/mysql").join(rel);
        if entry.file_type().is_dir() {
            fs::create_dir_all(fs.path(&inside.to_string_lossy())).unwrap();
        } else {
            fs.copy(entry.path(), &inside);
        }
    }
    let entrypoint =
        MARIADB_ENTRYPOINT.replace("$TEMPLATE_PASSWORD", crate::mariadb::TEMPLATE_PASSWORD);
    fs.write("/docker-entrypoint.sh", &entrypoint, 0o755);
    fs.import(
        "drydock-test-mariadb",
        &[
            "ENV PATH=/usr/sbin:/usr/bin:/bin",
            "ENTRYPOINT [\"/docker-entrypoint.sh\"]",
            "EXPOSE 3306",
        ],
    )
}

/// busybox + the host's `redis-server` and `redis-cli`; run `redis-server --dir /data`.
pub fn redis_image() -> String {
    let _lock = build_lock();
    let mut fs = RootFs::new("redis");
    for bin in ["/usr/bin/redis-server", "/usr/bin/redis-cli"] {
        fs.copy_with_libs(Path::new(bin));
    }
    fs.import(
        "drydock-test-redis",
        &[
            "ENV PATH=/usr/bin:/bin",
            "WORKDIR /data",
            "CMD [\"redis-server\", \"--dir\", \"/data\"]",
            "EXPOSE 6379",
        ],
    )
}

/// A container removed (with its anonymous volumes) on drop.
pub struct Container {
    pub name: String,
}

impl Container {
    /// `docker run -d --name NAME ARGS` (ARGS: options, the image, its command).
    pub fn run(name: &str, args: &[&str]) -> Container {
        let mut all = vec!["run", "-d", "--name", name, "--label", "drydock-test=1"];
        all.extend_from_slice(args);
        docker(&all);
        Container {
            name: name.to_string(),
        }
    }

    /// `docker inspect -f FORMAT`.
    pub fn inspect(&self, format: &str) -> String {
        docker(&["inspect", "-f", format, &self.name])
    }

    pub fn running(&self) -> bool {
        self.inspect("{{.State.Running}}") == "true"
    }

    pub fn health(&self) -> String {
        self.inspect("{{if .State.Health}}{{.State.Health.Status}}{{end}}")
    }

    pub fn exec(&self, cmd: &[&str]) -> String {
        let mut all = vec!["exec", &self.name];
        all.extend_from_slice(cmd);
        docker(&all)
    }

    /// Waits until the container runs and its health check (if any) says healthy.
    pub fn wait_healthy(&self, timeout: Duration) {
        let ok = crate::wait_until(timeout, || {
            self.running() && matches!(self.health().as_str(), "" | "healthy")
        });
        if !ok {
            let logs = docker_output(&["logs", "--tail", "30", &self.name]);
            panic!(
                "container {} did not become healthy: {}{}",
                self.name,
                String::from_utf8_lossy(&logs.stdout),
                String::from_utf8_lossy(&logs.stderr)
            );
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker_output(&["rm", "-f", "-v", &self.name]);
    }
}

/// A named volume removed on drop.
pub struct Volume {
    pub name: String,
}

impl Volume {
    pub fn create(name: &str, labels: &[(&str, &str)]) -> Volume {
        let mut args = vec!["volume".to_string(), "create".into()];
        for (k, v) in labels {
            args.push("--label".into());
            args.push(format!("{k}={v}"));
        }
        args.push(name.to_string());
        docker(&args.iter().map(String::as_str).collect::<Vec<_>>());
        Volume {
            name: name.to_string(),
        }
    }

    /// The volume's directory on the host.
    pub fn mountpoint(&self) -> PathBuf {
        PathBuf::from(docker(&[
            "volume",
            "inspect",
            "-f",
            "{{.Mountpoint}}",
            &self.name,
        ]))
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = docker_output(&["volume", "rm", "-f", &self.name]);
    }
}

/// The compose CLI: the `docker compose` plugin when present, else `docker-compose`.
pub fn compose_command() -> Vec<String> {
    if docker_output(&["compose", "version"]).status.success() {
        vec!["docker".into(), "compose".into()]
    } else {
        vec!["docker-compose".into()]
    }
}

/// A Compose project brought down with its volumes and networks on drop.
pub struct ComposeProject {
    pub name: String,
    pub file: PathBuf,
    env: Vec<(String, String)>,
}

impl ComposeProject {
    pub fn new(name: &str, file: &Path, env: &[(&str, &str)]) -> ComposeProject {
        ComposeProject {
            name: name.to_string(),
            file: file.to_path_buf(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Runs `compose -f FILE -p NAME ARGS`, panicking with its output on failure.
    pub fn run(&self, args: &[&str]) -> String {
        let base = compose_command();
        let out = Command::new(&base[0])
            .args(&base[1..])
            .arg("-f")
            .arg(&self.file)
            .arg("-p")
            .arg(&self.name)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "compose {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// The container of `service`.
    pub fn container(&self, service: &str) -> String {
        docker(&[
            "ps",
            "-a",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.name),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
            "--format",
            "{{.Names}}",
        ])
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no container for compose service {service}"))
        .to_string()
    }
}

impl Drop for ComposeProject {
    fn drop(&mut self) {
        let base = compose_command();
        let _ = Command::new(&base[0])
            .args(&base[1..])
            .arg("-f")
            .arg(&self.file)
            .arg("-p")
            .arg(&self.name)
            .args(["--profile", "infrastructure", "--profile", "app"])
            .args(["down", "-v", "--remove-orphans", "-t", "2"])
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .output();
        // Whatever `down` could not reach (the compose file already gone with its temp
        // folder): everything Compose labelled with the project.
        remove_project(&self.name);
    }
}

/// Removes every container (with its anonymous volumes) carrying label `key=value`.
pub fn remove_containers_labelled(key: &str, value: &str) {
    let out = docker_output(&["ps", "-aq", "--filter", &format!("label={key}={value}")]);
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if !ids.is_empty() {
        let mut args = vec!["rm", "-f", "-v"];
        args.extend(ids.iter().map(String::as_str));
        let _ = docker_output(&args);
    }
}

/// Removes every container, volume and network labelled with Compose project `name`.
pub fn remove_project(name: &str) {
    let filter = format!("label=com.docker.compose.project={name}");
    for (list, remove) in [
        (
            vec!["ps", "-aq", "--filter", &filter],
            vec!["rm", "-f", "-v"],
        ),
        (
            vec!["volume", "ls", "-q", "--filter", &filter],
            vec!["volume", "rm", "-f"],
        ),
        (
            vec!["network", "ls", "-q", "--filter", &filter],
            vec!["network", "rm"],
        ),
    ] {
        let out = docker_output(&list);
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if !ids.is_empty() {
            let mut args = remove.clone();
            args.extend(ids.iter().map(String::as_str));
            let _ = docker_output(&args);
        }
    }
}

/// Writes `text` to `path` (for compose files and configs in tests).
pub fn write_file(path: &Path, text: &str) {
    let mut f = fs::File::create(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}
