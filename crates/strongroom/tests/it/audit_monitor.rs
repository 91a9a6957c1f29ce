//! `strongroom audit verify --url … --state FILE` as a monitor of a live server: trust on first
//! use, consistency with the trusted checkpoint, forks and withheld proofs reported with both
//! checkpoints, a changed key refused, the state never changed on failure.

use std::ffi::OsStr;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use strongroom_ledger::{Checkpoint, NoteSigner, NoteVerifier};

use crate::audit_log::{Run, SIGNING_PAUSE, activity, audit_verify, verify_store};
use crate::kit::*;

fn monitor(server: &Server, state: &Path) -> Run {
    let ca = server.data_dir.join("tls/cert.pem");
    audit_verify(&[
        OsStr::new("--url"),
        OsStr::new(&server.url("")),
        OsStr::new("--state"),
        state.as_os_str(),
        OsStr::new("--ca-cert"),
        ca.as_os_str(),
    ])
}

/// Tenant, users and contacts created and read through the API: a few dozen entries.
#[tokio::test]
async fn monitor_follows_the_server_and_refuses_forks_and_key_changes() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("monitor.json");

    let first = monitor(&server, &state);
    assert!(first.ok, "first monitor run\n{first}");
    assert!(first.stdout.contains("trust on first use"), "{first}");
    let stored: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let vkey = server.anon().get("/v1/audit/verifier-key").await.text;
    assert_eq!(stored["vkey"].as_str(), Some(vkey.trim()));

    activity(&server).await;
    tokio::time::sleep(SIGNING_PAUSE).await;
    let second = monitor(&server, &state);
    assert!(second.ok, "second monitor run\n{second}");
    assert!(second.stdout.contains("consistent: size "), "{second}");
    let good = std::fs::read(&state).unwrap();
    let good_state: Value = serde_json::from_slice(&good).unwrap();
    let verifier = NoteVerifier::parse(vkey.trim()).unwrap();
    let trusted = verifier
        .verify_checkpoint(good_state["note"].as_str().unwrap())
        .unwrap();
    assert!(trusted.size > 10, "{trusted:?}");

    // Offline verification works on the live server's database (read-only open).
    let live = verify_store(&server);
    assert!(live.ok, "verify while the server runs\n{live}");
    // Without --verifier-key the key is the data dir's own, and the run says so.
    assert!(live.stdout.contains("pass --verifier-key"), "{live}");

    // A fork: a checkpoint validly signed with the log's own key, but for another tree.
    let seed = STANDARD
        .decode(
            std::fs::read_to_string(server.data_dir.join("keys/log-signing.key"))
                .unwrap()
                .trim(),
        )
        .unwrap();
    let signer = NoteSigner::from_bytes(verifier.name(), &seed.try_into().unwrap()).unwrap();
    let forged = Checkpoint {
        origin: trusted.origin.clone(),
        size: trusted.size - 2,
        root: [9; 32],
    };
    let forged_note = signer.sign_checkpoint(&forged).unwrap();
    let forged_state =
        serde_json::to_vec(&json!({"vkey": vkey.trim(), "note": forged_note})).unwrap();
    std::fs::write(&state, &forged_state).unwrap();
    let fork = monitor(&server, &state);
    assert!(!fork.ok, "monitor accepted a fork\n{fork}");
    assert!(fork.stderr.contains("not consistent"), "{fork}");
    for part in [
        "---- trusted checkpoint ----",
        "---- offered checkpoint ----",
        "---- consistency proof (",
    ] {
        assert!(fork.stdout.contains(part), "missing {part:?}\n{fork}");
    }
    assert!(
        fork.stdout
            .contains(&forged_note.lines().next().unwrap().to_owned()),
        "{fork}"
    );
    assert_eq!(
        std::fs::read(&state).unwrap(),
        forged_state,
        "state changed on failure"
    );

    // A trusted checkpoint beyond anything the server holds (validly signed, so a server that
    // now offers less must prove that it offers a prefix): it cannot, and says so with both notes.
    let ahead = Checkpoint {
        origin: trusted.origin.clone(),
        size: trusted.size + 1_000,
        root: [7; 32],
    };
    let ahead_note = signer.sign_checkpoint(&ahead).unwrap();
    std::fs::write(
        &state,
        serde_json::to_vec(&json!({"vkey": vkey.trim(), "note": ahead_note})).unwrap(),
    )
    .unwrap();
    let behind = monitor(&server, &state);
    assert!(!behind.ok, "monitor accepted a shorter log\n{behind}");
    assert!(behind.stderr.contains("no consistency proof"), "{behind}");
    for part in [
        "---- trusted checkpoint ----",
        "---- offered checkpoint ----",
    ] {
        assert!(behind.stdout.contains(part), "missing {part:?}\n{behind}");
    }
    // Offline, the stored checkpoints alone cannot tell that the log lacks what was signed (the
    // store passes); checked against the state kept outside it, the log must hold its checkpoint.
    assert!(verify_store(&server).ok);
    let anchored = verify_against_state(&server, &state);
    assert!(
        !anchored.ok,
        "offline verify accepted a shorter log\n{anchored}"
    );
    assert!(anchored.stdout.contains("FAILED at index"), "{anchored}");
    assert!(anchored.stdout.contains("tail removed"), "{anchored}");

    // Back to the genuine state: the same server passes again, offline too.
    std::fs::write(&state, &good).unwrap();
    let anchored = verify_against_state(&server, &state);
    assert!(anchored.ok, "{anchored}");
    assert!(
        anchored.stdout.contains("trusted checkpoint from"),
        "{anchored}"
    );
    let third = monitor(&server, &state);
    assert!(third.ok, "third monitor run\n{third}");
    let after_third = std::fs::read(&state).unwrap();

    // Another server (another key) behind the same state: refused.
    let other = Server::start();
    let switched = monitor(&other, &state);
    assert!(!switched.ok, "monitor accepted a new key\n{switched}");
    assert!(
        switched.stderr.contains("verifier key changed"),
        "{switched}"
    );
    assert_eq!(
        std::fs::read(&state).unwrap(),
        after_third,
        "state changed on failure"
    );
    // Nor does the offline check take a state that trusts another key than the log's.
    let foreign = verify_against_state(&other, &state);
    assert!(!foreign.ok, "{foreign}");
    assert!(foreign.stderr.contains("another verifier key"), "{foreign}");
}

