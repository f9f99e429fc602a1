//! The engine as a daemon drives it: several operations in one process, each with a
//! [`RunContext`] whose events are collected, a backup cancelled from another thread,
//! a confirmation refused, restores and drills cancelled midway, sync, prune and verify
//! cancelled at their safe points, and the verdicts the reports give. Real sources
//! (SQLite and files, a PostgreSQL server from testkit) in a temporary stack, real S3
//! (Garage) for the remotes; no binary involved. Live data is compared before and after
//! with oracles drydock did not write: `sqlite3 .dump`, `pg_dump`, a `sha256sum` walk of
//! the directory and `restic check --read-data`.

mod support {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::sync::{Arc, Mutex};

    use drydock_domain::{Cancel, Config, Event, EventSink};
    use drydock_engine::{EngineError, RunContext};
    use drydock_state::{CopyRecord, StateDb};
    use drydock_testkit::garage::GarageServer;

    const PASSWORD: &str = "engine-test-password";

    /// A stack with one service `app`: a critical SQLite database and high-priority files.
    pub struct World {
        pub dir: tempfile::TempDir,
        pub config: Config,
    }

    impl World {
        pub fn new() -> World {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            std::fs::write(root.join("repo-password"), PASSWORD).unwrap();
            // Secret files must be private, or the config is refused.
            std::fs::set_permissions(
                root.join("repo-password"),
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            )
            .unwrap();
            std::fs::create_dir(root.join("uploads")).unwrap();
            std::fs::write(root.join("uploads/a.txt"), "first upload").unwrap();
            let db = rusqlite::Connection::open(root.join("app.db")).unwrap();
            db.execute_batch(
                "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);
                 INSERT INTO users (name) VALUES ('ada'), ('grace');",
            )
            .unwrap();
            drop(db);
            let config = format!(
                "[stack]\nname = \"engine\"\nstate_dir = \"state\"\n\n[repository]\npath = \"repo\"\npassword = \"${{file:{}}}\"\n\n[services.app]\nruntime = {{ kind = \"none\" }}\ndata = [\n  {{ kind = \"sqlite\", name = \"db\", priority = \"critical\", path = \"app.db\" }},\n  {{ kind = \"files\", name = \"uploads\", priority = \"high\", path = \"uploads\" }},\n]\n",
                root.join("repo-password").display()
            );
            std::fs::write(root.join("drydock.toml"), config).unwrap();
            let config = Config::load(&root.join("drydock.toml")).unwrap();
            World { dir, config }
        }

        pub fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        pub fn users(&self) -> Vec<String> {
            users(&self.path("app.db"))
        }

        /// Appends `text` to the config and loads it again.
        pub fn append_config(&mut self, text: &str) {
            let file = self.path("drydock.toml");
            let mut all = std::fs::read_to_string(&file).unwrap();
            all.push_str(text);
            std::fs::write(&file, all).unwrap();
            self.config = Config::load(&file).unwrap();
        }

        /// Adds a `[[remote]]` named `name` in `garage` under `prefix` (its keys in
        /// private files, as the config asks of secrets).
        pub fn add_remote(&mut self, garage: &GarageServer, name: &str, prefix: &str) {
            let key = self.secret_file("s3-key", &garage.access_key_id);
            let secret = self.secret_file("s3-secret", &garage.secret_access_key);
            self.append_config(&format!(
                "\n[[remote]]\nname = \"{name}\"\nkind = \"s3\"\nendpoint = \"{}\"\nregion = \"{}\"\nbucket = \"{}\"\nprefix = \"{prefix}\"\npath_style = true\naccess_key_id = \"${{file:{}}}\"\nsecret_access_key = \"${{file:{}}}\"\n",
                garage.endpoint(),
                drydock_testkit::garage::REGION,
                garage.bucket,
                key.display(),
                secret.display()
            ));
        }

        fn secret_file(&self, name: &str, value: &str) -> PathBuf {
            let file = self.path(name);
            std::fs::write(&file, value).unwrap();
            std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
            file
        }

        /// The copy records of `copy` in the state database: backup id -> state.
        pub fn records(&self, copy: &str) -> BTreeMap<String, CopyRecord> {
            StateDb::open(&self.config.stack.state_dir)
                .unwrap()
                .copy_records(copy)
                .unwrap()
        }

        /// `restic check --read-data` on the local repository passes: every pack reads.
        pub fn restic_checks_local(&self) {
            let out = Command::new("restic")
                .arg("-r")
                .arg(self.path("repo"))
                .args(["check", "--read-data"])
                .env("RESTIC_PASSWORD", PASSWORD)
                .env("RESTIC_CACHE_DIR", self.path("restic-cache"))
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", output(&out));
        }
    }

