//! The engine as a daemon drives it: several operations in one process, each with a
//! [`RunContext`] whose events are collected, a backup cancelled from another thread,
//! a confirmation refused, and the verdicts the reports give. Real sources (SQLite and
//! files) in a temporary stack; no binary involved.

mod support {
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex};

    use drydock_domain::{Config, Event, EventSink};
    use drydock_engine::RunContext;

    /// A stack with one service `app`: a critical SQLite database and high-priority files.
    pub struct World {
        pub dir: tempfile::TempDir,
        pub config: Config,
    }

    impl World {
        pub fn new() -> World {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            std::fs::write(root.join("repo-password"), "engine-test-password").unwrap();
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

    use crate::support::World;

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
    use drydock_domain::Verdict;
    use drydock_engine::verify::VerifyOptions;
    use drydock_engine::RunContext;

    use crate::support::World;

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
}
