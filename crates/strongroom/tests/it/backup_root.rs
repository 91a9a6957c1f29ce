//! Backups are taken only under the root key the database's keys are sealed under, and land whole
//! under the name asked for.

use std::ffi::OsStr;

use crate::backup::{cli, create, key_backup, verify};
use crate::kit::*;

/// A backup is encrypted under the root key the database's keys are sealed under, or not taken:
/// under any other it would be found useless only at the restore that needs it. It lands whole
/// under the name asked for, whatever that name.
#[tokio::test]
async fn backups_are_taken_under_the_live_root_key_and_land_whole() {
    if skip_on_postgres("`strongroom backup create` copies the SQLite file of a data dir") {
        return;
    }
    let server = Server::start();
    let admin = server.admin().await;
    create_tenant(&admin, None).await;
    let files = tempfile::tempdir().unwrap();

    // A name that ends like a staged copy still lands, and nothing staged is left beside it.
    let odd = files.path().join("nightly.partial");
    let made = create(&server.data_dir, &odd);
    assert!(made.ok, "{}", made.out);
    let checked = verify(&odd, &server.data_dir);
    assert!(checked.ok, "{}", checked.out);
    let keys = files.path().join("keys.partial");
    let made = key_backup(&server.data_dir, &keys);
    assert!(made.ok && keys.exists(), "{}", made.out);
    let mut left: Vec<_> = std::fs::read_dir(files.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["keys.partial", "nightly.partial"]);

    // Another root key: refused, for data and for keys, and nothing written.
    let other = files.path().join("other.key");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&other)
            .unwrap();
        std::io::Write::write_all(&mut f, b"QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=\n")
            .unwrap();
    }
    for what in ["create", "keys"] {
        let out = files.path().join(format!("foreign-{what}.bak"));
        let run = cli(&[
            OsStr::new("backup"),
            OsStr::new(what),
            OsStr::new("--data-dir"),
            server.data_dir.as_os_str(),
            OsStr::new("--out"),
            out.as_os_str(),
            OsStr::new("--root-key-file"),
            other.as_os_str(),
        ]);
        assert!(
            !run.ok,
            "backup {what} under a foreign root key: {}",
            run.out
        );
        assert!(run.out.contains("could never be restored"), "{}", run.out);
        assert!(!out.exists());
    }

    // A root-key rotation left half-done: refused until a start has finished or undone it.
    let pending = server.data_dir.join("keys/root.key.new");
    std::fs::copy(&other, &pending).unwrap();
    let out = files.path().join("mid-rotation.bak");
    let run = create(&server.data_dir, &out);
    assert!(!run.ok && run.out.contains("half-done"), "{}", run.out);
    assert!(!out.exists());
    std::fs::remove_file(&pending).unwrap();
}