    /// `restic check --read-data` on the copy in `garage` under `prefix` passes.
    pub fn restic_checks_s3(garage: &GarageServer, prefix: &str) {
        let cache = tempfile::tempdir().unwrap();
        let out = Command::new("restic")
            .arg("-r")
            .arg(garage.restic_repo(prefix))
            .args(["check", "--read-data"])
            .env("RESTIC_PASSWORD", PASSWORD)
            .env("AWS_ACCESS_KEY_ID", &garage.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &garage.secret_access_key)
            .env("AWS_DEFAULT_REGION", drydock_testkit::garage::REGION)
            .env("RESTIC_CACHE_DIR", cache.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", output(&out));
    }

    fn output(out: &std::process::Output) -> String {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Cancels `cancel` when an event `matches` arrives (the first time), as a daemon
    /// cancelling a job while it runs would; keeps every event.
    pub struct CancelOn {
        pub cancel: Cancel,
        pub matches: Box<dyn Fn(&Event) -> bool + Send + Sync>,
        pub seen: Mutex<Vec<Event>>,
    }

    impl EventSink for CancelOn {
        fn emit(&self, event: Event) {
            if (self.matches)(&event) && !self.cancel.is_cancelled() {
                self.cancel.cancel("cancelled by the test");
            }
            self.seen.lock().unwrap().push(event);
        }
    }

    /// A context cancelled at the first `Step` whose message contains `needle`.
    pub fn cancelled_at_step(needle: &'static str) -> (RunContext, Arc<CancelOn>) {
        let cancel = Cancel::new();
        let sink = Arc::new(CancelOn {
            cancel: cancel.clone(),
            matches: Box::new(
                move |e| matches!(e, Event::Step { message } if message.contains(needle)),
            ),
            seen: Mutex::new(Vec::new()),
        });
        (RunContext::new(sink.clone()).with_cancel(cancel), sink)
    }

    /// The run ended `Err(Cancelled)` with the test's reason.
    pub fn assert_cancelled<T: std::fmt::Debug>(result: Result<T, EngineError>) {
        match result {
            Err(EngineError::Cancelled { reason }) => assert_eq!(reason, "cancelled by the test"),
            other => panic!("expected a cancelled run, got {other:#?}"),
        }
    }

    pub fn users(db: &Path) -> Vec<String> {
        let db = rusqlite::Connection::open(db).unwrap();
        let mut q = db.prepare("SELECT name FROM users ORDER BY id").unwrap();
        let names = q.query_map([], |r| r.get(0)).unwrap();
        names.map(Result::unwrap).collect()
    }

    /// Keeps every event, as a daemon's job log would.
    #[derive(Default)]
    pub struct Collected(pub Mutex<Vec<Event>>);

    impl EventSink for Collected {
        fn emit(&self, event: Event) {
            self.0.lock().unwrap().push(event);
        }
    }

    impl Collected {
        pub fn steps(&self) -> Vec<String> {
            self.0
                .lock()
                .unwrap()
                .iter()
                .filter_map(|e| match e {
                    Event::Started { operation, .. } => Some(format!("started {operation}")),
                    Event::SourceFinished { source, ok, .. } => {
                        Some(format!("{source} {}", if *ok { "ok" } else { "failed" }))
                    }
                    _ => None,
                })
                .collect()
        }
    }

    /// A context whose events are collected.
    pub fn collecting() -> (RunContext, Arc<Collected>) {
        let events = Arc::new(Collected::default());
        (RunContext::new(events.clone()), events)
    }

    /// Cancels the run, in the emitting thread, at the first event `when` accepts (as a
    /// daemon's job cancelled at that moment would); `when` may also take a snapshot.
    pub struct CancelWhen<F> {
        pub cancel: Cancel,
        when: F,
    }

    impl<F: Fn(&Event) -> bool + Send + Sync> EventSink for CancelWhen<F> {
        fn emit(&self, event: Event) {
            if !self.cancel.is_cancelled() && (self.when)(&event) {
                self.cancel.cancel("cancelled by the test");
            }
        }
    }

    /// A context cancelled at the first event `when` accepts.
    pub fn cancelled_on(when: impl Fn(&Event) -> bool + Send + Sync + 'static) -> RunContext {
        let cancel = Cancel::new();
        let sink = CancelWhen {
            cancel: cancel.clone(),
            when,
        };
        RunContext::new(Arc::new(sink)).with_cancel(cancel)
    }

    /// Whether `event` starts `step` (`restore`, `drill`) of `source`.
    pub fn starts(event: &Event, step: &str, source: &str) -> bool {
        matches!(event, Event::SourceStarted { source: s, step: st, .. } if s == source && st == step)
    }

    /// Whether `event` is a step whose message begins with `prefix`.
    pub fn step_begins(event: &Event, prefix: &str) -> bool {
        matches!(event, Event::Step { message } if message.starts_with(prefix))
    }

    fn run(program: &str, args: &[&str]) -> String {
        let out = Command::new(program).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The database as `sqlite3 .dump` prints it: schema and every row.
    pub fn sqlite_dump(db: &Path) -> String {
        run("sqlite3", &[db.to_str().unwrap(), ".dump"])
    }

    /// Every path under `dir` and the SHA-256 of every file, by `find` and `sha256sum`.
    pub fn tree_hash(dir: &Path) -> String {
        let script = "cd \"$1\" && find . | LC_ALL=C sort && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum";
        run("sh", &["-c", script, "sh", dir.to_str().unwrap()])
    }

    /// The live data of the world's stack, as the oracles see it.
    pub fn live(w: &World) -> (String, String) {
        (
            sqlite_dump(&w.path("app.db")),
            tree_hash(&w.path("uploads")),
        )
    }

    /// The services `status` lists as owed a restore.
    pub fn owed(config: &Config) -> Vec<String> {
        let status = drydock_engine::status::status(config, &RunContext::default()).unwrap();
        status
            .pending_restores
            .iter()
            .map(|p| p.service.clone())
            .collect()
    }

    /// How many source drills the state database holds.
    pub fn drills_recorded(w: &World) -> usize {
        drydock_state::StateDb::open(&w.config.stack.state_dir)
            .unwrap()
            .last_drills()
            .unwrap()
            .len()
    }
}

mod backup {
    use std::sync::mpsc;
    use std::sync::Arc;

    use drydock_domain::plan::Selection;
    use drydock_domain::{Cancel, Event, EventSink, Verdict};
    use drydock_engine::{EngineError, RunContext};

    use crate::support::{collecting, World};

    #[test]
    fn two_backups_in_one_process_are_listed_and_report_through_their_events() {
        let w = World::new();
        let (ctx, events) = collecting();
        let first = drydock_engine::backup::backup(&w.config, &Selection::default(), &ctx).unwrap();
        assert_eq!(first.verdict(), Verdict::Ok, "{first:#?}");
        std::fs::write(w.path("uploads/b.txt"), "second upload").unwrap();
        let second =
            drydock_engine::backup::backup(&w.config, &Selection::default(), &ctx).unwrap();
        assert_eq!(second.verdict(), Verdict::Ok, "{second:#?}");
        assert_eq!(
            events.steps(),
            [
                "started backup",
                "app/db ok",
                "app/uploads ok",
                "started backup",
                "app/db ok",
                "app/uploads ok"
            ]
        );
        let list = drydock_engine::list::list(&w.config, &RunContext::default()).unwrap();
        let ids: Vec<&str> = list.backups.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(ids, [second.id.as_str(), first.id.as_str()]);
    }

    /// Blocks the backup at its first source until another thread has cancelled it.
    struct CancelAtFirstSource {
        ask: mpsc::SyncSender<()>,
        done: std::sync::Mutex<mpsc::Receiver<()>>,
    }

    impl EventSink for CancelAtFirstSource {
        fn emit(&self, event: Event) {
            if let Event::SourceStarted { .. } = event {
                if self.ask.try_send(()).is_ok() {
                    let _ = self.done.lock().unwrap().recv();
                }
            }
        }
    }

    #[test]
    fn a_backup_cancelled_from_another_thread_stops_and_records_nothing() {
        let w = World::new();
        let (ask, asked) = mpsc::sync_channel(1);
        let (done, wait) = mpsc::channel();
        let cancel = Cancel::new();
        let canceller = {
            let cancel = cancel.clone();
            std::thread::spawn(move || {
                asked.recv().unwrap();
                cancel.cancel("cancelled by the test");
                done.send(()).unwrap();
            })
        };
        let sink = CancelAtFirstSource {
            ask,
            done: std::sync::Mutex::new(wait),
        };
        let ctx = RunContext::new(Arc::new(sink)).with_cancel(cancel);
        let result = drydock_engine::backup::backup(&w.config, &Selection::default(), &ctx);
        canceller.join().unwrap();
        match result {
            Err(EngineError::Cancelled { reason }) => assert_eq!(reason, "cancelled by the test"),
            other => panic!("expected a cancelled backup, got {other:#?}"),
        }
        // Nothing recorded as good, and the sources are as they were.
        let list = drydock_engine::list::list(&w.config, &RunContext::default()).unwrap();
        assert!(list.backups.is_empty(), "{list:#?}");
        assert_eq!(w.users(), ["ada", "grace"]);
        assert_eq!(
            std::fs::read_to_string(w.path("uploads/a.txt")).unwrap(),
            "first upload"
        );
        // The next run, with a fresh token, works.
        let again = drydock_engine::backup::backup(
            &w.config,
            &Selection::default(),
            &RunContext::default(),
        )
        .unwrap();
        assert_eq!(again.verdict(), Verdict::Ok);
    }

    #[test]
    fn a_run_cancelled_before_it_starts_does_nothing() {
        let w = World::new();
        let ctx = RunContext::default();
        ctx.cancel.cancel("shutting down");
        let result = drydock_engine::backup::backup(&w.config, &Selection::default(), &ctx);
        assert!(
            matches!(result, Err(EngineError::Cancelled { .. })),
            "{result:#?}"
        );
        let list = drydock_engine::list::list(&w.config, &RunContext::default()).unwrap();
        assert!(list.backups.is_empty());
    }
}

mod restore {
    use std::sync::{Arc, Mutex};

    use drydock_domain::plan::Selection;
    use drydock_domain::Verdict;
    use drydock_engine::restore::{BackupRef, RestoreOptions};
    use drydock_engine::{EngineError, RunContext};

    use crate::support::{
        cancelled_on, live, owed, sqlite_dump, starts, step_begins, tree_hash, World,
    };

    fn app() -> RestoreOptions {
        RestoreOptions {
            backup: BackupRef::Latest,
            services: vec!["app".into()],
            ..RestoreOptions::default()
        }
    }

    #[test]
    fn a_refused_confirmation_changes_nothing_and_a_forced_restore_verifies() {
        let w = World::new();
        let backup = drydock_engine::backup::backup(
            &w.config,
            &Selection::default(),
            &RunContext::default(),
        )
        .unwrap();
        assert_eq!(backup.verdict(), Verdict::Ok);
        rusqlite::Connection::open(w.path("app.db"))
            .unwrap()
            .execute("INSERT INTO users (name) VALUES ('mallory')", [])
            .unwrap();

        let asked = Arc::new(Mutex::new(Vec::new()));
        let questions = Arc::clone(&asked);
        let refusing = RunContext::default().with_confirm(move |question| {
            questions.lock().unwrap().push(question.to_string());
            false
        });
        let refused = drydock_engine::restore::restore(&w.config, &app(), &refusing);
        assert!(
            matches!(refused, Err(EngineError::Refused(_))),
            "{refused:#?}"
        );
        assert_eq!(asked.lock().unwrap().len(), 1);
        assert!(asked.lock().unwrap()[0].contains("replaces the existing data"));
        assert_eq!(w.users(), ["ada", "grace", "mallory"]);

        // Nobody to ask (a daemon) and not forced: refused too.
        let unattended =
            drydock_engine::restore::restore(&w.config, &app(), &RunContext::default());
        assert!(matches!(unattended, Err(EngineError::Refused(_))));

        let forced = RestoreOptions {
            force: true,
            ..app()
        };
        let report =
            drydock_engine::restore::restore(&w.config, &forced, &RunContext::default()).unwrap();
        assert_eq!(report.verdict(), Verdict::Ok, "{report:#?}");
        assert_eq!(w.users(), ["ada", "grace"]);
    }

    /// A backup, then live data changed in both sources since (so a restore would
    /// change it back).
    fn backed_up_then_changed() -> World {
        let w = World::new();
        let backup = drydock_engine::backup::backup(
            &w.config,
            &Selection::default(),
            &RunContext::default(),
        )
        .unwrap();
        assert_eq!(backup.verdict(), Verdict::Ok);
        rusqlite::Connection::open(w.path("app.db"))
            .unwrap()
            .execute("INSERT INTO users (name) VALUES ('mallory')", [])
            .unwrap();
        std::fs::write(w.path("uploads/a.txt"), "changed since").unwrap();
        std::fs::write(w.path("uploads/b.txt"), "new since").unwrap();
        w
    }

    fn forced() -> RestoreOptions {
        RestoreOptions {
            force: true,
            ..app()
        }
    }

    fn assert_cancelled<T: std::fmt::Debug>(result: Result<T, EngineError>) {
        match result {
            Err(EngineError::Cancelled { reason }) => assert_eq!(reason, "cancelled by the test"),
            other => panic!("expected a cancelled run, got {other:#?}"),
        }
    }

    #[test]
    fn a_restore_cancelled_before_its_first_source_changes_nothing() {
        let w = backed_up_then_changed();
        let before = live(&w);
        let ctx = cancelled_on(|e| starts(e, "restore", "app/db"));
        assert_cancelled(drydock_engine::restore::restore(&w.config, &forced(), &ctx));
        assert_eq!(live(&w), before, "live data changed by a cancelled restore");
        assert!(
            owed(&w.config).is_empty(),
            "nothing was replaced, nothing is owed"
        );
        assert_eq!(w.users(), ["ada", "grace", "mallory"]);
    }

    #[test]
    fn a_restore_cancelled_after_a_swap_leaves_the_owed_record_and_the_rest_untouched() {
        let w = backed_up_then_changed();
        let uploads = tree_hash(&w.path("uploads"));
        // The database (critical) is restored first; the cancellation comes as the
        // files begin.
        let ctx = cancelled_on(|e| starts(e, "restore", "app/uploads"));
        assert_cancelled(drydock_engine::restore::restore(&w.config, &forced(), &ctx));
        assert_eq!(tree_hash(&w.path("uploads")), uploads, "files changed");
        // Half a service restored is not a restored service: `status` says it is owed.
        assert_eq!(owed(&w.config), ["app"]);
        // A restore run to its end pays it.
        let report =
            drydock_engine::restore::restore(&w.config, &forced(), &RunContext::default()).unwrap();
        assert_eq!(report.verdict(), Verdict::Ok, "{report:#?}");
        assert!(owed(&w.config).is_empty());
        assert_eq!(w.users(), ["ada", "grace"]);
    }

    #[test]
    fn a_restore_cancelled_during_verification_is_not_verified() {
        let w = backed_up_then_changed();
        let db = sqlite_dump(&w.path("app.db"));
        // Cancelled once the files were swapped in, before they are inspected.
        let ctx = cancelled_on(|e| step_begins(e, "verifying app/uploads"));
        assert_cancelled(drydock_engine::restore::restore(&w.config, &forced(), &ctx));
        assert_ne!(
            sqlite_dump(&w.path("app.db")),
            db,
            "the database was restored"
        );
        assert_eq!(owed(&w.config), ["app"], "not verified, so still owed");
    }

    #[test]
    fn options_are_plain_data_a_schedule_can_store() {
        let opts: RestoreOptions =
            serde_json::from_str(r#"{"backup": "latest", "services": ["app"], "from": null, "all": false, "force": true, "stop": false}"#)
                .unwrap();
        assert_eq!(opts.backup, BackupRef::Latest);
        let back = serde_json::to_value(&opts).unwrap();
        assert_eq!(back["backup"], "latest");
        assert_eq!(back["services"][0], "app");
    }
}

mod verify {
    use drydock_domain::plan::Selection;
    use drydock_domain::{Event, Verdict};
    use drydock_engine::verify::VerifyOptions;
    use drydock_engine::RunContext;
    use drydock_storage::ReadData;

    use crate::support::{assert_cancelled, cancelled_at_step, World};

    #[test]
    fn verify_and_live_comparison_give_verdicts() {
        let w = World::new();
        let ctx = RunContext::default();
        drydock_engine::backup::backup(&w.config, &Selection::default(), &ctx).unwrap();
        let repo =
            drydock_engine::verify::verify_repository(&w.config, &VerifyOptions::default(), &ctx)
                .unwrap();
        assert_eq!(repo.verdict(), Verdict::Ok, "{repo:#?}");
        let same = drydock_engine::verify::verify_live(&w.config, &Selection::all(), &ctx).unwrap();
        assert_eq!(same.verdict(), Verdict::Ok, "{same:#?}");
        std::fs::write(w.path("uploads/a.txt"), "changed since").unwrap();
        let changed =
            drydock_engine::verify::verify_live(&w.config, &Selection::all(), &ctx).unwrap();
        assert_eq!(changed.verdict(), Verdict::Warning, "{changed:#?}");
    }

    #[test]
    fn a_verify_cancelled_between_snapshots_records_nothing_and_keeps_the_copy_usable() {
        let w = World::new();
        let ctx = RunContext::default();
        drydock_engine::backup::backup(&w.config, &Selection::default(), &ctx).unwrap();
        drydock_engine::backup::backup(&w.config, &Selection::default(), &ctx).unwrap();
        let before = w.records("local");
        let reading = VerifyOptions {
            read_data: ReadData::All,
            ..VerifyOptions::default()
        };

        let (cancelling, seen) = cancelled_at_step("re-reading the data of backup");
        assert_cancelled(drydock_engine::verify::verify_repository(
            &w.config,
            &reading,
            &cancelling,
        ));
        // It stopped at the first backup's first snapshot: no second backup was reached.
        let reached = seen
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, Event::Step { message } if message.contains("re-reading")))
            .count();
        assert_eq!(reached, 1);
        // Nothing learnt is recorded, and the copy's lock is gone: a prune (exclusive)
        // and a full verify run.
        assert_eq!(format!("{:?}", w.records("local")), format!("{before:?}"));
        let prune = drydock_engine::prune::prune(
            &w.config,
            &drydock_engine::prune::PruneOptions::default(),
            &ctx,
        )
        .unwrap();
        assert_eq!(prune.verdict(), Verdict::Ok, "{prune:#?}");
        let full = drydock_engine::verify::verify_repository(&w.config, &reading, &ctx).unwrap();
        assert_eq!(full.verdict(), Verdict::Ok, "{full:#?}");
        w.restic_checks_local();
    }
}

mod sync {
    use drydock_domain::plan::Selection;
    use drydock_domain::Verdict;
    use drydock_engine::sync::SyncOptions;
    use drydock_engine::RunContext;
    use drydock_state::CopyState;
    use drydock_testkit::garage::GarageServer;

    use crate::support::{assert_cancelled, cancelled_at_step, restic_checks_s3, World};

    /// Backups taken before any remote was configured: all of them wait for a sync.
    fn backed_up(w: &World, n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                std::fs::write(w.path(&format!("uploads/{i}.txt")), format!("upload {i}")).unwrap();
                let b = drydock_engine::backup::backup(
                    &w.config,
                    &Selection::default(),
                    &RunContext::default(),
                )
                .unwrap();
                assert_eq!(b.verdict(), Verdict::Ok, "{b:#?}");
                b.id
            })
            .collect()
    }