/// `strongroom audit verify --data-dir` on `server`'s store, anchored on a monitor's state file.
fn verify_against_state(server: &Server, state: &Path) -> Run {
    let mut args = vec![
        OsStr::new("--data-dir").to_owned(),
        server.data_dir.clone().into_os_string(),
        OsStr::new("--state").to_owned(),
        state.as_os_str().to_owned(),
    ];
    args.extend(server.store_args().into_iter().map(Into::into));
    audit_verify(&args)
}

/// An HTTPS listener with the server's own certificate that answers every request with a
/// redirect to the same path on the real server.
async fn redirector(server: &Server) -> std::net::SocketAddr {
    use rustls_pki_types::pem::PemObject as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let certs = rustls_pki_types::CertificateDer::pem_slice_iter(server.cert_pem())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(server.data_dir.join("tls/key.pem"))
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let target = server.url("");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, target) = (acceptor.clone(), target.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = vec![0u8; 4096];
                let Ok(n) = tls.read(&mut head).await else {
                    return;
                };
                let head = String::from_utf8_lossy(&head[..n]);
                let path = head.split(' ').nth(1).unwrap_or("/");
                let answer = format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: {}{}\r\n\
                     Content-Length: 0\r\nConnection: close\r\n\r\n",
                    target.trim_end_matches('/'),
                    path
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn the_monitor_follows_no_redirect() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("monitor.json");
    let addr = redirector(&server).await;
    let ca = server.data_dir.join("tls/cert.pem");
    let url = format!("https://{addr}/");
    let run = tokio::task::spawn_blocking(move || {
        audit_verify(&[
            OsStr::new("--url"),
            OsStr::new(&url),
            OsStr::new("--state"),
            state.as_os_str(),
            OsStr::new("--ca-cert"),
            ca.as_os_str(),
        ])
    })
    .await
    .unwrap();
    assert!(
        !run.ok,
        "the monitor followed a redirect to another log\n{run}"
    );
    assert!(run.stderr.contains("307"), "{run}");
    assert!(!dir.path().join("monitor.json").exists(), "nothing trusted");
    // The same monitor on the server itself is fine.
    assert!(monitor(&server, &dir.path().join("monitor.json")).ok);
}