    fn verified(w: &World, copy: &str) -> Vec<String> {
        w.records(copy)
            .into_iter()
            .filter(|(_, r)| r.state == CopyState::Verified)
            .map(|(id, _)| id)
            .collect()
    }

    #[test]
    fn a_sync_cancelled_between_backups_records_only_what_it_proved() {
        let garage = GarageServer::start();
        let mut w = World::new();
        let ids = backed_up(&w, 3);
        w.add_remote(&garage, "offsite", "between-backups");

        // Cancelled as soon as the first backup is proven on the remote.
        let (ctx, seen) = cancelled_at_step(", verified");
        assert_cancelled(drydock_engine::sync::sync(
            &w.config,
            &SyncOptions::default(),
            &ctx,
        ));
        let proven: Vec<String> = seen
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                drydock_domain::Event::Step { message } if message.contains(", verified") => {
                    Some(message.clone())
                }
                _ => None,
            })
            .collect();
        assert_eq!(proven.len(), 1, "{proven:?}");
        // Exactly the backup it proved counts as synced; the others wait (unsynced,
        // with the reason), and the remote is a whole repository.
        let synced = verified(&w, "offsite");
        assert_eq!(synced.len(), 1, "{:#?}", w.records("offsite"));
        assert!(proven[0].contains(&synced[0]), "{proven:?} {synced:?}");
        let records = w.records("offsite");
        for id in ids.iter().filter(|id| **id != synced[0]) {
            let r = &records[id];
            assert_eq!(r.state, CopyState::Unsynced, "{id}: {r:#?}");
            assert!(
                r.detail.as_deref().unwrap_or("").contains("cancelled"),
                "{r:#?}"
            );
        }
        restic_checks_s3(&garage, "between-backups");

        // The next run brings the rest and counts the one already there.
        let again =
            drydock_engine::sync::sync(&w.config, &SyncOptions::default(), &RunContext::default())
                .unwrap();
        assert_eq!(again.verdict(), Verdict::Ok, "{again:#?}");
        assert_eq!(again.copies[0].synced.len(), 2, "{again:#?}");
        assert_eq!(again.copies[0].already_present, 1, "{again:#?}");
        let mut all = verified(&w, "offsite");
        all.sort();
        let mut want = ids.clone();
        want.sort();
        assert_eq!(all, want);
        restic_checks_s3(&garage, "between-backups");
    }

    #[test]
    fn a_sync_cancelled_between_remotes_leaves_the_next_remote_untouched() {
        let garage = GarageServer::start();
        let mut w = World::new();
        let ids = backed_up(&w, 1);
        w.add_remote(&garage, "first", "first");
        w.add_remote(&garage, "second", "second");

        // The first remote's only backup is proven; the cancel takes effect before
        // the second remote.
        let (ctx, _) = cancelled_at_step(", verified");
        assert_cancelled(drydock_engine::sync::sync(
            &w.config,
            &SyncOptions::default(),
            &ctx,
        ));
        assert_eq!(verified(&w, "first"), ids);
        assert!(w.records("second").is_empty(), "{:#?}", w.records("second"));
        restic_checks_s3(&garage, "first");

        // A cancelled run before it starts touches nothing either.
        let ctx = RunContext::default();
        ctx.cancel.cancel("cancelled by the test");
        assert_cancelled(drydock_engine::sync::sync(
            &w.config,
            &SyncOptions::default(),
            &ctx,
        ));
        assert!(w.records("second").is_empty());

        let only_second = SyncOptions {
            copy: Some("second".into()),
        };
        let report =
            drydock_engine::sync::sync(&w.config, &only_second, &RunContext::default()).unwrap();
        assert_eq!(report.verdict(), Verdict::Ok, "{report:#?}");
        assert_eq!(verified(&w, "second"), ids);
    }
}

mod prune {
    use drydock_domain::plan::Selection;
    use drydock_domain::Verdict;
    use drydock_engine::prune::PruneOptions;
    use drydock_engine::verify::VerifyOptions;
    use drydock_engine::RunContext;
    use drydock_state::CopyState;
    use drydock_storage::ReadData;

    use crate::support::{assert_cancelled, cancelled_at_step, World};

    fn listed(w: &World) -> Vec<String> {
        let list = drydock_engine::list::list(&w.config, &RunContext::default()).unwrap();
        list.backups.into_iter().map(|b| b.id).collect()
    }

    #[test]
    fn a_prune_cancelled_between_backups_removes_whole_backups_only() {
        let mut w = World::new();
        // One backup a day is kept: of four taken today, three go.
        w.append_config("\n[retention]\ndaily = 1\nweekly = 0\nmonthly = 0\n");
        let mut ids = Vec::new();
        for i in 0..4 {
            std::fs::write(w.path(&format!("uploads/{i}.txt")), format!("upload {i}")).unwrap();
            let b = drydock_engine::backup::backup(
                &w.config,
                &Selection::default(),
                &RunContext::default(),
            )
            .unwrap();
            assert_eq!(b.verdict(), Verdict::Ok, "{b:#?}");
            ids.push(b.id);
        }
        let plan = drydock_engine::prune::prune(
            &w.config,
            &PruneOptions {
                dry_run: true,
                ..PruneOptions::default()
            },
            &RunContext::default(),
        )
        .unwrap();
        assert_eq!(plan.copies[0].deleted.len(), 6, "{plan:#?}");

        // Cancelled once the first backup's two sources are gone.
        let (ctx, _) = cancelled_at_step(": removed ");
        assert_cancelled(drydock_engine::prune::prune(
            &w.config,
            &PruneOptions::default(),
            &ctx,
        ));
        let left = listed(&w);
        assert_eq!(left.len(), 3, "{left:?}");
        let gone: Vec<&String> = ids.iter().filter(|id| !left.contains(id)).collect();
        assert_eq!(gone.len(), 1);
        assert_eq!(w.records("local")[gone[0]].state, CopyState::Pruned);
        // What is left is whole: every backup verifies, every pack reads.
        let check = drydock_engine::verify::verify_repository(
            &w.config,
            &VerifyOptions {
                read_data: ReadData::All,
                ..VerifyOptions::default()
            },
            &RunContext::default(),
        )
        .unwrap();
        assert_eq!(check.verdict(), Verdict::Ok, "{check:#?}");
        w.restic_checks_local();

        // The next prune finishes the job; the newest backup stays.
        let done = drydock_engine::prune::prune(
            &w.config,
            &PruneOptions::default(),
            &RunContext::default(),
        )
        .unwrap();
        assert_eq!(done.verdict(), Verdict::Ok, "{done:#?}");
        assert_eq!(listed(&w), [ids[3].clone()]);
        w.restic_checks_local();
    }
}

mod drill {
    use drydock_domain::plan::Selection;
    use drydock_domain::Verdict;
    use drydock_engine::drill::{DrillOptions, DrillStatus};
    use drydock_engine::restore::{BackupRef, RestoreOptions};
    use drydock_engine::{EngineError, RunContext};

    use crate::support::{
        cancelled_on, drills_recorded, live, owed, sqlite_dump, starts, step_begins, World,
    };

    fn backed_up() -> World {
        let w = World::new();
        let backup = drydock_engine::backup::backup(
            &w.config,
            &Selection::default(),
            &RunContext::default(),
        )
        .unwrap();
        assert_eq!(backup.verdict(), Verdict::Ok);
        w
    }

    #[test]
    fn a_sandbox_drill_cancelled_midway_changes_nothing_and_records_no_drill() {
        let w = backed_up();
        let before = live(&w);
        // The existing backup: no canary is written, so live data must not change at all.
        let opts = DrillOptions {
            use_backup: Some(BackupRef::Latest),
            ..DrillOptions::default()
        };
        let ctx = cancelled_on(|e| starts(e, "drill", "app/db"));
        let result = drydock_engine::drill::drill(&w.config, &opts, &ctx);
        assert!(
            matches!(result, Err(EngineError::Cancelled { .. })),
            "{result:#?}"
        );
        assert_eq!(live(&w), before);
        assert_eq!(drills_recorded(&w), 0, "a cancelled drill proves nothing");
        // The sandboxes went with it: the next drill runs and passes.
        let report =
            drydock_engine::drill::drill(&w.config, &opts, &RunContext::default()).unwrap();
        assert!(
            report
                .sources
                .iter()
                .all(|s| s.status == DrillStatus::Passed),
            "{report:#?}"
        );
        assert_eq!(drills_recorded(&w), 2);
        assert_eq!(live(&w), before);
    }

    #[test]
    fn a_destructive_drill_cancelled_after_the_wipe_leaves_the_owed_restore() {
        let w = backed_up();
        let at_wipe = std::sync::Arc::new(std::sync::Mutex::new(None));
        let (seen, db) = (std::sync::Arc::clone(&at_wipe), w.path("app.db"));
        // The data as the wipe begins (the drill's canary written, its backup taken).
        let ctx = cancelled_on(move |e| {
            let wiping = step_begins(e, "wiping app/db");
            if wiping {
                *seen.lock().unwrap() = Some(sqlite_dump(&db));
            }
            wiping
        });
        let opts = DrillOptions {
            destructive: true,
            force: true,
            ..DrillOptions::default()
        };
        let result = drydock_engine::drill::drill(&w.config, &opts, &ctx);
        assert!(
            matches!(result, Err(EngineError::Cancelled { .. })),
            "{result:#?}"
        );
        assert_eq!(drills_recorded(&w), 0);
        assert_eq!(
            owed(&w.config),
            ["app"],
            "the wiped service is owed its restore"
        );
        // A drill is refused until it is restored; the restore brings back the data
        // as it was when the wipe began.
        let again = drydock_engine::drill::drill(&w.config, &opts, &RunContext::default());
        assert!(matches!(again, Err(EngineError::Refused(_))), "{again:#?}");
        let restore = RestoreOptions {
            services: vec!["app".into()],
            force: true,
            ..RestoreOptions::default()
        };
        let report =
            drydock_engine::restore::restore(&w.config, &restore, &RunContext::default()).unwrap();
        assert_eq!(report.verdict(), Verdict::Ok, "{report:#?}");
        assert!(owed(&w.config).is_empty());
        let wiped_from = at_wipe.lock().unwrap().clone().expect("the wipe began");
        assert_eq!(sqlite_dump(&w.path("app.db")), wiped_from);
    }
}

mod certify {
    use drydock_domain::Verdict;
    use drydock_engine::certify::{CertifyOptions, StepStatus};
    use drydock_engine::{EngineError, RunContext};

    use crate::support::{cancelled_on, owed, step_begins, World};

    /// Makes the stack's folder a git repository with one commit (certify deploys HEAD).
    fn git_init(dir: &std::path::Path) {
        std::fs::write(dir.join(".gitignore"), "state/\nrepo/\n").unwrap();
        for args in [
            &["init", "-q", "-b", "main"][..],
            &["add", "-A"],
            &["commit", "-q", "-m", "stack"],
        ] {
            let out = std::process::Command::new("git")
                .arg("-C")
                .arg(dir)
                .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "git {args:?}: {out:?}");
        }
    }

    #[test]
    fn a_certify_cancelled_after_the_wipe_records_no_step_and_resumes_there() {
        let w = World::new();
        git_init(w.dir.path());
        let opts = CertifyOptions {
            service: "app".into(),
            force: true,
            seed: 7,
            ..CertifyOptions::default()
        };
        // Step 9 begins with the data wiped; the restore is cancelled before it runs.
        let ctx = cancelled_on(|e| step_begins(e, "certify app: step 9"));
        let result = drydock_engine::certify::certify(&w.config, &opts, &ctx);
        assert!(
            matches!(result, Err(EngineError::Cancelled { .. })),
            "{result:#?}"
        );
        assert_eq!(
            owed(&w.config),
            ["app"],
            "the wiped service is owed its restore"
        );
        // Step 9 was not recorded: the next run resumes there and completes it.
        let report =
            drydock_engine::certify::certify(&w.config, &opts, &RunContext::default()).unwrap();
        assert_eq!(report.resumed_at, 9, "{report:#?}");
        assert_eq!(report.steps[8].status, StepStatus::Passed, "{report:#?}");
        assert!(report.steps[8].ran_now);
        // `app` is infrastructure with runtime `none`: deployed by a recreate that
        // compares its data with the pre-deploy backup, twice, then a plain deploy.
        for step in [0, 2] {
            assert_eq!(report.steps[step].status, StepStatus::Passed, "{report:#?}");
        }
        assert!(
            report.steps[0]
                .detail
                .contains("infra: backup, recreate, verify"),
            "{:?}",
            report.steps[0].detail
        );
        assert!(
            report.steps[2]
                .detail
                .contains("nothing runs (runtime `none`)")
                && report.steps[2].detail.contains("changed nothing"),
            "{:?}",
            report.steps[2].detail
        );
        assert_eq!(report.metrics.idempotency_changes, Some(0));
        assert_eq!(report.verdict(), Verdict::Ok, "{report:#?}");
        assert!(owed(&w.config).is_empty());
    }
}

mod postgres {
    use std::process::Command;

    use drydock_domain::plan::Selection;
    use drydock_domain::{Config, Verdict};
    use drydock_engine::restore::RestoreOptions;
    use drydock_engine::{EngineError, RunContext};
    use drydock_testkit::postgres::PgServer;

    use crate::support::{cancelled_on, owed, starts, step_begins};

    /// A stack with one service `db`: a critical PostgreSQL database on a real server.
    fn stack(pg: &PgServer, dir: &std::path::Path) -> Config {
        for (file, secret) in [
            ("repo-password", "engine-test-password"),
            ("pg-password", pg.password()),
        ] {
            std::fs::write(dir.join(file), secret).unwrap();
            std::fs::set_permissions(
                dir.join(file),
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            )
            .unwrap();
        }
        let config = format!(
            "[stack]\nname = \"engine-pg\"\nstate_dir = \"state\"\n\n[repository]\npath = \"repo\"\npassword = \"${{file:{}}}\"\n\n[services.db]\nruntime = {{ kind = \"external\" }}\ndata = [{{ kind = \"postgres\", name = \"main\", priority = \"critical\", url = \"{}\", password = \"${{file:{}}}\" }}]\n",
            dir.join("repo-password").display(),
            pg.url("app"),
            dir.join("pg-password").display()
        );
        std::fs::write(dir.join("drydock.toml"), config).unwrap();
        Config::load(&dir.join("drydock.toml")).unwrap()
    }

    /// The database as `pg_dump` prints it (the random `\restrict` keys left out).
    fn pg_dump(pg: &PgServer) -> String {
        let out = Command::new(drydock_testkit::program("pg_dump"))
            .args(["-h", "127.0.0.1", "-p", &pg.port().to_string(), "-U"])
            .arg(pg.superuser())
            .args(["--no-owner", "--format=plain", "app"])
            .env("PGPASSWORD", pg.password())
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_dump failed");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("\\restrict ") && !l.starts_with("\\unrestrict "))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    fn databases(pg: &PgServer) -> String {
        pg.psql("postgres", "SELECT datname FROM pg_database ORDER BY 1")
    }

    fn forced() -> RestoreOptions {
        RestoreOptions {
            services: vec!["db".into()],
            force: true,
            ..RestoreOptions::default()
        }
    }

    #[test]
    fn a_postgres_restore_cancelled_keeps_the_live_database_or_leaves_it_owed() {
        let pg = PgServer::start();
        pg.create_db("app");
        pg.psql(
            "app",
            "CREATE TABLE t (id int PRIMARY KEY, body text NOT NULL);
             INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 2000) i;",
        );
        let dir = tempfile::tempdir().unwrap();
        let config = stack(&pg, dir.path());
        let backup =
            drydock_engine::backup::backup(&config, &Selection::default(), &RunContext::default())
                .unwrap();
        assert_eq!(backup.verdict(), Verdict::Ok, "{backup:#?}");
        pg.psql("app", "UPDATE t SET body = 'changed since' WHERE id <= 10");
        let (before, dbs) = (pg_dump(&pg), databases(&pg));

        // Cancelled as the source starts: the restore beside the live database runs to
        // the swap, which the cancellation stops.
        let ctx = cancelled_on(|e| starts(e, "restore", "db/main"));
        let result = drydock_engine::restore::restore(&config, &forced(), &ctx);
        assert!(
            matches!(result, Err(EngineError::Cancelled { .. })),
            "{result:#?}"
        );
        assert_eq!(pg_dump(&pg), before, "the live database changed");
        assert_eq!(databases(&pg), dbs, "a scratch database was left behind");
        assert!(owed(&config).is_empty());

        // Cancelled during verification, after the swap: owed until a restore verifies.
        let ctx = cancelled_on(|e| step_begins(e, "verifying db/main"));
        let result = drydock_engine::restore::restore(&config, &forced(), &ctx);
        assert!(
            matches!(result, Err(EngineError::Cancelled { .. })),
            "{result:#?}"
        );
        assert_eq!(owed(&config), ["db"]);
        let report =
            drydock_engine::restore::restore(&config, &forced(), &RunContext::default()).unwrap();
        assert_eq!(report.verdict(), Verdict::Ok, "{report:#?}");
        assert!(owed(&config).is_empty());
        assert_eq!(
            pg.psql("app", "SELECT count(*) FROM t WHERE body = 'changed since'")
                .trim(),
            "0"
        );
    }
}

mod deploy_docker;
mod deploy_release;
